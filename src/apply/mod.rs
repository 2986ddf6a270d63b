//! `apply`: [`crate::execution::ExecutionPlan`] -> signed commits, pushed through the forge.
//!
//! Executes exactly the steps [`crate::execution::plan`] decided: commits
//! straight to a default branch, proposals on druppie's own branches,
//! comments on proposals a person pushed to. Commits are written into the cache's bare clones
//! without a work tree, signed, carry trailers, and are pushed with the
//! git CLI; the default branch only moves forward from the commit the
//! change set was computed on, so a concurrent push is a rejection, never
//! a lost commit. A proposal whose branch already holds the same tree is
//! left alone, so applying twice writes nothing new.

mod approvals;
mod cache;
pub mod coverage;
mod execute;
pub mod promote;
mod push;
mod retire;
mod run;
mod trail;
mod verdicts;

pub use approvals::{Merged, Style, Target, Unrecorded};
pub use cache::{Cache, CacheError, Hold, LOCK_WAIT, redact};
pub use execute::approval_card;
pub use push::{Pushed, held_lock};
pub use run::{ATTEMPTS, Failure, Outcome, Run, sync};
pub use trail::{CatchUp, Trail, TrailError, VERDICT_MARKER};

use crate::forge::{Forge, ForgeError};
use crate::git::sign::Signer;
use crate::git::write::Identity;
use crate::git::{ObjectId, Repo};

/// Applying failed for one repo.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The cache's clone could not be brought up to date, or a push
    /// failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The forge refused, or could not be reached.
    #[error(transparent)]
    Forge(#[from] ForgeError),
    /// The cache's clone cannot be read or written.
    #[error("{repo}: cannot {what}")]
    Git {
        repo: String,
        what: &'static str,
        #[source]
        source: crate::git::Error,
    },
    /// The repo was to be synced into the cache first.
    #[error("{repo}: not in the cache")]
    NotCached { repo: String },
    /// The change set names a base that is not a commit id.
    #[error("{repo}: the base `{base}` is not a commit id")]
    BadBase {
        repo: String,
        base: String,
        #[source]
        source: gix::Error,
    },
    /// druppie's notes moved on the forge between the fetch and the push.
    #[error("{repo}: druppie's notes moved on the forge")]
    NotesMoved { repo: String },
    /// A commit id read from git or from the trail is not one.
    #[error("{repo}: `{commit}` is not a commit id")]
    BadCommit { repo: String, commit: String },
    /// A commit's signature could not be checked.
    #[error("{repo}: cannot check a signature")]
    Verify {
        repo: String,
        #[source]
        source: crate::git::sign::VerifyError,
    },
    /// git is not installed or cannot be started.
    #[error("{repo}: cannot run git")]
    Spawn {
        repo: String,
        #[source]
        source: std::io::Error,
    },
    /// The run's fence said stop: what it writes may be another's now
    /// (a replica whose shard Leases were not renewed in time).
    #[error(
        "stopped before the next step: the run may no longer write (its Leases were not renewed in time)"
    )]
    Fenced,
}

impl ApplyError {
    pub(crate) fn bad_commit(repo: &str, commit: &str) -> ApplyError {
        ApplyError::BadCommit {
            repo: repo.to_owned(),
            commit: commit.to_owned(),
        }
    }

    pub(crate) fn not_cached(repo: &str) -> ApplyError {
        ApplyError::NotCached {
            repo: repo.to_owned(),
        }
    }

    pub(crate) fn git(
        repo: &str,
        what: &'static str,
    ) -> impl FnOnce(crate::git::Error) -> ApplyError {
        move |source| ApplyError::Git {
            repo: repo.to_owned(),
            what,
            source,
        }
    }

    /// The repo it is about (`None`: the whole cache).
    pub fn repo(&self) -> Option<&str> {
        match self {
            ApplyError::Cache(e) => e.repo(),
            ApplyError::Forge(e) => Some(e.repo()),
            ApplyError::Git { repo, .. }
            | ApplyError::NotCached { repo }
            | ApplyError::BadBase { repo, .. }
            | ApplyError::NotesMoved { repo }
            | ApplyError::BadCommit { repo, .. }
            | ApplyError::Verify { repo, .. }
            | ApplyError::Spawn { repo, .. } => Some(repo),
            ApplyError::Fenced => None,
        }
    }

    /// Whether running again later may succeed with nothing changed: a
    /// transport failure, a lock race, a moved ref, a busy cache, a full
    /// disk. A refused push, a corrupt object, a malformed base, git
    /// missing are not; a forge error says itself.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Cache(e) => e.is_transient(),
            ApplyError::Forge(e) => e.is_transient(),
            ApplyError::NotCached { .. } | ApplyError::NotesMoved { .. } | ApplyError::Fenced => {
                true
            }
            ApplyError::Git { source, .. } => source.is_transient(),
            ApplyError::BadBase { .. }
            | ApplyError::BadCommit { .. }
            | ApplyError::Verify { .. }
            | ApplyError::Spawn { .. } => false,
        }
    }
}

