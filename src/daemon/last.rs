//! What the last reconcile found, kept in memory so that a reconcile a
//! push asked for does only what moved since. Nothing is kept on disk:
//! after a start the first reconcile looks at everything, and so does
//! every poll, retry, promotion and pull request event (what a forge
//! holds besides git, a closed pull request, shows only there).
//!
//! What moved is decided from git alone ([`Moved`]): the audit trail's
//! tip and every target repo's refs (branches, druppie's notes, rejected
//! proposals), fetched anew, against where the last reconcile left them;
//! then the spec. When nothing moved and the last reconcile wrote
//! nothing (it had gone as far as it could), nothing is done; when only
//! the spec moved, only the plans it reaches are reconciled
//! ([`affected`]), and the others keep what the last one left.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use super::reconcile::{Ended, Reconciler};
use super::settle::Proposals;
use super::source::Revision;
use super::state::{PlanStatus, Shared};
use crate::apply::{Cache, Done, Outcome};
use crate::compose::ComposeOptions;
use crate::diff::ChangeSets;
use crate::git::{ObjectId, Repo};
use crate::spec::validate::PlanModel;
use crate::spec::{LoadOptions, OpenError, Opened, Validated};

/// A reconcile that ended well, as it left things.
pub struct Last {
    /// The spec commit it applied.
    pub spec_commit: String,
    /// The audit trail's tip afterwards.
    pub trail_tip: Option<ObjectId>,
    /// Every target repo and its refs in the cache afterwards, by name.
    pub heads: BTreeMap<String, Refs>,
    /// The spec as it opened at that commit.
    pub opened: Opened,
    /// Every plan × environment's status afterwards.
    pub statuses: Vec<PlanStatus>,
    /// The plans it wrote a commit or a proposal for: what it wrote may
    /// let them go further (a change live in dev is proposed for prod
    /// next), so the next reconcile looks at them again.
    pub unsettled: BTreeSet<String>,
    /// Every change set it found (what `/api/v1/diff` shows, shared with
    /// the view's dry run).
    pub changes: Option<Arc<ChangeSets>>,
    /// Its open proposals, as (plan, repo, branch).
    pub open: Proposals,
}

impl Last {
    /// What a reconcile of the spec at `commit` that ended well leaves
    /// (the refs, the trail's tip and the statuses are read when it is
    /// kept: [`Reconciler::seen`], [`Reconciler::remember`]).
    pub fn of(commit: &str, opened: Opened, outcome: &mut Outcome, open: Proposals) -> Last {
        Last {
            spec_commit: commit.to_owned(),
            unsettled: unsettled(outcome),
            changes: outcome.changes.take(),
            open,
            opened,
            trail_tip: None,
            heads: BTreeMap::new(),
            statuses: Vec::new(),
        }
    }
}

/// The plans `outcome` wrote a commit or a proposal for.
fn unsettled(outcome: &Outcome) -> BTreeSet<String> {
    outcome
        .steps
        .iter()
        .filter(|s| matches!(s.done, Done::Committed { .. } | Done::Proposed { .. }))
        .flat_map(|s| s.plans.iter().cloned())
        .collect()
}

/// A repo's refs and the commits they name, sorted by name.
pub type Refs = Vec<(String, ObjectId)>;

/// Every target repo's refs and the trail's tip.
pub type Seen = (BTreeMap<String, Refs>, Option<ObjectId>);

/// The last reconcile that ended well, if it is still what holds.
#[derive(Default)]
pub struct Remembered(Mutex<Option<Last>>);

impl Remembered {
    /// Takes what is remembered (a reconcile either puts it back or
    /// leaves nothing: after a failure the next one looks at everything).
    pub fn take(&self) -> Option<Last> {
        self.0.lock().expect("last lock").take()
    }

    pub fn keep(&self, last: Last) {
        *self.0.lock().expect("last lock") = Some(last);
    }
}

/// `repo`'s refs in the cache (none when it has no clone: the forge
/// does not have it).
pub fn refs(cache: &Cache, repo: &str) -> Result<Refs, crate::git::Error> {
    let Some(clone) = Repo::open(&cache.path(repo))? else {
        return Ok(Refs::new());
    };
    Ok(clone
        .refs_under("refs/")?
        .into_iter()
        .map(|(name, head)| (name, head.commit))
        .collect())
}

