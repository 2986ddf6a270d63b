//! `druppie apply`: the change sets of `diff`, written as signed commits
//! and pushed through the forge.

use std::io::{BufRead as _, IsTerminal as _};

use super::output::{print_diagnostics, print_error, print_out};
use super::{Context, exit, load_validated, select, spec_commit};
use crate::apply::{Cache, Done, Writer};
use crate::config::{Config, ForgeKind};
use crate::diff;
use crate::diff::report::{self, Mask, Summary};
use crate::forge::{Forge, PlainGit};
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
    let forge = match forge(config) {
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
    let cache = Cache::new(&config.resolve(&config.repos.cache_dir));
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
        if attempt == 1
            && let Err(message) = reconcile_trail(
                &valid,
                &spec_repo,
                forge.as_ref(),
                &cache,
                &targets,
                &signer,
                &identity,
                commit.as_deref(),
            )
        {
            return fail(&message);
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
        let steps = match writer.apply(&changes) {
            Ok(s) => s,
            Err(e) => {
                print_error(&e, ctx.color_err);
                return exit::ERROR;
            }
        };
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
                Done::Proposed { branch, commit } => {
                    format!(
                        "{at}: proposed on {branch} ({}); merging it approves",
                        &commit[..12]
                    )
                }
                Done::AlreadyProposed { branch } => {
                    format!("{at}: {branch} already proposes these changes")
                }
                Done::Observed => format!("{at}: observe only, nothing written"),
                Done::Rejected { branch } => {
                    moved = true;
                    format!("{at}: {branch} moved on the forge; starting over")
                }
            };
            print_out(&format!("{line}\n"));
        }
        if !moved {
            return exit::OK;
        }
    }
    fail(&format!(
        "branches kept moving on the forge; gave up after {ATTEMPTS} attempts"
    ))
}

/// Brings the audit trail up to date before applying: druppie's pushed
/// commits it lacks (a run stopped between push and record) are recorded
/// as `applied` or `proposed`, and every merged proposal not on it yet as
/// `approved` when the environment names no approvers or the merger is
/// one of them, `violation` otherwise.
#[allow(clippy::too_many_arguments)]
fn reconcile_trail(
    valid: &crate::spec::Validated,
    spec_repo: &crate::git::Repo,
    forge: &dyn Forge,
    cache: &Cache,
    targets: &[(String, String)],
    signer: &Signer,
    identity: &Identity,
    spec_commit: Option<&str>,
) -> Result<(), String> {
    use crate::audit::{self, Event, Kind};
    let known = audit::read(spec_repo, None).map_err(|e| e.to_string())?;
    let known_commits: Vec<String> = known
        .iter()
        .filter_map(|r| r.event.commit.clone())
        .collect();
    let platform = valid
        .spec
        .platform
        .as_ref()
        .expect("validated: plans imply a platform");
    for (repo, branch) in targets {
        let path = cache.path(repo);
        if !path.exists() {
            continue;
        }
        let missing =
            crate::apply::unrecorded(repo, &path, branch, &identity.email, &known_commits)
                .map_err(|e| e.to_string())?;
        for u in missing {
            let kind = if u.branch == *branch {
                Kind::Applied
            } else {
                Kind::Proposed
            };
            let time = now();
            let event = Event {
                kind,
                time: stamp(time),
                actor: identity.email.clone(),
                plans: u.plans.clone(),
                env: u.env.clone(),
                repo: repo.clone(),
                commit: Some(u.commit.clone()),
                branch: (kind == Kind::Proposed).then(|| u.branch.clone()),
                spec_commit: spec_commit.map(str::to_owned),
            };
            audit::record(spec_repo, &event, signer, identity, time).map_err(|e| e.to_string())?;
            print_out(&format!(
                "{repo}: recorded {} of {} on {} (pushed by an earlier run)\n",
                kind.name(),
                &u.commit[..12],
                u.branch
            ));
        }
        for m in crate::apply::merged(repo, &path, branch).map_err(|e| e.to_string())? {
            if known
                .iter()
                .any(|r| r.event.commit.as_deref() == Some(m.merge.as_str()))
            {
                continue;
            }
            let approvers: Vec<&str> = m
                .env
                .as_deref()
                .and_then(|e| platform.environments.get(e))
                .map(|s| s.approvers.iter().map(|a| a.value.as_str()).collect())
                .unwrap_or_default();
            let local = m.merger_email.split('@').next().unwrap_or("");
            let allowed = approvers.is_empty()
                || approvers
                    .iter()
                    .any(|a| *a == m.merger_email || *a == m.merger_name || *a == local);
            let kind = if allowed {
                Kind::Approved
            } else {
                Kind::Violation
            };
            let time = now();
            let event = Event {
                kind,
                time: stamp(time),
                actor: m.merger_email.clone(),
                plans: m.plans.clone(),
                env: m.env.clone(),
                repo: repo.clone(),
                commit: Some(m.merge.clone()),
                branch: Some(m.branch.clone()),
                spec_commit: spec_commit.map(str::to_owned),
            };
            audit::record(spec_repo, &event, signer, identity, time).map_err(|e| e.to_string())?;
            let verdict = if allowed {
                "approved".to_owned()
            } else {
                format!("VIOLATION: not an approver ({})", approvers.join(", "))
            };
            print_out(&format!(
                "{repo}: {} merged by {} <{}>: {verdict}\n",
                m.branch, m.merger_name, m.merger_email
            ));
            // The proposal's comment says so too.
            let line = format!(
                "{verdict}: merged by {} <{}> at {} in {}",
                m.merger_name,
                m.merger_email,
                stamp(time),
                m.merge
            );
            let cached = crate::git::Repo::open(&path)
                .ok()
                .flatten()
                .ok_or_else(|| format!("{repo}: the cache cannot be opened"))?;
            let proposal = crate::git::ObjectId::from_hex(m.proposal.as_bytes())
                .map_err(|e| format!("{repo}: {e}"))?;
            let earlier = cached
                .note(crate::apply::NOTES, proposal)
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            let text = format!("{earlier}\n{line}\n");
            crate::apply::note(
                cache,
                &cached,
                repo,
                &forge.url(repo),
                proposal,
                &text,
                identity,
                time,
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The forge `[forge]` configures.
fn forge(config: &Config) -> Result<Box<dyn Forge>, String> {
    match (config.forge.kind, &config.forge.base) {
        (ForgeKind::Git, Some(base)) if PlainGit::is_url(base) => Ok(Box::new(PlainGit::new(base))),
        (ForgeKind::Git, Some(dir)) => {
            let dir = config.resolve(std::path::Path::new(dir));
            Ok(Box::new(PlainGit::new(&dir.to_string_lossy())))
        }
        (ForgeKind::Git, None) => Err(
            "apply needs `[forge] base` in druppie.toml: the directory or URL prefix holding <repo>.git"
                .to_owned(),
        ),
        (ForgeKind::Gitea | ForgeKind::Github, _) => Err(
            "apply supports the plain git forge only so far; set `[forge] kind = \"git\"`".to_owned(),
        ),
    }
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

/// A time as RFC 3339.
fn stamp((secs, offset): (i64, i32)) -> String {
    gix::date::Time::new(secs, offset)
        .format(gix::date::time::format::ISO8601_STRICT)
        .unwrap_or_default()
}

/// Now, as seconds since the epoch in UTC.
fn now() -> (i64, i32) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (secs, 0)
}
