//! Approvals in plain git: a proposal branch (`druppie/…`) whose commit
//! has become reachable from the default branch was merged, and whoever
//! committed that merge approved it.

use std::path::Path;
use std::process::Command;

use super::ApplyError;

/// A merged proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub branch: String,
    /// The proposal commit druppie wrote.
    pub proposal: String,
    /// The commit on the default branch that brought it in.
    pub merge: String,
    pub merger_name: String,
    pub merger_email: String,
    /// From the proposal commit's trailers.
    pub plans: Vec<String>,
    pub env: Option<String>,
}

/// The proposals of the bare clone at `repo` that `default` has merged.
///
/// # Errors
/// git fails on the clone.
pub fn merged(name: &str, repo: &Path, default: &str) -> Result<Vec<Merged>, ApplyError> {
    let git = |args: &[&str]| -> Result<(bool, String), ApplyError> {
        let out = Command::new("git")
            .args(args)
            .current_dir(repo)
            .output()
            .map_err(|source| ApplyError::Spawn {
                repo: name.to_owned(),
                source,
            })?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        ))
    };
    let (ok, branches) = git(&[
        "for-each-ref",
        "--format=%(refname:short) %(objectname)",
        "refs/heads/druppie/",
    ])?;
    if !ok || branches.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for line in branches.lines() {
        let Some((branch, tip)) = line.split_once(' ') else {
            continue;
        };
        let (merged, _) = git(&["merge-base", "--is-ancestor", tip, default])?;
        if !merged {
            continue;
        }
        // The first commit of the default branch's own line that contains
        // the proposal: the merge.
        let range = format!("{tip}..{default}");
        let (_, path) = git(&[
            "rev-list",
            "--first-parent",
            "--ancestry-path",
            "--reverse",
            &range,
        ])?;
        let Some(merge) = path.lines().next().map(str::to_owned) else {
            continue;
        };
        let (_, who) = git(&["log", "-1", "--format=%cn%x00%ce", &merge])?;
        let (merger_name, merger_email) = who.split_once('\0').unwrap_or((who.as_str(), ""));
        let trailer = |key: &str| -> Result<String, ApplyError> {
            let format = format!("--format=%(trailers:key={key},valueonly)");
            Ok(git(&["log", "-1", &format, tip])?.1)
        };
        let plans = trailer("Druppie-Plan")?
            .split(", ")
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let env = Some(trailer("Druppie-Environment")?).filter(|e| !e.is_empty());
        out.push(Merged {
            branch: branch.to_owned(),
            proposal: tip.to_owned(),
            merge,
            merger_name: merger_name.to_owned(),
            merger_email: merger_email.to_owned(),
            plans,
            env,
        });
    }
    Ok(out)
}

/// A commit druppie pushed that the audit trail does not have (apply was
/// stopped between the push and the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecorded {
    pub commit: String,
    pub branch: String,
    pub plans: Vec<String>,
    pub env: Option<String>,
}

/// druppie's commits at the tips of `default` (first-parent line) and of
/// every `druppie/…` branch of the bare clone at `repo` that are not in
/// `known`, oldest first; the walk stops at the first known commit.
///
/// # Errors
/// git fails on the clone.
pub fn unrecorded(
    name: &str,
    repo: &Path,
    default: &str,
    email: &str,
    known: &[String],
) -> Result<Vec<Unrecorded>, ApplyError> {
    let git = |args: &[&str]| -> Result<String, ApplyError> {
        let out = Command::new("git")
            .args(args)
            .current_dir(repo)
            .output()
            .map_err(|source| ApplyError::Spawn {
                repo: name.to_owned(),
                source,
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let mut branches = vec![default.to_owned()];
    let proposals = git(&[
        "for-each-ref",
        "--format=%(refname:short)",
        "refs/heads/druppie/",
    ])?;
    branches.extend(proposals.lines().map(str::to_owned));
    let mut out = Vec::new();
    for branch in branches {
        let log = git(&[
            "log",
            "--first-parent",
            "-n",
            "100",
            "--format=%H %ce",
            &branch,
        ])?;
        let mut found = Vec::new();
        for line in log.lines() {
            let Some((commit, committer)) = line.split_once(' ') else {
                continue;
            };
            // A proposal builds on the default branch: what was found
            // there is not found again.
            let earlier = out.iter().any(|u: &Unrecorded| u.commit == commit);
            if committer != email || earlier || known.iter().any(|k| k == commit) {
                break;
            }
            let trailer = |key: &str| -> Result<String, ApplyError> {
                git(&[
                    "log",
                    "-1",
                    &format!("--format=%(trailers:key={key},valueonly)"),
                    commit,
                ])
            };
            found.push(Unrecorded {
                commit: commit.to_owned(),
                branch: branch.clone(),
                plans: trailer("Druppie-Plan")?
                    .split(", ")
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect(),
                env: Some(trailer("Druppie-Environment")?).filter(|e| !e.is_empty()),
            });
        }
        found.reverse();
        out.extend(found);
    }
    Ok(out)
}
