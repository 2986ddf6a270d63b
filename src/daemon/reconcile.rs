//! One reconcile: the spec at its newest revision through the same
//! pipeline as `druppie apply`, and what the API shows afterwards.
//! Invalid specs and failing policies are terminal for their revision;
//! everything else (git, the forge, the network) is retried.

use std::time::Instant;

use tracing::{info, warn};

use super::check::RenderCheck;
use super::cluster::{self, Link};
use super::source::{Revision, SpecSource};
use super::state::{Event, PlanState, PlanStatus, Shared};
use crate::apply::{Cache, Done, Failure, Outcome, Run, Step};
use crate::audit::{self, Kind};
use crate::diff::report::{self, Mask};
use crate::diff::{Action, ChangeSets};
use crate::forge::Forge;
use crate::git::Repo;
use crate::git::sign::Signer;
use crate::git::write::Identity;
use crate::spec::diag::Diagnostics;
use crate::spec::{LoadOptions, Opened};

/// What the worker needs to reconcile.
pub struct Reconciler {
    pub source: SpecSource,
    pub forge: Box<dyn Forge>,
    pub cache: Cache,
    pub signer: Signer,
    pub identity: Identity,
    /// Cluster status and verification, when a cluster is connected.
    pub cluster: Option<Link>,
    /// Renders each revision in a child process first.
    pub check: Option<RenderCheck>,
    /// The revision that passed the check last.
    pub checked: super::check::Passed,
    /// What the last reconcile left, when it ended well.
    pub last: super::last::Remembered,
    /// What composing and rendering may hold and produce (`[render]`);
    /// the check runs with the same configuration, so the same limits.
    pub limits: crate::template::Limits,
}

/// How a reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Applied (or nothing to apply).
    Success,
    /// Uncommitted spec edits: diffed, not applied.
    DryRun,
    /// The spec or a policy must change first.
    Terminal(String),
    /// Worth another try.
    Failed(String),
}

impl Ended {
    pub fn result(&self) -> &'static str {
        match self {
            Ended::Success => "success",
            Ended::DryRun => "dry-run",
            Ended::Terminal(_) => "terminal",
            Ended::Failed(_) => "failed",
        }
    }

    /// The end of a reconcile that stopped on an error: retried with
    /// backoff when the error says it is transient, else terminal for
    /// the revision (it waits for a new spec commit).
    fn from_error(why: &dyn std::fmt::Display, transient: bool) -> Ended {
        if transient {
            Ended::Failed(why.to_string())
        } else {
            Ended::Terminal(why.to_string())
        }
    }

    fn error(&self) -> Option<String> {
        match self {
            Ended::Terminal(e) | Ended::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }
}

