//! The spec repo the daemon reconciles: a local checkout (the one people
//! edit), or a remote repo kept as a clone of its own in the cache. A
//! revision is a commit; a local checkout with uncommitted spec edits is
//! rendered and diffed but never applied, so every commit druppie writes
//! names the spec commit that produced it.

use std::path::{Path, PathBuf};

use crate::apply::{Cache, CacheError};
use crate::audit::BRANCH;

/// The spec repo could not be brought up to date or its trail pushed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// git failed on the spec repo (a fetch, a checkout, a push).
    #[error("the spec repo")]
    Git(#[from] CacheError),
    /// The trail here and on the remote each have events the other
    /// lacks.
    #[error(
        "the `{BRANCH}` branch here and on the spec remote diverged: another druppie writes the same trail"
    )]
    Diverged,
    /// The spec clone cannot be read after a fetch.
    #[error("the spec clone {}: {why}", dir.display())]
    Unreadable { dir: PathBuf, why: String },
}

impl SourceError {
    /// Whether trying again unchanged may help: a fetch or push that
    /// failed in transport, a busy cache, a full disk. A diverged trail
    /// needs a person (stop the other druppie), and so does a push the
    /// remote refused.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Git(e) => e.is_transient(),
            SourceError::Diverged => false,
            // A clone druppie cannot read is made anew by the next fetch.
            SourceError::Unreadable { .. } => true,
        }
    }
}

/// Where the spec comes from.
#[derive(Debug, Clone)]
pub enum SpecSource {
    /// A checkout on this machine, read as it is on disk.
    Local(PathBuf),
    /// A remote repo, cloned into `dir` and checked out at `branch`.
    Remote {
        url: String,
        branch: String,
        dir: PathBuf,
    },
}

/// The spec as a reconcile sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The commit checked out, when the spec is in git.
    pub commit: Option<String>,
    /// Spec files differ from the commit (a local checkout being edited).
    pub dirty: bool,
}

pub(super) use crate::spec::SPEC_DIRS;

impl SpecSource {
    /// The directory the spec is read from.
    pub fn root(&self) -> &Path {
        match self {
            SpecSource::Local(path) => path,
            SpecSource::Remote { dir, .. } => dir,
        }
    }

    /// The branch reconciled (a local checkout: whatever is checked out).
    pub fn branch(&self) -> &str {
        match self {
            SpecSource::Local(_) => "",
            SpecSource::Remote { branch, .. } => branch,
        }
    }

    /// A name for the spec repo, as webhooks name repositories.
    pub fn name(&self) -> String {
        let full = match self {
            SpecSource::Local(path) => path
                .canonicalize()
                .unwrap_or_else(|_| path.clone())
                .to_string_lossy()
                .into_owned(),
            SpecSource::Remote { url, .. } => url.clone(),
        };
        let last = full.trim_end_matches('/').rsplit(['/', ':']).next();
        last.unwrap_or_default().trim_end_matches(".git").to_owned()
    }

    /// Brings the spec up to date (a remote: fetch, check out, take in the
    /// audit trail's new events) and says which revision it is at.
    ///
    /// # Errors
    /// git fails, or the audit trail here and on the remote diverged.
    pub fn refresh(&self, git: &Cache) -> Result<Revision, SourceError> {
        match self {
            SpecSource::Local(path) => Ok(Revision {
                commit: crate::git::head_commit(path).map(|c| c.to_string()),
                // Not a git checkout: nothing to apply from.
                dirty: crate::spec::uncommitted(path).map_or(true, |edited| !edited.is_empty()),
            }),
            SpecSource::Remote { url, branch, dir } => {
                let run = |args: &[&str]| git.git("spec", dir, args);
                git.work_clone("spec", url, dir)?;
                let tracking = format!("refs/remotes/origin/{branch}");
                // The branch and the trail in one fetch; the trail's is a
                // glob so that a remote without a trail yet is no error,
                // and `--prune` drops what the remote no longer has.
                run(&[
                    "fetch",
                    "--quiet",
                    "--prune",
                    "origin",
                    &format!("+refs/heads/{branch}:{tracking}"),
                    &format!("+refs/heads/{BRANCH}*:refs/remotes/origin/{BRANCH}*"),
                ])?;
                self.take_in_audit(git)?;
                let clone = open(dir)?;
                let fetched = clone.resolve(&tracking).map_err(|e| unreadable(dir, &e))?;
                // The clone is druppie's own: what it checked out stays as
                // it was until the branch moves.
                if crate::git::detached_head(dir) != Some(fetched) {
                    run(&["checkout", "--quiet", "--force", "--detach", &tracking])?;
                    run(&["clean", "-ffdq"])?;
                }
                Ok(Revision {
                    commit: Some(fetched.to_string()),
                    dirty: false,
                })
            }
        }
    }

    /// Moves the local audit trail forward to the remote's, just
    /// fetched; events recorded here and not pushed yet are pushed.
    fn take_in_audit(&self, git: &Cache) -> Result<(), SourceError> {
        let SpecSource::Remote { dir, .. } = self else {
            return Ok(());
        };
        let clone = open(dir)?;
        let remote = format!("refs/remotes/origin/{BRANCH}");
        let Ok(theirs) = clone.resolve(&remote) else {
            // A remote without a trail yet: this one starts it.
            return self.publish(git);
        };
        let ours = clone
            .branch_head(BRANCH)
            .map_err(|e| unreadable(dir, &e))?
            .map(|h| h.commit);
        match ours {
            Some(ours) if ours == theirs => Ok(()),
            Some(ours) if clone.is_ancestor(theirs, &ours.to_string()) => self.publish(git),
            Some(ours) if !clone.is_ancestor(ours, &theirs.to_string()) => {
                Err(SourceError::Diverged)
            }
            _ => {
                git.git(
                    "spec",
                    dir,
                    &["update-ref", &format!("refs/heads/{BRANCH}"), &remote],
                )?;
                Ok(())
            }
        }
    }

    /// Pushes the audit trail to the remote spec repo (a local checkout
    /// is pushed by its owner).
    ///
    /// # Errors
    /// The push fails.
    pub fn publish(&self, git: &Cache) -> Result<(), SourceError> {
        let SpecSource::Remote { dir, .. } = self else {
            return Ok(());
        };
        let local = format!("refs/heads/{BRANCH}");
        let run = |args: &[&str]| git.git("spec", dir, args);
        if run(&["rev-parse", "--verify", "--quiet", &local]).is_err() {
            return Ok(());
        }
        run(&["push", "--quiet", "origin", &format!("{local}:{local}")])?;
        Ok(())
    }
}

/// The spec clone at `dir`, opened.
fn open(dir: &Path) -> Result<crate::git::Repo, SourceError> {
    match crate::git::Repo::open(dir) {
        Ok(Some(repo)) => Ok(repo),
        Ok(None) => Err(SourceError::Unreadable {
            dir: dir.to_owned(),
            why: "not a git repository".to_owned(),
        }),
        Err(e) => Err(unreadable(dir, &e)),
    }
}

fn unreadable(dir: &Path, e: &crate::git::Error) -> SourceError {
    SourceError::Unreadable {
        dir: dir.to_owned(),
        why: crate::error::chain(e),
    }
}