/// What happened to one change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Committed to the default branch.
    Committed { commit: String },
    /// Pushed to a proposal branch; `pull` is the pull request's address
    /// on forges that have them.
    Proposed {
        branch: String,
        commit: String,
        pull: Option<String>,
    },
    /// The proposal branch already holds these changes.
    AlreadyProposed {
        branch: String,
        pull: Option<String>,
    },
    /// A person pushed to the proposal: left as it is.
    Held {
        branch: String,
        by: String,
        pull: Option<String>,
    },
    /// Promotion: the change waits to be live (or verified) in the
    /// environment `on` first; nothing written. `reason` says so whole.
    Waiting { on: String, reason: String },
    /// An observe-only environment: nothing written.
    Observed,
    /// The branch moved on the forge (or was being moved: a lost lock
    /// race); run again against the new base. `said` is what the forge
    /// printed.
    Rejected { branch: String, said: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct Step {
    pub repo: String,
    pub env: Option<String>,
    pub plans: Vec<String>,
    pub done: Done,
    /// The environment the change was live in before: this step
    /// promotes it.
    pub from: Option<String>,
}

/// Everything apply needs besides the change sets.
pub struct Writer<'a> {
    pub forge: &'a dyn Forge,
    /// Masks secret values in the approval card.
    pub mask: &'a crate::diff::report::Mask,
    pub cache: &'a Cache,
    pub signer: &'a Signer,
    pub identity: &'a Identity,
    pub spec_commit: Option<&'a str>,
    /// `cli`, `webhook` or `poll`.
    pub trigger: &'a str,
    /// Seconds since the epoch and UTC offset, for the commits.
    pub time: (i64, i32),
    /// Asked before each step: `false` stops the run before it writes
    /// more ([`ApplyError::Fenced`]).
    pub fence: Option<&'a dyn Fn() -> bool>,
}

/// Where druppie's comment on a proposal a person pushed to is found
/// again.
pub const HELD_MARKER: &str = "<!-- druppie:held -->";

/// Where druppie's comments live in plain git.
pub const NOTES: &str = "refs/notes/druppie";

/// Sets druppie's note on `commit` in the cache and pushes the notes.
///
/// # Errors
/// The note cannot be written or pushed.
#[allow(clippy::too_many_arguments)]
pub fn note(
    cache: &Cache,
    repo: &Repo,
    name: &str,
    url: &str,
    commit: ObjectId,
    text: &str,
    identity: &Identity,
    signer: &Signer,
    time: (i64, i32),
) -> Result<(), ApplyError> {
    let _hold = cache.prepare(name)?;
    repo.set_note(NOTES, commit, text, identity, time, Some(signer))
        .map_err(ApplyError::git(name, "write the note"))?;
    match cache.push_ref(name, url, NOTES, NOTES, true)? {
        Pushed::Done => Ok(()),
        Pushed::Rejected { .. } => Err(ApplyError::NotesMoved {
            repo: name.to_owned(),
        }),
    }
}

/// The audit events a step is, if it wrote something: `applied` for a
/// commit (and `promoted` when it promotes the change from the
/// environment before), `proposed` for a proposal (carrying that
/// environment, so the merge records the promotion).
pub fn events(
    step: &Step,
    actor: &str,
    spec_commit: Option<&str>,
    time: &str,
) -> Vec<crate::audit::Event> {
    use crate::audit::{Event, Kind};
    let (kind, commit, branch) = match &step.done {
        Done::Committed { commit } => (Kind::Applied, commit.clone(), None),
        Done::Proposed { branch, commit, .. } => {
            (Kind::Proposed, commit.clone(), Some(branch.clone()))
        }
        Done::AlreadyProposed { .. }
        | Done::Held { .. }
        | Done::Waiting { .. }
        | Done::Observed
        | Done::Rejected { .. } => return Vec::new(),
    };
    Event {
        kind,
        time: time.to_owned(),
        actor: actor.to_owned(),
        plans: step.plans.clone(),
        env: step.env.clone(),
        repo: step.repo.clone(),
        commit: Some(commit),
        branch,
        spec_commit: spec_commit.map(str::to_owned),
        from: step.from.clone(),
    }
    .with_promotion()
}

/// A time as RFC 3339.
pub fn stamp((secs, offset): (i64, i32)) -> String {
    gix::date::Time::new(secs, offset)
        .format(gix::date::time::format::ISO8601_STRICT)
        .unwrap_or_default()
}

/// Now, as seconds since the epoch in UTC.
pub fn now() -> (i64, i32) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (secs, 0)
}
