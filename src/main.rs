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
    // Filled with every configured secret once the configuration is
    // read: no log line carries one, whatever its source.
    let scrubber = druppie::secret::Scrubber::new();
    let logs = tracing_subscriber::fmt()
        .with_writer(druppie::secret::ScrubbedWriter::new(
            std::io::stderr,
            scrubber.clone(),
        ))
        .with_env_filter(filter);
    scrub_panics(scrubber.clone());
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
        scrubber,
    };
    run(cli, &env)
}

/// Panic messages as Rust prints them (with a backtrace when
/// `RUST_BACKTRACE` asks for one), scrubbed of every configured secret:
/// a panic's message may quote an error whose text came from outside.
fn scrub_panics(scrubber: druppie::secret::Scrubber) {
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        let trace = match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("stack backtrace:\n{backtrace}\n"),
            _ => String::new(),
        };
        let text = format!("thread '{name}' panicked at {at}:\n{message}\n{trace}");
        let _ = std::io::Write::write_all(
            &mut std::io::stderr().lock(),
            scrubber.scrub(&text).as_bytes(),
        );
    }));
}
