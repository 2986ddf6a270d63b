//! Reading the trail: as written, for people; or only what druppie
//! signed, for druppie itself.

use super::{AuditError, BRANCH, Event, FILE, Recorded};
use crate::git::sign::{AllowedSigners, OwnKey};
use crate::git::{ObjectId, Repo};

/// The trail as druppie trusts it.
#[derive(Debug, Default, Clone)]
pub struct Trail {
    /// The events druppie signed, oldest first.
    pub events: Vec<Recorded>,
    /// Commits on the branch that druppie does not act on.
    pub ignored: Vec<Ignored>,
    /// The branch's tip when it was read.
    pub tip: Option<ObjectId>,
}

/// A commit on the trail that is not an event druppie can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub commit: ObjectId,
    pub why: String,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{BRANCH} commit {}: {}", self.commit, self.why)
    }
}

/// Every event of the trail, oldest first; each signature checked when
/// `allowed` is given. A commit without a readable event is an error
/// here: `druppie audit` shows the trail as it is.
///
/// # Errors
/// The branch, a commit or its event cannot be read, or a signature
/// cannot be checked.
pub fn read(spec: &Repo, allowed: Option<&AllowedSigners>) -> Result<Vec<Recorded>, AuditError> {
    read_remembering(spec, allowed, &Verdicts::default())
}

/// Signature verdicts by event commit, kept between reads of the trail
/// with the same allowed signers: a commit never changes, so neither
/// does its verdict, and a long trail is checked once, not at every read.
#[derive(Debug, Default)]
pub struct Verdicts(std::sync::Mutex<std::collections::HashMap<ObjectId, String>>);

/// [`read`], checking only the signatures `verdicts` does not hold yet
/// (and keeping those verdicts).
///
/// # Errors
/// As [`read`].
pub fn read_remembering(
    spec: &Repo,
    allowed: Option<&AllowedSigners>,
    verdicts: &Verdicts,
) -> Result<Vec<Recorded>, AuditError> {
    let commits: Vec<ObjectId> = chain(spec, None)?.0.into_iter().rev().collect();
    // Each check is two ssh-keygen runs, which mostly wait: on every core.
    crate::par::map(&commits, |&commit| {
        let event = event_at(spec, commit)?;
        let known = || {
            verdicts
                .0
                .lock()
                .expect("verdicts lock")
                .get(&commit)
                .cloned()
        };
        let signature = match (allowed, known()) {
            (None, _) => "unchecked".to_owned(),
            (Some(_), Some(verdict)) => verdict,
            (Some(allowed), None) => {
                let verdict = spec
                    .check_signature(commit, allowed)
                    .map_err(|source| AuditError::Verify { commit, source })?
                    .word()
                    .to_owned();
                verdicts
                    .0
                    .lock()
                    .expect("verdicts lock")
                    .insert(commit, verdict.clone());
                verdict
            }
        };
        Ok(Recorded {
            commit: commit.to_string(),
            event,
            signature,
        })
    })
    .into_iter()
    .collect()
}

/// The events signed by druppie's own `key`, oldest first; every other
/// commit on the branch is ignored and named in [`Trail::ignored`].
///
/// A commit never changes, so neither does what it says nor whether
/// `key` signed it: a trail read before is read again only from the tip
/// it had then, and read whole when that tip is no longer on the branch
/// (it was rewritten). What was read is kept per spec repo and key, for
/// as long as the process runs.
///
/// # Errors
/// The branch or a commit cannot be read, or an event druppie signed
/// cannot be parsed.
pub fn trusted(spec: &Repo, key: &OwnKey) -> Result<Trail, AuditError> {
    let id = known_as(spec, key);
    let before = KNOWN.lock().expect("trail memo lock").remove(&id);
    let trail = grown(spec, key, before.unwrap_or_default())?;
    KNOWN
        .lock()
        .expect("trail memo lock")
        .insert(id, trail.clone());
    Ok(trail)
}

