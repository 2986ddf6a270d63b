//! Taking in another copy of the trail: replicas of druppie share one
//! trail, each appending to its own clone of the spec repo and pushing
//! to the spec remote. When both copies gained events since they last
//! met, the events only here are written again on top of the other copy,
//! signed anew, provided that all the other copy holds beyond the
//! history both share is events druppie signed. Anything else (a commit
//! a person made or signed, a history rewritten so that it no longer
//! extends the shared one) is for a person to look at, and the trail
//! here stays as it is.

use std::collections::BTreeSet;

use super::read::own_event;
use super::{AuditError, BRANCH, Event, Recorded, Trail, Writer};
use crate::git::sign::{OwnKey, Signer};
use crate::git::write::Identity;
use crate::git::{Error, ObjectId, Repo};

/// How often the branch here is read anew when it moved (another
/// writer in this clone appended) while the other copy was taken in.
const ATTEMPTS: usize = 20;

/// The trail here after taking in the other copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakenIn {
    /// The trail here holds nothing the other copy lacks: both were at
    /// one commit, or the branch here moved forward to the other's tip.
    Level,
    /// The trail here holds events the other copy lacks and extends it:
    /// it was ahead, or its own events were written again on top of the
    /// other copy. Pushing it is a fast-forward.
    Ahead,
    /// The two copies cannot be joined by druppie; the branch here is
    /// as it was.
    Diverged(Apart),
}

/// Why two copies of the trail cannot be joined by druppie: a commit
/// beyond the history both share that is not an event druppie signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apart {
    pub commit: ObjectId,
    /// On the other copy (else here).
    pub theirs: bool,
    pub why: Why,
}

/// What is wrong with the commit that keeps two copies apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Not signed by druppie's key.
    NotOwn,
    /// Its first parents do not lead to the history both copies share.
    Unrelated,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Why::NotOwn => "is not an event signed by druppie's key",
            Why::Unrelated => "does not extend the history both copies share",
        })
    }
}

/// Takes the other copy of the trail, whose tip is `theirs` (`None`: it
/// has no trail yet), into the branch here. The branch moves forward to
/// `theirs` when that loses nothing; when both copies hold events the
/// other lacks, the events only here are appended to `theirs` through
/// [`Writer`] (an event whose identity `theirs` holds is not written
/// again), signed by `signer` as `identity` at `time`, and the branch
/// moves there.
///
/// # Guarantees
/// No event on the branch here is dropped: the branch only moves by
/// compare-and-swap from the tip whose events were taken, and not at
/// all when the copies diverged.
///
/// # Errors
/// The trail cannot be read or written, or the branch here kept moving.
pub fn take_in(
    spec: &Repo,
    theirs: Option<ObjectId>,
    signer: &Signer,
    identity: &Identity,
    time: (i64, i32),
) -> Result<TakenIn, AuditError> {
    let read = |source| AuditError::Read { source };
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let ours = spec.branch_head(BRANCH).map_err(read)?.map(|h| h.commit);
        let moved = match (ours, theirs) {
            (None, None) => return Ok(TakenIn::Level),
            (Some(_), None) => return Ok(TakenIn::Ahead),
            (Some(ours), Some(theirs)) if ours == theirs => return Ok(TakenIn::Level),
            (Some(ours), Some(theirs)) if spec.is_ancestor(theirs, &ours.to_string()) => {
                return Ok(TakenIn::Ahead);
            }
            (Some(ours), Some(theirs)) if !spec.is_ancestor(ours, &theirs.to_string()) => {
                match replay(spec, ours, theirs, signer, identity, time)? {
                    Ok(taken) => return Ok(taken),
                    Err(moved) => moved,
                }
            }
            // Here is behind: move forward, nothing is lost.
            (ours, Some(theirs)) => {
                match spec.set_branch(BRANCH, ours, theirs, "druppie: audit, taken in") {
                    Ok(()) => return Ok(TakenIn::Level),
                    Err(e @ Error::Moved { .. }) => e,
                    Err(source) => return Err(AuditError::Write { source }),
                }
            }
        };
        last = Some(moved);
        // Another writer here appended: let it finish.
        std::thread::sleep(std::time::Duration::from_millis(fastrand::u64(1..=10)));
    }
    Err(AuditError::Contended {
        attempts: ATTEMPTS,
        source: last.expect("every attempt found the branch moved"),
    })
}

/// Both copies hold events the other lacks: the events here since the
/// history both share, written again on top of `theirs`. `Ok(Err(_))`:
/// the branch is no longer at `ours`, and nothing moved.
fn replay(
    spec: &Repo,
    ours: ObjectId,
    theirs: ObjectId,
    signer: &Signer,
    identity: &Identity,
    time: (i64, i32),
) -> Result<Result<TakenIn, Error>, AuditError> {
    let key = signer.own_key();
    let base = spec
        .merge_base(ours, theirs)
        .map_err(|source| AuditError::Read { source })?;
    let theirs_only = match beyond(spec, &key, theirs, base, true)? {
        Ok(events) => events,
        Err(apart) => return Ok(Ok(TakenIn::Diverged(apart))),
    };
    let ours_only = match beyond(spec, &key, ours, base, false)? {
        Ok(events) => events,
        Err(apart) => return Ok(Ok(TakenIn::Diverged(apart))),
    };
    // The trail as `theirs` holds it: what both share (as read here),
    // and what only `theirs` holds. Should the branch have moved on
    // since `ours` was read, the rebase finds it moved.
    let here = super::trusted(spec, &key)?;
    let only_here: BTreeSet<&str> = ours_only.iter().map(|r| r.commit.as_str()).collect();
    let mut events: Vec<Recorded> = here
        .events
        .iter()
        .filter(|r| !only_here.contains(r.commit.as_str()))
        .cloned()
        .collect();
    events.extend(theirs_only);
    let trail = Trail {
        events,
        ignored: Vec::new(),
        tip: Some(theirs),
    };
    let mut writer = Writer::from_trail(spec, signer, identity, trail);
    let again: Vec<Event> = ours_only.into_iter().map(|r| r.event).collect();
    Ok(writer.rebase(ours, &again, time)?.map(|written| {
        if written.is_empty() {
            TakenIn::Level
        } else {
            TakenIn::Ahead
        }
    }))
}

/// The events on the first parents of `tip` down to `base` (excluded;
/// `None`: down to the root), oldest first, when every one of them is
/// an event druppie signed; else the first commit that is not, or `tip`
/// when the first parents do not lead to `base`.
fn beyond(
    spec: &Repo,
    key: &OwnKey,
    tip: ObjectId,
    base: Option<ObjectId>,
    theirs: bool,
) -> Result<Result<Vec<Recorded>, Apart>, AuditError> {
    let mut out = Vec::new();
    let mut next = Some(tip);
    while let Some(commit) = next {
        if Some(commit) == base {
            out.reverse();
            return Ok(Ok(out));
        }
        match own_event(spec, key, commit)? {
            Ok(recorded) => out.push(recorded),
            Err(_) => {
                return Ok(Err(Apart {
                    commit,
                    theirs,
                    why: Why::NotOwn,
                }));
            }
        }
        next = spec
            .first_parent(commit)
            .map_err(|source| AuditError::Read { source })?;
    }
    if base.is_some() {
        return Ok(Err(Apart {
            commit: tip,
            theirs,
            why: Why::Unrelated,
        }));
    }
    out.reverse();
    Ok(Ok(out))
}
