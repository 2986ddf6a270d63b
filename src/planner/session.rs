//! Answering requests on one spec repo as a configuration describes it:
//! the base (the tip of `[spec] branch`: as last fetched from `[spec]
//! url` in a clone of it, else in the repo, else the branch the checkout
//! is on), the live repos the preview diffs against, and how a proposal is
//! opened (`[spec] url` and the forge's pull requests, else a branch of
//! the local repo; druppie's key and identity). `druppie propose` and
//! the MCP server's `propose` tool both answer through it.

use std::path::{Path, PathBuf};

use super::Request;
use super::check::Base;
use super::propose::{Answer, How, ProposeError, answer};
use super::submit::{self, Opened, SubmitError, Target};
use crate::config::Config;
use crate::forge::Forge;
use crate::git::Repo;
use crate::git::sign::Signer;
use crate::git::write::Identity;
use crate::live::Sources;
use crate::secret::{Scrubber, Secret};

/// The spec repo could not be set up for proposals.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{} is not in a git repository: a proposal is a branch of the spec repo", .0.display())]
    NotARepo(PathBuf),
    #[error("{0}")]
    Prefix(#[from] crate::spec::revision::RevisionError),
    #[error(
        "the spec repo has no branch `{0}` ([spec] branch), and its checkout is on none: set `[spec] branch` to the branch proposals are merged into"
    )]
    NoBranch(String),
    #[error("cannot read the spec repo")]
    Git(#[from] crate::git::Error),
    #[error("cannot make a scratch directory")]
    Scratch(#[source] std::io::Error),
}

/// One spec repo, ready to answer requests.
pub struct Session {
    repo: Repo,
    prefix: String,
    /// The branch proposals are merged into.
    branch: String,
    /// The ref whose commit they build on.
    base_ref: String,
    spec_root: PathBuf,
    sources: Sources,
    limits: crate::template::Limits,
    url: Option<String>,
    forge: Option<Box<dyn Forge>>,
    signer: Option<Signer>,
    identity: Identity,
    scrubber: Scrubber,
    /// Drafts create and change requests instead of the rules.
    llm: Option<super::llm::LlmPlanner>,
}

impl Session {
    /// The session for the spec checkout at `spec_root` under `config`;
    /// `forge_token` is the value of the variable `[forge] token_env`
    /// names (the library reads no environment). The forge and the
    /// signing key are optional here: without them a proposal is an
    /// unsigned branch of the local repo.
    ///
    /// # Errors
    /// `spec_root` is not in a git repository, or no base branch.
    pub fn new(
        spec_root: &Path,
        config: &Config,
        forge_token: Option<Secret>,
        sources: Sources,
        scrubber: Scrubber,
    ) -> Result<Session, SessionError> {
        let repo = Repo::discover(spec_root)
            .ok_or_else(|| SessionError::NotARepo(spec_root.to_owned()))?;
        let prefix = crate::spec::revision::prefix(&repo, spec_root)?;
        // A clone of `[spec] url` (the daemon's) builds on the branch as
        // last fetched from there; a checkout on its own branch.
        let tracking = format!("refs/remotes/origin/{}", config.spec.branch);
        let (branch, base_ref) = if config.spec.url.is_some() && repo.resolve(&tracking).is_ok() {
            (config.spec.branch.clone(), tracking)
        } else {
            let branch = base_branch(&repo, spec_root, &config.spec.branch)?;
            let local = format!("refs/heads/{branch}");
            (branch, local)
        };
        let forge = crate::forge::from_config(config, forge_token, &scrubber).ok();
        let signer = config
            .signing
            .key
            .as_ref()
            .and_then(|k| Signer::load(&config.resolve(k)).ok());
        Ok(Session {
            repo,
            prefix,
            branch,
            base_ref,
            spec_root: spec_root.to_owned(),
            sources,
            limits: config.render.limits(),
            url: config.spec.url.clone(),
            forge,
            signer,
            identity: Identity {
                name: config.signing.name.clone(),
                email: config.signing.email.clone(),
            },
            scrubber,
            llm: None,
        })
    }

    /// The session with `llm` drafting create and change requests (the
    /// rules when `None`).
    pub fn with_llm(mut self, llm: Option<super::llm::LlmPlanner>) -> Session {
        self.llm = llm;
        self
    }

    /// Answers `request`; with `open`, opens the proposal when it checks
    /// out.
    ///
    /// # Errors
    /// As [`answer`], and a scratch directory that cannot be made.
    pub fn answer(&self, request: &Request, open: bool) -> Result<Answer, ProposeError> {
        self.with_base(open, |base, how, scratch| {
            answer(base, request, how, scratch)
        })
    }

    /// Checks `draft`, made by `by` (an assistant), as the planner's own
    /// drafts are checked; with `open`, opens it when it checks out.
    ///
    /// # Errors
    /// As [`answer`].
    pub fn answer_draft(
        &self,
        draft: super::Draft,
        by: &str,
        open: bool,
    ) -> Result<Answer, ProposeError> {
        self.with_base(open, |base, how, scratch| {
            super::propose::answer_draft(base, draft, by, how, scratch)
        })
    }

    /// Runs `f` on the branch's tip, with the session's `How`, in a
    /// fresh scratch directory.
    fn with_base(
        &self,
        open: bool,
        f: impl FnOnce(&Base<'_>, &How<'_>, &Path) -> Result<Answer, ProposeError>,
    ) -> Result<Answer, ProposeError> {
        let commit = self
            .repo
            .resolve(&self.base_ref)
            .map_err(|source| ProposeError::Base {
                branch: self.branch.clone(),
                source,
            })?;
        let base = Base {
            repo: &self.repo,
            prefix: &self.prefix,
            commit,
            branch: &self.branch,
        };
        // Private (mode 0700, a random name) and removed when dropped.
        let tmp = tempfile::Builder::new()
            .prefix("druppie-propose-")
            .tempdir()
            .map_err(ProposeError::Scratch)?;
        let opener = |checked: &super::Checked| self.open(&base, checked);
        let how = How {
            sources: &self.sources,
            limits: self.limits,
            open: if open { Some(&opener) } else { None },
            llm: self.llm.as_ref(),
        };
        f(&base, &how, tmp.path())
    }

    /// The spec checkout this session answers on.
    pub fn spec_root(&self) -> &Path {
        &self.spec_root
    }

    /// Opens the proposal: pushed to `[spec] url` with a pull request
    /// where the forge has them, else a branch of the local repo.
    fn open(&self, base: &Base<'_>, checked: &super::Checked) -> Result<Opened, SubmitError> {
        let pulls = self.forge.as_ref().and_then(|f| f.pulls());
        let limit = pulls.map_or(60_000, |p| p.body_limit());
        let name = self.url.as_deref().and_then(crate::forge::owner_and_name);
        let target = match (&self.url, &name) {
            (Some(url), Some(name)) => Target::Remote {
                url,
                git_env: self.forge.as_ref().map(|f| f.git_env()).unwrap_or_default(),
                pulls,
                repo: name,
            },
            _ => Target::Local,
        };
        submit::submit(
            base,
            checked,
            &target,
            self.signer.as_ref(),
            &self.identity,
            &self.scrubber,
            limit,
        )
    }
}

/// The branch proposals are merged into: `configured` when the repo has
/// it, else the branch the checkout is on.
fn base_branch(repo: &Repo, spec_root: &Path, configured: &str) -> Result<String, SessionError> {
    if repo.branch_head(configured)?.is_some() {
        return Ok(configured.to_owned());
    }
    let out = std::process::Command::new("git")
        .args(["symbolic-ref", "--quiet", "--short", "HEAD"])
        .current_dir(spec_root)
        .output()
        .map_err(|e| SessionError::Git(crate::git::Error::new(format!("cannot run git: {e}"))))?;
    let current = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !current.is_empty() {
        return Ok(current);
    }
    Err(SessionError::NoBranch(configured.to_owned()))
}
