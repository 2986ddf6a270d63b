//! Appending to the trail, once per event: an event whose identity
//! (kind, repo, commit, environment) the trail already holds is not
//! written again, and the branch moves by compare-and-swap. When another
//! writer moved it first, the events it added are read and only what is
//! still missing is written on top of them.

use std::collections::BTreeSet;

use super::read::{chain, own_event};
use super::{AuditError, BRANCH, Event, FILE, Id, Recorded, Trail};
use crate::git::batch::Batch;
use crate::git::sign::{OwnKey, Signer};
use crate::git::write::{Identity, NewCommit, message};
use crate::git::{Error, ObjectId, Repo, lock};

/// How often an append is tried before the trail counts as contended.
const ATTEMPTS: usize = 50;
/// How often an append finding the branch locked is tried (gix waits
/// for the lock up to `core.packedRefsTimeout`, 1 s, each time) before
/// the lock is reported.
const LOCKED_ATTEMPTS: usize = 3;

/// Event commits written on top of a tip, before the branch moves there.
struct Stacked {
    /// The tip they are written on.
    base: Option<ObjectId>,
    events: Vec<Event>,
    /// One per event, oldest first.
    commits: Vec<ObjectId>,
}

/// Writes events to the trail of one spec repo, knowing what it holds.
pub struct Writer<'a> {
    spec: &'a Repo,
    signer: &'a Signer,
    identity: &'a Identity,
    key: OwnKey,
    /// The tip read last.
    seen: Option<ObjectId>,
    /// The identities of the events druppie signed, up to `seen`.
    known: BTreeSet<Id>,
    /// Those events, oldest first.
    events: Vec<Recorded>,
}

