//! `audit`: the trail of what druppie did, kept as the orphan branch
//! `druppie-audit` in the spec repo. One signed commit per event, each
//! holding `event.yaml` (the event) with the same facts as trailers, so
//! the log is hash-chained by git itself and readable without druppie.

use serde::{Deserialize, Serialize};

use crate::git::sign::{AllowedSigners, Signer, Verdict};
use crate::git::write::{Identity, NewCommit, message};
use crate::git::{Error, ObjectId, Repo};

/// The branch the trail lives on.
pub const BRANCH: &str = "druppie-audit";
/// The file every event commit holds.
const FILE: &str = "event.yaml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Event {
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
    /// `verified`, `unsigned`, `unknown-key`, `bad-signature`,
    /// `not-committer`, or `unchecked` (no allowed signers given).
    pub signature: String,
}

/// Appends `event` to the trail in `spec`, signed; the branch moves by
/// compare-and-swap, so two writers cannot lose each other's events.
///
/// # Errors
/// The branch moved meanwhile, or a write or the signature fails.
pub fn record(
    spec: &Repo,
    event: &Event,
    signer: &Signer,
    identity: &Identity,
    time: (i64, i32),
) -> Result<ObjectId, Error> {
    let tip = spec.branch_head(BRANCH)?.map(|h| h.commit);
    let mut trailers: Vec<(&str, &str)> = vec![("Druppie-Event", event.kind.name())];
    let plans = event.plans.join(", ");
    trailers.push(("Druppie-Plan", &plans));
    if let Some(env) = &event.env {
        trailers.push(("Druppie-Environment", env));
    }
    trailers.push(("Druppie-Repo", &event.repo));
    if let Some(c) = &event.commit {
        trailers.push(("Druppie-Commit", c));
    }
    if let Some(c) = &event.spec_commit {
        trailers.push(("Druppie-Spec-Commit", c));
    }
    let summary = match &event.env {
        Some(env) => format!("{} {plans} in {env} ({})", event.kind.name(), event.repo),
        None => format!("{} {plans} ({})", event.kind.name(), event.repo),
    };
    let changes = [(FILE.to_owned(), Some(event.yaml().into_bytes()))];
    // Every event commit holds only its own event, chained to the
    // previous one by parentage.
    let written = spec.write_commit(
        &NewCommit {
            base: tip,
            replace_tree: true,
            changes: &changes,
            message: message(&summary, "", &trailers),
            author: identity,
            time,
        },
        Some(signer),
    )?;
    spec.set_branch(BRANCH, tip, written.commit, "druppie: audit")?;
    Ok(written.commit)
}

/// The trail, oldest first; signatures checked when `allowed` is given.
///
/// # Errors
/// An event commit or its file cannot be read or parsed.
pub fn read(spec: &Repo, allowed: Option<&AllowedSigners>) -> Result<Vec<Recorded>, Error> {
    let mut out = Vec::new();
    let mut next = spec.branch_head(BRANCH)?.map(|h| h.commit);
    while let Some(commit) = next {
        let text = spec
            .file_at(commit, FILE)?
            .ok_or_else(|| Error::new(format!("{BRANCH} commit {commit} holds no {FILE}")))?;
        let event: Event = serde_saphyr::from_str(&String::from_utf8_lossy(&text))
            .map_err(|e| Error::new(format!("{BRANCH} commit {commit}: {FILE}: {e}")))?;
        let signature = match allowed {
            None => "unchecked".to_owned(),
            Some(allowed) => match spec.verify_commit(commit, allowed)? {
                Verdict::Verified { .. } => "verified".to_owned(),
                Verdict::Unsigned => "unsigned".to_owned(),
                Verdict::UnknownKey => "unknown-key".to_owned(),
                Verdict::BadSignature(_) => "bad-signature".to_owned(),
                Verdict::NotCommitter { .. } => "not-committer".to_owned(),
            },
        };
        out.push(Recorded {
            commit: commit.to_string(),
            event,
            signature,
        });
        next = spec.first_parent(commit)?;
    }
    out.reverse();
    Ok(out)
}
