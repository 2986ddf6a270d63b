//! Bare clones of the target repos in the cache directory. Transport is
//! the git CLI (gix cannot push, and its local fetch runs git's own
//! upload-pack anyway); commits are written into these clones with gix and
//! then pushed.
//!
//! The cache is disposable: it mirrors the forge and holds nothing the
//! forge lacks once a run has pushed. Every druppie process (`apply`, the
//! daemon) holds the cache's advisory lock ([`DirLock`], the file
//! `.druppie-lock` in the cache) while it works in it, so a second one
//! waits (up to [`LOCK_WAIT`]) and then fails with who holds it. Holding
//! the lock proves that no other druppie, and no git process one started,
//! is writing: every git `*.lock` file found in a clone then was left by a
//! killed process and is removed before the clone is used. A clone is
//! made under a temporary name and renamed into place, so a half-made
//! clone never has the real name; a clone that cannot be opened, or that
//! cannot fetch from a forge that answers, is cloned again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use super::NOTES;
use crate::git::lock::{self, DirLock, LockError};

/// How long a druppie process waits for another one to finish with the
/// cache.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// The advisory lock's file in the cache directory.
const LOCK_FILE: &str = ".druppie-lock";
/// Clones being made or replaced: no real repo starts with it.
const TEMP_PREFIX: &str = ".tmp-";

/// Working in the cache failed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Another druppie holds the cache, or its lock cannot be taken.
    #[error("the cache is not available")]
    Lock(#[from] LockError),
    /// git is not installed or cannot be started.
    #[error("{repo}: cannot run git")]
    Spawn {
        repo: String,
        #[source]
        source: std::io::Error,
    },
    /// git failed; `said` is its own message, without credentials.
    #[error("{repo}: git {command} failed: {said}")]
    Git {
        repo: String,
        command: String,
        said: String,
    },
    /// A file or directory of the cache cannot be written (a full disk).
    #[error("{repo}: cannot write {}", .path.display())]
    Io {
        repo: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The forge refused the push for another reason than a moved branch
    /// (a hook, branch protection, permissions); `said` is what the
    /// forge's side printed.
    #[error("{repo}: the forge refused the push to {target}: {reason}{}", said.iter().map(|l| format!("\n  remote: {l}")).collect::<String>())]
    Refused {
        repo: String,
        target: String,
        reason: String,
        said: Vec<String>,
    },
}

impl CacheError {
    /// The repo it is about, if any.
    pub fn repo(&self) -> Option<&str> {
        match self {
            CacheError::Lock(_) => None,
            CacheError::Spawn { repo, .. }
            | CacheError::Git { repo, .. }
            | CacheError::Io { repo, .. }
            | CacheError::Refused { repo, .. } => Some(repo),
        }
    }

    /// Whether trying again later may succeed unchanged: a busy cache, a
    /// full disk, a fetch, clone or push that failed in transport. git
    /// failing on a local command, git missing, and a push the forge
    /// refused are not.
    pub fn is_transient(&self) -> bool {
        match self {
            CacheError::Lock(e) => e.is_transient(),
            CacheError::Io { .. } => true,
            CacheError::Git { command, .. } => NETWORK.contains(&command.as_str()),
            CacheError::Spawn { .. } | CacheError::Refused { .. } => false,
        }
    }
}

/// git commands that talk to the forge.
const NETWORK: [&str; 4] = ["clone", "fetch", "push", "ls-remote"];

pub struct Cache {
    dir: PathBuf,
    /// For git, so it can authenticate to the forge.
    env: Vec<(String, String)>,
    wait: Duration,
    /// Who holds the lock, for a waiting process's message.
    who: String,
    held: Mutex<Held>,
}

/// The lock as this process holds it: taken on the first [`Cache::hold`],
/// released when the last one ends (threads of one run share it).
#[derive(Default)]
struct Held {
    depth: usize,
    lock: Option<DirLock>,
    /// Git directories swept of stale lock files under this hold.
    swept: BTreeSet<PathBuf>,
    /// What was repaired, since [`Cache::repairs`] was last asked.
    repairs: Vec<String>,
}

/// The cache's lock, held until dropped.
pub struct Hold<'a> {
    cache: &'a Cache,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let mut held = self.cache.held.lock().expect("cache lock state");
        held.depth -= 1;
        if held.depth == 0 {
            held.lock = None;
            held.swept.clear();
        }
    }
}

