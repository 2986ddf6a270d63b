//! Forges: where target repos live, how they are created, where git
//! fetches and pushes them, and how a proposal is approved. One trait,
//! three forges: plain git (a directory or URL prefix of bare repos,
//! where a proposal is a `druppie/…` branch and a merge into the default
//! branch is the approval), Gitea/Forgejo and GitHub (pull requests).

mod git;
pub mod http;
mod pulls;
mod rest;
mod teams;

pub use git::PlainGit;
pub use rest::{Dialect, Rest};

use crate::config::{Config, ForgeKind};
use crate::secret::{Scrubber, Secret};

/// A forge operation on `repo` failed; the message never holds a
/// credential. Each message is whole (it names the repo and says what
/// happened), so a caller that keeps only the text loses nothing.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// A request to the forge's API failed.
    #[error("{repo}: {error}")]
    Api {
        repo: String,
        error: http::RequestError,
    },
    /// git could not be started (plain git).
    #[error("{repo}: cannot run git: {error}")]
    Spawn { repo: String, error: std::io::Error },
    /// A plain-git server has no such repo, and plain git cannot make one.
    #[error(
        "{repo}: the repo does not exist on the git server; create it there (plain git cannot)"
    )]
    Missing { repo: String },
    /// `git init` of a repo in the forge directory failed.
    #[error("{repo}: cannot create {path}: {stderr}")]
    Create {
        repo: String,
        path: std::path::PathBuf,
        stderr: String,
    },
    /// A repo in the forge directory was left half made (a creation cut
    /// short) and holds objects or refs, so it is not replaced.
    #[error(
        "{repo}: {} is not a usable git repository ({missing}) but holds objects or refs, so druppie leaves it as it is; finish it with `git init --bare {}` (this keeps every object and ref), or move it aside for druppie to create it anew",
        path.display(),
        crate::error::shell_quote(&path.to_string_lossy())
    )]
    HalfMade {
        repo: String,
        path: std::path::PathBuf,
        missing: &'static str,
    },
}

impl ForgeError {
    /// The repo the operation was about.
    pub fn repo(&self) -> &str {
        match self {
            ForgeError::Api { repo, .. }
            | ForgeError::Spawn { repo, .. }
            | ForgeError::Missing { repo }
            | ForgeError::Create { repo, .. }
            | ForgeError::HalfMade { repo, .. } => repo,
        }
    }

    /// What happened, without the repo's name in front.
    pub fn message(&self) -> String {
        let whole = self.to_string();
        match whole.strip_prefix(self.repo()) {
            Some(rest) => rest.trim_start_matches(": ").to_owned(),
            None => whole,
        }
    }

    /// Whether trying again later may succeed: the forge failed, limited
    /// the rate, or could not be reached; or the disk or process table was
    /// full. A refusal (401, 403, 404, 409, 422), a bad name or a missing
    /// repo on a plain git server are not.
    pub fn is_transient(&self) -> bool {
        match self {
            ForgeError::Api { error, .. } => error.is_transient(),
            ForgeError::Spawn { error, .. } => error.kind() != std::io::ErrorKind::NotFound,
            ForgeError::Missing { .. } | ForgeError::HalfMade { .. } => false,
            ForgeError::Create { .. } => true,
        }
    }
}

