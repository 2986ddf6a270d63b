//! `audit`: the trail of what druppie did, kept as the orphan branch
//! `druppie-audit` in the spec repo. One signed commit per event, each
//! holding `event.yaml` (the event) with the same facts as trailers, so
//! the log is hash-chained by git itself and readable without druppie.
//!
//! Reading: [`read`] lists every event as written (for people, with each
//! signature's verdict when allowed signers are given); [`trusted`] is
//! what druppie itself acts on: only events signed by its own key, the
//! rest ignored and reported. Writing: [`Writer`] records an event once
//! by its identity (kind, repo, commit, environment), under
//! compare-and-swap, so two runs at once never write it twice.
//! [`take_in`] joins another copy of the trail (the spec remote's,
//! which replicas of druppie share) with the one here, writing the
//! events only here again on top of it when all it adds is druppie's.
//! [`missing`] cross-checks the trail against druppie's own commits in
//! the target repos: a truncated trail shows.

mod check;
mod filter;
mod merge;
mod read;
mod write;

use serde::{Deserialize, Serialize};

pub use check::{Missing, missing};
pub use filter::Filter;
pub use merge::{Apart, TakenIn, Why, take_in};
pub use read::{Ignored, Trail, Verdicts, read, read_remembering, trusted};
pub use write::Writer;

use crate::git::ObjectId;
use crate::git::sign::{Signer, VerifyError};
use crate::git::write::Identity;
use crate::git::{Error, Repo};

/// The branch the trail lives on.
pub const BRANCH: &str = "druppie-audit";
/// The file every event commit holds.
const FILE: &str = "event.yaml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Proposed,
    Approved,
    Applied,
    Rejected,
    Failed,
    Violation,
    /// The applied commit is running: Flux reports it Ready and its
    /// health URLs answer.
    Verified,
    /// A change became live in an environment after being live in the
    /// one before it (`from`): committed where it deploys, merged where
    /// it proposes.
    Promoted,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Proposed => "proposed",
            Kind::Approved => "approved",
            Kind::Applied => "applied",
            Kind::Rejected => "rejected",
            Kind::Failed => "failed",
            Kind::Violation => "violation",
            Kind::Verified => "verified",
            Kind::Promoted => "promoted",
        }
    }
}

/// One event of the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: Kind,
    /// RFC 3339, UTC.
    pub time: String,
    /// Who caused it: druppie's identity, or the person who merged.
    pub actor: String,
    pub plans: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub repo: String,
    /// The commit the event is about (written, proposed or merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_commit: Option<String>,
    /// For a promotion, the environment the change was live in before
    /// `env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// What makes an event the same event: recording it again adds nothing.
pub type Id = (Kind, String, Option<String>, Option<String>);

impl Event {
    /// The event's identity: kind, repo, commit, environment.
    pub fn id(&self) -> Id {
        (
            self.kind,
            self.repo.clone(),
            self.commit.clone(),
            self.env.clone(),
        )
    }

    /// What recording this event means: an `applied` event that carries
    /// `from` is the commit promoting a change, so it is recorded as
    /// `applied` and `promoted` (from `from`); a `proposed` one keeps
    /// `from` for its merge; any other is itself.
    pub fn with_promotion(self) -> Vec<Event> {
        match (self.kind, &self.from) {
            (Kind::Applied, Some(_)) => vec![
                Event {
                    from: None,
                    ..self.clone()
                },
                Event {
                    kind: Kind::Promoted,
                    ..self
                },
            ],
            _ => vec![self],
        }
    }

    /// When it happened, as an instant; druppie writes RFC 3339 with an
    /// offset (`2026-11-21T10:00:00+00:00`).
    ///
    /// # Errors
    /// The time is not RFC 3339 with an offset (written by hand, or by
    /// something other than druppie).
    pub fn instant(&self) -> Result<crate::when::Timestamp, crate::when::WhenError> {
        crate::when::instant(&self.time)
    }

