//! `druppie man`: the manual page, as roff on stdout.

use clap::CommandFactory as _;

use super::{Cli, exit};

/// Print the manual page (roff): `druppie man > druppie.1; man ./druppie.1`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run() -> u8 {
    let mut page = Vec::new();
    match clap_mangen::Man::new(Cli::command()).render(&mut page) {
        Ok(()) => {
            super::output::print_out(&String::from_utf8_lossy(&page));
            exit::OK
        }
        Err(e) => {
            super::output::print_error(&e, false);
            exit::ERROR
        }
    }
}
