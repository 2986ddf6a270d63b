//! `druppie completions SHELL`: the shell completion script, on stdout.

use clap::CommandFactory as _;

use super::{Cli, CommandResult, Ui, command_error::ok};

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

pub fn run(ui: &Ui, args: &Args) -> CommandResult {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "druppie", &mut script);
    ui.out(&String::from_utf8_lossy(&script));
    ok()
}
