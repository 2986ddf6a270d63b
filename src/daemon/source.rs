//! The spec repo the daemon reconciles: a local checkout (the one people
//! edit), or a remote repo kept as a clone of its own in the cache. A
//! revision is a commit; a local checkout with uncommitted spec edits is
//! rendered and diffed but never applied, so every commit druppie writes
//! names the spec commit that produced it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::apply::{Cache, CacheError, Pushed};
use crate::audit::{Apart, AuditError, BRANCH, TakenIn};
use crate::git::sign::Signer;
use crate::git::write::Identity;

/// How often a trail push the remote refuses because its trail moved
/// (another replica pushed first) is tried again, after taking the
/// remote's trail in.
const PUSH_ATTEMPTS: usize = 8;

/// The spec repo could not be brought up to date or its trail pushed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// git failed on the spec repo (a fetch, a checkout, a push).
    #[error("the spec repo")]
    Git(#[from] CacheError),
    /// The trail on the remote holds something other than druppie's
    /// events beyond the history it shares with the trail here.
    #[error(
        "the `{BRANCH}` branch here and on the spec remote diverged: {}; the events recorded here stay on the branch here until a person joins the two",
        apart(.0)
    )]
    Diverged(Apart),
    /// The trail here could not be read, or its events written again on
    /// top of the remote's.
    #[error("taking in the spec remote's `{BRANCH}` branch")]
    Audit(#[from] AuditError),
    /// Every push of the trail was refused because the remote's trail
    /// had moved again (other replicas pushing all the time).
    #[error("the spec remote's `{BRANCH}` branch kept moving; gave up after {attempts} pushes")]
    Contended { attempts: usize },
    /// The spec clone cannot be read after a fetch.
    #[error("the spec clone {}: {why}", dir.display())]
    Unreadable { dir: PathBuf, why: String },
}

impl SourceError {
    /// Whether trying again unchanged may help: a fetch or push that
    /// failed in transport, a trail other replicas kept moving, a busy
    /// cache, a full disk. A diverged trail needs a person, and so does
    /// a push the remote refused for another reason than a moved trail.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Git(e) => e.is_transient(),
            SourceError::Audit(e) => e.is_transient(),
            SourceError::Diverged(_) => false,
            SourceError::Contended { .. } => true,
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
    /// Replicas of druppie may share it, each with a clone of its own:
    /// `signer` and `identity` (druppie's, the same for every replica)
    /// sign the trail's events again when another replica pushed first.
    Remote {
        url: String,
        branch: String,
        dir: PathBuf,
        signer: Arc<Signer>,
        identity: Identity,
        /// The clone's index and files are its `HEAD`'s, as this process
        /// left them. False at the start: a process that ended within a
        /// checkout may have left either half-written, and only a whole
        /// checkout puts that right.
        exact: Arc<AtomicBool>,
    },
}

/// The spec as a reconcile sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The commit checked out, when the spec is in git.
    pub commit: Option<String>,
    /// Spec files differ from the commit (a local checkout being edited).
    pub dirty: bool,
    /// This refresh wrote every file of the spec (a new clone's first
    /// checkout): from this instant on, [`SpecSource::settle`] keeps the
    /// next checkout from reading them all again.
    pub settle_after: Option<std::time::Instant>,
    /// The files this refresh found changed since the commit checked out
    /// before it, when git could tell.
    pub changes: Option<Changes>,
}

/// The spec files that differ between two commits (paths from the spec
/// root, as [`changed`] gives them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub from: String,
    pub paths: Vec<String>,
}

/// The most changed files a refresh checks out one by one; a bigger
/// change is checked out whole.
const ONE_BY_ONE: usize = 256;

pub(super) use crate::spec::SPEC_DIRS;

