//! `live`: target repos as they are -> [`LiveRepo`].
//!
//! A target repo is read at its default branch with gix: a bare
//! repository, or a work tree whose `.git` is read (uncommitted files in
//! the work tree do not count). A plain directory (such as the example
//! `infra-example/`) is read from disk. A repo that does not exist yet is
//! empty. Content is compared by git blob id, so a file whose id matches
//! is never read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::execution::{PROPOSAL_TRAILER, REJECTED_TRAILER};
use crate::git::{ObjectId, Repo, blob_id};
use crate::spec::walk;

/// Where target repos live on disk.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The infra repo (a work tree, a bare repo or a plain directory).
    pub infra: Option<PathBuf>,
    /// A directory holding one repo per target, as `<name>` or `<name>.git`.
    pub repos: Option<PathBuf>,
}

impl Sources {
    /// Where the repo `name` is, if it exists; `infra_name` names the
    /// infra repo, which `infra` places when set.
    pub fn locate(&self, name: &str, infra_name: &str) -> Option<PathBuf> {
        if name == infra_name
            && let Some(path) = &self.infra
        {
            return Some(path.clone());
        }
        let dir = self.repos.as_ref()?;
        [dir.join(name), dir.join(format!("{name}.git"))]
            .into_iter()
            .find(|p| p.is_dir())
    }
}

/// Reading a repo failed; `at` names the repo (and path).
#[derive(Debug, thiserror::Error)]
#[error("{at}: {what}")]
pub struct Error {
    pub at: String,
    pub what: What,
}

/// Why a repo could not be read.
#[derive(Debug, thiserror::Error)]
pub enum What {
    #[error(transparent)]
    Git(#[from] crate::git::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    TooMany(#[from] walk::OverBudget),
    #[error("{0}")]
    Refused(String),
    #[error("not a regular file")]
    NotAFile,
    #[error("not a directory")]
    NotADirectory,
    #[error("the repo does not exist")]
    Absent,
    #[error("blob {0} is missing")]
    MissingBlob(ObjectId),
}

impl Error {
    /// Whether reading again may succeed unchanged (see
    /// [`crate::git::Error::is_transient`]); a missing blob or branch,
    /// a file that is not a directory, are not.
    pub fn is_transient(&self) -> bool {
        match &self.what {
            What::Git(e) => e.is_transient(),
            What::Io(_) => true,
            What::TooMany(_)
            | What::Refused(_)
            | What::NotAFile
            | What::NotADirectory
            | What::Absent
            | What::MissingBlob(_) => false,
        }
    }
}

enum Source {
    Absent,
    /// Boxed: an opened repository is large beside the other variants.
    Git {
        repo: Box<Repo>,
        tree: Option<ObjectId>,
    },
    Dir(PathBuf),
}

/// One target repo as it is now.
pub struct LiveRepo {
    pub name: String,
    /// Where it was read from; `None` when it does not exist yet.
    pub path: Option<PathBuf>,
    /// The commit of the default branch, for a git repository with commits.
    pub base: Option<ObjectId>,
    source: Source,
}

impl LiveRepo {
    /// Opens the repo `name` at `path` (`None`: it does not exist yet) and
    /// finds `branch`.
    ///
    /// # Errors
    /// An unreadable repository, or one with commits but no such branch.
    pub fn open(name: &str, path: Option<&Path>, branch: &str) -> Result<LiveRepo, Error> {
        let fail = |what: What| Error {
            at: path.map_or_else(|| name.to_owned(), |p| p.display().to_string()),
            what,
        };
        let (source, base) = match path {
            None => (Source::Absent, None),
            Some(p) => match Repo::open(p).map_err(|e| fail(e.into()))? {
                Some(repo) => {
                    let head = repo.branch(branch).map_err(|e| fail(e.into()))?;
                    let source = Source::Git {
                        repo: Box::new(repo),
                        tree: head.map(|h| h.tree),
                    };
                    (source, head.map(|h| h.commit))
                }
                None if p.is_dir() => (Source::Dir(p.to_owned()), None),
                None => return Err(fail(What::NotADirectory)),
            },
        };
        Ok(LiveRepo {
            name: name.to_owned(),
            path: path.map(Path::to_owned),
            base,
            source,
        })
    }

