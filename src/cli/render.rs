//! `druppie render`: write the desired trees to disk.

use super::output::err;
use std::path::PathBuf;

use super::output::count;
use super::{Context, exit, render_spec};
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

pub fn run(ctx: &Context, args: &Args) -> u8 {
    let Some(desired) = render_spec(ctx, &args.select) else {
        return exit::ERROR;
    };
    if let Err(d) = render::write_out(&desired, &args.out) {
        err!("{}", d.render(ctx.color_err));
        return exit::ERROR;
    }
    let files: usize = desired.targets.values().map(|t| t.files.len()).sum();
    let repos: std::collections::BTreeSet<&str> =
        desired.targets.values().map(|t| t.repo.as_str()).collect();
    super::output::print_out(&format!(
        "rendered {} into {} under {}\n",
        count(files, "file"),
        count(repos.len(), "repo"),
        args.out.display()
    ));
    exit::OK
}
