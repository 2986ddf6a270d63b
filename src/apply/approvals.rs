//! Reading druppie's own state in a plain-git target repo, trusting only
//! what druppie signed: its commits at the tips of the default branch and
//! of `druppie/…` branches that the trail lacks ([`unrecorded`]), and the
//! proposals the trail knows that the default branch has since merged
//! ([`merged`]). A commit that looks like druppie's (its committer email,
//! or `Druppie-` trailers) without druppie's signature is ignored and
//! reported.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::ApplyError;
use crate::git::sign::OwnKey;
use crate::git::{ObjectId, Repo};

/// How far down a branch druppie looks for its own commits.
const DEPTH: &str = "100";

/// How a proposal reached the default branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A merge commit brought it in: its committer merged, its signature
    /// is the approval.
    Merge,
    /// The default branch was moved to the proposal itself: no commit
    /// says who did it.
    FastForward,
    /// The proposal's changes reached the default branch in a commit
    /// that does not contain the proposal (a squash, a rebase, a
    /// cherry-pick): that commit's signature is the approval.
    Squash,
}

/// A merged proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub branch: String,
    /// The proposal commit druppie wrote.
    pub proposal: String,
    /// The branch's tip: the proposal, or commits a person added on it.
    pub tip: String,
    /// The commit on the default branch that brought it in (the proposal
    /// itself when fast-forwarded).
    pub merge: String,
    pub style: Style,
    pub merger_name: String,
    pub merger_email: String,
    /// From the proposal commit's trailers.
    pub plans: Vec<String>,
    pub env: Option<String>,
}

/// A commit druppie pushed that the audit trail does not have (apply was
/// stopped between the push and the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecorded {
    pub commit: String,
    pub branch: String,
    pub plans: Vec<String>,
    pub env: Option<String>,
    /// The environment the commit promotes the change from.
    pub from: Option<String>,
}

/// A bare clone of a target repo, read as druppie trusts it.
pub struct Target<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    pub default: &'a str,
    /// druppie's own key: only commits it signed are druppie's.
    pub key: &'a OwnKey,
    /// druppie's committer email, to spot commits posing as druppie's.
    pub email: &'a str,
}

/// One commit of a `git log` listing.
#[derive(Clone)]
struct Listed {
    commit: String,
    committer_name: String,
    committer_email: String,
    plans: Vec<String>,
    env: Option<String>,
    from: Option<String>,
}

impl Listed {
    /// It presents itself as druppie's.
    fn claims(&self, email: &str) -> bool {
        self.committer_email == email || !self.plans.is_empty() || self.env.is_some()
    }
}