    /// Whether the repo exists.
    pub fn exists(&self) -> bool {
        !matches!(self.source, Source::Absent)
    }

    /// Whether a three-way merge base can be read from this repo (a git
    /// repository; a plain directory has no object database).
    pub fn has_history(&self) -> bool {
        matches!(self.source, Source::Git { .. })
    }

    /// An error reading `path` of this repo.
    pub(crate) fn error(&self, path: &str, e: impl Into<What>) -> Error {
        Error {
            at: format!("{}:{path}", self.name),
            what: e.into(),
        }
    }

    /// What a plain directory holds that druppie does not read.
    fn refused(&self, refused: &walk::Refused) -> Error {
        let what = match refused {
            walk::Refused::Symlink { .. } => What::Refused(
                "is a symbolic link; druppie follows no links in a plain directory".to_owned(),
            ),
            walk::Refused::Io { source, .. } => {
                What::Io(std::io::Error::new(source.kind(), source.to_string()))
            }
            other => What::Refused(other.to_string()),
        };
        self.error(refused.rel(), what)
    }

    /// The entries right below `dir` of a git repo's tree (name, whether
    /// a directory, id: [`crate::git::Repo::entries`]); `None` for a
    /// plain directory, whose directories have no ids.
    ///
    /// # Errors
    /// An unreadable tree.
    pub fn entries(&self, dir: &str) -> Result<Option<Vec<(String, bool, ObjectId)>>, Error> {
        match &self.source {
            Source::Absent | Source::Git { tree: None, .. } => Ok(Some(Vec::new())),
            Source::Git {
                repo,
                tree: Some(tree),
            } => repo
                .entries(*tree, dir)
                .map(Some)
                .map_err(|e| self.error(dir, e)),
            Source::Dir(_) => Ok(None),
        }
    }

    /// Files under `dir` (empty: the whole repo): path in the repo -> blob
    /// id. A plain directory's files are read and hashed (`.git`
    /// directories skipped); a symbolic link below its root is an error.
    ///
    /// # Errors
    /// An unreadable tree or file.
    pub fn files_under(&self, dir: &str) -> Result<BTreeMap<String, ObjectId>, Error> {
        match &self.source {
            Source::Absent | Source::Git { tree: None, .. } => Ok(BTreeMap::new()),
            Source::Git {
                repo,
                tree: Some(tree),
            } => repo.files_under(*tree, dir).map_err(|e| self.error(dir, e)),
            Source::Dir(root) => {
                // The spec's checked walk: a plain directory (such as the
                // spec checkout's `infra-example/`) is read without
                // following a link anywhere below its root.
                let mut unbounded = usize::MAX;
                let walked =
                    walk::walk(root, dir, &mut unbounded).map_err(|e| self.error(dir, e))?;
                let in_git = |rel: &str| rel.split('/').any(|s| s == ".git");
                if let Some(refused) = walked.refused.iter().find(|r| !in_git(r.rel())) {
                    return Err(self.refused(refused));
                }
                let mut out = BTreeMap::new();
                for file in walked.files.iter().filter(|f| !in_git(&f.rel)) {
                    let bytes = std::fs::read(&file.disk).map_err(|e| self.error(&file.rel, e))?;
                    out.insert(file.rel.clone(), blob_id(&bytes));
                }
                Ok(out)
            }
        }
    }

    /// The bytes of the file at `path` whose blob id is `id`.
    ///
    /// # Errors
    /// The blob or file cannot be read.
    pub fn read(&self, path: &str, id: ObjectId) -> Result<Vec<u8>, Error> {
        match &self.source {
            Source::Absent => Err(self.error(path, What::Absent)),
            Source::Git { repo, .. } => repo
                .blob(id)
                .map_err(|e| self.error(path, e))?
                .ok_or_else(|| self.error(path, What::MissingBlob(id))),
            Source::Dir(root) => match walk::no_link_on_the_way(root, path) {
                Ok(Some(walk::Kind::File)) => {
                    std::fs::read(root.join(path)).map_err(|e| self.error(path, e))
                }
                Ok(_) => Err(self.error(path, What::NotAFile)),
                Err(refused) => Err(self.refused(&refused)),
            },
        }
    }

