//! Git through gix: blob ids, a branch's tree, blobs by id, three-way text
//! merges; [`mod@write`] writes signed commits ([`sign`]) and moves branches
//! by compare-and-swap; [`lock`] is the advisory lock a druppie process
//! holds over the repositories it writes, under which git's lock files
//! left by a killed process are removed; [`history`] reads trees and blobs
//! of past commits. [`Error`] tells a moved or locked
//! ref (worth another try) from the rest.

pub mod batch;
mod delta;
pub mod history;
pub mod lock;
mod pack;
pub mod sign;
mod tree;
pub mod write;

pub use tree::tree_id;

use std::collections::BTreeMap;
use std::path::Path;

pub use gix::ObjectId;
use gix::bstr::{BStr, ByteSlice};
use gix::merge::blob::builtin_driver::text;

/// A git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A ref moved since it was read: another writer got there first.
    #[error("`{name}` moved since it was read")]
    Moved {
        name: String,
        #[source]
        source: gix::Error,
    },
    /// Another writer holds the ref's lock file (`<ref>.lock`).
    #[error("`{name}` is locked by another writer")]
    Locked {
        name: String,
        #[source]
        source: gix::Error,
    },
    /// The repository has commits but not the branch asked for.
    #[error("the repository has no branch `{0}` (the platform names it as the default branch)")]
    NoBranch(String),
    /// Reading or writing the repository failed; `what` names what.
    #[error("{what}")]
    Failed {
        what: String,
        #[source]
        source: Source,
    },
    /// A fact found in the repository that makes the operation impossible.
    #[error("{0}")]
    Invalid(String),
}

/// The error beneath a [`Error::Failed`].
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error::Invalid(message.into())
    }

    /// Whether trying again may succeed without anyone changing the
    /// repository: a moved ref (read it again first), a held lock, an
    /// interrupted or full-disk write. A corrupt or missing object, a
    /// missing branch or an invalid name are not.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Moved { .. } | Error::Locked { .. } => true,
            Error::NoBranch(_) | Error::Invalid(_) => false,
            Error::Failed { source, .. } => {
                let source: &(dyn std::error::Error + 'static) = source.as_ref();
                let full = std::iter::successors(Some(source), |e| e.source()).any(|e| {
                    e.downcast_ref::<std::io::Error>()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
                });
                full || (gix::error::classify(source).can_retry_lenient()
                    && !gix::error::classify(source).is_corrupted())
            }
        }
    }
}

fn err(what: impl std::fmt::Display, e: impl Into<Source>) -> Error {
    Error::Failed {
        what: what.to_string(),
        source: e.into(),
    }
}

/// The id git gives a blob with these bytes (`git hash-object`).
pub fn blob_id(bytes: &[u8]) -> ObjectId {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, bytes)
        .expect("SHA-1 of bytes in memory")
}

/// The commit checked out in the repository holding `dir`, if any.
pub fn head_commit(dir: &Path) -> Option<ObjectId> {
    let repo = gix::discover(dir).ok()?;
    repo.head_id().ok().map(gix::Id::detach)
}

/// The commit a work tree's detached `HEAD` names; `None` when `HEAD`
/// is a branch (a fresh clone's, with nothing checked out yet) or
/// unreadable.
pub fn detached_head(dir: &Path) -> Option<ObjectId> {
    let repo = gix::open(dir).ok()?;
    match repo.head().ok()?.kind {
        gix::head::Kind::Detached { target, .. } => Some(target),
        _ => None,
    }
}

/// An opened repository (bare, or a work tree whose `.git` is read; the
/// work tree's files are not looked at). It can be shared between threads;
/// each call reads through a handle of the calling thread.
pub struct Repo {
    repo: gix::ThreadSafeRepository,
}

/// A branch's commit and tree.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    pub commit: ObjectId,
    pub tree: ObjectId,
}

