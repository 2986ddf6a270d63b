//! One location of a target: classify every file from render, live and
//! lock, read content only for changes, merge seeded files three-way.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{Action, ChangeSet, Decision, FileChange, Note, classify};
use crate::git::{ObjectId, merge3};
use crate::live::{self, LiveRepo};
use crate::lock::{LOCK_FILE, Lock};
use crate::render::{Target, join};

/// The live files of one location: path relative to it -> blob id.
fn live_in<'l>(
    live: &'l BTreeMap<String, ObjectId>,
    dir: &str,
) -> impl Iterator<Item = (&'l str, ObjectId)> + 'l {
    let start = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let len = start.len();
    live.range(start.clone()..)
        .take_while(move |(p, _)| p.starts_with(&start))
        .map(move |(p, id)| (&p[len..], *id))
}

/// The id of the tree the render makes at location `dir` of `target`:
/// each file with the blob id its lock gives it (what [`diff_location`]
/// compares with the repo's), and the lock itself; `None` when a file
/// there has no entry in the lock (a location within another), which
/// only comparing file by file sorts out.
pub(super) fn rendered_tree(target: &Target, dir: &str) -> Option<ObjectId> {
    let lock = target.locks.get(dir)?;
    let lock_id = crate::git::blob_id(&target.files.get(&join(dir, LOCK_FILE))?.bytes);
    let mut files = Vec::new();
    for (rel, _) in target.files_in(dir) {
        let id = if rel == LOCK_FILE {
            lock_id
        } else {
            ObjectId::from_hex(lock.files.get(rel)?.blob.as_bytes()).ok()?
        };
        files.push((rel, id));
    }
    crate::git::tree_id(files)
}

/// Diffs the location `dir` of `repo` (whose files are `live`, full
/// paths) against `target`'s files and lock there; `None` for a location
/// nothing renders any more (every file druppie wrote is pruned if
/// unmodified, and the lock goes).
pub(super) fn diff_location(
    cs: &mut ChangeSet,
    repo: &LiveRepo,
    live: &BTreeMap<String, ObjectId>,
    target: Option<&Target>,
    dir: &str,
) -> Result<(), live::Error> {
    let lock_path = join(dir, LOCK_FILE);
    let desired_lock = target.and_then(|t| t.locks.get(dir));
    let desired_lock_file = target.and_then(|t| t.files.get(&lock_path));
    let desired_lock_id = desired_lock_file.map(|f| crate::git::blob_id(&f.bytes));
    let live_lock_id = live.get(&lock_path).copied();
    let locked: Option<Cow<'_, Lock>> = match (live_lock_id, desired_lock) {
        (None, _) => None,
        (Some(l), Some(d)) if Some(l) == desired_lock_id => Some(Cow::Borrowed(d)),
        (Some(l), _) => {
            let text = repo.read(&lock_path, l)?;
            match Lock::parse(&String::from_utf8_lossy(&text)) {
                Ok(lock) => Some(Cow::Owned(lock)),
                Err(e) => {
                    cs.notes.push(Note {
                        path: lock_path.clone(),
                        message: format!(
                            "cannot read the lock ({e}); its files are treated as not druppie's"
                        ),
                    });
                    None
                }
            }
        }
    };
    let locked_id = |rel: &str| -> Option<ObjectId> {
        let f = locked.as_ref()?.files.get(rel)?;
        ObjectId::from_hex(f.blob.as_bytes()).ok()
    };
    let live_here: BTreeMap<&str, ObjectId> = live_in(live, dir).collect();
    let mut step = Step { cs, repo, dir };
    if let (Some(target), Some(lock)) = (target, desired_lock) {
        for (rel, file) in target.files_in(dir) {
            if rel == LOCK_FILE {
                continue;
            }
            let d = lock
                .files
                .get(rel)
                .and_then(|f| ObjectId::from_hex(f.blob.as_bytes()).ok());
            let l = live_here.get(rel).copied();
            let decision = classify(file.mode, d, l, locked_id(rel));
            step.act(rel, decision, Some(&file.bytes), l, locked_id(rel))?;
        }
    }
    if let Some(locked) = &locked {
        for (rel, f) in &locked.files {
            if desired_lock.is_some_and(|d| d.files.contains_key(rel)) {
                continue;
            }
            let l = live_here.get(rel.as_str()).copied();
            let decision = classify(f.ownership, None, l, locked_id(rel));
            step.act(rel, decision, None, l, None)?;
        }
    }
    // The lock itself: a new spec commit alone does not change it.
    let lock_action = match (live_lock_id, desired_lock) {
        (None, Some(_)) => Some(Action::Create),
        (Some(_), None) => Some(Action::Delete),
        (Some(l), Some(d)) => {
            let same =
                Some(l) == desired_lock_id || locked.as_ref().is_some_and(|lk| lk.same_render(d));
            (!same).then_some(Action::Modify)
        }
        (None, None) => None,
    };
    if let Some(action) = lock_action {
        let old = live_lock_id
            .map(|id| repo.read(&lock_path, id))
            .transpose()?;
        cs.files.push(FileChange {
            path: lock_path,
            action,
            old,
            new: desired_lock_file.map(|f| f.bytes.clone()),
            reason: None,
        });
    }
    Ok(())
}

