//! `druppie promote`: bring what is live in the environment before to
//! an environment now.

use super::apply::{execute, forge, identity, signer, spec_repo};
use super::{CommandError, CommandResult, Context, SelectArgs, Ui, open};
use crate::apply::promote::{self, Prepared, PromoteError};
use crate::apply::{Cache, Run};
use crate::spec::revision::RevisionError;

/// Promote what is live for a plan in the environment before `--to` (its
/// lock's spec commit: the freight) to `--to` now, even when the spec has
/// moved on since: the spec at that commit is rendered for `--to` and
/// proposed there (committed where `--to` deploys), as `apply` would, and
/// recorded as promoted from that environment once merged.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plan to promote
    pub plan: String,
    /// The environment to promote it to
    #[arg(long, value_name = "ENV")]
    pub to: String,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let config = &ctx.config;
    let forge = forge(ctx).map_err(CommandError::failed)?;
    let signer = signer(config)?;
    let spec_repo = spec_repo(ctx)?;
    let identity = identity(config);
    let cache = Cache::new(&config.resolve(&config.repos.cache_dir), forge.git_env())
        .waiting(crate::apply::LOCK_WAIT, "druppie promote");
    let now = open(
        ctx,
        ui,
        &crate::spec::LoadOptions::default(),
        &SelectArgs::default(),
    )?;
    let trail = crate::audit::trusted(&spec_repo, &signer.own_key())
        .map_err(CommandError::failed)?
        .events;
    // Private (mode 0700, a random name) and removed when dropped.
    let tmp = tempfile::Builder::new()
        .prefix("druppie-promote-")
        .tempdir()
        .map_err(|e| CommandError::user(format!("cannot make a scratch directory: {e}")))?;
    let Prepared {
        freight,
        spec,
        scope,
    } = promote::prepare(
        &now.valid,
        &spec_repo,
        &ctx.spec_root,
        &cache,
        forge.as_ref(),
        &trail,
        (&args.plan, &args.to),
        &tmp.path().join("spec"),
    )
    .map_err(refused)?;
    drop(now);
    ui.diagnostics(&spec.valid.warnings);
    ui.note(&format!(
        "promoting {} to {}: what is live in {} (spec commit {})",
        freight.plan,
        freight.to,
        freight.from,
        &freight.spec_commit[..12.min(freight.spec_commit.len())]
    ));
    let run = Run {
        forge: forge.as_ref(),
        cache: &cache,
        signer: &signer,
        identity: &identity,
        spec_repo: &spec_repo,
        spec_commit: Some(&freight.spec_commit),
        trigger: "cli",
        limits: config.render.limits(),
        promote: Some(&freight),
        fetched: &[],
        fence: None,
    };
    execute(ui, &run, &spec, &scope, args.yes)
}

/// A promotion that cannot be: the user's to fix, unless the forge or
/// the cache failed. A spec revision that does not open shows its
/// diagnostics.
fn refused(e: PromoteError) -> CommandError {
    match e {
        PromoteError::Revision(RevisionError::Open(e)) => e.into(),
        e @ (PromoteError::Apply(_) | PromoteError::Revision(_)) => CommandError::failed(e),
        e => CommandError::user(e.to_string()),
    }
}