impl Repo {
    /// Opens the repository at `path`; `Ok(None)` when `path` is not one
    /// (a plain directory). Parent directories are not searched.
    ///
    /// # Errors
    /// `path` looks like a repository but cannot be opened.
    pub fn open(path: &Path) -> Result<Option<Repo>, Error> {
        let bare = ["HEAD", "objects", "refs"]
            .iter()
            .all(|p| path.join(p).exists());
        if !bare && !path.join(".git").exists() {
            return Ok(None);
        }
        // gix sizes the index slots of a repository when it opens it and
        // cannot add any later; a run writing its objects as packs adds
        // one index per pack (32 slots were too few at 10,000 plans).
        let slots = gix::odb::store::init::Slots::AsNeededByDiskState {
            multiplier: 1.1,
            minimum: 1024,
        };
        let options = gix::open::Options::isolated().object_store_slots(slots);
        gix::ThreadSafeRepository::open_opts(path, options)
            .map(|repo| Some(Repo { repo }))
            .map_err(|e| err("cannot open the repository", e))
    }

    /// A handle for moving refs: a reflog entry names a committer, and
    /// where git has none configured (a container without a git config)
    /// the entry names druppie rather than the move failing.
    fn for_ref_edits(&self) -> gix::Repository {
        let mut repo = self.repo.to_thread_local();
        let _ = repo.committer_or_set_fallback("druppie", "druppie@localhost");
        repo
    }

    /// The repository holding `dir` (searching its parents), if any.
    pub fn discover(dir: &Path) -> Option<Repo> {
        gix::ThreadSafeRepository::discover(dir)
            .ok()
            .map(|repo| Repo { repo })
    }

