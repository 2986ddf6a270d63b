//! One reconcile: the spec at its newest revision through the same
//! pipeline as `druppie apply`, and what the API shows afterwards.
//! Invalid specs and failing policies are terminal for their revision;
//! everything else (git, the forge, the network) is retried.

use std::collections::BTreeSet;
use std::time::Instant;

use tracing::{info, warn};

use super::check::RenderCheck;
use super::cluster::{self, Link};
use super::last::{Last, Moved, Narrowed};
use super::source::{Revision, SpecSource};
use super::state::{Event, PlanState, Shared};
use crate::apply::{Cache, Done, Failure, Outcome, Run};
use crate::audit::{self, Kind};
use crate::compose::ComposeOptions;
use crate::diff::ChangeSets;
use crate::diff::report::Mask;
use crate::forge::Forge;
use crate::git::Repo;
use crate::git::sign::Signer;
use crate::git::write::Identity;
use crate::spec::diag::Diagnostics;
use crate::spec::{Opened, Shards};

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
    pub checked: super::check::Checked,
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

    pub(super) fn error(&self) -> Option<String> {
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
    /// moved since the last reconcile; `shards`: only the plans of these
    /// (`None`: every plan).
    pub fn reconcile(
        &self,
        shared: &Shared,
        id: &str,
        trigger: &str,
        terminal: Option<&(String, String)>,
        (whole, shards): (bool, Option<&Shards>),
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
            self.attempt(shared, (id, trigger), terminal, whole, shards)
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
        (id, trigger): (&str, &str),
        terminal: Option<&(String, String)>,
        whole: bool,
        shards: Option<&Shards>,
    ) -> (Option<Revision>, Ended) {
        // Taken now: only a reconcile that ends well leaves it again.
        let last = self.last.take().filter(|_| !whole);
        // The target repos are fetched while the spec is: together they
        // tell what moved.
        let (refreshed, fetched) = std::thread::scope(|scope| {
            let fetching = last.as_ref().map(|last| {
                scope.spawn(|| {
                    let repos: Vec<&str> = last.heads.keys().map(String::as_str).collect();
                    crate::apply::sync(self.forge.as_ref(), &self.cache, &repos)
                })
            });
            let refreshed = self.source.refresh(&self.cache);
            let fetched = fetching.map(|f| f.join().expect("a fetch thread does not panic"));
            (refreshed, fetched)
        });
        match refreshed {
            Ok(revision) => {
                let ended = match terminal {
                    Some((commit, why))
                        if !revision.dirty && revision.commit.as_ref() == Some(commit) =>
                    {
                        Ended::Terminal(why.clone())
                    }
                    _ => {
                        let at = |last| self.at(shared, (id, trigger), &revision, last, shards);
                        match last.zip(fetched).map(|(l, f)| self.moved(&revision, l, f)) {
                            Some(Moved::Nothing(last)) => self.unmoved(shared, id, last),
                            Some(Moved::Spec(last)) => at(Some(last)),
                            Some(Moved::Everything) | None => at(None),
                        }
                    }
                };
                (Some(revision), ended)
            }
            Err(e) => (
                None,
                Ended::from_error(&crate::error::chain(&e), e.is_transient()),
            ),
        }
    }

    /// Reconciles the spec at `revision`: every plan (of `shards`), or,
    /// when only the spec moved since `last`, the plans the change can
    /// reach.
    fn at(
        &self,
        shared: &Shared,
        (id, trigger): (&str, &str),
        revision: &Revision,
        mut last: Option<Last>,
        shards: Option<&Shards>,
    ) -> Ended {
        let root = self.source.root();
        let whole = ComposeOptions {
            shards: shards.cloned(),
            ..ComposeOptions::default()
        };
        let commit = revision.commit.as_deref().filter(|_| !revision.dirty);
        // What changed since the last reconcile: the spec it opened is
        // read again where it changed, when that is all plan and stack
        // files; else the whole spec is loaded. The check does the same
        // with the spec it holds.
        let changed = (last.as_ref().zip(commit)).and_then(|(last, commit)| {
            match &revision.changes {
                // The refresh's checkout found them already.
                Some(c) if c.from == last.spec_commit => Some(c.paths.clone()),
                _ => super::source::changed(&self.cache, root, &last.spec_commit, commit),
            }
        });
        // Started now, the check loads the spec while this process does;
        // it is told the plans once they are known.
        let checking = (self.check.as_ref())
            .filter(|_| !self.checked.holds(commit))
            .map(|check| {
                check.start(
                    root,
                    &super::check::Open {
                        from: last.as_ref().map(|l| l.spec_commit.clone()),
                        to: commit.map(str::to_owned),
                        changed: changed.clone().filter(|c| crate::spec::reload::worth_it(c)),
                    },
                )
            });
        let (opened, before, reread) =
            super::last::reopen(root, last.as_mut(), changed.as_deref(), &whole);
        let opened = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let why = e
                    .diagnostics()
                    .map_or_else(|| crate::error::chain(&e), headlines);
                return Ended::from_error(&why, e.is_transient());
            }
        };
        let valid = &opened.valid;
        super::catalog::list(shared, valid);
        let narrowed = last.and_then(|last| {
            let started = Instant::now();
            let (before, changed) = (before.as_ref()?, changed.as_deref()?);
            let mut plans = super::last::affected(&last, before, changed, &opened)?;
            tracing::debug!(elapsed = ?started.elapsed(), "affected");
            plans.retain(|p| shards.is_none_or(|s| s.owns(p)));
            info!(
                plans = plans.len(),
                files_read_again = reread.then_some(changed.len()),
                "only the spec moved: reconciling the plans it reaches"
            );
            Some(Narrowed { plans, last })
        });
        let (selection, scope) = match &narrowed {
            Some(n) => (opened.selection.only_plans(valid, &n.plans), n.scope()),
            None => (opened.selection.clone(), whole),
        };
        if let Some(checking) = checking {
            // The plans the change cannot reach render as they did at
            // the last commit, which passed; another shard's plans are
            // its holder's to check.
            let held = shards.map(|_| opened.plan_names());
            let plans = narrowed.as_ref().map(|n| &n.plans).or(held.as_ref());
            let started = Instant::now();
            let passed = match checking.finish(plans) {
                Ok(passed) => passed,
                Err(e) => return Ended::from_error(&e, e.is_transient()),
            };
            info!(
                commit,
                plans = plans.map(BTreeSet::len),
                files_read_again = passed.files_read_again,
                waited = started.elapsed().as_secs_f64(),
                "render check passed"
            );
            if plans.is_none() {
                self.checked.set(commit);
            }
        }
        let place = || {
            super::catalog::place(
                shared,
                &opened,
                &self.limits,
                narrowed.as_ref().map(|n| &n.plans),
            );
        };
        let Some(spec_repo) = Repo::discover(root) else {
            place();
            return Ended::Terminal(format!(
                "{} is not in a git repository: druppie records every change on its `{}` branch",
                root.display(),
                audit::BRANCH
            ));
        };
        // Fetched a moment ago, to tell that only the spec moved.
        let fetched: Vec<String> = narrowed
            .as_ref()
            .map(|n| n.last.heads.keys().cloned().collect())
            .unwrap_or_default();
        let started = Instant::now();
        let known =
            audit::trusted(&spec_repo, &self.signer.own_key()).map_or(0, |t| t.events.len());
        // A sharded replica writes each step only while its Leases hold:
        // once they may have expired, another replica may be writing.
        let holds = || shared.still_holds();
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
            fetched: &fetched,
            fence: shards.map(|_| &holds as &dyn Fn() -> bool),
        };
        let apply = !revision.dirty;
        let (mut outcome, result) = run.apply(
            valid,
            &selection,
            &scope,
            &mut |_: &ChangeSets, _: &Mask| apply,
        );
        for line in &outcome.repaired {
            warn!(repair = %line, "repaired what a stopped run left");
        }
        tracing::debug!(elapsed = ?started.elapsed(), "apply");
        // Where the board shows the blocks: after the commits are out,
        // which do not wait for it.
        place();
        let started = Instant::now();
        let published = self.source.publish(&self.cache);
        let trail = self.tell(shared, id, &spec_repo, known, &outcome);
        tracing::debug!(elapsed = ?started.elapsed(), "publish and tell");
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
        let freight = super::freight::of(
            self,
            &opened,
            (&selection, &scope),
            revision,
            &outcome,
            &trail,
        );
        tracing::debug!(elapsed = ?started.elapsed(), "freight");
        let mut open = super::settle::open(&outcome);
        let mut targets = outcome.targets.clone();
        let mut narrowed = narrowed;
        if let Some(n) = &mut narrowed {
            n.take_in(&mut outcome, &mut open, &mut targets);
        }
        self.settle(
            shared,
            &opened,
            revision,
            &outcome,
            &ended,
            (narrowed.as_ref(), &open),
        );
        if let Some(freight) = freight {
            let mut view = shared.view.lock().expect("view lock");
            view.freight = match &narrowed {
                Some(n) => super::freight::merged(&view.freight, freight, &n.plans, valid),
                None => freight,
            };
        }
        let seen = self.seen(&spec_repo, &targets);
        self.observe(shared, id, &spec_repo, &opened, &trail);
        match (&ended, &revision.commit) {
            (Ended::Success, Some(commit)) if !revision.dirty => {
                let last = Last::of(commit, opened, &mut outcome, open);
                self.remember(shared, last, seen);
            }
            _ => {}
        }
        ended
    }

    /// The cluster's status of every plan × environment, and the
    /// verifications due, when a cluster is connected.
    pub(super) fn observe(
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
