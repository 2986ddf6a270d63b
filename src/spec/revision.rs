//! The spec as it was at a commit of its repository: exported into a
//! directory and opened like a checkout, its pinned blocks read from the
//! repository's history at that commit (`preview`, `promote`).

use std::path::{Path, PathBuf};

use super::{History, LoadOptions, OpenError, Opened};
use crate::compose::ComposeOptions;
use crate::git::{ObjectId, Repo};

/// A spec revision could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// The commit's spec tree cannot be written out.
    #[error("cannot export spec commit {commit}")]
    Export {
        commit: ObjectId,
        #[source]
        source: crate::git::Error,
    },
    /// The spec root is not inside the repository's work tree.
    #[error("{} is outside its repository", .0.display())]
    Outside(PathBuf),
    /// The spec root cannot be resolved.
    #[error("{}", .path.display())]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Open(#[from] OpenError),
}

impl RevisionError {
    /// Whether trying again may help (a passing I/O failure).
    pub fn is_transient(&self) -> bool {
        match self {
            RevisionError::Export { source, .. } => source.is_transient(),
            RevisionError::Open(e) => e.is_transient(),
            RevisionError::Outside(_) | RevisionError::Path { .. } => false,
        }
    }
}

/// Where `spec_root` is inside `repo`'s work tree, as a slash path (``
/// for its root; a bare repository holds the spec at its root).
///
/// # Errors
/// The spec root cannot be resolved, or is outside the work tree.
pub fn prefix(repo: &Repo, spec_root: &Path) -> Result<String, RevisionError> {
    let Some(work) = repo.work_dir() else {
        return Ok(String::new());
    };
    let canon = |p: &Path| {
        std::fs::canonicalize(p).map_err(|source| RevisionError::Path {
            path: p.to_owned(),
            source,
        })
    };
    let (work, spec) = (canon(work)?, canon(spec_root)?);
    let rel = spec
        .strip_prefix(&work)
        .map_err(|_| RevisionError::Outside(spec.clone()))?;
    Ok(super::source::slash_path(Path::new(""), rel))
}

/// Opens the spec at `commit` of `repo` (`prefix`: where the spec is in
/// it), exported into `dir`, selecting what `scope` covers.
///
/// # Errors
/// The revision cannot be exported, or its spec does not open.
pub fn open_at(
    repo: &Repo,
    prefix: &str,
    commit: ObjectId,
    dir: &Path,
    scope: &ComposeOptions,
) -> Result<Opened, RevisionError> {
    repo.export(commit, prefix, dir)
        .map_err(|source| RevisionError::Export { commit, source })?;
    Ok(super::open(
        dir,
        &load_options(repo, prefix, commit),
        scope,
    )?)
}

/// How the spec at `commit` of `repo` (exported elsewhere) is loaded:
/// its pinned blocks read from the repository's history at that commit.
pub fn load_options(repo: &Repo, prefix: &str, commit: ObjectId) -> LoadOptions {
    LoadOptions {
        history: Some(History {
            repo: repo
                .work_dir()
                .map_or_else(|| repo.common_dir(), Path::to_path_buf),
            commit,
            prefix: prefix.to_owned(),
        }),
        ..LoadOptions::default()
    }
}
