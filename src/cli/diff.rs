//! `druppie diff`: what would change in every target repo, from a local
//! checkout, with no cluster, forge or network.

use std::path::PathBuf;

use std::process::ExitCode;

use super::{CommandResult, Context, Ui, exit, open, spec_commit};
use crate::diff;
use crate::diff::report::{self, Mask, Summary};
use crate::live::Sources;

/// Show what would change in the project repos and the infra repo:
/// creates, modifications, deletions (prunes), drift and conflicts, then
/// policy findings. Exit code: 0 nothing to change, 2 changes pending,
/// 1 errors (invalid spec, render or policy errors, unreadable repos).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub select: super::SelectArgs,
    /// Print a JSON report (changes, findings, summary, execution plan)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub live: LiveArgs,
}

/// Where the live repos are read.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LiveArgs {
    /// The infra repo: a work tree, bare repo or plain directory
    /// [default: `[repos] infra`, else `<DIR>/<infra>` under the repos
    /// directory, else `infra-example/` in the spec checkout]
    #[arg(long, value_name = "PATH")]
    pub infra: Option<PathBuf>,
    /// A directory holding one repo per target, as `<name>` or `<name>.git`
    /// [default: `[repos] dir`; without one, project repos do not exist yet]
    #[arg(long, value_name = "DIR")]
    pub repos: Option<PathBuf>,
}

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let (opened, changes) = changes(ctx, ui, &args.select, &args.live)?;
    let intent = report::intent(&opened.valid, args.select.plan.as_deref());
    let code = print_changes(ui, &changes, args.json, intent);
    // The process ends next: freeing the spec piece by piece would only
    // cost time.
    std::mem::forget(changes);
    std::mem::forget(opened);
    Ok(code)
}

/// Opens the spec for `select` and diffs it against the live repos
/// `live` names: what `diff` shows and `status` reads.
///
/// # Errors
/// The spec does not open, compose or render.
pub(super) fn changes(
    ctx: &Context,
    ui: &Ui,
    select: &super::SelectArgs,
    live: &LiveArgs,
) -> Result<(crate::spec::Opened, crate::diff::ChangeSets), super::CommandError> {
    let opened = open(ctx, ui, &crate::spec::LoadOptions::default(), select)?;
    let sources = live.sources(ctx);
    let scope = select.options();
    let spec_commit = spec_commit(ctx);
    let own = own_key(ctx);
    let options = diff::Options {
        sources: &sources,
        scope: &scope,
        spec_commit: spec_commit.as_deref(),
        limits: ctx.config.render.limits(),
        own_key: own.as_ref(),
    };
    let started = std::time::Instant::now();
    let changes = diff::diff(&opened.valid, &opened.selection, &options)?;
    tracing::debug!(elapsed = ?started.elapsed(), "compose, render, policy and diff");
    Ok((opened, changes))
}

/// Prints change sets as text or JSON (errors reading repos to stderr)
/// and returns the exit code: 1 errors (policy errors or unreadable
/// repos, shown in the report), 2 changes pending, 0 nothing.
pub(super) fn print_changes(
    ui: &Ui,
    changes: &crate::diff::ChangeSets,
    json: bool,
    intent: String,
) -> ExitCode {
    let mask = Mask::new(changes.secrets.iter().cloned());
    for e in &changes.errors {
        ui.error(e);
    }
    let summary = Summary::of(changes);
    let plan = crate::execution::plan(changes, intent);
    let pending = plan.shows_changes();
    if json {
        let report = report::json(changes, &mask, plan);
        let json = serde_json::to_string_pretty(&report).expect("the report serializes");
        ui.out(&format!("{json}\n"));
    } else {
        let text = report::text(changes, &mask, ui.color_out());
        ui.out(&format!("{text}{}\n", summary.line()));
    }
    ExitCode::from(if summary.errors > 0 {
        exit::ERROR
    } else if pending {
        exit::CHANGES
    } else {
        exit::OK
    })
}

/// druppie's own key, when `[signing] key` is configured and readable,
/// to tell its commits on proposal branches from a person's as `apply`
/// does (without it, by their trailers).
pub(super) fn own_key(ctx: &Context) -> Option<crate::git::sign::OwnKey> {
    let key = ctx.config.signing.key.as_ref()?;
    crate::git::sign::Signer::load(&ctx.config.resolve(key))
        .ok()
        .map(|s| s.own_key())
}

impl LiveArgs {
    /// Where the live repos are: flags, then `[repos]` in the config,
    /// then the spec checkout's `infra-example/` for the infra repo.
    pub(super) fn sources(&self, ctx: &Context) -> Sources {
        let repos_cfg = &ctx.config.repos;
        let repos = self
            .repos
            .clone()
            .or_else(|| repos_cfg.dir.as_ref().map(|d| ctx.config.resolve(d)));
        let infra = self
            .infra
            .clone()
            .or_else(|| repos_cfg.infra.as_ref().map(|p| ctx.config.resolve(p)))
            .or_else(|| {
                let example = ctx.spec_root.join("infra-example");
                // Part of the spec checkout: used only when it is a real
                // directory, never through a link.
                let real_dir = std::fs::symlink_metadata(&example).is_ok_and(|m| m.is_dir());
                (repos.is_none() && real_dir).then_some(example)
            });
        Sources { infra, repos }
    }
}
