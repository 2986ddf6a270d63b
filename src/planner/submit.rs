//! Opening a proposal: the checked files as one signed commit on the
//! branch `druppie/propose/<plan>` of the spec repo, and, where the forge
//! has pull requests, a pull request whose body is the approval card. On
//! plain git the branch is the proposal and its commit message carries
//! the card; merging it is the approval, as for every other proposal.

use std::path::Path;

use serde::Serialize;

use super::Checked;
use super::check::Base;
use crate::forge::{ForgeError, Proposal, Pulls};
use crate::git::sign::Signer;
use crate::git::write::{Identity, NewCommit, message};
use crate::secret::Scrubber;

/// Where the proposal branch goes.
pub enum Target<'a> {
    /// The branch is made in the repo of the base (a local checkout).
    Local,
    /// The branch is pushed to the spec repo at `url`, and a pull
    /// request opened on `repo` (`owner/name`) where there are pulls.
    Remote {
        url: &'a str,
        git_env: Vec<(String, String)>,
        pulls: Option<&'a dyn Pulls>,
        repo: &'a str,
    },
}

/// A proposal opened.
#[derive(Debug, Clone, Serialize)]
pub struct Opened {
    pub branch: String,
    pub commit: String,
    /// The pull request, where the forge has them.
    pub number: Option<i64>,
    pub url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("not proposed: {0}")]
    Refused(String),
    #[error(
        "a proposal for plan `{plan}` is open already (branch `{branch}`): merge or delete it first, or name the plan otherwise (--name)"
    )]
    Exists { plan: String, branch: String },
    /// A file would commit a value the configuration names as secret
    /// (the card shows it masked, so the reviewer would not see what
    /// merges).
    #[error(
        "not proposed: {path} would hold a secret the configuration names; take it out of the request"
    )]
    Secret { path: String },
    #[error("cannot write the proposal's commit")]
    Git(#[from] crate::git::Error),
    #[error("cannot push `{branch}` to the spec repo: {said}")]
    Push { branch: String, said: String },
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    #[error("the branch `{branch}` is pushed; opening its pull request failed")]
    Pull {
        branch: String,
        #[source]
        source: ForgeError,
    },
}

/// The proposal branch of `plan`.
pub fn branch(plan: &str) -> String {
    format!("druppie/propose/{plan}")
}

/// Opens `checked` as a proposal on `base`.
///
/// # Errors
/// It is not proposable, its branch exists, or the commit, the push or
/// the pull request fails.
pub fn submit(
    base: &Base<'_>,
    checked: &Checked,
    target: &Target<'_>,
    signer: Option<&Signer>,
    identity: &Identity,
    scrubber: &Scrubber,
    body_limit: usize,
) -> Result<Opened, SubmitError> {
    if let Some(why) = checked.refusal() {
        return Err(SubmitError::Refused(why));
    }
    let o = &checked.outline;
    let holds_secret = |text: &str| scrubber.scrub(text) != text;
    if let Some(f) = o.files.iter().find(|f| holds_secret(&f.text)) {
        return Err(SubmitError::Secret {
            path: f.path.clone(),
        });
    }
    let plan = o.plan.clone().unwrap_or_default();
    let branch = branch(&plan);
    let card = scrubber
        .scrub(&super::card::markdown(checked, body_limit))
        .into_owned();
    let stack = o
        .draft
        .as_ref()
        .map(|d| d.plan.stack.clone())
        .unwrap_or_default();
    let title = if stack.is_empty() {
        format!("plan: {plan}")
    } else {
        format!("plan: {plan} ({stack})")
    };
    let intent = o
        .draft
        .as_ref()
        .map(|d| d.plan.intent.clone())
        .unwrap_or_default();
    let changes: Vec<(String, Option<Vec<u8>>)> = o
        .files
        .iter()
        .map(|f| {
            let path = if base.prefix.is_empty() {
                f.path.clone()
            } else {
                format!("{}/{}", base.prefix, f.path)
            };
            (path, Some(f.text.clone().into_bytes()))
        })
        .collect();
    let mut trailers = vec![
        ("Druppie-Plan", plan.as_str()),
        ("Druppie-Planner", o.planner.as_str()),
    ];
    if !intent.is_empty() {
        trailers.push(("Druppie-Intent", intent.as_str()));
    }
    let written = base.repo.write_commit(
        &NewCommit {
            base: Some(base.commit),
            replace_tree: false,
            changes: &changes,
            message: message(&title, &card, &trailers),
            author: identity,
            time: crate::apply::now(),
        },
        signer,
    )?;
    let commit = written.commit.to_string();
    match target {
        Target::Local => {
            if base.repo.branch_head(&branch)?.is_some() {
                return Err(SubmitError::Exists { plan, branch });
            }
            base.repo
                .set_branch(&branch, None, written.commit, "druppie: propose")
                .map_err(|e| match e {
                    crate::git::Error::Moved { .. } => SubmitError::Exists {
                        plan: plan.clone(),
                        branch: branch.clone(),
                    },
                    other => SubmitError::Git(other),
                })?;
            Ok(Opened {
                branch,
                commit,
                number: None,
                url: None,
            })
        }
        Target::Remote {
            url,
            git_env,
            pulls,
            repo,
        } => {
            push(
                base.repo.common_dir().as_path(),
                url,
                git_env,
                &commit,
                &branch,
                scrubber,
            )
            .map_err(|e| match e {
                SubmitError::Push { said, .. } if said.contains("stale info") => {
                    SubmitError::Exists {
                        plan: plan.clone(),
                        branch: branch.clone(),
                    }
                }
                other => other,
            })?;
            let Some(pulls) = pulls else {
                return Ok(Opened {
                    branch,
                    commit,
                    number: None,
                    url: None,
                });
            };
            let pull = pulls
                .propose(
                    repo,
                    &Proposal {
                        head: &branch,
                        base: base.branch,
                        title: &title,
                        body: &card,
                        draft: false,
                    },
                )
                .map_err(|source| SubmitError::Pull {
                    branch: branch.clone(),
                    source,
                })?;
            Ok(Opened {
                branch,
                commit,
                number: Some(pull.number),
                url: Some(pull.url),
            })
        }
    }
}

/// Pushes `commit` to a new `branch` of `url`: refused when the branch
/// exists (a lease on its absence).
fn push(
    git_dir: &Path,
    url: &str,
    env: &[(String, String)],
    commit: &str,
    branch: &str,
    scrubber: &Scrubber,
) -> Result<(), SubmitError> {
    let target = format!("refs/heads/{branch}");
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["push", "--quiet"])
        .arg(format!("--force-with-lease={target}:"))
        .arg(url)
        .arg(format!("{commit}:{target}"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(SubmitError::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    Err(SubmitError::Push {
        branch: branch.to_owned(),
        said: scrubber
            .scrub(String::from_utf8_lossy(&out.stderr).trim())
            .into_owned(),
    })
}