/// The refs of each of `repos` in the cache.
pub fn heads<'r>(
    cache: &Cache,
    repos: impl IntoIterator<Item = &'r str>,
) -> Result<BTreeMap<String, Refs>, crate::git::Error> {
    repos
        .into_iter()
        .map(|repo| Ok((repo.to_owned(), refs(cache, repo)?)))
        .collect()
}

/// The audit trail's tip in `spec`.
pub fn trail_tip(spec: &Repo) -> Option<ObjectId> {
    spec.branch_head(crate::audit::BRANCH)
        .ok()
        .flatten()
        .map(|h| h.commit)
}

/// The spec at `root`, at a commit `changed` files away from `last`'s:
/// the spec `last` opened with those files read again
/// ([`crate::spec::reload_or_load`], which leaves `last` without it, and
/// with its plans' models), else the whole spec loaded; with what
/// [`affected`] needs of `last`'s spec, and whether it was read again.
pub fn reopen(
    root: &Path,
    last: Option<&mut Last>,
    changed: Option<&[String]>,
    scope: &ComposeOptions,
) -> (Result<Opened, OpenError>, Option<Before>, bool) {
    let last = last.filter(|_| changed.is_some());
    let before = last
        .as_ref()
        .zip(changed)
        .map(|(last, changed)| Before::of(&last.opened.valid, changed));
    let prev = last.map(|last| &mut last.opened.valid.spec);
    match crate::spec::reload_or_load(root, prev, changed, &LoadOptions::default()) {
        Ok((spec, reread)) => (crate::spec::open_loaded(spec, scope), before, reread),
        Err(e) => (Err(e.into()), before, false),
    }
}

/// What [`affected`] needs of the spec the last reconcile opened, taken
/// before that spec is reused for the new one ([`crate::spec::reload`]).
pub struct Before {
    /// Each changed file that was a plan or stack file, and the plans
    /// that read it.
    dependents: BTreeMap<String, BTreeSet<String>>,
}

impl Before {
    pub fn of(valid: &Validated, changed: &[String]) -> Before {
        let dependents = dependents(valid, changed)
            .into_iter()
            .map(|(path, plans)| (path.to_owned(), plans))
            .collect();
        Before { dependents }
    }
}

/// The plans a reconcile of the spec at a new commit (opened as
/// `opened`) must look at when, since `last`, only the spec moved in
/// git, `changed` being the files that differ: the plans whose plan or
/// stack file changed, the ones `last` left unsettled, and the ones with
/// a change still to make (a proposal waiting for its merge is diffed
/// against the branch as it is now, which a commit for another plan may
/// have moved). `None` when the change can reach further (a block, a
/// template, a policy, `platform.yaml`, anything else) or leaves
/// something to prune (a plan gone, or gone from an environment): then
/// the reconcile looks at everything.
pub fn affected(
    last: &Last,
    before: &Before,
    changed: &[String],
    opened: &Opened,
) -> Option<BTreeSet<String>> {
    let now = dependents(&opened.valid, changed);
    let mut plans = last.unsettled.clone();
    let pending = last.changes.iter().flat_map(|c| &c.sets);
    plans.extend(
        pending
            .filter(|cs| !cs.files.is_empty() || !cs.notes.is_empty())
            .flat_map(|cs| cs.plans.iter().cloned()),
    );
    for path in changed {
        let (a, b) = (before.dependents.get(path), now.get(path.as_str()));
        if a.is_none() && b.is_none() {
            return None;
        }
        plans.extend(a.into_iter().chain(b).flatten().cloned());
    }
    // The models `last` opened, kept when its spec was read again.
    for plan in &plans {
        let now: BTreeSet<&str> = model(&opened.valid, plan)?
            .envs
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let then = model(&last.opened.valid, plan)
            .into_iter()
            .flat_map(|m| &m.envs);
        if then.into_iter().any(|e| !now.contains(e.name.as_str())) {
            return None;
        }
    }
    Some(plans)
}

/// The model of `plan` (the plans are sorted by name).
fn model<'v>(valid: &'v Validated, plan: &str) -> Option<&'v PlanModel> {
    let plans = valid.plans();
    let at = plans.binary_search_by(|m| m.name.as_str().cmp(plan)).ok()?;
    Some(&plans[at])
}