impl Reconciler {
    /// Reconciles once; the outcome is in `shared` (status, diff, metrics,
    /// events) and the returned revision and end.
    /// `terminal`: a commit already refused for good, and why; it is
    /// not tried again. `whole`: look at everything, not only at what
    /// moved since the last reconcile.
    pub fn reconcile(
        &self,
        shared: &Shared,
        id: &str,
        trigger: &str,
        terminal: Option<&(String, String)>,
        whole: bool,
    ) -> (Option<Revision>, Ended) {
        let started = Instant::now();
        shared.emit(Event::ReconcileStarted {
            id: id.to_owned(),
            trigger: trigger.to_owned(),
        });
        mark_applying(shared);
        // A panic is a bug, but it must not stop the worker (the daemon
        // would answer on and reconcile nothing): it ends this reconcile
        // as a failure with the panic's message, and the next one tries
        // again.
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.attempt(shared, id, trigger, terminal, whole)
        }));
        let (revision, ended) = attempt.unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            (
                None,
                Ended::Failed(format!("internal error (a bug): {why}")),
            )
        });
        let seconds = started.elapsed().as_secs_f64();
        shared.metrics.reconciled(ended.result(), seconds);
        {
            let mut view = shared.view.lock().expect("view lock");
            view.ready = true;
            view.last_error = ended.error();
            if let Some(r) = &revision {
                view.revision.clone_from(&r.commit);
                view.dirty = r.dirty;
            }
            if let Some(error) = ended.error() {
                for s in view
                    .statuses
                    .iter_mut()
                    .filter(|s| s.state == PlanState::Applying)
                {
                    s.state = PlanState::Failed;
                    s.message = Some(error.clone());
                }
            }
        }
        match &ended {
            Ended::Success | Ended::DryRun => info!(result = ended.result(), seconds, "reconciled"),
            Ended::Terminal(e) | Ended::Failed(e) => {
                warn!(result = ended.result(), seconds, error = %e, "reconcile failed");
            }
        }
        shared.emit(Event::ReconcileFinished {
            id: id.to_owned(),
            result: ended.result().to_owned(),
            revision: revision.as_ref().and_then(|r| r.commit.clone()),
            duration_ms: (seconds * 1000.0) as u64,
            error: ended.error(),
        });
        (revision, ended)
    }

    /// Brings the spec up to date and reconciles it, unless this revision
    /// was refused for good already.
    fn attempt(
        &self,
        shared: &Shared,
        id: &str,
        trigger: &str,
        terminal: Option<&(String, String)>,
        whole: bool,
    ) -> (Option<Revision>, Ended) {
        // Taken now: only a reconcile that ends well leaves it again.
        let last = self.last.take();
        match self.source.refresh(&self.cache) {
            Ok(revision) => {
                let ended = match terminal {
                    Some((commit, why))
                        if !revision.dirty && revision.commit.as_ref() == Some(commit) =>
                    {
                        Ended::Terminal(why.clone())
                    }
                    _ => match last.filter(|_| !whole) {
                        Some(last) => match self.unmoved(shared, id, &revision, last) {
                            Ok(ended) => ended,
                            Err(()) => self.at(shared, id, trigger, &revision),
                        },
                        None => self.at(shared, id, trigger, &revision),
                    },
                };
                (Some(revision), ended)
            }
            Err(e) => (
                None,
                Ended::from_error(&crate::error::chain(&e), e.is_transient()),
            ),
        }
    }

    fn at(&self, shared: &Shared, id: &str, trigger: &str, revision: &Revision) -> Ended {
        let root = self.source.root();
        let opened = match crate::spec::open(root, &LoadOptions::default(), &Default::default()) {
            Ok(opened) => opened,
            Err(e) => {
                let why = e
                    .diagnostics()
                    .map_or_else(|| crate::error::chain(&e), headlines);
                return Ended::from_error(&why, e.is_transient());
            }
        };
        let (valid, selection) = (&opened.valid, &opened.selection);
        super::catalog::list(shared, valid);
        if let Some(check) = &self.check {
            let commit = revision.commit.as_deref().filter(|_| !revision.dirty);
            if !self.checked.holds(commit) {
                let started = Instant::now();
                if let Err(e) = check.run(root) {
                    return Ended::from_error(&e, e.is_transient());
                }
                info!(
                    commit,
                    seconds = started.elapsed().as_secs_f64(),
                    "render check passed"
                );
                self.checked.set(commit);
            }
        }
        super::catalog::place(shared, &opened, &self.limits);
        let Some(spec_repo) = Repo::discover(root) else {
            return Ended::Terminal(format!(
                "{} is not in a git repository: druppie records every change on its `{}` branch",
                root.display(),
                audit::BRANCH
            ));
        };
        let started = Instant::now();
        let known =
            audit::trusted(&spec_repo, &self.signer.own_key()).map_or(0, |t| t.events.len());
        let run = Run {
            forge: self.forge.as_ref(),
            cache: &self.cache,
            signer: &self.signer,
            identity: &self.identity,
            spec_repo: &spec_repo,
            spec_commit: revision.commit.as_deref(),
            trigger,
            limits: self.limits,
            promote: None,
        };
        let apply = !revision.dirty;
        let (outcome, result) = run.apply(
            valid,
            selection,
            &Default::default(),
            &mut |_: &ChangeSets, _: &Mask| apply,
        );
        for line in &outcome.repaired {
            warn!(repair = %line, "repaired what a stopped run left");
        }
        tracing::debug!(elapsed = ?started.elapsed(), "apply");
        let started = Instant::now();
        let published = self.source.publish(&self.cache);
        let trail = self.tell(shared, id, &spec_repo, known, &outcome);
        let ended = match result {
            Ok(()) => Ended::Success,
            Err(Failure::Declined) => Ended::DryRun,
            Err(Failure::Diagnostics(diags)) => Ended::Terminal(headlines(&diags)),
            Err(e) => Ended::from_error(&crate::error::chain(&e), e.is_transient()),
        };
        let ended = match (ended, published) {
            (Ended::Success, Err(e)) => Ended::from_error(
                &format!("pushing the audit trail: {}", crate::error::chain(&e)),
                e.is_transient(),
            ),
            (ended, _) => ended,
        };
        // Read before the status changes, so that the status and the
        // reconcile's end (its error) still change together.
        let freight = super::freight::of(self, &opened, revision, &outcome, &trail);
        self.settle(shared, &opened, revision, &outcome, &ended);
        tracing::debug!(elapsed = ?started.elapsed(), "publish, tell, freight and settle");
        if let Some(freight) = freight {
            shared.view.lock().expect("view lock").freight = freight;
        }
        self.observe(shared, id, &spec_repo, &opened, &trail);
        match (&ended, &revision.commit) {
            (Ended::Success, Some(commit)) if !revision.dirty => {
                let unsettled = super::last::unsettled(&outcome);
                self.remember(
                    shared,
                    &spec_repo,
                    commit,
                    opened,
                    &outcome.targets,
                    unsettled,
                );
            }
            _ => {}
        }
        ended
    }

    /// Ends a reconcile a push asked for when nothing moved in git since
    /// `last`: the spec at the same commit, the trail at the same tip,
    /// every target repo's refs, fetched anew, where `last` left them,
    /// and `last` wrote nothing.
    /// Nothing is rendered, diffed or written; the statuses are the ones
    /// `last` left (the cluster is still asked for its own). `Err`: something
    /// moved, or could not be told; the reconcile looks at everything.
    fn unmoved(
        &self,
        shared: &Shared,
        id: &str,
        revision: &Revision,
        last: super::last::Last,
    ) -> Result<Ended, ()> {
        let same_commit = revision.commit.as_deref() == Some(last.spec_commit.as_str());
        if revision.dirty || !same_commit || !last.unsettled.is_empty() {
            return Err(());
        }
        let spec_repo = Repo::discover(self.source.root()).ok_or(())?;
        if super::last::trail_tip(&spec_repo) != last.trail_tip {
            return Err(());
        }
        let repos: Vec<&str> = last.heads.keys().map(String::as_str).collect();
        let fetched = crate::apply::sync(self.forge.as_ref(), &self.cache, &repos);
        if let Err(e) = fetched {
            // The whole reconcile says what failed, and retries.
            warn!(error = %crate::error::chain(&e), "fetching the target repos");
            return Err(());
        }
        let heads = super::last::heads(&self.cache, repos.iter().copied()).map_err(|_| ())?;
        if heads != last.heads {
            return Err(());
        }
        info!("nothing moved since the last reconcile");
        shared.metrics.unchanged(crate::apply::now().0 as f64);
        shared
            .view
            .lock()
            .expect("view lock")
            .statuses
            .clone_from(&last.statuses);
        if self.cluster.is_some() {
            let trail = audit::trusted(&spec_repo, &self.signer.own_key())
                .map(|t| t.events)
                .unwrap_or_default();
            self.observe(shared, id, &spec_repo, &last.opened, &trail);
            let commit = last.spec_commit.clone();
            let targets: Vec<String> = last.heads.into_keys().collect();
            self.remember(
                shared,
                &spec_repo,
                &commit,
                last.opened,
                &targets,
                last.unsettled,
            );
        } else {
            self.last.keep(last);
        }
        Ok(Ended::Success)
    }

    /// Keeps what a reconcile that ended well on `commit` left.
    fn remember(
        &self,
        shared: &Shared,
        spec_repo: &Repo,
        commit: &str,
        opened: Opened,
        targets: &[String],
        unsettled: std::collections::BTreeSet<String>,
    ) {
        let Ok(heads) = super::last::heads(&self.cache, targets.iter().map(String::as_str)) else {
            return;
        };
        let statuses = shared.view.lock().expect("view lock").statuses.clone();
        self.last.keep(super::last::Last {
            spec_commit: commit.to_owned(),
            trail_tip: super::last::trail_tip(spec_repo),
            heads,
            opened,
            statuses,
            unsettled,
        });
    }

    /// The cluster's status of every plan × environment, and the
    /// verifications due, when a cluster is connected.
    fn observe(
        &self,
        shared: &Shared,
        id: &str,
        spec_repo: &Repo,
        opened: &Opened,
        trail: &[audit::Recorded],
    ) {
        let (Some(link), Some(deployment)) = (&self.cluster, &opened.valid.deployment) else {
            return;
        };
        let platform = &deployment.platform;
        let ctx = cluster::Context {
            shared,
            id,
            spec_repo,
            forge: self.forge.as_ref(),
            cache: &self.cache,
            signer: &self.signer,
            identity: &self.identity,
            infra_repo: &platform.infra.repo.value,
        };
        let mut statuses = shared.view.lock().expect("view lock").statuses.clone();
        link.observe(opened, trail, &mut statuses, &ctx, &self.limits);
        shared.view.lock().expect("view lock").statuses = statuses;
        if let Err(e) = self.source.publish(&self.cache) {
            warn!(error = %e, "pushing the audit trail");
        }
    }

    /// Events for every step written and every audit event recorded;
    /// returns the trail as it now is.
    pub(super) fn tell(
        &self,
        shared: &Shared,
        id: &str,
        spec_repo: &Repo,
        known: usize,
        outcome: &Outcome,
    ) -> Vec<audit::Recorded> {
        for step in &outcome.steps {
            match &step.done {
                Done::Committed { commit } => shared.emit(Event::ChangeApplied {
                    id: id.to_owned(),
                    repo: step.repo.clone(),
                    env: step.env.clone(),
                    plans: step.plans.clone(),
                    commit: commit.clone(),
                }),
                Done::Proposed { branch, pull, .. } => shared.emit(Event::PrOpened {
                    id: id.to_owned(),
                    repo: step.repo.clone(),
                    env: step.env.clone(),
                    plans: step.plans.clone(),
                    branch: branch.clone(),
                    pull: pull.clone(),
                }),
                _ => {}
            }
        }
        for line in &outcome.ignored {
            tracing::warn!(ignored = %line, "not signed by druppie's key");
        }
        let events = audit::trusted(spec_repo, &self.signer.own_key())
            .map(|t| t.events)
            .unwrap_or_default();
        for r in events.iter().skip(known) {
            let e = &r.event;
            if let (Kind::Promoted, Some(from)) = (e.kind, &e.from) {
                shared.emit(Event::PromotionRecorded {
                    id: id.to_owned(),
                    repo: e.repo.clone(),
                    env: e.env.clone(),
                    from: from.clone(),
                    plans: e.plans.clone(),
                    commit: e.commit.clone(),
                });
            }
            if matches!(e.kind, Kind::Approved | Kind::Violation | Kind::Rejected) {
                shared.emit(Event::ApprovalRecorded {
                    id: id.to_owned(),
                    verdict: e.kind.name().to_owned(),
                    repo: e.repo.clone(),
                    env: e.env.clone(),
                    plans: e.plans.clone(),
                    actor: e.actor.clone(),
                });
            }
        }
        events
    }

    /// The status of every plan × environment, the dry run and metrics.
    fn settle(
        &self,
        shared: &Shared,
        opened: &Opened,
        revision: &Revision,
        outcome: &Outcome,
        ended: &Ended,
    ) {
        let valid = &opened.valid;
        let statuses: Vec<PlanStatus> = opened
            .picks()
            .iter()
            .map(|pick| status(pick.plan_name(), pick.env_name(), revision, outcome, ended))
            .collect();
        let pending = open_proposals(outcome);
        let files: u64 = written_files(outcome);
        if matches!(ended, Ended::Success) {
            let now = crate::apply::now().0 as f64;
            shared.metrics.succeeded(now, files, pending);
        }
        let diff = outcome.changes.as_ref().map(|changes| {
            let mask = Mask::new(changes.secrets.iter().cloned());
            let intent = report::intent(valid, None);
            let plan = crate::execution::plan(changes, intent);
            serde_json::to_value(report::json(changes, &mask, plan)).unwrap_or_default()
        });
        let mut view = shared.view.lock().expect("view lock");
        view.statuses = statuses;
        if diff.is_some() {
            view.diff = diff;
        }
    }
}