    /// The commit a revision (`main`, `HEAD~1`, a hash) names.
    ///
    /// # Errors
    /// The revision does not name a commit.
    pub fn resolve(&self, rev: &str) -> Result<ObjectId, Error> {
        let repo = self.repo.to_thread_local();
        let id = repo
            .rev_parse_single(rev)
            .map_err(|e| err(format!("unknown revision `{rev}`"), e))?;
        let commit = id
            .object()
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| err(format!("`{rev}` is not a commit"), e))?;
        Ok(commit.id)
    }

    /// The directory holding the repository's refs and objects: `.git`,
    /// the bare repository, or for a linked work tree the main one's.
    pub fn common_dir(&self) -> std::path::PathBuf {
        self.repo.to_thread_local().common_dir().to_owned()
    }

    /// The work tree's root, for a non-bare repository.
    pub fn work_dir(&self) -> Option<&Path> {
        self.repo.work_dir()
    }

    /// Writes the files under `dir` of `commit`'s tree into `dest` as a
    /// checkout would: symbolic links become links (so the spec loader
    /// refuses them as it refuses them in a checkout, never reading
    /// through them), names are written byte for byte. A tree entry that
    /// cannot be a path below `dest` (empty, `.`, `..`) is an error.
    ///
    /// # Errors
    /// The commit cannot be read, a name is unsafe, or a file cannot be
    /// written.
    pub fn export(&self, commit: ObjectId, dir: &str, dest: &Path) -> Result<usize, Error> {
        use std::os::unix::ffi::OsStrExt as _;
        let repo = self.repo.to_thread_local();
        let root = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| err(format!("cannot read commit {commit}"), e))?;
        let tree = if dir.is_empty() {
            root
        } else {
            match root
                .lookup_entry_by_path(dir)
                .map_err(|e| err(format!("cannot read `{dir}`"), e))?
            {
                Some(e) if e.mode().is_tree() => repo
                    .find_tree(e.object_id())
                    .map_err(|e| err(format!("cannot read `{dir}`"), e))?,
                _ => return Ok(0),
            }
        };
        let mut recorder = gix::traverse::tree::Recorder::default();
        tree.traverse()
            .breadthfirst(&mut recorder)
            .map_err(|e| err(format!("cannot walk `{dir}`"), e))?;
        let mut written = 0;
        let mut links = Vec::new();
        for record in recorder.records {
            if !record.mode.is_blob_or_symlink() {
                continue;
            }
            let name: &[u8] = record.filepath.as_ref();
            if name
                .split(|b| *b == b'/')
                .any(|s| s.is_empty() || s == b"." || s == b"..")
            {
                return Err(err(
                    format!("tree entry `{}`", record.filepath),
                    "not a path a checkout writes",
                ));
            }
            let mut path = dest.to_owned();
            if !dir.is_empty() {
                path.push(dir);
            }
            path.push(std::ffi::OsStr::from_bytes(name));
            let Some(bytes) = self.blob(record.oid)? else {
                continue;
            };
            if record.mode.is_link() {
                links.push((path, bytes));
                continue;
            }
            let write_error = |e| err(format!("cannot write {}", path.display()), e);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(write_error)?;
            }
            std::fs::write(&path, bytes).map_err(write_error)?;
            written += 1;
        }
        // Links last, each in a directory made here, never through one.
        for (path, target) in links {
            let write_error = |e| err(format!("cannot write {}", path.display()), e);
            if let Some(parent) = path.parent() {
                let rel = parent.strip_prefix(dest).unwrap_or(parent);
                let rel = crate::spec::source::slash_path(Path::new(""), rel);
                if crate::spec::walk::no_link_on_the_way(dest, &rel).is_err() {
                    return Err(err(
                        format!("cannot write {}", path.display()),
                        "a symbolic link is on the way",
                    ));
                }
                std::fs::create_dir_all(parent).map_err(write_error)?;
            }
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), &path)
                .map_err(write_error)?;
            written += 1;
        }
        Ok(written)
    }

    /// A commit's first parent, if it has one.
    ///
    /// # Errors
    /// The commit cannot be read.
    pub fn first_parent(&self, commit: ObjectId) -> Result<Option<ObjectId>, Error> {
        let repo = self.repo.to_thread_local();
        let found = repo
            .find_commit(commit)
            .map_err(|e| err(format!("cannot read commit {commit}"), e))?;
        Ok(found.parent_ids().next().map(gix::Id::detach))
    }

    /// The bytes of `path` in `commit`'s tree, if it is there.
    ///
    /// # Errors
    /// The commit or its tree cannot be read.
    pub fn file_at(&self, commit: ObjectId, path: &str) -> Result<Option<Vec<u8>>, Error> {
        let repo = self.repo.to_thread_local();
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| err(format!("cannot read commit {commit}"), e))?;
        let entry = tree
            .lookup_entry_by_path(path)
            .map_err(|e| err(format!("cannot read `{path}` in {commit}"), e))?;
        match entry {
            Some(e) => self.blob(e.object_id()),
            None => Ok(None),
        }
    }

    /// Blob entries under `dir` of `commit`'s tree, as [`Repo::files_under`].
    ///
    /// # Errors
    /// The commit or an object of its tree cannot be read.
    pub fn files_at(
        &self,
        commit: ObjectId,
        dir: &str,
    ) -> Result<BTreeMap<String, ObjectId>, Error> {
        let tree = self
            .repo
            .to_thread_local()
            .find_commit(commit)
            .and_then(|c| c.tree_id())
            .map_err(|e| err(format!("cannot read commit {commit}"), e))?
            .detach();
        self.files_under(tree, dir)
    }

    /// Whether `ancestor` is `of` (a revision: a commit id, `HEAD`) or
    /// one of its ancestors, as `git merge-base --is-ancestor` says;
    /// false when either is unknown here.
    pub fn is_ancestor(&self, ancestor: ObjectId, of: &str) -> bool {
        let dir = self
            .work_dir()
            .map_or_else(|| self.common_dir(), Path::to_path_buf);
        std::process::Command::new("git")
            .args(["merge-base", "--is-ancestor", &ancestor.to_string(), of])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The best common ancestor of `one` and `two`, as `git merge-base`
    /// finds it; `Ok(None)` when they share no history.
    ///
    /// # Errors
    /// A commit of either history cannot be read.
    pub fn merge_base(&self, one: ObjectId, two: ObjectId) -> Result<Option<ObjectId>, Error> {
        let repo = self.repo.to_thread_local();
        repo.merge_base(one, two)
            .map(|base| base.map(gix::Id::detach))
            .map_err(|e| err(format!("cannot find where {one} and {two} meet"), e))
    }

    /// The tip of `branch`; `Ok(None)` for a repository without commits.
    ///
    /// # Errors
    /// The repository has commits but no such branch, or its objects are
    /// unreadable.
    pub fn branch(&self, branch: &str) -> Result<Option<Head>, Error> {
        if let Some(head) = self.branch_head(branch)? {
            return Ok(Some(head));
        }
        if self.repo.to_thread_local().head_id().is_ok() {
            return Err(Error::NoBranch(branch.to_owned()));
        }
        Ok(None)
    }

    /// Blob entries under `dir` (empty: the whole tree) of `tree`: path in
    /// the tree -> blob id.
    ///
    /// # Errors
    /// An object of the tree cannot be read.
    pub fn files_under(
        &self,
        tree: ObjectId,
        dir: &str,
    ) -> Result<BTreeMap<String, ObjectId>, Error> {
        tree::files_under(&self.repo.to_thread_local(), Some(&self.repo), tree, dir)
    }

    /// A blob's bytes; `Ok(None)` when the object database lacks it.
    ///
    /// # Errors
    /// The object exists but cannot be read.
    pub fn blob(&self, id: ObjectId) -> Result<Option<Vec<u8>>, Error> {
        blob(&self.repo.to_thread_local(), id)
    }

    /// The entries right below `dir` (`/`-separated, `""` for the root)
    /// of the tree `tree`: each name (lossily, as [`Repo::files_under`]
    /// names files), whether it is a tree, and its id; none when there
    /// is no directory at `dir`.
    ///
    /// # Errors
    /// A tree on the way cannot be read.
    pub fn entries(
        &self,
        tree: ObjectId,
        dir: &str,
    ) -> Result<Vec<(String, bool, ObjectId)>, Error> {
        let repo = self.repo.to_thread_local();
        let Some(sub) = tree::subtree(&repo, tree, dir)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in sub.iter() {
            let entry = entry.map_err(|e| err(format!("cannot read `{dir}`"), e))?;
            out.push((
                entry.filename().to_str_lossy().into_owned(),
                entry.mode().is_tree(),
                entry.oid().to_owned(),
            ));
        }
        Ok(out)
    }
}

