//! `druppie man`: the manual page, as roff on stdout.

use clap::CommandFactory as _;

use super::{Cli, CommandError, CommandResult, Ui, command_error::ok};

/// Print the manual page (roff): `druppie man > druppie.1; man ./druppie.1`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(ui: &Ui) -> CommandResult {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(CommandError::failed)?;
    ui.out(&String::from_utf8_lossy(&page));
    ok()
}