/// `[forge]` in druppie.toml does not describe a usable forge.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "`[forge] base` is needed in druppie.toml: the directory or URL prefix holding <repo>.git"
    )]
    GitBase,
    #[error(
        "`[forge] base` is needed for gitea: the server's address, e.g. https://git.example.org"
    )]
    GiteaBase,
    #[error("`[forge] owner` is needed for {kind}: the organisation or user owning the repos")]
    Owner { kind: &'static str },
    #[error("no forge token: set the environment variable {var} (named by `[forge] token_env`)")]
    Token { var: String },
    #[error("cannot set up the forge's HTTP client: {0}")]
    Http(#[from] http::SetupError),
}

pub trait Forge: Send + Sync {
    /// Where git fetches and pushes `repo` (never with credentials).
    fn url(&self, repo: &str) -> String;

    /// Environment for the git CLI so it can authenticate.
    fn git_env(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Whether `repo` exists on the forge.
    ///
    /// # Errors
    /// The forge cannot be asked.
    fn exists(&self, repo: &str) -> Result<bool, ForgeError>;

    /// Creates `repo` (empty, default branch `branch`) unless it exists;
    /// `Ok(true)` when it was created.
    ///
    /// # Errors
    /// The repo cannot be created or its existence cannot be checked.
    fn ensure_repo(&self, repo: &str, branch: &str) -> Result<bool, ForgeError>;

    /// Pull requests, where the forge has them; plain git has branches and
    /// git notes instead.
    fn pulls(&self) -> Option<&dyn Pulls> {
        None
    }

    /// Team membership, where the forge has teams; plain git has none
    /// (its approvers are principals of the spec's allowed-signers file).
    fn teams(&self) -> Option<&dyn Teams> {
        None
    }
}

/// Teams of organisations, as the forge's own API answers for them.
pub trait Teams: Sync {
    /// Whether `login` is an active member of `team`: `org/team`, or a
    /// team of the `[forge] owner` organisation. A team that does not
    /// exist has no members.
    ///
    /// # Errors
    /// The forge refuses or cannot be reached.
    fn is_member(&self, team: &str, login: &str) -> Result<bool, ForgeError>;
}

/// A pull request to open: `head` into `base`.
#[derive(Debug, Clone, Copy)]
pub struct Proposal<'a> {
    pub head: &'a str,
    pub base: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    /// Opened as a draft, which the forge will not merge until someone
    /// marks it ready (a conflict to resolve first). GitHub: a draft pull
    /// request; Gitea/Forgejo: the title prefixed with `WIP: `, Gitea's
    /// own work-in-progress convention.
    pub draft: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullState {
    Open,
    Merged,
    /// Closed without merging: rejected.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub number: i64,
    pub url: String,
    pub state: PullState,
    pub head: String,
    pub head_commit: Option<String>,
    /// The login of whoever merged it.
    pub merged_by: Option<String>,
    pub merge_commit: Option<String>,
    /// A draft (GitHub), or a work-in-progress title (Gitea/Forgejo).
    pub draft: bool,
}

/// The commit status context that says whether a proposal still holds
/// conflict markers.
pub const CONFLICTS: &str = "druppie/conflicts";

/// The state of a commit status, as both forges name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    Pending,
    Success,
    Failure,
    Error,
}

impl StatusState {
    /// The forges' own word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Pending => "pending",
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Error => "error",
        }
    }
}

/// A commit status: one check, by `context`, on one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub context: String,
    pub state: StatusState,
    /// One short line (the forge shows about 140 characters).
    pub description: String,
}

impl Status {
    /// The [`CONFLICTS`] status of a proposal in which `files` files
    /// still hold conflict markers: a failure while any do.
    pub fn conflicts(files: usize) -> Status {
        let (state, description) = match files {
            0 => (
                StatusState::Success,
                "no file has conflict markers".to_owned(),
            ),
            1 => (
                StatusState::Failure,
                "1 file has conflict markers".to_owned(),
            ),
            n => (
                StatusState::Failure,
                format!("{n} files have conflict markers"),
            ),
        };
        Status {
            context: CONFLICTS.to_owned(),
            state,
            description,
        }
    }
}

/// Pull requests, their comments, commit statuses and proposal branches.
/// Every write is idempotent: a pull request is found by its head branch,
/// a comment by a marker in it, a status by its context; what is already
/// so is not sent again.
pub trait Pulls: Sync {
    /// Opens the pull request from `head` into `base`, or updates the
    /// title and body of the open one (adopting one that appeared while
    /// druppie was creating it).
    ///
    /// # Guarantees
    /// A new pull request is a draft when `proposal.draft` is. An open one
    /// follows `draft` on Gitea/Forgejo (the `WIP: ` prefix is added to or
    /// removed from its title); on GitHub it keeps its draft state, which
    /// GitHub's REST API cannot change (a person marks a draft ready, and
    /// a pull request that became a conflict carries the failing
    /// [`CONFLICTS`] status and the caller's title). The returned
    /// [`Pull::draft`] says which it is.
    ///
    /// # Errors
    /// The forge refuses or cannot be reached.
    fn propose(&self, repo: &str, proposal: &Proposal) -> Result<Pull, ForgeError>;

    /// Closes pull request `number` without merging it (a proposal
    /// superseded or withdrawn). One already closed or merged is left as
    /// it is; the pull request is returned as it now stands.
    ///
    /// # Errors
    /// The forge refuses or cannot be reached.
    fn close(&self, repo: &str, number: i64) -> Result<Pull, ForgeError>;

