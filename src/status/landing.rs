//! When and by whom freight went live: the commit that made a lock what
//! it is, and the audit trail's events on it.
//!
//! The trail is read first: the newest `applied`, `approved` or
//! `violation` event of the plan there whose commit holds the live lock
//! is the one that made it live (one tree lookup per event tried, most
//! often one). Without such an event (no trail, or a lock a person
//! wrote), the default branch's recent history names the commit alone.

use std::collections::HashMap;

use super::{Landed, Place};
use crate::audit::{Kind, Recorded};
use crate::git::history::{Lookup, Reader};
use crate::git::{Error, ObjectId, Repo};

/// How many commits of a default branch's first-parent line are read
/// back, without an event, to find where a lock last changed.
pub const HISTORY_LIMIT: usize = 100;

/// How many of a plan's events in one target are tried, newest first.
const EVENTS_TRIED: usize = 50;

/// A target and a plan: repo, environment, plan.
type Key = (String, Option<String>, String);

/// The trail's events by target and plan, oldest first.
pub(super) struct Index<'a> {
    by: HashMap<Key, Vec<&'a Recorded>>,
}

impl<'a> Index<'a> {
    pub(super) fn new(events: &'a [Recorded]) -> Index<'a> {
        let mut by: HashMap<Key, Vec<&'a Recorded>> = HashMap::new();
        for r in events {
            for plan in &r.event.plans {
                by.entry((r.event.repo.clone(), r.event.env.clone(), plan.clone()))
                    .or_default()
                    .push(r);
            }
        }
        Index { by }
    }

    /// The events of the plan at `at`, oldest first.
    pub(super) fn of(&self, at: &Place<'_>) -> &[&'a Recorded] {
        self.by
            .get(&(
                at.repo.to_owned(),
                at.env.map(str::to_owned),
                at.plan.to_owned(),
            ))
            .map_or(&[], Vec::as_slice)
    }
}

/// The commit that made `blob` the lock at `path` (read through
/// `reader`, of `repo`): the newest of
/// `events` (the plan's there) whose commit holds it, else the newest
/// commit on the first-parent line from `tip` whose first parent holds
/// another blob there (or none). `None` when neither is found (further
/// back than [`HISTORY_LIMIT`] commits).
///
/// # Errors
/// A commit or tree of the default branch's history cannot be read.
pub(super) fn commit(
    repo: &Repo,
    reader: &Reader,
    tip: ObjectId,
    (path, blob): (&str, ObjectId),
    events: &[&Recorded],
) -> Result<Option<ObjectId>, Error> {
    let holds = |reader: &Reader, commit: ObjectId| -> Result<bool, Error> {
        Ok(match reader.entry_at(commit, path)? {
            Lookup::Found(entry) => entry.id == blob,
            Lookup::Missing | Lookup::Link(_) => false,
        })
    };
    let made_live = events
        .iter()
        .rev()
        .filter(|r| {
            matches!(
                r.event.kind,
                Kind::Applied | Kind::Approved | Kind::Violation
            )
        })
        .filter_map(|r| ObjectId::from_hex(r.event.commit.as_deref()?.as_bytes()).ok())
        .take(EVENTS_TRIED);
    for commit in made_live {
        // A commit this clone lacks (a history rewritten since) is not it.
        if holds(reader, commit).unwrap_or(false) {
            return Ok(Some(commit));
        }
    }
    let mut at = tip;
    for _ in 0..HISTORY_LIMIT {
        let Some(parent) = repo.first_parent(at)? else {
            return Ok(Some(at));
        };
        if !holds(reader, parent)? {
            return Ok(Some(at));
        }
        at = parent;
    }
    Ok(None)
}

/// What the trail says about the commit that made freight live.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub(super) went_live: Option<Landed>,
    pub(super) verification: Option<Landed>,
    pub(super) promoted_from: Option<String>,
}

/// The trail's events on `commit` for the plan at `at`, newest of each:
/// how it went live (`approved` or `violation` before `applied`: a
/// merge records both), the cluster's verdict (`verified`, `failed`),
/// and where a `promoted` event says it came from.
pub(super) fn events(index: &Index<'_>, at: &Place<'_>, commit: ObjectId) -> Found {
    let commit = commit.to_string();
    let on: Vec<&&Recorded> = index
        .of(at)
        .iter()
        .filter(|r| r.event.commit.as_deref() == Some(commit.as_str()))
        .collect();
    let newest = |kinds: &[Kind]| on.iter().rev().find(|r| kinds.contains(&r.event.kind));
    let landed = |r: &&&Recorded| Landed {
        event: r.event.kind,
        by: r.event.actor.clone(),
        time: r.event.time.clone(),
    };
    Found {
        went_live: newest(&[Kind::Approved, Kind::Violation])
            .or_else(|| newest(&[Kind::Applied]))
            .map(landed),
        verification: newest(&[Kind::Verified, Kind::Failed]).map(landed),
        promoted_from: newest(&[Kind::Promoted]).and_then(|r| r.event.from.clone()),
    }
}