/// How long after a checkout every file it wrote is as old as the index,
/// to git's second (see [`SpecSource::settle`]).
const RACY: std::time::Duration = std::time::Duration::from_millis(1100);

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
                settle_after: None,
                changes: None,
            }),
            SpecSource::Remote {
                url,
                branch,
                dir,
                exact,
                ..
            } => {
                let run = |args: &[&str]| git.git("spec", dir, args);
                let started = std::time::Instant::now();
                git.work_clone("spec", url, dir)?;
                let tracking = format!("refs/remotes/origin/{branch}");
                // The branch and the trail in one fetch. The clone never
                // checks submodules out, so there are none to fetch, and
                // git need not read the index to look for them (3 ms at
                // 10,000 plans).
                run(&[
                    "fetch",
                    "--quiet",
                    "--prune",
                    "--no-recurse-submodules",
                    "origin",
                    &format!("+refs/heads/{branch}:{tracking}"),
                    &trail_refspec(),
                ])?;
                tracing::debug!(elapsed = ?started.elapsed(), "spec fetched");
                self.take_in_audit(git)?;
                let clone = open(dir)?;
                let fetched = clone.resolve(&tracking).map_err(|e| unreadable(dir, &e))?;
                tracing::debug!(elapsed = ?started.elapsed(), "trail taken in");
                // The clone is druppie's own: what it checked out stays as
                // it was until the branch moves.
                let head = crate::git::detached_head(dir);
                let mut settle_after = None;
                let mut changes = None;
                if head != Some(fetched) {
                    let to = fetched.to_string();
                    changes = head.and_then(|from| {
                        let from = from.to_string();
                        let paths = changed(git, dir, &from, &to)?;
                        Some(Changes { from, paths })
                    });
                    let exactly = exact.swap(false, Ordering::SeqCst);
                    let by_path = exactly
                        && changes
                            .as_ref()
                            .is_some_and(|c| check_out_paths(git, dir, &to, &c.paths));
                    if !by_path {
                        run(&["checkout", "--quiet", "--force", "--detach", &tracking])?;
                        run(&["clean", "-ffdq"])?;
                    }
                    exact.store(true, Ordering::SeqCst);
                    if head.is_none() {
                        settle_after = Some(std::time::Instant::now() + RACY);
                    }
                }
                tracing::debug!(elapsed = ?started.elapsed(), "spec checked out");
                Ok(Revision {
                    commit: Some(fetched.to_string()),
                    dirty: false,
                    settle_after,
                    changes,
                })
            }
        }
    }

    /// Writes the spec clone's index again. git trusts the size and time
    /// it recorded for a file only when the file is older than the index,
    /// to the second: until the index is written a second after a
    /// checkout, every index write reads the files that checkout wrote
    /// again (after a new clone's, the next change's checkout read 10,000
    /// plans, 470 ms; this takes 100 ms, once, between reconciles).
    ///
    /// # Errors
    /// git fails.
    pub fn settle(&self, git: &Cache) -> Result<(), SourceError> {
        if let SpecSource::Remote { dir, .. } = self {
            git.git("spec", dir, &["update-index", "-q", "--refresh"])?;
        }
        Ok(())
    }

    /// Takes the remote's trail, just fetched, in (see
    /// [`crate::audit::take_in`]); events recorded here and not pushed
    /// yet are pushed.
    fn take_in_audit(&self, git: &Cache) -> Result<(), SourceError> {
        match self.take_in(git)? {
            TakenIn::Ahead => self.publish(git),
            _ => Ok(()),
        }
    }

    /// Takes the remote's trail as last fetched in: the one place that
    /// decides how the trail here and the remote's stand.
    fn take_in(&self, git: &Cache) -> Result<TakenIn, SourceError> {
        let SpecSource::Remote {
            dir,
            signer,
            identity,
            ..
        } = self
        else {
            return Ok(TakenIn::Level);
        };
        let _hold = git.hold()?;
        let clone = open(dir)?;
        // A remote without a trail yet: this one starts it.
        let theirs = clone.resolve(&format!("refs/remotes/origin/{BRANCH}")).ok();
        let now = crate::apply::now();
        match crate::audit::take_in(&clone, theirs, signer, identity, now)? {
            TakenIn::Diverged(apart) => Err(SourceError::Diverged(apart)),
            taken => Ok(taken),
        }
    }

    /// Pushes the audit trail to the remote spec repo (a local checkout
    /// is pushed by its owner). When the remote refuses the push because
    /// its trail moved (another replica pushed first), the remote's trail
    /// is fetched and taken in, and the push tried again, a few times
    /// with a short random wait.
    ///
    /// # Errors
    /// The push fails, the remote's trail diverged from the one here, or
    /// it kept moving under every push.
    pub fn publish(&self, git: &Cache) -> Result<(), SourceError> {
        let SpecSource::Remote { dir, .. } = self else {
            return Ok(());
        };
        let local = format!("refs/heads/{BRANCH}");
        for attempt in 0..PUSH_ATTEMPTS {
            let here = open(dir)?
                .branch_head(BRANCH)
                .map_err(|e| unreadable(dir, &e))?;
            if here.is_none() {
                return Ok(());
            }
            match git.push_from("spec", dir, "origin", &local)? {
                Pushed::Done => return Ok(()),
                Pushed::Rejected { .. } => {
                    let wait = fastrand::u64(10..=50 * (attempt as u64 + 1));
                    std::thread::sleep(std::time::Duration::from_millis(wait));
                    git.git(
                        "spec",
                        dir,
                        &[
                            "fetch",
                            "--quiet",
                            "--prune",
                            "--no-recurse-submodules",
                            "origin",
                            &trail_refspec(),
                        ],
                    )?;
                    if self.take_in(git)? == TakenIn::Level {
                        return Ok(());
                    }
                }
            }
        }
        Err(SourceError::Contended {
            attempts: PUSH_ATTEMPTS,
        })
    }
}