/// Turns decisions into file changes, reading content only when needed.
struct Step<'a> {
    cs: &'a mut ChangeSet,
    repo: &'a LiveRepo,
    dir: &'a str,
}

impl Step<'_> {
    fn act(
        &mut self,
        rel: &str,
        decision: Decision,
        desired: Option<&[u8]>,
        live: Option<ObjectId>,
        locked: Option<ObjectId>,
    ) -> Result<(), live::Error> {
        let path = join(self.dir, rel);
        let old = match decision {
            Decision::Unchanged | Decision::Create | Decision::Keep(_) => None,
            _ => live.map(|id| self.repo.read(&path, id)).transpose()?,
        };
        let render = || desired.map(<[u8]>::to_vec);
        let (action, new, reason) = match decision {
            Decision::Unchanged => return Ok(()),
            Decision::Keep(message) => {
                let marked = match live {
                    Some(id) => has_markers(&self.repo.read(&path, id)?),
                    None => false,
                };
                let message = if marked { MARKED } else { message };
                self.cs.notes.push(Note {
                    path,
                    message: message.to_owned(),
                });
                return Ok(());
            }
            Decision::Create => (Action::Create, render(), None),
            Decision::Modify => (Action::Modify, render(), None),
            Decision::Delete => (Action::Delete, None, None),
            Decision::Drift => {
                let why = if old.as_deref().is_some_and(has_markers) {
                    "conflict markers were merged into the repo; the change set restores the render"
                } else if live.is_some() {
                    "managed file edited in the repo; the change set restores the render"
                } else {
                    "managed file deleted in the repo; the change set restores it"
                };
                (Action::Drift, render(), Some(why.to_owned()))
            }
            Decision::Conflict(why) => {
                let new = match (&old, desired) {
                    (Some(ours), Some(theirs)) => merge3(b"", ours, theirs, LABELS).bytes,
                    _ => render().unwrap_or_default(),
                };
                (Action::Conflict, Some(new), Some(why.to_owned()))
            }
            Decision::Merge => {
                let ours = old.as_deref().unwrap_or_default();
                let theirs = desired.unwrap_or_default();
                let base = locked.and_then(|id| self.repo.historic(id));
                let merged = merge3(base.as_deref().unwrap_or_default(), ours, theirs, LABELS);
                match (base.is_some(), merged.clean) {
                    (true, true) => (
                        Action::Modify,
                        Some(merged.bytes),
                        Some("merged with an edit made in the repo".to_owned()),
                    ),
                    (true, false) => (
                        Action::Conflict,
                        Some(merged.bytes),
                        Some("edited in the repo and changed by the spec, on the same lines".to_owned()),
                    ),
                    (false, _) => (
                        Action::Conflict,
                        Some(merged.bytes),
                        Some(
                            "edited in the repo and changed by the spec; the last render is not in the repo's history to merge from"
                                .to_owned(),
                        ),
                    ),
                }
            }
        };
        self.cs.files.push(FileChange {
            path,
            action,
            old,
            new,
            reason,
        });
        Ok(())
    }
}

/// What a kept file with conflict markers is reported as.
const MARKED: &str =
    "has conflict markers: a proposal was merged before they were resolved; resolve them here";

/// Whether `bytes` hold a conflict (a line starting `<<<<<<< ` followed
/// by one starting `>>>>>>> `), as merging leaves it.
pub fn has_markers(bytes: &[u8]) -> bool {
    let mut open = false;
    for line in bytes.split(|b| *b == b'\n') {
        if line.starts_with(b"<<<<<<< ") {
            open = true;
        } else if open && line.starts_with(b">>>>>>> ") {
            return true;
        }
    }
    false
}

/// Conflict marker labels: the repo's side, then the render's.
const LABELS: (&str, &str) = ("live", "rendered");
