//! The daemon's link to the cluster, when it has one: readiness of every
//! plan × environment for the status, and post-deploy verification. A
//! commit druppie applied to the infra repo is verified once Flux reports
//! that revision Ready and every `health_url` output of the plan's
//! components answers 2xx (a plan without one: Ready is enough). The
//! verdict is an audit event (`verified` or `failed`), a comment on the
//! pull request the commit was merged from (on a forge with pull
//! requests), and a line in the commit's git note; the trail is also how
//! the daemon knows, after a restart, what is verified already. An
//! environment with `verify: true` holds promotion past it until then.

use std::time::Duration;

use tokio::runtime::Handle;

use super::state::{Event, PlanStatus, Shared};
use crate::apply::{ApplyError, Cache, NOTES, note, now, stamp};
use crate::audit::{self, Kind, Recorded};
use crate::forge::{Forge, ForgeError};
use crate::git::sign::Signer;
use crate::git::write::Identity;
use crate::git::{ObjectId, Repo};
use crate::kube::{Cluster, Target, Verification};
use crate::spec::Opened;

/// The output a block declares for post-deploy verification.
pub const HEALTH_OUTPUT: &str = "health_url";
/// Attempts per health URL, and the wait between them.
const ATTEMPTS: u32 = 5;
const WAIT: Duration = Duration::from_secs(2);

pub struct Link {
    pub cluster: Cluster,
    pub runtime: Handle,
}

/// What verification needs from the reconcile.
pub struct Context<'a> {
    pub shared: &'a Shared,
    pub id: &'a str,
    pub spec_repo: &'a Repo,
    pub forge: &'a dyn Forge,
    pub cache: &'a Cache,
    pub signer: &'a Signer,
    pub identity: &'a Identity,
    pub infra_repo: &'a str,
}

impl Link {
    /// Fills in `statuses[..].cluster` and verifies what is due.
    /// `trail`: the audit trail as the reconcile left it.
    pub fn observe(
        &self,
        opened: &Opened,
        trail: &[Recorded],
        statuses: &mut [PlanStatus],
        ctx: &Context<'_>,
        limits: &crate::template::Limits,
    ) {
        let Ok(resolved) = crate::compose::compose(&opened.valid, &opened.selection, limits) else {
            return;
        };
        for inst in &resolved.instances {
            let target = Target {
                plan: inst.plan.clone(),
                env: inst.env.clone(),
                namespace: inst.namespace.clone(),
                path: crate::spec::names::plan_dir(&inst.infra_path, &inst.plan),
            };
            let status = match self.runtime.block_on(self.cluster.status(&target)) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(plan = %inst.plan, env = %inst.env, error = %e, "cluster status");
                    continue;
                }
            };
            if let Some(s) = statuses
                .iter_mut()
                .find(|s| s.plan == inst.plan && s.env == inst.env)
            {
                s.cluster = serde_json::to_value(&status).ok();
            }
            let urls: Vec<String> = inst
                .components
                .iter()
                .filter_map(|c| c.outputs.get(HEALTH_OUTPUT)?.as_str().map(str::to_owned))
                .collect();
            let revision = status
                .kustomization
                .as_ref()
                .and_then(|k| k.revision.clone());
            let Some(applied) = due(trail, &inst.plan, &inst.env, ctx.infra_repo) else {
                continue;
            };
            let commit = applied.commit.clone().unwrap_or_default();
            // Ready at druppie's commit is the verification of a plan
            // without health URLs.
            if !status.ready() || !revision.is_some_and(|r| holds(ctx, &r, &commit)) {
                continue;
            }
            self.verify(ctx, &inst.plan, &inst.env, applied, &urls);
        }
    }

    /// Fetches every URL and records the verdict for `plan` in `env` on
    /// the commit of `applied` (its `applied` event).
    fn verify(
        &self,
        ctx: &Context<'_>,
        plan: &str,
        env: &str,
        applied: &audit::Event,
        urls: &[String],
    ) {
        let commit = applied.commit.as_deref().unwrap_or_default();
        let mut failed = Vec::new();
        for url in urls {
            let verdict = self
                .runtime
                .block_on(crate::kube::verify(url, ATTEMPTS, WAIT));
            let result = match &verdict {
                Verification::Verified { .. } => "verified",
                Verification::Failed { reason } => {
                    failed.push(format!("{url}: {reason}"));
                    "failed"
                }
            };
            ctx.shared.emit(Event::Verification {
                id: ctx.id.to_owned(),
                plan: plan.to_owned(),
                env: env.to_owned(),
                url: url.clone(),
                result: result.to_owned(),
            });
        }
        let kind = if failed.is_empty() {
            Kind::Verified
        } else {
            Kind::Failed
        };
        let time = now();
        let event = audit::Event {
            kind,
            time: stamp(time),
            actor: ctx.identity.email.clone(),
            plans: vec![plan.to_owned()],
            env: Some(env.to_owned()),
            repo: ctx.infra_repo.to_owned(),
            commit: Some(commit.to_owned()),
            branch: None,
            spec_commit: None,
            from: None,
        };
        if let Err(e) = audit::record(ctx.spec_repo, &event, ctx.signer, ctx.identity, time) {
            tracing::warn!(error = %e, "recording the verification");
            return;
        }
        ctx.shared.emit(Event::VerificationRecorded {
            id: ctx.id.to_owned(),
            plan: plan.to_owned(),
            env: env.to_owned(),
            commit: commit.to_owned(),
            result: kind.name().to_owned(),
        });
        let line = match failed.as_slice() {
            [] if urls.is_empty() => format!(
                "druppie: {plan} verified in {env}: Flux reports it Ready (no health URL to check)"
            ),
            [] => format!("druppie: {plan} verified in {env}: every health URL answers"),
            many => format!(
                "druppie: {plan} verification FAILED in {env}: {}",
                many.join("; ")
            ),
        };
        if let Some(branch) = &applied.branch
            && let Err(e) = comment_pull(ctx, branch, &format!("{plan}:{env}"), &line)
        {
            tracing::warn!(error = %crate::error::chain(&e), "commenting the verification on the pull request");
        }
        if let Err(e) = comment(ctx, commit, &line) {
            tracing::warn!(error = %crate::error::chain(&e), "commenting the verification");
        }
    }
}

