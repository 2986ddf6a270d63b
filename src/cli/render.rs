//! `druppie render`: write the desired trees to disk.

use std::path::PathBuf;

use super::output::{count, print_diagnostics};
use super::{Context, exit, load_validated};
use crate::compose::{self, ComposeOptions};
use crate::render;
use crate::spec::LoadOptions;

/// Render the desired content of every target repo into DIR, one
/// directory per repo (`DIR/<repo>/...`). Nothing is written when any
/// template fails, and DIR must not exist or be empty.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write (must not exist, or be empty)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Only this plan
    #[arg(long)]
    pub plan: Option<String>,
    /// Only this environment
    #[arg(long)]
    pub env: Option<String>,
}

pub fn run(ctx: &Context, args: &Args) -> u8 {
    let Some(valid) = load_validated(ctx, &LoadOptions::default()) else {
        return exit::ERROR;
    };
    let options = ComposeOptions {
        plan: args.plan.clone(),
        env: args.env.clone(),
    };
    let desired = match compose::compose(&valid, &options).and_then(|r| render::render(&valid, &r))
    {
        Ok(d) => d,
        Err(diags) => {
            print_diagnostics(&diags, ctx.color_err);
            return exit::ERROR;
        }
    };
    if let Err(d) = render::write_out(&desired, &args.out) {
        eprint!("{}", d.render(ctx.color_err));
        return exit::ERROR;
    }
    let files: usize = desired.targets.values().map(|t| t.files.len()).sum();
    let repos: std::collections::BTreeSet<&str> =
        desired.targets.values().map(|t| t.repo.as_str()).collect();
    println!(
        "rendered {} into {} under {}",
        count(files, "file"),
        count(repos.len(), "repo"),
        args.out.display()
    );
    exit::OK
}
