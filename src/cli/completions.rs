//! `druppie completions SHELL`: the shell completion script, on stdout.

use clap::CommandFactory as _;

use super::{Cli, exit};

/// Print a completion script for a shell.
///
/// bash: `druppie completions bash > /etc/bash_completion.d/druppie`;
/// zsh: `druppie completions zsh > "${fpath[1]}/_druppie"`;
/// fish: `druppie completions fish > ~/.config/fish/completions/druppie.fish`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

pub fn run(args: &Args) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "druppie", &mut script);
    super::output::print_out(&String::from_utf8_lossy(&script));
    exit::OK
}