    fn yaml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
        let mut out = format!(
            "kind: {}\ntime: {}\nactor: {}\nplans: [{}]\n",
            self.kind.name(),
            q(&self.time),
            q(&self.actor),
            self.plans
                .iter()
                .map(|p| q(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (key, value) in [
            ("env", &self.env),
            ("repo", &Some(self.repo.clone())),
            ("commit", &self.commit),
            ("branch", &self.branch),
            ("spec_commit", &self.spec_commit),
            ("from", &self.from),
        ] {
            if let Some(v) = value {
                out.push_str(&format!("{key}: {}\n", q(v)));
            }
        }
        out
    }
}

/// An event read back, with what its signature says.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    /// The event's own commit on the trail (`commit` is what the event
    /// is about).
    #[serde(rename = "event_commit")]
    pub commit: String,
    #[serde(flatten)]
    pub event: Event,
    /// `verified`, `unsigned`, `unknown-key`, `refused`, `bad-signature`,
    /// `not-committer`, `druppie` (signed by druppie's own key, read by
    /// druppie), or `unchecked` (no allowed signers given).
    pub signature: String,
}

/// The trail could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A ref or commit of the spec repo could not be read.
    #[error("cannot read the `{BRANCH}` branch")]
    Read {
        #[source]
        source: Error,
    },
    /// An event commit druppie signed does not hold a readable event.
    #[error("{BRANCH} commit {commit}: {why}")]
    Event { commit: ObjectId, why: String },
    /// A signature could not be checked.
    #[error("cannot check the signature of {BRANCH} commit {commit}")]
    Verify {
        commit: ObjectId,
        #[source]
        source: VerifyError,
    },
    /// An event commit could not be written.
    #[error("cannot write an event on `{BRANCH}`")]
    Write {
        #[source]
        source: Error,
    },
    /// A git lock file in the spec repo stops the branch from moving.
    #[error(transparent)]
    Locked(crate::git::lock::Held),
    /// The branch kept moving under every attempt to append to it.
    #[error("the `{BRANCH}` branch kept moving; gave up after {attempts} attempts")]
    Contended {
        attempts: usize,
        #[source]
        source: Error,
    },
}

impl AuditError {
    /// Whether trying again may help: another writer held the branch, or
    /// ssh-keygen or a temporary file failed for a passing reason.
    pub fn is_transient(&self) -> bool {
        match self {
            AuditError::Contended { .. } | AuditError::Locked(_) => true,
            AuditError::Verify { source, .. } => source.is_transient(),
            AuditError::Write { source } => source.is_transient(),
            AuditError::Read { .. } | AuditError::Event { .. } => false,
        }
    }
}

/// The `applied` event of the commit applied last for `plan` in `env`
/// of `repo`, with the verdict on it (`verified` or `failed`), if any.
pub fn last_applied<'t>(
    trail: &'t [Recorded],
    repo: &str,
    plan: &str,
    env: &str,
) -> Option<(&'t Event, Option<Kind>)> {
    let ours = |r: &&Recorded| {
        r.event.repo == repo
            && r.event.env.as_deref() == Some(env)
            && r.event.plans.iter().any(|p| p == plan)
    };
    let applied = &trail
        .iter()
        .filter(ours)
        .rev()
        .find(|r| r.event.kind == Kind::Applied)?
        .event;
    let verdict = trail
        .iter()
        .filter(ours)
        .rev()
        .find(|r| {
            matches!(r.event.kind, Kind::Verified | Kind::Failed)
                && r.event.commit == applied.commit
        })
        .map(|r| r.event.kind);
    Some((applied, verdict))
}

/// Appends `event` to the trail in `spec`, signed, unless the trail
/// already holds it (see [`Writer`]); `Ok(None)` when it did.
///
/// # Errors
/// The trail cannot be read or written.
pub fn record(
    spec: &Repo,
    event: &Event,
    signer: &Signer,
    identity: &Identity,
    time: (i64, i32),
) -> Result<Option<ObjectId>, AuditError> {
    let mut writer = Writer::new(spec, signer, identity)?;
    Ok(writer
        .record(std::slice::from_ref(event), time)?
        .into_iter()
        .next())
}
