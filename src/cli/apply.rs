//! `druppie apply`: the change sets of `diff`, written as signed commits
//! and pushed through the forge.

use std::io::{BufRead as _, IsTerminal as _};

use super::output::{print_diagnostics, print_error, print_out};
use super::{Context, exit, load_validated, select, spec_commit};
use crate::apply::{Cache, Done, Trail, Writer, now, stamp};
use crate::config::Config;
use crate::diff;
use crate::diff::report::{self, Mask, Summary};
use crate::git::sign::Signer;
use crate::git::write::Identity;
use crate::live::Sources;
use crate::render::Templates;

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

/// How often apply starts over when a branch moved on the forge.
const ATTEMPTS: usize = 3;

pub fn run(ctx: &Context, args: &Args) -> u8 {
    let config = &ctx.config;
    let fail = |message: &str| {
        eprintln!("error: {message}");
        exit::ERROR
    };
    let forge = match crate::forge::from_config(config) {
        Ok(f) => f,
        Err(message) => return fail(&message),
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
    let identity = Identity {
        name: config.signing.name.clone(),
        email: config.signing.email.clone(),
    };
    let cache = Cache::new(&config.resolve(&config.repos.cache_dir), forge.git_env());
    let Some(valid) = load_validated(ctx, &crate::spec::LoadOptions::default()) else {
        return exit::ERROR;
    };
    let Some(selection) = select(ctx, &valid, &args.select) else {
        return exit::ERROR;
    };
    let platform = valid
        .spec
        .platform
        .as_ref()
        .expect("validated: plans imply a platform");
    let templates = match Templates::load(&valid, &selection) {
        Ok(t) => t,
        Err(diags) => {
            print_diagnostics(&diags, ctx.color_err);
            return exit::ERROR;
        }
    };
    let commit = spec_commit(ctx);
    let scope = args.select.options();
    let sources = Sources {
        infra: None,
        repos: Some(cache.dir().to_owned()),
    };
    let targets: Vec<(String, String)> =
        diff::target_repos(&valid, platform, &selection, &templates)
            .into_iter()
            .map(|(repo, branch)| (repo, branch.to_owned()))
            .collect();
    for attempt in 1..=ATTEMPTS {
        // Bring every target repo the forge has into the cache.
        for (repo, _) in &targets {
            let exists = match forge.exists(repo) {
                Ok(e) => e,
                Err(e) => return fail(&e.to_string()),
            };
            if exists && let Err(e) = cache.sync(repo, &forge.url(repo)) {
                return fail(&e.to_string());
            }
        }
        if attempt == 1 {
            let trail = Trail {
                spec_repo: &spec_repo,
                forge: forge.as_ref(),
                cache: &cache,
                signer: &signer,
                identity: &identity,
                spec_commit: commit.as_deref(),
                platform,
            };
            match trail.catch_up(&targets) {
                Ok(lines) => lines.iter().for_each(|l| print_out(&format!("{l}\n"))),
                Err(message) => return fail(&message),
            }
        }
        let options = diff::Options {
            sources: &sources,
            scope: &scope,
            spec_commit: commit.as_deref(),
        };
        let Some(changes) = super::diff::changes(ctx, &valid, &selection, &options) else {
            return exit::ERROR;
        };
        for e in &changes.errors {
            print_error(e, ctx.color_err);
        }
        let summary = Summary::of(&changes);
        let mask = Mask::new(changes.secrets.iter().cloned());
        if summary.errors > 0 {
            print_out(&report::text(&changes, &mask, ctx.color_out));
            return fail(&format!("{}; nothing applied", summary.line()));
        }
        if summary.changes() == 0 {
            print_out("nothing to apply: every repo matches the spec\n");
            return exit::OK;
        }
        if attempt == 1 {
            print_out(&format!(
                "{}{}\n",
                report::text(&changes, &mask, ctx.color_out),
                summary.line()
            ));
            if !args.yes && !confirmed() {
                return fail("not applied (pass --yes to apply without asking)");
            }
        }
        let writer = Writer {
            forge: forge.as_ref(),
            mask: &mask,
            cache: &cache,
            signer: &signer,
            identity: &identity,
            spec_commit: commit.as_deref(),
            trigger: "cli",
            time: now(),
        };
        let (steps, failed) = writer.apply(&changes);
        let mut moved = false;
        let time = writer.time;
        let when = stamp(time);
        for step in &steps {
            if let Some(event) =
                crate::apply::event(step, &identity.email, commit.as_deref(), &when)
                && let Err(e) = crate::audit::record(&spec_repo, &event, &signer, &identity, time)
            {
                print_error(&e, ctx.color_err);
                return exit::ERROR;
            }
            let at = match &step.env {
                Some(env) => format!("{} ({env})", step.repo),
                None => step.repo.clone(),
            };
            let line = match &step.done {
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
                Done::Rejected { branch } => {
                    moved = true;
                    format!("{at}: {branch} moved on the forge; starting over")
                }
            };
            print_out(&format!("{line}\n"));
        }
        if let Some(e) = failed {
            print_error(&e, ctx.color_err);
            return exit::ERROR;
        }
        if !moved {
            return exit::OK;
        }
    }
    fail(&format!(
        "branches kept moving on the forge; gave up after {ATTEMPTS} attempts"
    ))
}

/// The signing key `[signing] key` names.
fn signer(config: &Config) -> Result<Signer, String> {
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
