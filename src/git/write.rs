//! Writing commits without a work tree: blobs and trees go straight into
//! the object database, the commit is signed, and a branch moves only by
//! compare-and-swap on its previous value.

use gix::bstr::BString;
use gix::objs::tree::EntryKind;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use super::sign::Signer;
use super::{Error, ObjectId, Repo, err};

/// Who a commit is by: druppie's configured name and email.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// A written commit and its tree.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub commit: ObjectId,
    pub tree: ObjectId,
}

/// A commit to write on top of `base` (`None`: the first commit).
pub struct NewCommit<'a> {
    pub base: Option<ObjectId>,
    /// The tree holds only `changes` instead of the base's tree with them
    /// (the base is still the parent).
    pub replace_tree: bool,
    /// Path -> new content, or `None` to delete it.
    pub changes: &'a [(String, Option<Vec<u8>>)],
    pub message: String,
    pub author: &'a Identity,
    /// Seconds since the epoch, and the UTC offset in seconds.
    pub time: (i64, i32),
}

/// A commit message: a summary line, a body, and trailers. Values are
/// flattened to one line, so no value can start a trailer of its own
/// (`Approved-by:` smuggled in through a spec value).
pub fn message(summary: &str, body: &str, trailers: &[(&str, &str)]) -> String {
    let one_line = |s: &str| {
        s.split(['\n', '\r'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = one_line(summary);
    out.push_str("\n\n");
    let body = body.trim();
    if !body.is_empty() {
        out.push_str(body);
        out.push_str("\n\n");
    }
    for (key, value) in trailers {
        let key: String = key
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        out.push_str(&format!("{key}: {}\n", one_line(value)));
    }
    out
}

/// Writes `commit`'s blobs, trees and the commit itself through `repo`,
/// signed when a signer is given; returns them with the tree of the
/// commit it builds on.
pub(super) fn build(
    repo: &gix::Repository,
    commit: &NewCommit<'_>,
    signer: Option<&Signer>,
) -> Result<(Written, Option<ObjectId>), Error> {
    let parent_tree = commit
        .base
        .map(|id| {
            repo.find_commit(id)
                .and_then(|c| c.tree_id())
                .map(gix::Id::detach)
                .map_err(|e| err(format!("cannot read base commit {id}"), e))
        })
        .transpose()?;
    let base_tree = parent_tree
        .filter(|_| !commit.replace_tree)
        .unwrap_or_else(|| ObjectId::empty_tree(gix::hash::Kind::Sha1));
    let mut editor = repo
        .edit_tree(base_tree)
        .map_err(|e| err("cannot edit the tree", e))?;
    for (path, content) in commit.changes {
        match content {
            Some(bytes) => {
                let blob = repo
                    .write_blob(bytes)
                    .map_err(|e| err(format!("cannot write `{path}`"), e))?;
                editor
                    .upsert(path.as_str(), EntryKind::Blob, blob.detach())
                    .map_err(|e| err(format!("cannot place `{path}`"), e))?;
            }
            None => {
                editor
                    .remove(path.as_str())
                    .map_err(|e| err(format!("cannot remove `{path}`"), e))?;
            }
        }
    }
    let tree = editor
        .write()
        .map_err(|e| err("cannot write the tree", e))?
        .detach();
    let who = gix::actor::Signature {
        name: commit.author.name.as_str().into(),
        email: commit.author.email.as_str().into(),
        time: gix::date::Time::new(commit.time.0, commit.time.1),
    };
    let mut object = gix::objs::Commit {
        tree,
        parents: commit.base.into_iter().collect(),
        author: who.clone(),
        committer: who,
        encoding: None,
        message: BString::from(commit.message.as_str()),
        extra_headers: Vec::new(),
    };
    if let Some(signer) = signer {
        let mut payload = Vec::new();
        gix::objs::WriteTo::write_to(&object, &mut payload)
            .map_err(|e| err("cannot serialize the commit", e))?;
        let pem = signer
            .sign(&payload)
            .map_err(|e| err("cannot sign the commit", e))?;
        object
            .extra_headers
            .push((BString::from("gpgsig"), BString::from(pem)));
    }
    let commit = repo
        .write_object(&object)
        .map_err(|e| err("cannot write the commit", e))?
        .detach();
    Ok((Written { commit, tree }, parent_tree))
}

impl Repo {
    /// Writes `commit`'s blobs, trees and the commit itself, signed when
    /// a signer is given. No ref moves. Many objects go into a pack (see
    /// [`Repo::batch`] for writing several commits together).
    ///
    /// # Errors
    /// The base commit is missing, a path is invalid, an object cannot be
    /// written, or signing fails.
    pub fn write_commit(
        &self,
        commit: &NewCommit<'_>,
        signer: Option<&Signer>,
    ) -> Result<Written, Error> {
        let mut batch = self.batch();
        let written = batch.write_commit(commit, signer)?;
        batch.finish()?;
        Ok(written)
    }

    /// Sets the note on `target` under `notes_ref` (e.g. `refs/notes/druppie`)
    /// to `text`, replacing an earlier one, as git notes are stored: a
    /// commit whose tree has a file named after the annotated object.
    /// The ref moves by compare-and-swap; the notes commit is signed like
    /// every other commit druppie writes.
    ///
    /// # Errors
    /// An object or the ref cannot be written, or signing fails.
    pub fn set_note(
        &self,
        notes_ref: &str,
        target: ObjectId,
        text: &str,
        author: &Identity,
        time: (i64, i32),
        signer: Option<&crate::git::sign::Signer>,
    ) -> Result<ObjectId, Error> {
        let repo = self.repo.to_thread_local();
        let name: FullName = notes_ref
            .try_into()
            .map_err(|e| err(format!("invalid ref `{notes_ref}`"), e))?;
        let tip = match repo
            .try_find_reference(notes_ref)
            .map_err(|e| err(format!("cannot read `{notes_ref}`"), e))?
        {
            Some(mut r) => Some(
                r.peel_to_id()
                    .map_err(|e| err(format!("cannot read `{notes_ref}`"), e))?
                    .detach(),
            ),
            None => None,
        };
        drop(repo);
        let changes = [(target.to_string(), Some(text.as_bytes().to_vec()))];
        let written = self.write_commit(
            &NewCommit {
                base: tip,
                replace_tree: false,
                changes: &changes,
                message: "Notes added by druppie\n".to_owned(),
                author,
                time,
            },
            signer,
        )?;
        let expected = match tip {
            Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
            None => PreviousValue::MustNotExist,
        };
        self.for_ref_edits()
            .edit_reference(RefEdit {
                change: Change::Update {
                    log: LogChange {
                        mode: RefLog::AndReference,
                        force_create_reflog: false,
                        message: "druppie: note".into(),
                    },
                    expected,
                    new: Target::Object(written.commit),
                },
                name,
                deref: false,
            })
            .map_err(|e| ref_error(notes_ref, e))?;
        Ok(written.commit)
    }

    /// The note on `target` under `notes_ref`, if any.
    ///
    /// # Errors
    /// The notes cannot be read.
    pub fn note(&self, notes_ref: &str, target: ObjectId) -> Result<Option<String>, Error> {
        let repo = self.repo.to_thread_local();
        let tip = match repo
            .try_find_reference(notes_ref)
            .map_err(|e| err(format!("cannot read `{notes_ref}`"), e))?
        {
            Some(mut r) => r
                .peel_to_id()
                .map_err(|e| err(format!("cannot read `{notes_ref}`"), e))?
                .detach(),
            None => return Ok(None),
        };
        drop(repo);
        Ok(self
            .file_at(tip, &target.to_string())?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The branch's commit and tree; `None` when it does not exist.
    ///
    /// # Errors
    /// The branch cannot be read.
    pub fn branch_head(&self, branch: &str) -> Result<Option<super::Head>, Error> {
        let repo = self.repo.to_thread_local();
        let name = format!("refs/heads/{branch}");
        let Some(mut reference) = repo
            .try_find_reference(name.as_str())
            .map_err(|e| err(format!("cannot read branch `{branch}`"), e))?
        else {
            return Ok(None);
        };
        let commit = reference
            .peel_to_commit()
            .map_err(|e| err(format!("cannot read branch `{branch}`"), e))?;
        let tree = commit
            .tree_id()
            .map_err(|e| err(format!("cannot read branch `{branch}`"), e))?
            .detach();
        Ok(Some(super::Head {
            commit: commit.id,
            tree,
        }))
    }

    /// The refs under `prefix` (`refs/heads/druppie/`) and the commits
    /// they point at, by full name; a ref that names no commit (a blob, a
    /// tree) is left out.
    ///
    /// # Errors
    /// The refs cannot be read.
    pub fn refs_under(&self, prefix: &str) -> Result<Vec<(String, super::Head)>, Error> {
        let repo = self.repo.to_thread_local();
        let what = || format!("cannot list the refs under `{prefix}`");
        let refs = repo.references().map_err(|e| err(what(), e))?;
        let mut out = Vec::new();
        for reference in refs.prefixed(prefix).map_err(|e| err(what(), e))? {
            let mut reference = reference.map_err(|e| err(what(), e))?;
            let branch = reference.name().as_bstr().to_string();
            let what = || format!("cannot read branch `{branch}`");
            // A ref anyone may push (outside `refs/heads/`) can name a
            // blob or a tree: it is no commit of druppie's, and no reason
            // to stop reading the others.
            let id = reference.peel_to_id().map_err(|e| err(what(), e))?;
            let object = repo.find_object(id).map_err(|e| err(what(), e))?;
            if object.kind != gix::object::Kind::Commit {
                continue;
            }
            let commit = object.into_commit();
            let tree = commit.tree_id().map_err(|e| err(what(), e))?.detach();
            out.push((
                branch,
                super::Head {
                    commit: commit.id,
                    tree,
                },
            ));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// A commit's author (`Name <email>`) and message.
    ///
    /// # Errors
    /// The commit cannot be read.
    pub fn author_and_message(&self, commit: ObjectId) -> Result<(String, String), Error> {
        let repo = self.repo.to_thread_local();
        let what = || format!("cannot read commit {commit}");
        let found = repo.find_commit(commit).map_err(|e| err(what(), e))?;
        let author = found.author().map_err(|e| err(what(), e))?;
        let who = format!("{} <{}>", author.name, author.email);
        let message = found.message_raw().map_err(|e| err(what(), e))?.to_string();
        Ok((who, message))
    }

    /// Points `refs/heads/<branch>` at `new` if it still points at
    /// `expected` (`None`: the branch must not exist yet).
    ///
    /// # Errors
    /// The branch moved since `expected` was read (someone else pushed),
    /// or the ref cannot be written.
    pub fn set_branch(
        &self,
        branch: &str,
        expected: Option<ObjectId>,
        new: ObjectId,
        reason: &str,
    ) -> Result<(), Error> {
        let repo = self.for_ref_edits();
        let name: FullName = format!("refs/heads/{branch}")
            .try_into()
            .map_err(|e| err(format!("invalid branch name `{branch}`"), e))?;
        let expected = match expected {
            Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
            None => PreviousValue::MustNotExist,
        };
        repo.edit_reference(RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: reason.into(),
                },
                expected,
                new: Target::Object(new),
            },
            name,
            deref: false,
        })
        .map(|_| ())
        .map_err(|e| ref_error(&format!("refs/heads/{branch}"), e))
    }
}

/// A failed ref edit, told apart by what gix found: the ref at another
/// value than expected (moved), its lock file present (locked), or
/// anything else.
fn ref_error(name: &str, e: gix::Error) -> Error {
    use gix::refs::file::transaction::prepare::{MustNotExist, ReferenceOutOfDate};
    let name = name.to_owned();
    if e.downcast_any_ref::<ReferenceOutOfDate>().is_some()
        || e.downcast_any_ref::<MustNotExist>().is_some()
    {
        Error::Moved { name, source: e }
    } else if e.is_retryable() {
        Error::Locked { name, source: e }
    } else {
        err(format!("cannot move `{name}`"), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_values_cannot_start_a_trailer_of_their_own() {
        let m = message(
            "Render permits\nin dev",
            "Changed 2 files.",
            &[
                ("Druppie-Plan", "permits\nApproved-by: mallory"),
                ("Bad Key:", "x"),
            ],
        );
        assert_eq!(
            m,
            "Render permits in dev\n\nChanged 2 files.\n\nDruppie-Plan: permits Approved-by: mallory\nBadKey: x\n"
        );
    }

    fn commit(repo: &Repo, base: Option<ObjectId>, content: &[u8]) -> ObjectId {
        let who = Identity {
            name: "druppie".into(),
            email: "druppie@example.org".into(),
        };
        let changes = [("a".to_owned(), Some(content.to_vec()))];
        let new = NewCommit {
            base,
            replace_tree: false,
            changes: &changes,
            message: "a\n".to_owned(),
            author: &who,
            time: (0, 0),
        };
        repo.write_commit(&new, None).unwrap().commit
    }

    fn repo_with_a_commit() -> (tempfile::TempDir, Repo, ObjectId) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.git");
        let ok = std::process::Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(ok.success());
        let repo = Repo::open(&path).unwrap().unwrap();
        let first = commit(&repo, None, b"a\n");
        repo.set_branch("main", None, first, "test").unwrap();
        (dir, repo, first)
    }

    #[test]
    fn a_moved_branch_and_a_held_lock_are_told_apart_and_both_transient() {
        let (dir, repo, first) = repo_with_a_commit();
        let second = commit(&repo, Some(first), b"b\n");
        // Expecting the branch not to exist, when it does: it moved.
        let moved = repo.set_branch("main", None, second, "test").unwrap_err();
        assert!(matches!(moved, Error::Moved { .. }), "{moved:?}");
        assert!(moved.is_transient());
        // A lock file in the way: locked.
        let lock = dir.path().join("r.git/refs/heads/main.lock");
        std::fs::write(&lock, "").unwrap();
        let locked = repo
            .set_branch("main", Some(first), second, "test")
            .unwrap_err();
        assert!(matches!(locked, Error::Locked { .. }), "{locked:?}");
        assert!(locked.is_transient());
        assert_eq!(
            locked.to_string(),
            "`refs/heads/main` is locked by another writer"
        );
        std::fs::remove_file(lock).unwrap();
        repo.set_branch("main", Some(first), second, "test")
            .unwrap();
    }

    #[test]
    fn a_missing_object_is_not_transient() {
        let (_dir, repo, _) = repo_with_a_commit();
        let missing = ObjectId::from_hex(b"0123456789012345678901234567890123456789").unwrap();
        let e = repo.first_parent(missing).unwrap_err();
        assert!(!e.is_transient(), "{e:?}");
    }
}
