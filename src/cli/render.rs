//! `druppie render`: write the desired trees to disk.

use std::path::PathBuf;

use super::output::count;
use super::{CommandResult, Context, Ui, command_error::ok, render_spec};
use crate::render;

/// Render the desired content of every target repo into DIR, one
/// directory per repo (`DIR/<repo>/...`). Nothing is written when any
/// template fails, and DIR must not exist or be empty.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write (must not exist, or be empty)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub select: super::SelectArgs,
}

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let desired = render_spec(ctx, ui, &args.select)?;
    render::write_out(&desired, &args.out)?;
    let files: usize = desired.targets.values().map(|t| t.files.len()).sum();
    let repos: std::collections::BTreeSet<&str> =
        desired.targets.values().map(|t| t.repo.as_str()).collect();
    ui.out(&format!(
        "rendered {} into {} under {}\n",
        count(files, "file"),
        count(repos.len(), "repo"),
        args.out.display()
    ));
    ok()
}