/// Each of the files `changed` that is a plan or stack file, and the
/// plans that read it.
fn dependents<'v>(valid: &'v Validated, changed: &[String]) -> BTreeMap<&'v str, BTreeSet<String>> {
    let spec = &valid.spec;
    let changed: std::collections::HashSet<&str> = changed.iter().map(String::as_str).collect();
    let mut out: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for model in valid.plans() {
        for file in [model.plan(spec).file, model.stack(spec).file] {
            let path = spec.file(file).path.as_str();
            if changed.contains(path) {
                out.entry(path).or_default().insert(model.name.clone());
            }
        }
    }
    out
}

/// The change sets `last` left, with those of `plans` and the proposals
/// of `repos` as `fresh` (a reconcile of `plans` only) found them;
/// `None` when either is missing (a reconcile that did not get as far as
/// the diff leaves nothing to remember).
fn merged(
    last: Option<Arc<ChangeSets>>,
    fresh: Option<Arc<ChangeSets>>,
    plans: &BTreeSet<String>,
    repos: &[String],
) -> Option<Arc<ChangeSets>> {
    let (Some(last), Some(fresh)) = (last, fresh) else {
        return None;
    };
    let mut all = kept(
        last,
        |cs| !cs.plans.iter().any(|p| plans.contains(p)),
        |p| !repos.contains(&p.repo),
        |u| !plans.contains(&u.plan),
    );
    let fresh = kept(fresh, |_| true, |_| true, |_| true);
    all.sets.extend(fresh.sets);
    all.sets
        .sort_by(|a, b| (&a.repo, &a.env, &a.plans).cmp(&(&b.repo, &b.env, &b.plans)));
    all.proposals.extend(fresh.proposals);
    all.proposals
        .sort_by(|a, b| (&a.repo, &a.branch).cmp(&(&b.repo, &b.branch)));
    all.secrets.extend(fresh.secrets);
    all.secrets.sort_unstable();
    all.secrets.dedup();
    all.unverified.extend(fresh.unverified);
    all.order = fresh.order;
    all.errors = fresh.errors;
    Some(Arc::new(all))
}

/// The change sets, proposals and unverified changes of `changes` that
/// the predicates keep. The last reconcile's are shared with the view's
/// dry run: then what is kept is copied (a read error as its text,
/// though a stored diff holds none: `apply` takes them out). That copy
/// is of the change sets' files still to write, where the dry run's
/// JSON of all of them was made after every reconcile before.
fn kept(
    changes: Arc<ChangeSets>,
    set: impl Fn(&crate::diff::ChangeSet) -> bool,
    proposal: impl Fn(&crate::live::Proposal) -> bool,
    unverified: impl Fn(&crate::diff::Unverified) -> bool,
) -> ChangeSets {
    match Arc::try_unwrap(changes) {
        Ok(mut own) => {
            own.sets.retain(|cs| set(cs));
            own.proposals.retain(|p| proposal(p));
            own.unverified.retain(|u| unverified(u));
            own
        }
        Err(shared) => ChangeSets {
            sets: shared.sets.iter().filter(|cs| set(cs)).cloned().collect(),
            proposals: (shared.proposals.iter())
                .filter(|p| proposal(p))
                .cloned()
                .collect(),
            unverified: (shared.unverified.iter())
                .filter(|u| unverified(u))
                .cloned()
                .collect(),
            secrets: shared.secrets.clone(),
            errors: (shared.errors.iter())
                .map(|e| crate::live::Error {
                    at: e.at.clone(),
                    what: crate::live::What::Refused(e.what.to_string()),
                })
                .collect(),
            order: shared.order.clone(),
        },
    }
}

/// A reconcile of `plans` only, and what the last one left for the
/// others.
pub struct Narrowed {
    pub plans: BTreeSet<String>,
    pub last: Last,
}