    /// Sets `status` on `commit` (a full commit id), unless the commit's
    /// latest status of that context already says the same.
    ///
    /// # Errors
    /// The forge refuses or cannot be reached.
    fn set_status(&self, repo: &str, commit: &str, status: &Status) -> Result<(), ForgeError>;

    /// Deletes `branch`; `Ok(false)` when it was already gone.
    ///
    /// # Errors
    /// The forge refuses (a protected or default branch, no permission)
    /// or cannot be reached.
    fn delete_branch(&self, repo: &str, branch: &str) -> Result<bool, ForgeError>;

    /// The newest pull request whose head is `head`, in any state.
    ///
    /// # Errors
    /// The forge refuses or cannot be reached.
    fn find(&self, repo: &str, head: &str) -> Result<Option<Pull>, ForgeError>;

    /// The logins whose latest review of pull request `number` approves
    /// its head commit: an approval that was dismissed, followed by a
    /// request for changes, or given to an earlier commit does not count.
    ///
    /// # Errors
    /// The forge refuses or cannot be reached.
    fn approvals(&self, repo: &str, number: i64) -> Result<Vec<String>, ForgeError>;

    /// Creates, or updates in place, the one comment on `number` that
    /// carries `marker`.
    ///
    /// # Errors
    /// The forge refuses or cannot be reached.
    fn comment(&self, repo: &str, number: i64, marker: &str, text: &str) -> Result<(), ForgeError>;

    /// The longest body or comment the forge takes.
    fn body_limit(&self) -> usize;
}

/// `owner/name` of a repo from its URL (`https://host/owner/name.git`,
/// `git@host:owner/name.git`, a path `…/owner/name.git`).
pub fn owner_and_name(url: &str) -> Option<String> {
    let path = url.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = path.rsplit(['/', ':']);
    match (parts.next(), parts.next()) {
        (Some(name), Some(owner)) if !name.is_empty() && !owner.is_empty() => {
            Some(format!("{owner}/{name}"))
        }
        _ => None,
    }
}

/// The forge `[forge]` in druppie.toml configures. `token` is the value
/// of the variable `token_env` names, read by the caller (the library
/// reads no environment); it is added to `scrubber`, which the forge
/// applies to its error messages and to every body it posts.
///
/// # Errors
/// A required key or the token is missing, or the HTTP client cannot be
/// set up.
pub fn from_config(
    config: &Config,
    token: Option<Secret>,
    scrubber: &Scrubber,
) -> Result<Box<dyn Forge>, ConfigError> {
    let f = &config.forge;
    let dialect = match f.kind {
        ForgeKind::Git => {
            return match &f.base {
                Some(base) if PlainGit::is_url(base) => Ok(Box::new(PlainGit::new(base))),
                Some(dir) => {
                    let dir = config.resolve(std::path::Path::new(dir));
                    Ok(Box::new(PlainGit::new(&dir.to_string_lossy())))
                }
                None => Err(ConfigError::GitBase),
            };
        }
        ForgeKind::Gitea => Dialect::Gitea,
        ForgeKind::Github => Dialect::GitHub,
    };
    let kind = if dialect == Dialect::Gitea {
        "gitea"
    } else {
        "github"
    };
    let Some(owner) = &f.owner else {
        return Err(ConfigError::Owner { kind });
    };
    let (api, web) = match (dialect, &f.base) {
        (Dialect::GitHub, None) => (
            "https://api.github.com".to_owned(),
            "https://github.com".to_owned(),
        ),
        (Dialect::Gitea, None) => return Err(ConfigError::GiteaBase),
        (Dialect::Gitea, Some(base)) => {
            let base = base.trim_end_matches('/');
            (format!("{base}/api/v1"), base.to_owned())
        }
        // GitHub Enterprise: the API is <host>/api/v3.
        (Dialect::GitHub, Some(base)) => {
            let base = base.trim_end_matches('/');
            (base.to_owned(), base.trim_end_matches("/api/v3").to_owned())
        }
    };
    let git = match &f.git_url {
        Some(u) if PlainGit::is_url(u) => u.clone(),
        Some(dir) => config
            .resolve(std::path::Path::new(dir))
            .to_string_lossy()
            .into_owned(),
        None => web,
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(ConfigError::Token {
            var: f.token_env.clone(),
        });
    };
    Ok(Box::new(Rest::new(
        dialect,
        &api,
        &git,
        owner,
        Some(token),
        scrubber.clone(),
    )?))
}
