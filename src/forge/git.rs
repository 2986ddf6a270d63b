//! The plain-git forge: `<base>/<repo>.git`, where `base` is a directory
//! of bare repos or the URL prefix of any git server.
//!
//! In a directory, a repo is created under a temporary name and renamed
//! into place, so a creation cut short (a full disk, a killed process)
//! never leaves a half-made repo under the real name. One found there all
//! the same (made by hand, or by an older druppie) is finished when it
//! holds nothing (no object, no ref), and otherwise reported with the
//! command that finishes it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Forge, ForgeError};

/// Temporary repos of a creation cut short are removed after this long
/// (a younger one may be another druppie's creation under way).
const LEFTOVER_AGE: Duration = Duration::from_secs(600);

pub struct PlainGit {
    base: String,
}

/// What is at `<base>/<repo>.git`.
enum Found {
    Absent,
    Usable,
    /// Not a repository, and nothing in it to lose.
    HalfMadeEmpty,
    /// Not a repository, but it holds objects or refs.
    HalfMade(&'static str),
}

impl PlainGit {
    pub fn new(base: &str) -> PlainGit {
        PlainGit {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// Whether `base` names a git server (`https://…`, `ssh://…`,
    /// `git@host:…`) rather than a local directory.
    pub fn is_url(base: &str) -> bool {
        base.contains("://") || base.contains('@')
    }

    /// A local directory, as opposed to a server URL.
    fn local(&self) -> Option<&Path> {
        (!Self::is_url(&self.base)).then(|| Path::new(&self.base))
    }

    /// Creates `path` from scratch: `git init` under a temporary name in
    /// the same directory, then a rename (a half-made repo at `path` with
    /// nothing in it is swapped out). `Ok(false)`: another process
    /// created it meanwhile.
    fn create(
        &self,
        repo: &str,
        base: &Path,
        path: &Path,
        branch: &str,
    ) -> Result<bool, ForgeError> {
        remove_leftovers(base, repo);
        let temp = temporary(base, repo);
        let out = Command::new("git")
            .args(["init", "--quiet", "--bare", "--initial-branch", branch])
            .arg(&temp)
            .output();
        let out = match out {
            Ok(out) => out,
            Err(error) => {
                return Err(ForgeError::Spawn {
                    repo: repo.to_owned(),
                    error,
                });
            }
        };
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(ForgeError::Create {
                repo: repo.to_owned(),
                path: path.to_owned(),
                stderr: format!(
                    "{} (nothing was left behind; the next run creates it)",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        if path.exists() {
            let old = temporary(base, repo);
            if std::fs::rename(path, &old).is_ok() {
                let swapped = std::fs::rename(&temp, path);
                let _ = std::fs::remove_dir_all(&old);
                return swapped.map(|()| true).map_err(|e| {
                    let _ = std::fs::remove_dir_all(&temp);
                    ForgeError::Create {
                        repo: repo.to_owned(),
                        path: path.to_owned(),
                        stderr: e.to_string(),
                    }
                });
            }
        }
        match std::fs::rename(&temp, path) {
            Ok(()) => Ok(true),
            Err(_) if matches!(found(path), Found::Usable) => {
                let _ = std::fs::remove_dir_all(&temp);
                Ok(false)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&temp);
                Err(ForgeError::Create {
                    repo: repo.to_owned(),
                    path: path.to_owned(),
                    stderr: e.to_string(),
                })
            }
        }
    }
}

impl Forge for PlainGit {
    fn url(&self, repo: &str) -> String {
        format!("{}/{repo}.git", self.base)
    }

    fn exists(&self, repo: &str) -> Result<bool, ForgeError> {
        if let Some(base) = self.local() {
            let path = base.join(format!("{repo}.git"));
            return match found(&path) {
                Found::Absent | Found::HalfMadeEmpty => Ok(false),
                Found::Usable => Ok(true),
                Found::HalfMade(missing) => Err(ForgeError::HalfMade {
                    repo: repo.to_owned(),
                    path,
                    missing,
                }),
            };
        }
        let out = Command::new("git")
            .args(["ls-remote", "--heads", &self.url(repo)])
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|error| ForgeError::Spawn {
                repo: repo.to_owned(),
                error,
            })?;
        Ok(out.status.success())
    }

    fn ensure_repo(&self, repo: &str, branch: &str) -> Result<bool, ForgeError> {
        if self.exists(repo)? {
            return Ok(false);
        }
        let Some(base) = self.local() else {
            return Err(ForgeError::Missing {
                repo: repo.to_owned(),
            });
        };
        let path = base.join(format!("{repo}.git"));
        self.create(repo, base, &path, branch)
    }
}

/// What is at `path`.
fn found(path: &Path) -> Found {
    if !path.exists() {
        return Found::Absent;
    }
    let missing = ["HEAD", "config", "objects", "refs"]
        .into_iter()
        .find(|p| !path.join(p).exists());
    let opens = matches!(crate::git::Repo::open(path), Ok(Some(_)));
    if opens && missing.is_none() {
        return Found::Usable;
    }
    let holds = |dir: &str| {
        walkdir::WalkDir::new(path.join(dir))
            .into_iter()
            .filter_map(Result::ok)
            .any(|e| e.file_type().is_file())
    };
    if holds("objects") || holds("refs") || path.join("packed-refs").exists() {
        Found::HalfMade(match missing {
            Some("HEAD") => "no HEAD",
            Some("config") => "no config",
            Some("objects") => "no objects directory",
            Some(_) => "no refs directory",
            None => "it does not open",
        })
    } else {
        Found::HalfMadeEmpty
    }
}

/// A name beside `<repo>.git` that no repo has (a dot file, not `*.git`).
fn temporary(base: &Path, repo: &str) -> PathBuf {
    base.join(format!(
        ".tmp-{repo}.git-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ))
}

/// Removes temporary repos of `repo` that a cut-short creation left.
fn remove_leftovers(base: &Path, repo: &str) {
    let prefix = format!(".tmp-{repo}.git-");
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > LEFTOVER_AGE);
        if old && entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
