//! Cross-checking the trail against the target repos: every commit
//! druppie signed on a branch of a target repo was recorded, so a trail
//! cut short (`git update-ref refs/heads/druppie-audit druppie-audit~3`)
//! or with events removed shows as the events it lacks.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::{AuditError, Recorded};
use crate::git::sign::OwnKey;
use crate::git::{Error, ObjectId, Repo};

/// A commit druppie signed that no event on the trail is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub repo: String,
    pub commit: String,
    /// Its `Druppie-Environment` trailer.
    pub env: Option<String>,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.repo, self.commit)?;
        if let Some(env) = &self.env {
            write!(f, " ({env})")?;
        }
        Ok(())
    }
}

/// The commits signed by `key` on any branch of the repo `name` (a
/// clone at `path`) that no event of `events` names, oldest first.
///
/// # Errors
/// The repo cannot be read.
pub fn missing(
    name: &str,
    path: &Path,
    events: &[Recorded],
    key: &OwnKey,
) -> Result<Vec<Missing>, AuditError> {
    let read = |why: String| AuditError::Read {
        source: Error::new(format!("{name}: {why}")),
    };
    let repo = Repo::open(path)
        .map_err(|source| AuditError::Read { source })?
        .ok_or_else(|| read("not a git repository".to_owned()))?;
    let out = Command::new("git")
        .args([
            "log",
            "--branches",
            "--reverse",
            "--format=%H%x1f%(trailers:key=Druppie-Environment,valueonly,separator=)%x1e",
        ])
        .current_dir(path)
        .output()
        .map_err(|e| read(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        // A repo without commits has no branches to read.
        return Ok(Vec::new());
    }
    let recorded: BTreeSet<&str> = events
        .iter()
        .filter(|r| r.event.repo == name)
        .filter_map(|r| r.event.commit.as_deref())
        .collect();
    let mut found = Vec::new();
    for record in String::from_utf8_lossy(&out.stdout).split('\x1e') {
        let record = record.trim_start_matches('\n');
        let Some((commit, env)) = record.split_once('\x1f') else {
            continue;
        };
        if recorded.contains(commit) {
            continue;
        }
        let id = ObjectId::from_hex(commit.as_bytes())
            .map_err(|e| read(format!("bad commit id {commit}: {e}")))?;
        let ours = repo
            .signed_by(id, key)
            .map_err(|source| AuditError::Verify { commit: id, source })?;
        if ours {
            let env = env.trim();
            found.push(Missing {
                repo: name.to_owned(),
                commit: commit.to_owned(),
                env: (!env.is_empty()).then(|| env.to_owned()),
            });
        }
    }
    Ok(found)
}