/// Checks out only `paths` of commit `to` in the spec clone at `dir` (its
/// index and files are its `HEAD`'s, and `paths` all that differ from
/// `to`), then detaches `HEAD` at `to`: what a whole checkout gives,
/// without git looking at every file of the spec twice (at 10,000 plans,
/// 12 ms against 34). `false` when git refused or the change is too big
/// for it; a whole checkout follows.
fn check_out_paths(git: &Cache, dir: &Path, to: &str, paths: &[String]) -> bool {
    if paths.len() > ONE_BY_ONE || !paths.iter().all(|p| by_path(p)) {
        return false;
    }
    if !paths.is_empty() {
        // Names as they are: no glob or other pathspec magic in them.
        let literal: Vec<String> = paths.iter().map(|p| format!(":(literal){p}")).collect();
        let mut args = vec!["checkout", "--quiet", "--no-overlay", to, "--"];
        args.extend(literal.iter().map(String::as_str));
        // git reports a path it will not write on stderr and may still
        // exit 0; the whole checkout refuses such a commit.
        if let Err(e) = git.git_silent("spec", dir, &args) {
            tracing::debug!(error = %crate::error::chain(&e), "checking the changed spec files out");
            return false;
        }
    }
    git.git("spec", dir, &["update-ref", "--no-deref", "HEAD", to])
        .is_ok()
}

/// Whether a changed `path` may be checked out on its own. Not when:
/// - it is not UTF-8 (it reached here with U+FFFD in it, and may name
///   another file);
/// - a part of it is `.` or `..` (git skips such an entry and exits 0,
///   where the whole checkout refuses the commit);
/// - a part of it starts with `.git` in any case: `.gitattributes`
///   changes how the other files are written, and git writes a changed
///   file by its old rules when only some files are checked out;
///   `.gitmodules` is refused as a link by the whole checkout only.
fn by_path(path: &str) -> bool {
    !path.contains('\u{FFFD}')
        && path.split('/').all(|part| {
            part != "."
                && part != ".."
                && !part
                    .get(..4)
                    .is_some_and(|start| start.eq_ignore_ascii_case(".git"))
        })
}

/// The files that differ between the spec commits `from` and `to` (paths
/// relative to the spec root at `root`); `None` when git cannot tell.
pub fn changed(git: &Cache, root: &Path, from: &str, to: &str) -> Option<Vec<String>> {
    let out = git
        .git(
            "spec",
            root,
            &[
                "diff",
                "--name-only",
                "-z",
                "--no-renames",
                "--ignore-submodules=none",
                "--relative",
                from,
                to,
            ],
        )
        .ok()?;
    Some(
        out.split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// The trail's branch of the remote, fetched to `refs/remotes/origin/`:
/// a glob, so that a remote without a trail yet is no error, and
/// `--prune` drops what the remote no longer has.
fn trail_refspec() -> String {
    format!("+refs/heads/{BRANCH}*:refs/remotes/origin/{BRANCH}*")
}

/// The commit that keeps the two trails apart, and why.
fn apart(apart: &Apart) -> String {
    let side = if apart.theirs {
        "on the remote"
    } else {
        "here"
    };
    format!("commit {} {side} {}", apart.commit, apart.why)
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