impl<'a> Writer<'a> {
    /// A writer that reads the trail first.
    ///
    /// # Errors
    /// The trail cannot be read.
    pub fn new(
        spec: &'a Repo,
        signer: &'a Signer,
        identity: &'a Identity,
    ) -> Result<Writer<'a>, AuditError> {
        let trail = super::trusted(spec, &signer.own_key())?;
        Ok(Writer::from_trail(spec, signer, identity, trail))
    }

    /// A writer for `trail`, as [`super::trusted`] read it.
    pub fn from_trail(
        spec: &'a Repo,
        signer: &'a Signer,
        identity: &'a Identity,
        trail: Trail,
    ) -> Writer<'a> {
        Writer {
            spec,
            signer,
            identity,
            key: signer.own_key(),
            seen: trail.tip,
            known: trail.events.iter().map(|r| r.event.id()).collect(),
            events: trail.events,
        }
    }

    /// The events druppie signed, as far as this writer has read.
    pub fn events(&self) -> &[Recorded] {
        &self.events
    }

    /// Whether the trail holds an event with this identity.
    pub fn holds(&self, event: &Event) -> bool {
        self.known.contains(&event.id())
    }

    /// Appends the events of `events` that the trail does not hold yet,
    /// in order, signed; returns the commits written (none when every
    /// event was there already).
    ///
    /// # Guarantees
    /// No identity is written twice, whoever else writes the trail at
    /// the same time: the branch only moves from the tip whose events
    /// were read.
    ///
    /// # Errors
    /// The trail cannot be read or written, or it kept moving.
    pub fn record(
        &mut self,
        events: &[Event],
        time: (i64, i32),
    ) -> Result<Vec<ObjectId>, AuditError> {
        let mut last = None;
        let mut locked = 0;
        for attempt in 0..ATTEMPTS {
            let tip = self.refresh()?;
            let stacked = self.stack(events, tip, time)?;
            let Some(&new) = stacked.commits.last() else {
                return Ok(Vec::new());
            };
            match self.spec.set_branch(BRANCH, tip, new, "druppie: audit") {
                Ok(()) => return Ok(self.accept(stacked)),
                Err(e @ Error::Moved { .. }) => {
                    // Another writer moved the branch: read what it
                    // wrote and try again.
                    last = Some(e);
                    let wait = fastrand::u64(1..=5 + 2 * attempt as u64);
                    std::thread::sleep(std::time::Duration::from_millis(wait));
                }
                Err(e @ Error::Locked { .. }) => {
                    // A git holds the branch's lock (or `packed-refs`'s)
                    // for a moment, or a killed one left it.
                    locked += 1;
                    if locked >= LOCKED_ATTEMPTS {
                        let git_dir = self.spec.common_dir();
                        let branch = format!("refs/heads/{BRANCH}");
                        if let Some(path) = lock::blocking(&git_dir, &branch).first() {
                            return Err(AuditError::Locked(lock::Held::at("the spec repo", path)));
                        }
                    }
                    last = Some(e);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(source) => return Err(AuditError::Write { source }),
            }
        }
        Err(AuditError::Contended {
            attempts: ATTEMPTS,
            source: last.expect("every attempt failed"),
        })
    }

    /// Writes the events of `events` that the trail this writer read
    /// lacks on top of its tip (another copy of the trail, such as the
    /// spec remote's), signed anew, and moves the branch there from
    /// `from`; returns the commits written. `Ok(Err(_))`: the branch was
    /// no longer at `from`, and nothing moved.
    ///
    /// # Guarantees
    /// No identity the trail read holds is written again, and the branch
    /// only moves from `from`: an event appended here since is never
    /// dropped.
    ///
    /// # Errors
    /// An event cannot be written, or the branch cannot be moved.
    pub(super) fn rebase(
        &mut self,
        from: ObjectId,
        events: &[Event],
        time: (i64, i32),
    ) -> Result<Result<Vec<ObjectId>, Error>, AuditError> {
        let stacked = self.stack(events, self.seen, time)?;
        let Some(new) = stacked.commits.last().copied().or(self.seen) else {
            // Nothing read and nothing to write: no trail to move to.
            return Ok(Ok(Vec::new()));
        };
        match self
            .spec
            .set_branch(BRANCH, Some(from), new, "druppie: audit, taken in")
        {
            Ok(()) => Ok(Ok(self.accept(stacked))),
            Err(e @ Error::Moved { .. }) => Ok(Err(e)),
            Err(source) => Err(AuditError::Write { source }),
        }
    }

    /// Writes, one commit each on top of `tip`, the events of `events`
    /// the trail does not hold yet (each identity once); no ref moves.
    fn stack(
        &self,
        events: &[Event],
        tip: Option<ObjectId>,
        time: (i64, i32),
    ) -> Result<Stacked, AuditError> {
        let mut ids = BTreeSet::new();
        let missing: Vec<Event> = events
            .iter()
            .filter(|e| !self.known.contains(&e.id()) && ids.insert(e.id()))
            .cloned()
            .collect();
        // Written together: a long run of events (a first apply's, one
        // per plan) is stored as one pack, a few one file each.
        let mut batch = self.spec.batch();
        let mut commits = Vec::with_capacity(missing.len());
        let mut top = tip;
        for event in &missing {
            let commit = self.write(&mut batch, event, top, time)?;
            commits.push(commit);
            top = Some(commit);
        }
        batch
            .finish()
            .map_err(|source| AuditError::Write { source })?;
        Ok(Stacked {
            base: tip,
            events: missing,
            commits,
        })
    }

    /// Takes in what [`Writer::stack`] wrote, now that the branch points
    /// at it; returns its commits.
    fn accept(&mut self, stacked: Stacked) -> Vec<ObjectId> {
        let first = self.events.len();
        for (event, commit) in stacked.events.into_iter().zip(&stacked.commits) {
            self.known.insert(event.id());
            self.events.push(Recorded {
                commit: commit.to_string(),
                event,
                signature: "druppie".to_owned(),
            });
        }
        // Signed here a moment ago: read back, they would say the same.
        super::read::wrote(self.spec, &self.key, stacked.base, &self.events[first..]);
        self.seen = stacked.commits.last().copied().or(self.seen);
        stacked.commits
    }

    /// Reads the events added since the tip read last; returns the tip.
    fn refresh(&mut self) -> Result<Option<ObjectId>, AuditError> {
        let (added, tip) = chain(self.spec, self.seen)?;
        if tip == self.seen {
            return Ok(tip);
        }
        let reached = match added.last() {
            Some(oldest) => self.spec.first_parent(*oldest).ok().flatten() == self.seen,
            None => false,
        };
        if !reached {
            // The branch was rewritten, not extended: read it afresh.
            let trail = super::trusted(self.spec, &self.key)?;
            self.known = trail.events.iter().map(|r| r.event.id()).collect();
            self.events = trail.events;
            self.seen = trail.tip;
            return Ok(trail.tip);
        }
        for commit in added.into_iter().rev() {
            if let Ok(r) = own_event(self.spec, &self.key, commit)? {
                self.known.insert(r.event.id());
                self.events.push(r);
            }
        }
        self.seen = tip;
        Ok(tip)
    }

    /// Writes the commit of one event on top of `base` into `batch`; no
    /// ref moves.
    fn write(
        &self,
        batch: &mut Batch<'_>,
        event: &Event,
        base: Option<ObjectId>,
        time: (i64, i32),
    ) -> Result<ObjectId, AuditError> {
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
        if let Some(from) = &event.from {
            trailers.push(("Druppie-Promoted-From", from));
        }
        let summary = match (&event.env, &event.from) {
            (Some(env), Some(from)) => format!(
                "{} {plans} from {from} to {env} ({})",
                event.kind.name(),
                event.repo
            ),
            (Some(env), None) => format!("{} {plans} in {env} ({})", event.kind.name(), event.repo),
            (None, _) => format!("{} {plans} ({})", event.kind.name(), event.repo),
        };
        let changes = [(FILE.to_owned(), Some(event.yaml().into_bytes()))];
        // Every event commit holds only its own event, chained to the
        // previous one by parentage.
        batch
            .write_commit(
                &NewCommit {
                    base,
                    replace_tree: true,
                    changes: &changes,
                    message: message(&summary, "", &trailers),
                    author: self.identity,
                    time,
                },
                Some(self.signer),
            )
            .map(|w| w.commit)
            .map_err(|source| AuditError::Write { source })
    }
}