impl Narrowed {
    /// Completes what a reconcile of `self.plans` found with what the
    /// last one left for the other plans: their open proposals, their
    /// target repos, their change sets.
    pub fn take_in(
        &mut self,
        outcome: &mut Outcome,
        open: &mut Proposals,
        targets: &mut Vec<String>,
    ) {
        let plans = &self.plans;
        let last = &mut self.last;
        open.extend(
            last.open
                .iter()
                .filter(|(plan, ..)| !plans.contains(plan))
                .cloned(),
        );
        targets.extend(last.heads.keys().cloned());
        targets.sort();
        targets.dedup();
        outcome.changes = merged(
            last.changes.take(),
            outcome.changes.take(),
            plans,
            &outcome.targets,
        );
    }

    /// A plan filter, as `--plan` is one: the diff prunes nothing (a plan
    /// gone from the spec or from an environment makes the reconcile
    /// whole, see [`affected`]).
    pub fn scope(&self) -> ComposeOptions {
        ComposeOptions {
            plan: Some(self.plans.first().cloned().unwrap_or_default()),
            env: None,
            shards: None,
        }
    }
}

/// What moved in git since the last reconcile.
pub enum Moved {
    /// Nothing: the spec, the trail and every target repo are where the
    /// last reconcile, which wrote nothing, left them.
    Nothing(Last),
    /// At most the spec (or the last reconcile wrote something, so some
    /// plans may go further).
    Spec(Last),
    /// A target repo or the trail, or it could not be told.
    Everything,
}

impl Reconciler {
    /// What moved since `last`: the trail's tip, and every target repo's
    /// refs, `fetched` anew, against what `last` left; then the spec.
    pub(super) fn moved(
        &self,
        revision: &Revision,
        last: Last,
        fetched: Result<(), crate::apply::ApplyError>,
    ) -> Moved {
        if let Err(e) = fetched {
            // The whole reconcile says what failed, and retries.
            warn!(error = %crate::error::chain(&e), "fetching the target repos");
            return Moved::Everything;
        }
        if revision.dirty {
            return Moved::Everything;
        }
        let Some(spec_repo) = Repo::discover(self.source.root()) else {
            return Moved::Everything;
        };
        if trail_tip(&spec_repo) != last.trail_tip {
            return Moved::Everything;
        }
        match heads(&self.cache, last.heads.keys().map(String::as_str)) {
            Ok(now) if now == last.heads => {}
            _ => return Moved::Everything,
        }
        let same = revision.commit.as_deref() == Some(last.spec_commit.as_str());
        if same && last.unsettled.is_empty() {
            Moved::Nothing(last)
        } else {
            Moved::Spec(last)
        }
    }

    /// Ends a reconcile that found nothing moved: nothing is rendered,
    /// diffed or written; the statuses are the ones `last` left (the
    /// cluster is still asked for its own).
    pub(super) fn unmoved(&self, shared: &Shared, id: &str, last: Last) -> Ended {
        info!("nothing moved since the last reconcile");
        shared.metrics.unchanged(crate::apply::now().0 as f64);
        shared
            .view
            .lock()
            .expect("view lock")
            .statuses
            .clone_from(&last.statuses);
        match Repo::discover(self.source.root()) {
            Some(spec_repo) if self.cluster.is_some() => {
                let trail = crate::audit::trusted(&spec_repo, &self.signer.own_key())
                    .map(|t| t.events)
                    .unwrap_or_default();
                let seen = Some((last.heads.clone(), last.trail_tip));
                self.observe(shared, id, &spec_repo, &last.opened, &trail);
                self.remember(shared, last, seen);
            }
            _ => self.last.keep(last),
        }
        Ended::Success
    }

    /// The refs of `targets` and the trail's tip as they are now: what a
    /// reconcile saw. Read before the cluster is asked, which may record
    /// events (a verification lets a promotion go on): those make the next
    /// reconcile look at everything.
    pub(super) fn seen(&self, spec_repo: &Repo, targets: &[String]) -> Option<Seen> {
        let now = heads(&self.cache, targets.iter().map(String::as_str)).ok()?;
        Some((now, trail_tip(spec_repo)))
    }

    /// Keeps `last`, a reconcile that ended well, with what it saw and
    /// the statuses as they are now.
    pub(super) fn remember(&self, shared: &Shared, mut last: Last, seen: Option<Seen>) {
        let Some((heads, tip)) = seen else {
            return;
        };
        last.heads = heads;
        last.trail_tip = tip;
        last.statuses = shared.view.lock().expect("view lock").statuses.clone();
        self.last.keep(last);
    }
}