/// Whether Flux's applied `revision` (`main@sha1:<commit>`) holds
/// `commit`: it is that commit, or a later one on the infra repo's
/// history (another plan's commit landed after it before Flux looked).
fn holds(ctx: &Context<'_>, revision: &str, commit: &str) -> bool {
    let hex = |h: &str| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit());
    let Some(applied) = revision.rsplit(':').next().filter(|h| hex(h)) else {
        return false;
    };
    if applied == commit {
        return true;
    }
    let Ok(commit) = ObjectId::from_hex(commit.as_bytes()) else {
        return false;
    };
    Repo::open(&ctx.cache.path(ctx.infra_repo))
        .ok()
        .flatten()
        .is_some_and(|repo| repo.is_ancestor(commit, applied))
}

/// The `applied` event of the infra commit applied last for `plan` in
/// `env`, when that commit has no verification yet. Its `branch` is the
/// proposal it was merged from, if any.
pub fn due<'t>(
    trail: &'t [Recorded],
    plan: &str,
    env: &str,
    infra: &str,
) -> Option<&'t audit::Event> {
    match audit::last_applied(trail, infra, plan, env)? {
        (applied, None) if applied.commit.is_some() => Some(applied),
        _ => None,
    }
}

/// Puts `line` on the pull request of proposal branch `branch`, when the
/// forge has pull requests: one comment per `what` (plan and environment;
/// a proposal may carry several plans), updated in place.
fn comment_pull(ctx: &Context<'_>, branch: &str, what: &str, line: &str) -> Result<(), ForgeError> {
    let Some(pulls) = ctx.forge.pulls() else {
        return Ok(());
    };
    let Some(pull) = pulls.find(ctx.infra_repo, branch)? else {
        return Ok(());
    };
    let marker = format!("<!-- druppie:verification:{what} -->");
    pulls.comment(ctx.infra_repo, pull.number, &marker, line)
}

/// Adds `line` to the git note on `commit` in the infra repo.
fn comment(ctx: &Context<'_>, commit: &str, line: &str) -> Result<(), ApplyError> {
    let name = ctx.infra_repo;
    let repo = Repo::open(&ctx.cache.path(name))
        .map_err(ApplyError::git(name, "open the clone"))?
        .ok_or_else(|| ApplyError::not_cached(name))?;
    let id =
        ObjectId::from_hex(commit.as_bytes()).map_err(|_| ApplyError::bad_commit(name, commit))?;
    let earlier = repo
        .note(NOTES, id)
        .map_err(ApplyError::git(name, "read druppie's notes"))?;
    let text = match earlier {
        Some(t) => format!("{}\n{line}\n", t.trim_end()),
        None => format!("{line}\n"),
    };
    note(
        ctx.cache,
        &repo,
        ctx.infra_repo,
        &ctx.forge.url(ctx.infra_repo),
        id,
        &text,
        ctx.identity,
        ctx.signer,
        now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Event;

    fn recorded(kind: Kind, env: &str, commit: &str) -> Recorded {
        Recorded {
            commit: "e".repeat(40),
            event: Event {
                kind,
                time: "2026-11-21T00:00:00Z".into(),
                actor: "druppie@example.org".into(),
                plans: vec!["permits".into()],
                env: Some(env.into()),
                repo: "infra".into(),
                commit: Some(commit.into()),
                branch: None,
                spec_commit: None,
                from: None,
            },
            signature: "unchecked".into(),
        }
    }

    #[test]
    fn the_last_applied_commit_is_due_until_it_has_a_verdict() {
        let mut merged = recorded(Kind::Applied, "prod", "c9");
        merged.event.branch = Some("druppie/permits-prod".into());
        let mut trail = vec![
            recorded(Kind::Applied, "dev", "c1"),
            recorded(Kind::Verified, "dev", "c1"),
            recorded(Kind::Applied, "dev", "c2"),
            merged,
        ];
        let due_in = |trail: &[Recorded], env| {
            due(trail, "permits", env, "infra").map(|e| (e.commit.clone(), e.branch.clone()))
        };
        assert_eq!(due_in(&trail, "dev"), Some((Some("c2".into()), None)));
        assert_eq!(
            due_in(&trail, "prod"),
            Some((Some("c9".into()), Some("druppie/permits-prod".into()))),
            "a merged proposal's pull request gets the verdict too"
        );
        assert_eq!(due(&trail, "other", "dev", "infra"), None);
        trail.push(recorded(Kind::Failed, "dev", "c2"));
        assert_eq!(due_in(&trail, "dev"), None, "failed is a verdict too");
        assert_eq!(due(&[], "permits", "dev", "infra"), None);
    }
}
