//! Owning repositories on disk: an exclusive advisory lock (`flock`) that
//! every druppie process takes before it touches the repositories the
//! lock covers, and the sweep of git's own `*.lock` files that only a
//! holder may do.
//!
//! git and gix take a ref, the index or the config by creating
//! `<file>.lock` next to it and renaming it into place; a process killed
//! in between leaves the `.lock` file behind, and every later writer
//! fails on it. Such a file has a live owner only while some process is
//! writing. A druppie process holds the advisory lock while it works,
//! and the git processes it starts inherit it (the descriptor is not
//! closed on exec), so the lock is free only when no druppie and no git
//! started by one is still running: a `*.lock` file found while holding
//! it has no live owner and is removed. A killed druppie's lock is
//! released by the kernel; nothing on disk needs cleaning up for it.
//!
//! A repository that people run git in too (the spec checkout) needs a
//! second test, since their git does not take druppie's lock: there a
//! lock file is stale when a druppie holds the lock and the file has sat
//! unchanged for [`STALE_AFTER`], far longer than git holds one. A
//! younger one stopping a write is reported ([`Held`]) with the command
//! that removes it.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Taking a [`DirLock`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process held the lock for the whole wait.
    #[error("{} is in use by {holder}; waited {} s", .path.display(), .waited.as_secs())]
    Busy {
        path: PathBuf,
        /// Who holds it, as its holder wrote it ("pid 4242 (druppie serve)").
        holder: String,
        waited: Duration,
    },
    /// The lock file cannot be created or locked.
    #[error("cannot lock {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    /// Busy is worth another try later; an I/O failure (a full disk) may
    /// be too.
    pub fn is_transient(&self) -> bool {
        true
    }
}

/// An exclusive advisory lock on a file, held until dropped (or until the
/// process and every git process it started while holding it are gone).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

/// How often a waiting process tries again.
const POLL: Duration = Duration::from_millis(50);

