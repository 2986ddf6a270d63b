//! When and by whom freight went live: the default-branch commit that
//! made a lock what it is, and the audit trail's events on it.

use super::{Landed, Place};
use crate::audit::{Kind, Recorded};
use crate::git::history::Lookup;
use crate::git::{Error, ObjectId, Repo};

/// How many commits of a default branch's first-parent line are read
/// back to find where a lock last changed.
pub const HISTORY_LIMIT: usize = 10_000;

/// The newest commit on the first-parent line from `tip` whose first
/// parent holds another blob at `path` than `blob` (or none): the commit
/// that made it live. `None` when it is further back than
/// [`HISTORY_LIMIT`] commits.
///
/// # Errors
/// A commit or tree on the way cannot be read.
pub(super) fn commit(
    repo: &Repo,
    tip: ObjectId,
    path: &str,
    blob: ObjectId,
) -> Result<Option<ObjectId>, Error> {
    let reader = repo.reader();
    let mut at = tip;
    for _ in 0..HISTORY_LIMIT {
        let Some(parent) = repo.first_parent(at)? else {
            return Ok(Some(at));
        };
        let before = match reader.entry_at(parent, path)? {
            Lookup::Found(entry) => Some(entry.id),
            Lookup::Missing | Lookup::Link(_) => None,
        };
        if before != Some(blob) {
            return Ok(Some(at));
        }
        at = parent;
    }
    Ok(None)
}

/// The trail's events on `commit` for the plan at `at`, newest of each:
/// how it went live (`approved` or `violation` before `applied`: a
/// merge records both) and the cluster's verdict (`verified`, `failed`).
pub(super) fn events(
    events: &[Recorded],
    at: &Place<'_>,
    commit: ObjectId,
) -> (Option<Landed>, Option<Landed>) {
    let commit = commit.to_string();
    let on: Vec<&Recorded> = events
        .iter()
        .filter(|r| {
            let e = &r.event;
            e.repo == at.repo
                && e.env.as_deref() == at.env
                && e.plans.iter().any(|p| p == at.plan)
                && e.commit.as_deref() == Some(commit.as_str())
        })
        .collect();
    let newest = |kinds: &[Kind]| {
        on.iter()
            .rev()
            .find(|r| kinds.contains(&r.event.kind))
            .map(|r| Landed {
                event: r.event.kind,
                by: r.event.actor.clone(),
                time: r.event.time.clone(),
            })
    };
    let went_live = newest(&[Kind::Approved, Kind::Violation]).or_else(|| newest(&[Kind::Applied]));
    (went_live, newest(&[Kind::Verified, Kind::Failed]))
}
