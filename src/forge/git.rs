//! The plain-git forge: `<base>/<repo>.git`, where `base` is a directory
//! of bare repos or the URL prefix of any git server.

use std::path::Path;
use std::process::Command;

use super::{Forge, ForgeError};

pub struct PlainGit {
    base: String,
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
}

impl Forge for PlainGit {
    fn url(&self, repo: &str) -> String {
        format!("{}/{repo}.git", self.base)
    }

    fn exists(&self, repo: &str) -> Result<bool, ForgeError> {
        if let Some(base) = self.local() {
            return Ok(base.join(format!("{repo}.git")).exists());
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
        let out = Command::new("git")
            .args(["init", "--quiet", "--bare", "--initial-branch", branch])
            .arg(&path)
            .output()
            .map_err(|error| ForgeError::Spawn {
                repo: repo.to_owned(),
                error,
            })?;
        if !out.status.success() {
            return Err(ForgeError::Create {
                repo: repo.to_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                path,
            });
        }
        Ok(true)
    }
}
