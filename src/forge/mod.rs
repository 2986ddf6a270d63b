//! Forges: where target repos live, how they are created, and where git
//! fetches and pushes them. One trait; the plain-git forge is a directory
//! (or URL prefix) of bare repos, where a proposal is a `druppie/…`
//! branch and a merge into the default branch is the approval.

mod git;

pub use git::PlainGit;

/// A forge operation failed; the message never holds a credential.
#[derive(Debug, thiserror::Error)]
#[error("{repo}: {message}")]
pub struct ForgeError {
    pub repo: String,
    pub message: String,
}

pub trait Forge: Sync {
    /// Where git fetches and pushes `repo`.
    fn url(&self, repo: &str) -> String;

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
}