/// The proposals waiting for a merge after `outcome`: one per branch.
fn open_proposals(outcome: &Outcome) -> u64 {
    let open: std::collections::BTreeSet<(&str, &str)> = outcome
        .steps
        .iter()
        .filter_map(|s| match &s.done {
            Done::Proposed { branch, .. }
            | Done::AlreadyProposed { branch, .. }
            | Done::Held { branch, .. } => Some((s.repo.as_str(), branch.as_str())),
            _ => None,
        })
        .collect();
    open.len() as u64
}

/// A plan × environment's state after `outcome`.
fn status(
    plan: &str,
    env: &str,
    revision: &Revision,
    outcome: &Outcome,
    ended: &Ended,
) -> PlanStatus {
    let mine = |plans: &[String], e: &Option<String>| {
        plans.iter().any(|p| p == plan) && e.as_deref().is_none_or(|e| e == env)
    };
    let steps: Vec<&Step> = outcome
        .steps
        .iter()
        .filter(|s| mine(&s.plans, &s.env))
        .collect();
    let sets: Vec<&crate::diff::ChangeSet> = outcome
        .changes
        .iter()
        .flat_map(|c| c.sets.iter())
        .filter(|cs| !cs.files.is_empty() && mine(&cs.plans, &cs.env))
        .collect();
    let pull = steps.iter().find_map(|s| match &s.done {
        Done::Proposed { branch, pull, .. }
        | Done::AlreadyProposed { branch, pull }
        | Done::Held { branch, pull, .. } => Some(pull.clone().unwrap_or_else(|| branch.clone())),
        _ => None,
    });
    let held = steps.iter().find_map(|s| match &s.done {
        Done::Held { by, .. } => Some(format!("edited by {by}; close it to get a fresh proposal")),
        _ => None,
    });
    let conflicts = sets.iter().any(|cs| cs.count(Action::Conflict) > 0);
    let written = steps
        .iter()
        .filter(|s| matches!(s.done, Done::Committed { .. }))
        .count();
    let waiting = steps.iter().find_map(|s| match &s.done {
        Done::Waiting { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    let (state, message) = match ended {
        Ended::Terminal(e) | Ended::Failed(e) => (PlanState::Failed, Some(e.clone())),
        _ if waiting.is_some() && pull.is_none() => (PlanState::Waiting, waiting),
        _ if pull.is_some() && conflicts => (
            PlanState::Conflict,
            Some("the proposal carries conflicts to resolve".to_owned()),
        ),
        _ if pull.is_some() => (PlanState::PendingApproval, held),
        _ if sets.is_empty() || sets.len() == written => (PlanState::InSync, None),
        _ if conflicts => (PlanState::Conflict, None),
        Ended::DryRun => (
            PlanState::Drifted,
            Some("uncommitted spec edits: diffed, not applied".to_owned()),
        ),
        _ => (
            PlanState::Drifted,
            Some("the live repos differ from the spec".to_owned()),
        ),
    };
    PlanStatus {
        plan: plan.to_owned(),
        env: env.to_owned(),
        state,
        spec_commit: revision.commit.clone(),
        pull,
        message,
        cluster: None,
    }
}

/// Files in the commits and proposals written.
fn written_files(outcome: &Outcome) -> u64 {
    let Some(changes) = &outcome.changes else {
        return 0;
    };
    outcome
        .steps
        .iter()
        .filter(|s| matches!(s.done, Done::Committed { .. } | Done::Proposed { .. }))
        .filter_map(|s| {
            changes
                .sets
                .iter()
                .find(|cs| cs.repo == s.repo && cs.env == s.env)
        })
        .map(|cs| cs.files.len() as u64)
        .sum()
}

/// Every plan × environment shows `applying` while a reconcile runs.
fn mark_applying(shared: &Shared) {
    let mut view = shared.view.lock().expect("view lock");
    for s in &mut view.statuses {
        s.state = PlanState::Applying;
    }
}

/// One line per error: `path:line:col: message`.
fn headlines(diags: &Diagnostics) -> String {
    diags
        .0
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let l = &d.location;
            format!("{}:{}:{}: {}", l.path, l.pos.line, l.pos.col, d.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(repo: &str, env: Option<&str>, plan: &str, done: Done) -> Step {
        Step {
            repo: repo.to_owned(),
            env: env.map(str::to_owned),
            plans: vec![plan.to_owned()],
            done,
            from: None,
        }
    }

    fn proposed(branch: &str) -> Done {
        Done::Proposed {
            branch: branch.to_owned(),
            commit: "1".repeat(40),
            pull: None,
        }
    }

    #[test]
    fn pending_approvals_count_each_open_proposal_once() {
        let outcome = Outcome {
            steps: vec![
                step(
                    "infra",
                    Some("prod"),
                    "meters",
                    proposed("druppie/prod/meters"),
                ),
                step(
                    "infra",
                    Some("test"),
                    "meters",
                    proposed("druppie/test/meters"),
                ),
                step("meters-api", None, "meters", proposed("druppie/meters")),
                step(
                    "infra",
                    Some("prod"),
                    "permits",
                    Done::Held {
                        branch: "druppie/prod/permits".to_owned(),
                        by: "Rev <rev@example.org>".to_owned(),
                        pull: None,
                    },
                ),
                // A second attempt of the same run finds it proposed.
                step(
                    "infra",
                    Some("prod"),
                    "meters",
                    Done::AlreadyProposed {
                        branch: "druppie/prod/meters".to_owned(),
                        pull: None,
                    },
                ),
                step(
                    "infra",
                    Some("dev"),
                    "meters",
                    Done::Committed {
                        commit: "2".repeat(40),
                    },
                ),
            ],
            ..Outcome::default()
        };
        assert_eq!(open_proposals(&outcome), 4);
        let revision = Revision {
            commit: None,
            dirty: false,
        };
        let held = status("permits", "prod", &revision, &outcome, &Ended::Success);
        assert_eq!(held.state, PlanState::PendingApproval);
        assert_eq!(
            held.message.as_deref(),
            Some("edited by Rev <rev@example.org>; close it to get a fresh proposal")
        );
        // A plan with no step is not pending.
        let other = status("docs", "prod", &revision, &outcome, &Ended::Success);
        assert_eq!(other.state, PlanState::InSync);
    }
}