    /// A blob from the repo's history (the base of a three-way merge);
    /// `None` when it is not there.
    pub fn historic(&self, id: ObjectId) -> Option<Vec<u8>> {
        match &self.source {
            Source::Git { repo, .. } => repo.blob(id).ok().flatten(),
            _ => None,
        }
    }
}

/// A `druppie/…` branch of a target repo (a proposal, open or not), or
/// a rejected proposal kept under `refs/druppie/rejected/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub repo: String,
    /// The branch, or the full name of a rejected proposal's ref.
    pub branch: String,
    /// Its tip commit, hex.
    pub tip: String,
    /// The tip's author, when the tip is not druppie's: a person added
    /// commits to the proposal.
    pub edited_by: Option<String>,
    /// The tip's `Druppie-Proposal` trailer (of a rejected proposal:
    /// its `Druppie-Rejected` trailer), when druppie signed the tip.
    pub id: Option<String>,
}

impl LiveRepo {
    /// The `druppie/…` branches of the repo and its rejected proposals.
    /// A tip is druppie's when `own` signed it; without `own` (a diff
    /// with no signing key), when it carries a `Druppie-Plan` trailer.
    ///
    /// # Errors
    /// The refs or a tip cannot be read.
    pub fn proposals(
        &self,
        own: Option<&crate::git::sign::OwnKey>,
    ) -> Result<Vec<Proposal>, Error> {
        let Source::Git { repo, .. } = &self.source else {
            return Ok(Vec::new());
        };
        let fail = |e: crate::git::Error| self.error("refs/heads/druppie/", e);
        let mut refs = repo.refs_under("refs/heads/druppie/").map_err(fail)?;
        refs.extend(repo.refs_under(REJECTED).map_err(fail)?);
        let mut out = Vec::new();
        for (name, head) in refs {
            let (author, message) = repo.author_and_message(head.commit).map_err(fail)?;
            let trailer = |key: &str| trailer(&message, key);
            let druppies = match own {
                Some(key) => repo.signed_by(head.commit, key).map_err(|e| {
                    self.error(&name, crate::git::Error::new(crate::error::chain(&e)))
                })?,
                None => trailer("Druppie-Plan").is_some(),
            };
            // A rejected proposal is known by the commit druppie signs
            // on top of it when it records the rejection, never by the
            // proposal itself, which anyone may copy there.
            let (branch, id) = match name.strip_prefix("refs/heads/") {
                Some(branch) => (branch.to_owned(), trailer(PROPOSAL_TRAILER)),
                None => (name.clone(), trailer(REJECTED_TRAILER)),
            };
            out.push(Proposal {
                repo: self.name.clone(),
                branch,
                tip: head.commit.to_string(),
                edited_by: (!druppies).then_some(author),
                id: id.filter(|_| druppies),
            });
        }
        Ok(out)
    }
}

/// Where rejected proposals are kept ([`crate::execution::rejected_ref`]).
const REJECTED: &str = "refs/druppie/rejected/";

/// The value of the first `key: value` trailer line of a commit message.
pub fn trailer(message: &str, key: &str) -> Option<String> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .map(str::to_owned)
}

/// How a repo was shown to the user: its path, or "does not exist yet".
pub fn describe(repo: &LiveRepo) -> String {
    match (&repo.path, &repo.source) {
        (None, _) => "new repo".to_owned(),
        (Some(p), Source::Dir(_)) => format!("plain directory {}", p.display()),
        (Some(_), Source::Git { tree: None, .. }) => "empty repository".to_owned(),
        (Some(_), _) => match repo.base {
            Some(base) => at(base),
            None => "empty repository".to_owned(),
        },
    }
}

/// `at <short commit>`: where a repo's change set starts.
pub fn at(base: ObjectId) -> String {
    format!("at {}", &base.to_string()[..12])
}
