//! What the last reconcile found, kept in memory so that a reconcile a
//! push asked for does only what moved since. Nothing is kept on disk:
//! after a start the first reconcile looks at everything, and so does
//! every poll, retry, promotion and pull request event (what a forge
//! holds besides git, a closed pull request, shows only there).
//!
//! "Nothing moved" is decided from git alone: the spec at the same
//! commit, the audit trail at the same tip, and every target repo's
//! refs (branches, druppie's notes, rejected proposals), fetched anew,
//! where the last reconcile left them; and the last reconcile wrote
//! nothing, so that it had gone as far as it could.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::apply::{Cache, Done, Outcome};
use crate::git::{ObjectId, Repo};
use crate::spec::Opened;

use super::state::PlanStatus;

/// A reconcile that applied everything to the end, as it left things.
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
}

/// The plans `outcome` wrote a commit or a proposal for.
pub fn unsettled(outcome: &Outcome) -> BTreeSet<String> {
    outcome
        .steps
        .iter()
        .filter(|s| matches!(s.done, Done::Committed { .. } | Done::Proposed { .. }))
        .flat_map(|s| s.plans.iter().cloned())
        .collect()
}

/// A repo's refs and the commits they name, sorted by name.
pub type Refs = Vec<(String, ObjectId)>;

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

    pub fn forget(&self) {
        self.0.lock().expect("last lock").take();
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