/// [`Repo::blob`] through `repo`.
fn blob(repo: &gix::Repository, id: ObjectId) -> Result<Option<Vec<u8>>, Error> {
    match repo.try_find_object(id) {
        Ok(Some(obj)) if obj.kind == gix::objs::Kind::Blob => Ok(Some(obj.detach().data)),
        Ok(_) => Ok(None),
        Err(e) => Err(err(format!("cannot read blob {id}"), e)),
    }
}

/// The outcome of a three-way text merge.
pub struct Merged {
    pub bytes: Vec<u8>,
    /// No conflict markers were needed.
    pub clean: bool,
}

/// Merges `ours` and `theirs`, both derived from `base`, as `git
/// merge-file` does; conflicting hunks carry markers labelled with
/// `labels` (ours, theirs).
pub fn merge3(base: &[u8], ours: &[u8], theirs: &[u8], labels: (&str, &str)) -> Merged {
    let mut out = Vec::new();
    let mut input = gix::diff::blob::InternedInput::default();
    let resolution = gix::merge::blob::builtin_driver::text(
        &mut out,
        &mut input,
        text::Labels {
            ancestor: Some(BStr::new("base")),
            current: Some(BStr::new(labels.0)),
            other: Some(BStr::new(labels.1)),
        },
        ours,
        base,
        theirs,
        text::Options::default(),
    );
    Merged {
        bytes: out,
        clean: !matches!(resolution, gix::merge::blob::Resolution::Conflict),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_are_gits() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            blob_id(b"hello\n").to_string(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            blob_id(b"").to_string(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
    }

    #[test]
    fn separate_edits_merge_and_clashing_edits_carry_markers() {
        let base = b"a\nb\nc\nd\ne\n";
        let ours = b"a\nB by a person\nc\nd\ne\n";
        let theirs = b"a\nb\nc\nd\nE from the template\n";
        let m = merge3(base, ours, theirs, ("live", "druppie"));
        assert!(m.clean);
        assert_eq!(m.bytes, b"a\nB by a person\nc\nd\nE from the template\n");

        let theirs = b"a\nB from the template\nc\nd\ne\n";
        let m = merge3(base, ours, theirs, ("live", "druppie"));
        assert!(!m.clean);
        let text = String::from_utf8(m.bytes).unwrap();
        assert!(
            text.contains(
                "<<<<<<< live\nB by a person\n=======\nB from the template\n>>>>>>> druppie\n"
            ),
            "{text}"
        );
    }
}
