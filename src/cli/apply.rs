//! `druppie apply`: the change sets of `diff`, written as signed commits
//! and pushed through the forge.

use std::io::{BufRead as _, IsTerminal as _};

use super::{CommandError, CommandResult, Context, Ui, command_error::ok, open, spec_commit};
use crate::apply::{Cache, Done, Failure, Run};
use crate::config::Config;
use crate::diff::report::{self, Summary};
use crate::git::sign::Signer;
use crate::git::write::Identity;

/// Apply the changes `druppie diff` shows: commit to the default branch
/// where the environment's trust is `deploy`, push a `druppie/…` branch
/// to approve by merging where it is `propose`, write nothing where it is
/// `observe`. Refuses when the spec is invalid or a policy fails.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub select: super::SelectArgs,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
}

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let config = &ctx.config;
    let forge = forge(ctx).map_err(CommandError::failed)?;
    let signer = signer(config)?;
    let spec_repo = spec_repo(ctx)?;
    refuse_uncommitted(ctx)?;
    let identity = identity(config);
    let cache = Cache::new(&config.resolve(&config.repos.cache_dir), forge.git_env())
        .waiting(crate::apply::LOCK_WAIT, "druppie apply");
    let opened = open(ctx, ui, &crate::spec::LoadOptions::default(), &args.select)?;
    let commit = spec_commit(ctx);
    let run = Run {
        forge: forge.as_ref(),
        cache: &cache,
        signer: &signer,
        identity: &identity,
        spec_repo: &spec_repo,
        spec_commit: commit.as_deref(),
        trigger: "cli",
        limits: config.render.limits(),
        promote: None,
        fetched: &[],
        fence: None,
    };
    execute(ui, &run, &opened, &args.select.options(), args.yes)
}

/// Runs `run` on `opened` (`scope`: what the selection covers), asking
/// first unless `yes`, and prints what it did.
pub(crate) fn execute(
    ui: &Ui,
    run: &Run<'_>,
    opened: &crate::spec::Opened,
    scope: &crate::compose::ComposeOptions,
    yes: bool,
) -> CommandResult {
    let mut confirm = |changes: &crate::diff::ChangeSets, mask: &report::Mask| {
        ui.out(&format!(
            "{}{}\n",
            report::text(changes, mask, ui.color_out()),
            Summary::of(changes).line()
        ));
        yes || confirmed(ui)
    };
    let (outcome, result) = run.apply(&opened.valid, &opened.selection, scope, &mut confirm);
    for line in &outcome.repaired {
        ui.note(line);
    }
    for line in &outcome.ignored {
        ui.warning(&super::output::printable(line));
    }
    for line in &outcome.recorded {
        ui.out(&format!("{}\n", super::output::printable(line)));
    }
    if let Some(changes) = &outcome.changes {
        for e in &changes.errors {
            ui.error(e);
        }
    }
    for step in &outcome.steps {
        ui.out(&format!("{}\n", super::output::printable(&step_line(step))));
    }
    let unwritten = outcome
        .changes
        .as_ref()
        .is_some_and(|c| c.shown().any(|cs| !cs.files.is_empty()));
    match result {
        Ok(()) if outcome.steps.is_empty() && unwritten => {
            ui.out("nothing to write: what differs waits for a merge, was closed without merging, or changes lock files only (`druppie diff` shows it)\n");
            ok()
        }
        Ok(()) if outcome.steps.is_empty() => {
            ui.out("nothing to apply: every repo matches the spec\n");
            ok()
        }
        Ok(()) => ok(),
        Err(Failure::Diagnostics(diags)) => Err(CommandError::Diagnostics(diags)),
        Err(Failure::Blocked(line)) => {
            if let Some(changes) = &outcome.changes {
                let mask = report::Mask::new(changes.secrets.iter().cloned());
                ui.out(&report::text(changes, &mask, ui.color_out()));
            }
            Err(CommandError::user(format!("{line}; nothing applied")))
        }
        Err(Failure::Declined) => Err(CommandError::hinted(
            "not applied",
            "pass --yes to apply without asking",
        )),
        Err(e) => Err(CommandError::failed(e)),
    }
}

