use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use druppie::cli::{Cli, Command, Env, exit, run};

/// Parsing and rendering allocate many small values; mimalloc serves them
/// faster than the system allocator, from every thread. Metered: a
/// template may hold only so much memory (`druppie::budget`).
#[global_allocator]
static ALLOCATOR: druppie::budget::Metered<mimalloc::MiMalloc> =
    druppie::budget::Metered(mimalloc::MiMalloc);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::ERROR
            } else {
                exit::OK
            });
        }
    };
    // The daemon logs JSON lines at info; commands log text warnings.
    let daemon = matches!(cli.command, Command::Serve(_));
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRUPPIE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if daemon { "info" } else { "warn" })
    });
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if daemon {
        logs.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.init();
    }
    let env = Env {
        cwd: std::env::current_dir().unwrap_or_default(),
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        stdout_tty: std::io::stdout().is_terminal(),
        stderr_tty: std::io::stderr().is_terminal(),
        var: |name| std::env::var(name).ok(),
    };
    run(cli, &env)
}