impl Cache {
    /// Clones in `dir`; git runs with `env` (see [`Forge::git_env`]).
    ///
    /// [`Forge::git_env`]: crate::forge::Forge::git_env
    pub fn new(dir: &Path, env: Vec<(String, String)>) -> Cache {
        Cache {
            dir: dir.to_owned(),
            env,
            wait: LOCK_WAIT,
            who: "druppie".to_owned(),
            held: Mutex::new(Held::default()),
        }
    }

    /// Waits up to `wait` for another process to finish with the cache;
    /// `who` (`druppie apply`, `druppie serve`) is what a waiting process
    /// is told holds it.
    pub fn waiting(mut self, wait: Duration, who: &str) -> Cache {
        self.wait = wait;
        who.clone_into(&mut self.who);
        self
    }

    /// Who holds the lock when this process does (`druppie apply`).
    pub fn holder(&self) -> &str {
        &self.who
    }

    /// The directory holding the clones (a `--repos` directory for diff).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, repo: &str) -> PathBuf {
        self.dir.join(format!("{repo}.git"))
    }

    /// Holds the cache's lock until the returned value is dropped (again
    /// within one hold is free). Taking it removes the temporary clones
    /// a killed process left.
    ///
    /// # Errors
    /// Another process held it for the whole wait, or it cannot be taken.
    pub fn hold(&self) -> Result<Hold<'_>, CacheError> {
        let mut held = self.held.lock().expect("cache lock state");
        if held.depth == 0 {
            let lock = DirLock::acquire(&self.dir.join(LOCK_FILE), self.wait, &self.who)?;
            let leftovers = self.remove_temporaries();
            held.repairs.extend(leftovers);
            held.lock = Some(lock);
        }
        held.depth += 1;
        Ok(Hold { cache: self })
    }

    /// What was repaired (stale lock files removed, clones replaced) since
    /// this was last asked, one line each.
    pub fn repairs(&self) -> Vec<String> {
        std::mem::take(&mut self.held.lock().expect("cache lock state").repairs)
    }

    fn repaired(&self, line: String) {
        self.held
            .lock()
            .expect("cache lock state")
            .repairs
            .push(line);
    }

    /// Removes what a killed process was making: `.tmp-*` clones.
    fn remove_temporaries(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed.push(format!(
                    "cache: removed {name}, a clone a stopped run left unfinished"
                ));
            }
        }
        removed
    }

    /// Holds the cache and removes the lock files a killed process left
    /// in `repo`'s clone, before it is written in process (gix) rather
    /// than through git.
    ///
    /// # Errors
    /// The cache is held by another process, or a lock file cannot be
    /// removed.
    pub fn prepare(&self, repo: &str) -> Result<Hold<'_>, CacheError> {
        let hold = self.hold()?;
        let path = self.path(repo);
        if path.exists() {
            self.sweep(repo, &path)?;
        }
        Ok(hold)
    }

    /// Removes the lock files a killed process left in the repository at
    /// `dir` (inside the cache), once per hold.
    fn sweep(&self, repo: &str, dir: &Path) -> Result<(), CacheError> {
        let git_dir = if dir.join(".git").is_dir() {
            dir.join(".git")
        } else {
            dir.to_owned()
        };
        let mut held = self.held.lock().expect("cache lock state");
        if !held.swept.insert(git_dir.clone()) {
            return Ok(());
        }
        let lock = held.lock.as_ref().expect("swept while held");
        let removed = lock::remove_stale(lock, &git_dir).map_err(|source| CacheError::Io {
            repo: repo.to_owned(),
            path: git_dir.clone(),
            source,
        })?;
        for path in removed {
            let rel = path.strip_prefix(&self.dir).unwrap_or(&path);
            held.repairs.push(format!(
                "{repo}: removed the stale lock {} (left by a stopped process)",
                rel.display()
            ));
        }
        Ok(())
    }

    /// Clones `repo` from `url` if needed, then fetches every branch and
    /// druppie's notes as the forge has them. A clone that cannot be
    /// opened, or that cannot fetch while the forge answers, is replaced
    /// by a new one.
    ///
    /// # Errors
    /// The cache is held by another process, the forge cannot be reached,
    /// or a clone cannot be made.
    pub fn sync(&self, repo: &str, url: &str) -> Result<(), CacheError> {
        let _hold = self.hold()?;
        let path = self.path(repo);
        if path.exists() && !usable(&path) {
            self.clone_to(repo, url, &path, &["--bare"])?;
            self.repaired(format!(
                "{repo}: the cached clone was not a usable repository; cloned it again"
            ));
        }
        if !path.exists() {
            self.clone_to(repo, url, &path, &["--bare"])?;
        }
        match self.fetch(repo, url, &path) {
            Err(CacheError::Git { .. }) if self.answers(repo, url) => {
                // The forge answers, so the clone is at fault.
                self.clone_to(repo, url, &path, &["--bare"])?;
                self.repaired(format!(
                    "{repo}: the cached clone could not fetch; cloned it again"
                ));
                self.fetch(repo, url, &path)
            }
            other => other,
        }
    }

    fn fetch(&self, repo: &str, url: &str, path: &Path) -> Result<(), CacheError> {
        // A glob refspec, so a repo without druppie's notes yet is no error.
        let notes = format!("+{}/*:{}/*", parent(NOTES), parent(NOTES));
        let args = [
            "fetch",
            "--quiet",
            "--prune",
            "--update-head-ok",
            url,
            "+refs/heads/*:refs/heads/*",
            &notes,
            // Rejected proposals (`execution::rejected_ref`).
            "+refs/druppie/*:refs/druppie/*",
        ];
        self.git(repo, path, &args).map(|_| ())
    }

    /// Whether the forge answers for `repo`.
    fn answers(&self, repo: &str, url: &str) -> bool {
        self.git(repo, &self.dir, &["ls-remote", "--heads", url])
            .is_ok()
    }

    /// Clones `url` to `path` (`--bare`, or `--no-checkout` for a work
    /// tree) under a temporary name, then renames it into place; a clone
    /// already at `path` is removed only once the new one is complete.
    fn clone_to(&self, repo: &str, url: &str, path: &Path, how: &[&str]) -> Result<(), CacheError> {
        let io = |path: &Path, source| CacheError::Io {
            repo: repo.to_owned(),
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let fresh = self.temporary(repo);
        let target = fresh.to_string_lossy().into_owned();
        let mut args = vec!["clone", "--quiet"];
        args.extend(how);
        args.extend([url, &target]);
        let cloned = self.git(repo, &self.dir, &args);
        let discard = |e| {
            let _ = std::fs::remove_dir_all(&fresh);
            e
        };
        cloned.map_err(discard)?;
        let old = self.temporary(repo);
        if path.exists() {
            std::fs::rename(path, &old).map_err(|e| discard(io(path, e)))?;
        }
        std::fs::rename(&fresh, path).map_err(|e| discard(io(path, e)))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    /// Makes sure `dir` (in the cache) holds a clone of `url` with a work
    /// tree, nothing checked out when new; one that does not open as a
    /// repository is replaced. Every clone is made under a temporary
    /// name.
    ///
    /// # Errors
    /// The cache is held by another process, or the clone fails.
    pub fn work_clone(&self, repo: &str, url: &str, dir: &Path) -> Result<(), CacheError> {
        let _hold = self.hold()?;
        if dir.exists() && usable(dir) {
            return Ok(());
        }
        let broken = dir.exists();
        // A checkout of 10,000 plans took 40 ms, and 20 ms with the
        // index git keeps for many files (version 4, no checksum).
        let how = ["--no-checkout", "--config", "feature.manyFiles=true"];
        self.clone_to(repo, url, dir, &how)?;
        if broken {
            self.repaired(format!(
                "{repo}: the cached checkout was not a usable repository; cloned it again"
            ));
        }
        Ok(())
    }

    /// A name in the cache no other clone has.
    fn temporary(&self, repo: &str) -> PathBuf {
        self.dir.join(format!(
            "{TEMP_PREFIX}{repo}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ))
    }

    /// Runs git in `dir` with the forge's credentials; a failure carries
    /// git's own words, with any credentials in URLs removed. Within the
    /// cache, the cache is held while git runs and the repository's stale
    /// lock files are removed first.
    ///
    /// # Errors
    /// git cannot run or fails.
    pub fn git(&self, repo: &str, dir: &Path, args: &[&str]) -> Result<String, CacheError> {
        let (ok, stdout, said) = self.run(repo, dir, args)?;
        if ok {
            return Ok(stdout);
        }
        Err(CacheError::Git {
            repo: repo.to_owned(),
            command: args[0].to_owned(),
            said,
        })
    }

    /// Runs git as [`Cache::git`] does, and takes anything git said on
    /// stderr for a failure too: some refusals (a path git will not
    /// write) are reported there while git exits 0.
    ///
    /// # Errors
    /// git cannot run, fails, or said something.
    pub fn git_silent(&self, repo: &str, dir: &Path, args: &[&str]) -> Result<String, CacheError> {
        let (ok, stdout, said) = self.run(repo, dir, args)?;
        if ok && said.is_empty() {
            return Ok(stdout);
        }
        Err(CacheError::Git {
            repo: repo.to_owned(),
            command: args[0].to_owned(),
            said,
        })
    }

    /// Runs git: (success, stdout, stderr without credentials).
    pub(super) fn run(
        &self,
        repo: &str,
        dir: &Path,
        args: &[&str],
    ) -> Result<(bool, String, String), CacheError> {
        let inside = dir.starts_with(&self.dir);
        let _hold = if inside { Some(self.hold()?) } else { None };
        if inside && dir != self.dir {
            self.sweep(repo, dir)?;
        }
        let out = Command::new("git")
            // Housekeeping runs within the call, so it ends while the
            // cache is held.
            .args([
                "-c",
                "gc.autoDetach=false",
                "-c",
                "maintenance.autoDetach=false",
            ])
            .args(args)
            .current_dir(dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(|source| CacheError::Spawn {
                repo: repo.to_owned(),
                source,
            })?;
        let said = redact(String::from_utf8_lossy(&out.stderr).trim());
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            said,
        ))
    }
}

/// `refs/notes/druppie` -> `refs/notes`.
fn parent(full: &str) -> &str {
    full.rsplit_once('/').map_or(full, |(p, _)| p)
}

/// Whether `path` opens as a git repository.
fn usable(path: &Path) -> bool {
    matches!(crate::git::Repo::open(path), Ok(Some(_)))
}

/// Removes `user:secret@` from every URL in `text`.
pub fn redact(text: &str) -> String {
    let re = regex::Regex::new(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@").expect("a valid pattern");
    re.replace_all(text, "${1}***@").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_removed() {
        assert_eq!(
            redact("fatal: unable to access 'https://bot:ghp_s3cret@git.example.org/infra.git/'"),
            "fatal: unable to access 'https://***@git.example.org/infra.git/'"
        );
        assert_eq!(redact("/srv/git/infra.git"), "/srv/git/infra.git");
    }
}
