//! Bare clones of the target repos in the cache directory. Transport is
//! the git CLI (gix cannot push, and its local fetch runs git's own
//! upload-pack anyway); commits are written into these clones with gix and
//! then pushed.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ApplyError, NOTES};

pub struct Cache {
    dir: PathBuf,
    /// For git, so it can authenticate to the forge.
    env: Vec<(String, String)>,
}

/// How a push ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Done,
    /// The branch moved on the forge since it was fetched.
    Rejected,
}

impl Cache {
    /// Clones in `dir`; git runs with `env` (see [`Forge::git_env`]).
    ///
    /// [`Forge::git_env`]: crate::forge::Forge::git_env
    pub fn new(dir: &Path, env: Vec<(String, String)>) -> Cache {
        Cache {
            dir: dir.to_owned(),
            env,
        }
    }

    /// The directory holding the clones (a `--repos` directory for diff).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, repo: &str) -> PathBuf {
        self.dir.join(format!("{repo}.git"))
    }

    /// Clones `repo` from `url` if needed, then fetches every branch and
    /// druppie's notes as the forge has them.
    ///
    /// # Errors
    /// git fails (the message has no credentials).
    pub fn sync(&self, repo: &str, url: &str) -> Result<(), ApplyError> {
        let path = self.path(repo);
        if !path.exists() {
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| ApplyError::new(repo, format!("cannot create the cache: {e}")))?;
            let target = path.to_string_lossy().into_owned();
            self.git(
                repo,
                &self.dir,
                &["clone", "--quiet", "--bare", url, &target],
            )?;
        }
        let fetch = |refspecs: &[&str]| {
            let mut args = vec!["fetch", "--quiet", "--prune", "--update-head-ok", url];
            args.extend_from_slice(refspecs);
            self.git(repo, &path, &args)
        };
        let notes = format!("+{NOTES}:{NOTES}");
        match fetch(&["+refs/heads/*:refs/heads/*", &notes]) {
            // A repo without druppie's notes yet.
            Err(e) if e.message.contains("couldn't find remote ref") => {
                fetch(&["+refs/heads/*:refs/heads/*"]).map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// Pushes `commit` to `branch` of `url`; `force` only for branches
    /// druppie owns (`druppie/…`).
    ///
    /// # Errors
    /// git fails for another reason than a moved branch.
    pub fn push(
        &self,
        repo: &str,
        url: &str,
        commit: &str,
        branch: &str,
        force: bool,
    ) -> Result<Pushed, ApplyError> {
        let target = format!("refs/heads/{branch}");
        self.push_ref(repo, url, commit, &target, force)
    }

    /// Pushes `source` (a commit or a ref) to the ref `target` of `url`.
    ///
    /// # Errors
    /// git fails for another reason than a moved ref.
    pub fn push_ref(
        &self,
        repo: &str,
        url: &str,
        source: &str,
        target: &str,
        force: bool,
    ) -> Result<Pushed, ApplyError> {
        let refspec = format!("{}{source}:{target}", if force { "+" } else { "" });
        match self.git(repo, &self.path(repo), &["push", "--quiet", url, &refspec]) {
            Ok(_) => Ok(Pushed::Done),
            Err(e)
                if e.message.contains("[rejected]")
                    || e.message.contains("non-fast-forward")
                    || e.message.contains("fetch first") =>
            {
                Ok(Pushed::Rejected)
            }
            Err(e) => Err(e),
        }
    }

    /// Runs git in `dir` with the forge's credentials; a failure carries
    /// git's own words, with any credentials in URLs removed.
    ///
    /// # Errors
    /// git cannot run or fails.
    pub fn git(&self, repo: &str, dir: &Path, args: &[&str]) -> Result<String, ApplyError> {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(|e| ApplyError::new(repo, format!("cannot run git: {e}")))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let said = String::from_utf8_lossy(&out.stderr);
        Err(ApplyError::new(
            repo,
            format!("git {} failed: {}", args[0], redact(said.trim())),
        ))
    }
}

/// Removes `user:secret@` from every URL in `text`.
pub fn redact(text: &str) -> String {
    let re = regex::Regex::new(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@").expect("a valid pattern");
    re.replace_all(text, "${1}***@").into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_urls_are_removed() {
        assert_eq!(
            super::redact(
                "fatal: unable to access 'https://bot:ghp_s3cret@git.example.org/infra.git/'"
            ),
            "fatal: unable to access 'https://***@git.example.org/infra.git/'"
        );
        assert_eq!(super::redact("/srv/git/infra.git"), "/srv/git/infra.git");
    }
}