/// The trails [`trusted`] read, per spec repo and key.
type Known = std::collections::HashMap<(std::path::PathBuf, String), Trail>;
static KNOWN: std::sync::LazyLock<std::sync::Mutex<Known>> =
    std::sync::LazyLock::new(Default::default);

fn known_as(spec: &Repo, key: &OwnKey) -> (std::path::PathBuf, String) {
    (spec.common_dir(), key.allowed_line(""))
}

/// Takes in `written`, the events this process signed with `key` and
/// wrote on top of `from`, now that the branch points at the last of
/// them: the next [`trusted`] read does not read and check them again.
/// Nothing is taken in unless the trail read last ends at `from` (else
/// that read catches up as it would have).
pub(super) fn wrote(spec: &Repo, key: &OwnKey, from: Option<ObjectId>, written: &[Recorded]) {
    let Some(last) = written.last() else {
        return;
    };
    let Ok(tip) = ObjectId::from_hex(last.commit.as_bytes()) else {
        return;
    };
    let mut known = KNOWN.lock().expect("trail memo lock");
    if let Some(trail) = known.get_mut(&known_as(spec, key))
        && trail.tip == from
    {
        trail.events.extend_from_slice(written);
        trail.tip = Some(tip);
    }
}

/// `known` (the trail as read before) with the commits added since;
/// the whole trail when `known`'s tip is no longer on the branch.
fn grown(spec: &Repo, key: &OwnKey, known: Trail) -> Result<Trail, AuditError> {
    let (commits, tip, met) = chain_to(spec, known.tip)?;
    // Not met: the chain went down to the root, so it is the whole trail.
    let mut trail = if met { known } else { Trail::default() };
    trail.tip = tip;
    for commit in commits.into_iter().rev() {
        match own_event(spec, key, commit)? {
            Ok(event) => trail.events.push(event),
            Err(why) => trail.ignored.push(Ignored { commit, why }),
        }
    }
    Ok(trail)
}

/// The event at `commit` when druppie signed it; else why not.
pub(super) fn own_event(
    spec: &Repo,
    key: &OwnKey,
    commit: ObjectId,
) -> Result<Result<Recorded, String>, AuditError> {
    let signed = spec
        .signed_by(commit, key)
        .map_err(|source| AuditError::Verify { commit, source })?;
    if !signed {
        return Ok(Err("not signed by druppie's key; ignored".to_owned()));
    }
    Ok(Ok(Recorded {
        commit: commit.to_string(),
        event: event_at(spec, commit)?,
        signature: "druppie".to_owned(),
    }))
}

/// The branch's commits, newest first, down its first parents until
/// `stop` (excluded) or the root; and the tip.
pub(super) fn chain(
    spec: &Repo,
    stop: Option<ObjectId>,
) -> Result<(Vec<ObjectId>, Option<ObjectId>), AuditError> {
    chain_to(spec, stop).map(|(commits, tip, _)| (commits, tip))
}

/// [`chain`], and whether it met `stop`.
fn chain_to(
    spec: &Repo,
    stop: Option<ObjectId>,
) -> Result<(Vec<ObjectId>, Option<ObjectId>, bool), AuditError> {
    let read = |source| AuditError::Read { source };
    let tip = spec.branch_head(BRANCH).map_err(read)?.map(|h| h.commit);
    let mut out = Vec::new();
    let mut next = tip;
    while let Some(commit) = next {
        if Some(commit) == stop {
            return Ok((out, tip, true));
        }
        out.push(commit);
        next = spec.first_parent(commit).map_err(read)?;
    }
    Ok((out, tip, false))
}

fn event_at(spec: &Repo, commit: ObjectId) -> Result<Event, AuditError> {
    let text = spec
        .file_at(commit, FILE)
        .map_err(|source| AuditError::Read { source })?
        .ok_or_else(|| AuditError::Event {
            commit,
            why: format!("holds no {FILE}"),
        })?;
    serde_saphyr::from_str(&String::from_utf8_lossy(&text)).map_err(|e| AuditError::Event {
        commit,
        why: format!("{FILE}: {e}"),
    })
}