impl DirLock {
    /// Locks the file at `path` (created when missing), waiting up to
    /// `wait` for another holder to finish; `who` is written into it for
    /// the message a waiting process gives.
    ///
    /// # Errors
    /// The lock was held by another process for all of `wait`, or the file
    /// cannot be created or locked.
    pub fn acquire(path: &Path, wait: Duration, who: &str) -> Result<DirLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(POLL);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    return Err(LockError::Busy {
                        path: path.to_owned(),
                        holder: if holder.is_empty() {
                            "another process".to_owned()
                        } else {
                            holder.to_owned()
                        },
                        waited: started.elapsed(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        inherit(&file).map_err(io)?;
        // Who holds it, for a waiting process's message; best effort.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "pid {} ({who})", std::process::id()));
        Ok(DirLock {
            _file: file,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Lets processes started from now on inherit the descriptor, so a git
/// process outliving a killed druppie keeps the lock until it exits.
#[cfg(unix)]
fn inherit(file: &File) -> std::io::Result<()> {
    rustix::io::fcntl_setfd(file, rustix::io::FdFlags::empty()).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn inherit(_: &File) -> std::io::Result<()> {
    Ok(())
}

/// The `*.lock` files git and gix leave in the git directory `git_dir`
/// (a bare repository, or a work tree's `.git`): the ref locks under
/// `refs/` and `logs/`, `packed-refs.lock`, `HEAD.lock`, `index.lock`,
/// `config.lock`, `shallow.lock` and the like. The object database's
/// fan-out directories are not walked (git writes objects through
/// temporary files, not locks).
pub fn lock_files(git_dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let walk = walkdir::WalkDir::new(git_dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !is_loose_object_dir(git_dir, e.path()));
    for entry in walk.filter_map(Result::ok) {
        let is_lock = entry.file_type().is_file()
            && entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".lock") && n.len() > ".lock".len());
        if is_lock {
            found.push(entry.into_path());
        }
    }
    found
}

/// `objects/xx`: a directory of loose objects.
fn is_loose_object_dir(git_dir: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(git_dir.join("objects")) else {
        return false;
    };
    let name = rel.to_string_lossy();
    name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes every lock file [`lock_files`] finds in `git_dir`; the caller
/// holds the [`DirLock`] that proves they have no live owner. Returns the
/// files removed.
///
/// # Errors
/// A lock file cannot be removed.
pub fn remove_stale(_held: &DirLock, git_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for lock in lock_files(git_dir) {
        match std::fs::remove_file(&lock) {
            Ok(()) => removed.push(lock),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Removes the lock files of `refs` (full names) in `git_dir`, for a
/// repository that others write too but whose `refs` only druppie
/// writes, and only while the caller holds the [`DirLock`] every druppie
/// writing them takes. Returns the files removed.
pub fn remove_stale_refs(_held: &DirLock, git_dir: &Path, refs: &[&str]) -> Vec<PathBuf> {
    refs.iter()
        .map(|r| git_dir.join(format!("{r}.lock")))
        .filter(|lock| std::fs::remove_file(lock).is_ok())
        .collect()
}

/// How long a git lock file must sit unchanged, in a repository where
/// people run git too, before it counts as left by a killed process.
/// git holds a ref, `packed-refs`, `HEAD` or `config` lock for
/// milliseconds (it waits at most 1 s for another one to go:
/// `core.packedRefsTimeout`), so a lock this old has no live owner.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// The lock files in `git_dir` that git holds only while it writes a
/// ref, `packed-refs`, `HEAD`, `config` or the like: [`lock_files`]
/// without `index.lock` (held by `git commit -a` for as long as its
/// editor is open, and no concern of druppie's), the object database
/// and submodules' repositories.
fn short_lived_lock_files(git_dir: &Path) -> Vec<PathBuf> {
    lock_files(git_dir)
        .into_iter()
        .filter(|p| {
            let rel = p.strip_prefix(git_dir).unwrap_or(p);
            let top = rel.components().next().map(|c| c.as_os_str());
            p.file_name().is_some_and(|n| n != "index.lock")
                && top.is_some_and(|t| t != "objects" && t != "modules")
        })
        .collect()
}

/// How long ago the file at `path` was last written; `None` when that
/// cannot be told (gone, or written in the future by a skewed clock).
fn age(path: &Path) -> Option<Duration> {
    let written = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    std::time::SystemTime::now().duration_since(written).ok()
}

/// Removes the lock files git holds only briefly (see
/// [`short_lived_lock_files`]) from `git_dir`, a repository people run
/// git in too, once they are at least `stale_after` old; the caller
/// holds the [`DirLock`] every druppie writing the repository takes, so
/// none is druppie's own. Returns the files removed; one that cannot be
/// removed stays, for [`blocking`] to report when it stops a write.
pub fn remove_aged(_held: &DirLock, git_dir: &Path, stale_after: Duration) -> Vec<PathBuf> {
    short_lived_lock_files(git_dir)
        .into_iter()
        .filter(|lock| age(lock).is_some_and(|age| age >= stale_after))
        .filter(|lock| std::fs::remove_file(lock).is_ok())
        .collect()
}

/// The lock files present in `git_dir` that stop moving `full_ref`:
/// the ref's own and `packed-refs.lock` (which gix takes to compare a
/// ref against its expected value).
pub fn blocking(git_dir: &Path, full_ref: &str) -> Vec<PathBuf> {
    [format!("{full_ref}.lock"), "packed-refs.lock".to_owned()]
        .iter()
        .map(|f| git_dir.join(f))
        .filter(|p| p.is_file())
        .collect()
}

/// A git lock file that stops a write and may have a live owner: a git
/// running in the repository now, or one killed so recently that the
/// file is not [`STALE_AFTER`] old yet.
#[derive(Debug, thiserror::Error)]
#[error(
    "{repo}'s {} is locked ({}); remove it with `rm {}` if no git runs there",
    .path.display(),
    held_for(*.age),
    crate::error::shell_quote(&.path.to_string_lossy())
)]
pub struct Held {
    /// Whose it is, as a message names it ("the spec repo").
    pub repo: String,
    pub path: PathBuf,
    /// How long ago the lock file was written, when that can be told.
    pub age: Option<Duration>,
}

impl Held {
    /// The lock file at `path` in `repo`, named by its absolute path so
    /// the command in the message works from anywhere.
    pub fn at(repo: &str, path: &Path) -> Held {
        Held {
            repo: repo.to_owned(),
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
            age: age(path),
        }
    }

    /// The lock goes when its git finishes, or counts as stale once it
    /// is old enough: worth another try later.
    pub fn is_transient(&self) -> bool {
        true
    }
}

fn held_for(age: Option<Duration>) -> String {
    let after = STALE_AFTER.as_secs();
    match age {
        Some(age) => format!(
            "written {} s ago by a git running there or a killed one; druppie removes it once it is {after} s old",
            age.as_secs()
        ),
        None => format!(
            "by a git running there or a killed one; druppie removes it once it is {after} s old"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_says_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = DirLock::acquire(&path, Duration::ZERO, "druppie apply").unwrap();
        let err =
            DirLock::acquire(&path, Duration::from_millis(120), "druppie serve").expect_err("held");
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {} (druppie apply)", std::process::id())),
            "{text}"
        );
        assert!(err.is_transient());
        drop(held);
        DirLock::acquire(&path, Duration::ZERO, "druppie serve").expect("free again");
    }

    #[test]
    fn lock_files_are_found_outside_the_loose_objects() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path();
        for f in [
            "refs/heads/main.lock",
            "refs/heads/druppie/permits-prod.lock",
            "packed-refs.lock",
            "HEAD.lock",
            "config.lock",
            "objects/ab/cdef.lock",
            "objects/info/commit-graph.lock",
            "refs/heads/.lock",
            "refs/heads/main",
        ] {
            let p = git.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let mut found: Vec<String> = lock_files(git)
            .iter()
            .map(|p| p.strip_prefix(git).unwrap().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(
            found,
            [
                "HEAD.lock",
                "config.lock",
                "objects/info/commit-graph.lock",
                "packed-refs.lock",
                "refs/heads/druppie/permits-prod.lock",
                "refs/heads/main.lock",
            ]
        );
        let held = DirLock::acquire(&git.join("owner"), Duration::ZERO, "test").unwrap();
        assert_eq!(remove_stale(&held, git).unwrap().len(), 6);
        assert!(lock_files(git).is_empty());
        assert!(git.join("refs/heads/main").exists());
    }

    fn lock_aged(git: &Path, rel: &str, age: Duration) -> PathBuf {
        let p = git.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let f = File::create(&p).unwrap();
        f.set_modified(std::time::SystemTime::now() - age).unwrap();
        p
    }

    #[test]
    fn only_old_short_lived_locks_are_removed_where_people_run_git() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path();
        let old = Duration::from_secs(3600);
        for f in [
            "packed-refs.lock",
            "HEAD.lock",
            "config.lock",
            "refs/heads/main.lock",
        ] {
            lock_aged(git, f, old);
        }
        let kept = [
            lock_aged(git, "index.lock", old),
            lock_aged(git, "objects/maintenance.lock", old),
            lock_aged(git, "refs/heads/topic.lock", Duration::from_secs(5)),
        ];
        let held = DirLock::acquire(&git.join("owner"), Duration::ZERO, "test").unwrap();
        let mut removed: Vec<String> = remove_aged(&held, git, STALE_AFTER)
            .iter()
            .map(|p| p.strip_prefix(git).unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            [
                "HEAD.lock",
                "config.lock",
                "packed-refs.lock",
                "refs/heads/main.lock"
            ]
        );
        assert!(kept.iter().all(|p| p.exists()));
        assert_eq!(
            blocking(git, "refs/heads/topic"),
            [git.join("refs/heads/topic.lock")]
        );
        let text = Held::at("the spec repo", &kept[2]).to_string();
        assert!(text.starts_with("the spec repo's "), "{text}");
        assert!(text.contains("is locked (written 5 s ago"), "{text}");
        assert!(
            text.ends_with(&format!(
                "remove it with `rm {}` if no git runs there",
                crate::error::shell_quote(&kept[2].to_string_lossy())
            )),
            "{text}"
        );
    }
}