impl Target<'_> {
    fn git(&self, args: &[&str]) -> Result<(bool, String), ApplyError> {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path)
            .output()
            .map_err(|source| ApplyError::Spawn {
                repo: self.name.to_owned(),
                source,
            })?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    }

    fn repo(&self) -> Result<Repo, ApplyError> {
        Repo::open(self.path)
            .map_err(ApplyError::git(self.name, "open the clone"))?
            .ok_or_else(|| ApplyError::not_cached(self.name))
    }

    fn signed(&self, repo: &Repo, commit: &str) -> Result<bool, ApplyError> {
        let id = ObjectId::from_hex(commit.as_bytes())
            .map_err(|_| ApplyError::bad_commit(self.name, commit))?;
        repo.signed_by(id, self.key)
            .map_err(|source| ApplyError::Verify {
                repo: self.name.to_owned(),
                source,
            })
    }

    /// Commits of `args` (a `git log` range), with committer and trailers.
    fn log(&self, args: &[&str]) -> Result<Vec<Listed>, ApplyError> {
        let mut full = vec![
            "log",
            "--format=%H%x1f%cn%x1f%ce%x1f%(trailers:key=Druppie-Plan,valueonly,separator=%x2C )%x1f%(trailers:key=Druppie-Environment,valueonly,separator=)%x1f%(trailers:key=Druppie-Promoted-From,valueonly,separator=)%x1e",
        ];
        full.extend_from_slice(args);
        let (ok, out) = self.git(&full)?;
        if !ok {
            return Ok(Vec::new());
        }
        Ok(out
            .split('\x1e')
            .filter_map(|r| {
                let f: Vec<&str> = r.trim_start_matches('\n').split('\x1f').collect();
                let [commit, name, email, plans, env, from] = f.as_slice() else {
                    return None;
                };
                Some(Listed {
                    commit: (*commit).to_owned(),
                    committer_name: (*name).to_owned(),
                    committer_email: (*email).to_owned(),
                    plans: plans
                        .trim()
                        .split(", ")
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    env: Some(env.trim().to_owned()).filter(|e| !e.is_empty()),
                    from: Some(from.trim().to_owned()).filter(|e| !e.is_empty()),
                })
            })
            .collect())
    }

    /// The `druppie/…` branches, by name. git is always given full ref
    /// names ([`full`]): a short name resolves to a tag before a branch,
    /// and anyone who can push a tag could name one `main` or
    /// `druppie/<env>/<plan>`.
    /// The `druppie/…` branches of the clone, by short name, in order
    /// (read in this process: a catch-up asks three times per repo).
    pub(super) fn proposal_branches(&self) -> Result<Vec<String>, ApplyError> {
        let refs = self
            .repo()?
            .refs_under("refs/heads/druppie/")
            .map_err(ApplyError::git(self.name, "list the proposal branches"))?;
        let mut names: Vec<String> = refs
            .into_iter()
            .filter_map(|(name, _)| name.strip_prefix("refs/heads/").map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The default branch's full ref name.
    fn default_ref(&self) -> String {
        full(self.default)
    }

    /// druppie's signed commits at the tips of the default branch
    /// (first-parent line) and of every `druppie/…` branch that are not
    /// in `known`, oldest first; the walk down a branch stops at the
    /// first known commit or the first commit druppie did not sign.
    /// Commits posing as druppie's go into `ignored`.
    ///
    /// # Errors
    /// git fails on the clone.
    pub fn unrecorded(
        &self,
        known: &BTreeSet<String>,
        ignored: &mut Vec<String>,
    ) -> Result<Vec<Unrecorded>, ApplyError> {
        let repo = self.repo()?;
        let mut branches = vec![self.default.to_owned()];
        branches.extend(self.proposal_branches()?);
        let mut out: Vec<Unrecorded> = Vec::new();
        for branch in branches {
            // A tip recorded already ends the walk below at once: no
            // `git log` (after each of druppie's own commits, the usual).
            let tip = repo.resolve(&full(&branch)).map(|id| id.to_string());
            if tip.is_ok_and(|tip| known.contains(&tip) || out.iter().any(|u| u.commit == tip)) {
                continue;
            }
            let mut found = Vec::new();
            for c in self.log(&["--first-parent", "-n", DEPTH, &full(&branch), "--"])? {
                // A proposal builds on the default branch: what was found
                // there is not found again.
                if known.contains(&c.commit) || out.iter().any(|u| u.commit == c.commit) {
                    break;
                }
                if !self.signed(&repo, &c.commit)? {
                    if c.claims(self.email) {
                        ignored.push(self.posing(&c.commit, &branch));
                    }
                    break;
                }
                found.push(Unrecorded {
                    commit: c.commit,
                    branch: branch.clone(),
                    plans: c.plans,
                    env: c.env,
                    from: c.from,
                });
            }
            found.reverse();
            out.extend(found);
        }
        Ok(out)
    }

    fn posing(&self, commit: &str, branch: &str) -> String {
        format!(
            "{}: ignored commit {commit} on {branch}: it looks like druppie's but is not signed by druppie's key",
            self.name
        )
    }

    /// The proposals of `proposed` (commits the trail records as
    /// proposed in this repo) that a `druppie/…` branch holds and the
    /// default branch has merged.
    ///
    /// # Errors
    /// git fails on the clone.
    pub fn merged(
        &self,
        proposed: &BTreeSet<String>,
        ignored: &mut Vec<String>,
    ) -> Result<Vec<Merged>, ApplyError> {
        let repo = self.repo()?;
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for branch in self.proposal_branches()? {
            let line = self.log(&["--first-parent", "-n", DEPTH, &full(&branch), "--"])?;
            // The newest proposal druppie made on this branch; commits a
            // person added on top of it are theirs to merge with it.
            let Some(at) = line.iter().position(|c| proposed.contains(&c.commit)) else {
                if let Some(tip) = line.first()
                    && tip.claims(self.email)
                    && !self.signed(&repo, &tip.commit)?
                {
                    ignored.push(self.posing(&tip.commit, &branch));
                }
                continue;
            };
            let proposal = &line[at];
            if !seen.insert(proposal.commit.clone()) || !self.signed(&repo, &proposal.commit)? {
                continue;
            }
            let Some((merge, style)) = self.landing(proposal)? else {
                continue;
            };
            out.push(Merged {
                branch,
                tip: line[0].commit.clone(),
                proposal: proposal.commit.clone(),
                merge: merge.commit,
                style,
                merger_name: merge.committer_name,
                merger_email: merge.committer_email,
                plans: proposal.plans.clone(),
                env: proposal.env.clone(),
            });
        }
        Ok(out)
    }

    /// A proposal whose branch is gone (a person deleted it): where it
    /// reached the default branch (merged, then the branch deleted), or
    /// `Ok(None)` when it never did (closed without merging). `Err` of
    /// the inner value: the commit is not in the clone or not druppie's,
    /// so nothing can be said.
    pub fn gone(
        &self,
        branch: &str,
        proposal: &str,
    ) -> Result<Result<Option<Merged>, ()>, ApplyError> {
        let repo = self.repo()?;
        let Some(listed) = self.log(&["-1", proposal, "--"])?.into_iter().next() else {
            return Ok(Err(()));
        };
        if !self.signed(&repo, &listed.commit)? {
            return Ok(Err(()));
        }
        Ok(Ok(self.landing(&listed)?.map(|(merge, style)| Merged {
            branch: branch.to_owned(),
            proposal: listed.commit.clone(),
            tip: listed.commit.clone(),
            merge: merge.commit,
            style,
            merger_name: merge.committer_name,
            merger_email: merge.committer_email,
            plans: listed.plans.clone(),
            env: listed.env.clone(),
        })))
    }

    /// Whether a person took `proposal` over before its branch went:
    /// druppie's note on a commit built on it says it held the proposal
    /// ([`super::HELD_MARKER`]).
    pub fn was_held(&self, proposal: &str) -> Result<bool, ApplyError> {
        let (_, listed) = self.git(&["notes", &format!("--ref={}", super::NOTES), "list"])?;
        for line in listed.lines() {
            let Some((note, commit)) = line.split_once(' ') else {
                continue;
            };
            if commit == proposal {
                continue;
            }
            let (descends, _) = self.git(&["merge-base", "--is-ancestor", proposal, commit])?;
            if !descends {
                continue;
            }
            let (_, text) = self.git(&["cat-file", "blob", note])?;
            if text.contains(super::HELD_MARKER) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether everything on `tip` reached the default branch: it is an
    /// ancestor of it (merged), or it is the proposal itself (squashed
    /// or rebased whole).
    pub fn landed_whole(&self, tip: &str, proposal: &str) -> Result<bool, ApplyError> {
        if tip == proposal {
            return Ok(true);
        }
        let (ancestor, _) = self.git(&["merge-base", "--is-ancestor", tip, &self.default_ref()])?;
        Ok(ancestor)
    }

    /// Where `proposal` reached the default branch, and how: the first
    /// commit of the default branch's own (first-parent) line that
    /// contains it, whichever parent it came in through (a fix-up commit
    /// on the proposal before the merge included); the proposal itself
    /// when the branch was fast-forwarded to it; or, when no commit
    /// contains it, the first one after which every path the proposal
    /// changes reads as in the proposal (a squash, a rebase). `None`
    /// while the proposal has not landed.
    fn landing(&self, proposal: &Listed) -> Result<Option<(Listed, Style)>, ApplyError> {
        let default = self.default_ref();
        let (contained, _) =
            self.git(&["merge-base", "--is-ancestor", &proposal.commit, &default])?;
        let range = format!("{}..{default}", proposal.commit);
        if contained {
            // On the default branch's own line: it was moved to the
            // proposal, whatever came after.
            let (_, on_line) =
                self.git(&["rev-list", "--first-parent", "-n", "1000", &default, "--"])?;
            if on_line.lines().any(|c| c == proposal.commit) {
                return Ok(Some((proposal.clone(), Style::FastForward)));
            }
            let (_, descendants) = self.git(&["rev-list", "--ancestry-path", &range, "--"])?;
            let descendants: BTreeSet<&str> = descendants.lines().collect();
            let line = self.log(&["--first-parent", "--reverse", &range, "--"])?;
            return Ok(
                match line
                    .into_iter()
                    .find(|c| descendants.contains(c.commit.as_str()))
                {
                    Some(merge) => Some((merge, Style::Merge)),
                    None => Some((proposal.clone(), Style::FastForward)),
                },
            );
        }
        let base = format!("{}^", proposal.commit);
        let (_, paths) = self.git(&[
            "diff-tree",
            "-r",
            "--no-commit-id",
            "--name-only",
            "-z",
            &base,
            &proposal.commit,
        ])?;
        let paths: Vec<&str> = paths.split('\0').filter(|p| !p.is_empty()).collect();
        if paths.is_empty() {
            return Ok(None);
        }
        let specs: Vec<String> = paths.iter().map(|p| format!(":(literal){p}")).collect();
        let since = format!("{base}..{default}");
        for c in self.log(&["--first-parent", "--reverse", "-n", DEPTH, &since, "--"])? {
            let mut args = vec!["diff", "--quiet", &proposal.commit, &c.commit, "--"];
            args.extend(specs.iter().map(String::as_str));
            let (same, _) = self.git(&args)?;
            if same {
                return Ok(Some((c, Style::Squash)));
            }
        }
        Ok(None)
    }
}

/// `refs/heads/<branch>`.
fn full(branch: &str) -> String {
    format!("refs/heads/{branch}")
}