/// The spec checkout's repository, which holds the audit trail.
pub(crate) fn spec_repo(ctx: &Context) -> Result<crate::git::Repo, CommandError> {
    crate::git::Repo::discover(&ctx.spec_root).ok_or_else(|| {
        CommandError::hinted(
            format!("{} is not in a git repository", ctx.spec_root.display()),
            format!(
                "apply records every change on the `{}` branch of the spec repo: run it in a clone of the spec repo",
                crate::audit::BRANCH
            ),
        )
    })
}

/// Every commit apply writes names the spec commit it was rendered from
/// (`Druppie-Spec-Commit`): spec files edited since that commit would
/// make it name the wrong one.
fn refuse_uncommitted(ctx: &Context) -> Result<(), CommandError> {
    let edited = crate::spec::uncommitted(&ctx.spec_root)
        .map_err(|e| CommandError::user(format!("cannot read the spec checkout's status: {e}")))?;
    if edited.is_empty() {
        return Ok(());
    }
    let shown = edited
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = edited.len().saturating_sub(5);
    Err(CommandError::hinted(
        format!(
            "the spec checkout has uncommitted changes: {shown}{}",
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
        "commit them first: every commit apply writes names the spec commit it was rendered from (`druppie diff` shows uncommitted edits)",
    ))
}

/// What one step did, as a line.
fn step_line(step: &crate::apply::Step) -> String {
    let plans = step.plans.join(", ");
    let at = match &step.env {
        Some(env) => format!("{} ({env}) {plans}", step.repo),
        None => format!("{} {plans}", step.repo),
    };
    match &step.done {
        Done::Committed { commit } => format!("{at}: committed {}", &commit[..12]),
        Done::Proposed {
            branch,
            commit,
            pull,
        } => {
            let on = pull.as_deref().unwrap_or(branch);
            format!(
                "{at}: proposed on {on} ({}); merging it approves",
                &commit[..12]
            )
        }
        Done::AlreadyProposed { branch, pull } => {
            let on = pull.as_deref().unwrap_or(branch);
            format!("{at}: {on} already proposes these changes")
        }
        Done::Held { branch, by, pull } => {
            let on = pull.as_deref().unwrap_or(branch);
            format!(
                "{at}: {on} has commits by {by}; left as it is (close it to get a fresh proposal)"
            )
        }
        Done::Waiting { reason, .. } => format!("{at}: {reason}"),
        Done::Observed => format!("{at}: observe only, nothing written"),
        Done::Rejected { branch, .. } => {
            format!("{at}: {branch} moved on the forge; starting over")
        }
    }
}

/// The forge `[forge]` configures, with the token from the environment.
pub(crate) fn forge(
    ctx: &Context,
) -> Result<Box<dyn crate::forge::Forge>, crate::forge::ConfigError> {
    crate::forge::from_config(
        &ctx.config,
        ctx.secrets.forge_token.secret().cloned(),
        &ctx.scrubber,
    )
}

/// druppie's commit identity, `[signing] name` and `email`.
pub(crate) fn identity(config: &Config) -> Identity {
    Identity {
        name: config.signing.name.clone(),
        email: config.signing.email.clone(),
    }
}

/// The signing key `[signing] key` names.
///
/// # Errors
/// No key is configured, or it cannot be used.
pub(crate) fn signer(config: &Config) -> Result<Signer, CommandError> {
    let Some(key) = &config.signing.key else {
        return Err(CommandError::hinted(
            "druppie signs every commit, and `[signing] key` in druppie.toml names no key",
            "make one with `ssh-keygen -t ed25519 -N '' -f keys/druppie_ed25519` and set `key = \"keys/druppie_ed25519\"`",
        ));
    };
    Signer::load(&config.resolve(key)).map_err(CommandError::failed)
}

/// Asks on the terminal; anything but yes is no.
fn confirmed(ui: &Ui) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    ui.out("apply these changes? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
