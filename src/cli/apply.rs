//! `druppie apply`: the change sets of `diff`, written as signed commits
//! and pushed through the forge.

use super::output::errln;
use std::io::{BufRead as _, IsTerminal as _};

use super::output::{print_diagnostics, print_error, print_out};
use super::{Context, exit, open, spec_commit};
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

pub fn run(ctx: &Context, args: &Args) -> u8 {
    let config = &ctx.config;
    let fail = |message: &str| {
        errln!("error: {message}");
        exit::ERROR
    };
    let forge = match forge(ctx) {
        Ok(f) => f,
        Err(e) => return fail(&e.to_string()),
    };
    let signer = match signer(config) {
        Ok(s) => s,
        Err(message) => return fail(&message),
    };
    let Some(spec_repo) = crate::git::Repo::discover(&ctx.spec_root) else {
        return fail(&format!(
            "apply records every change on the `{}` branch of the spec repo, but {} is not in a git repository",
            crate::audit::BRANCH,
            ctx.spec_root.display()
        ));
    };
    let identity = identity(config);
    let cache = Cache::new(&config.resolve(&config.repos.cache_dir), forge.git_env())
        .waiting(crate::apply::LOCK_WAIT, "druppie apply");
    let Some(opened) = open(ctx, &crate::spec::LoadOptions::default(), &args.select) else {
        return exit::ERROR;
    };
    let commit = spec_commit(ctx);
    let run = Run {
        forge: forge.as_ref(),
        cache: &cache,
        signer: &signer,
        identity: &identity,
        spec_repo: &spec_repo,
        spec_commit: commit.as_deref(),
        trigger: "cli",
    };
    let mut confirm = |changes: &crate::diff::ChangeSets, mask: &report::Mask| {
        print_out(&format!(
            "{}{}\n",
            report::text(changes, mask, ctx.color_out),
            Summary::of(changes).line()
        ));
        args.yes || confirmed()
    };
    let (outcome, result) = run.apply(
        &opened.valid,
        &opened.selection,
        &args.select.options(),
        &mut confirm,
    );
    for line in &outcome.repaired {
        eprintln!("note: {line}");
    }
    for line in &outcome.recorded {
        print_out(&format!("{line}\n"));
    }
    if let Some(changes) = &outcome.changes {
        for e in &changes.errors {
            print_error(e, ctx.color_err);
        }
    }
    for step in &outcome.steps {
        print_out(&format!("{}\n", step_line(step)));
    }
    match result {
        Ok(()) if outcome.steps.is_empty() => {
            print_out("nothing to apply: every repo matches the spec\n");
            exit::OK
        }
        Ok(()) => exit::OK,
        Err(Failure::Diagnostics(diags)) => {
            print_diagnostics(&diags, ctx.color_err);
            exit::ERROR
        }
        Err(Failure::Blocked(line)) => {
            if let Some(changes) = &outcome.changes {
                let mask = report::Mask::new(changes.secrets.iter().cloned());
                print_out(&report::text(changes, &mask, ctx.color_out));
            }
            fail(&format!("{line}; nothing applied"))
        }
        Err(Failure::Declined) => fail("not applied (pass --yes to apply without asking)"),
        Err(e) => {
            print_error(&e, ctx.color_err);
            exit::ERROR
        }
    }
}

/// What one step did, as a line.
fn step_line(step: &crate::apply::Step) -> String {
    let at = match &step.env {
        Some(env) => format!("{} ({env})", step.repo),
        None => step.repo.clone(),
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
pub(crate) fn signer(config: &Config) -> Result<Signer, String> {
    let Some(key) = &config.signing.key else {
        return Err(
            "apply signs every commit: set `[signing] key` in druppie.toml (make one with `ssh-keygen -t ed25519 -N '' -f keys/druppie_ed25519`)"
                .to_owned(),
        );
    };
    Signer::load(&config.resolve(key)).map_err(|e| e.to_string())
}

/// Asks on the terminal; anything but yes is no.
fn confirmed() -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    print_out("apply these changes? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}
