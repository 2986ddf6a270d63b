//! Catching the audit trail up with the forges before applying:
//! commits druppie pushed that the trail lacks (a run stopped between
//! the push and the record) are recorded as `applied` or `proposed`;
//! every proposal merged since is recorded as `approved` when its
//! environment names no approvers or an approver merged or approved it,
//! as `violation` otherwise; a pull request closed without merging is
//! `rejected`. A merged proposal is also `applied`: it is on the default
//! branch, which Flux applies. The verdict also goes onto the proposal: a comment on its
//! pull request, or a line in its git note.

use super::{Cache, NOTES, approvals};
use crate::audit::{self, Event, Kind, Recorded};
use crate::forge::{Forge, PullState};
use crate::git::sign::Signer;
use crate::git::write::Identity;
use crate::git::{ObjectId, Repo};
use crate::spec::model::Platform;

/// Where the comment with druppie's verdict is found again.
pub const VERDICT_MARKER: &str = "<!-- druppie:verdict -->";

pub struct Trail<'a> {
    pub spec_repo: &'a Repo,
    pub forge: &'a dyn Forge,
    pub cache: &'a Cache,
    pub signer: &'a Signer,
    pub identity: &'a Identity,
    pub spec_commit: Option<&'a str>,
    pub platform: &'a Platform,
}

/// A merge (or a rejection) to record.
struct Verdict {
    repo: String,
    branch: String,
    /// The login, or name and email, of whoever merged or closed it.
    who: Vec<String>,
    actor: String,
    /// Logins that approved in a review.
    reviewers: Vec<String>,
    plans: Vec<String>,
    env: Option<String>,
    /// The merge commit, or the rejected proposal's commit.
    commit: String,
    /// The proposal's commit.
    proposal: Option<String>,
    merged: bool,
}

impl Trail<'_> {
    /// Records what the trail lacks for `targets` (repo, default
    /// branch); returns one line per event recorded.
    ///
    /// # Errors
    /// The trail cannot be read or written, or a forge cannot be asked.
    pub fn catch_up(&self, targets: &[(String, String)]) -> Result<Vec<String>, String> {
        let known = audit::read(self.spec_repo, None).map_err(|e| e.to_string())?;
        let mut lines = Vec::new();
        for (repo, branch) in targets {
            let path = self.cache.path(repo);
            if !path.exists() {
                continue;
            }
            self.unrecorded(repo, branch, &known, &mut lines)?;
            let verdicts = match self.forge.pulls() {
                Some(_) => self.pull_verdicts(repo, &known)?,
                None => approvals::merged(repo, &path, branch)
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .map(|m| Verdict {
                        repo: repo.clone(),
                        who: vec![
                            m.merger_email.clone(),
                            m.merger_name.clone(),
                            m.merger_email.split('@').next().unwrap_or("").to_owned(),
                        ],
                        actor: format!("{} <{}>", m.merger_name, m.merger_email),
                        reviewers: Vec::new(),
                        branch: m.branch,
                        plans: m.plans,
                        env: m.env,
                        commit: m.merge,
                        proposal: Some(m.proposal),
                        merged: true,
                    })
                    .collect(),
            };
            for v in verdicts {
                // A rejection carries the proposal's own commit, which the
                // trail knows as proposed: tell the two apart by kind.
                let recorded = known.iter().any(|r| {
                    r.event.commit.as_deref() == Some(&v.commit)
                        && (v.merged || r.event.kind == Kind::Rejected)
                });
                if !recorded {
                    lines.push(self.record_verdict(&v)?);
                }
            }
        }
        Ok(lines)
    }

    fn unrecorded(
        &self,
        repo: &str,
        branch: &str,
        known: &[Recorded],
        lines: &mut Vec<String>,
    ) -> Result<(), String> {
        let known_commits: Vec<String> = known
            .iter()
            .filter_map(|r| r.event.commit.clone())
            .collect();
        let path = self.cache.path(repo);
        let missing =
            approvals::unrecorded(repo, &path, branch, &self.identity.email, &known_commits)
                .map_err(|e| e.to_string())?;
        for u in missing {
            let kind = if u.branch == branch {
                Kind::Applied
            } else {
                Kind::Proposed
            };
            let event = Event {
                kind,
                branch: (kind == Kind::Proposed).then(|| u.branch.clone()),
                ..self.event(
                    repo,
                    &u.plans,
                    u.env.as_ref(),
                    &self.identity.email,
                    &u.commit,
                )
            };
            self.record(&event)?;
            lines.push(format!(
                "{repo}: recorded {} of {} on {} (pushed by an earlier run)",
                kind.name(),
                &u.commit[..12],
                u.branch
            ));
        }
        Ok(())
    }

    /// The merged or closed pull requests of the proposals the trail
    /// knows for `repo`.
    fn pull_verdicts(&self, repo: &str, known: &[Recorded]) -> Result<Vec<Verdict>, String> {
        let pulls = self.forge.pulls().expect("called for pull-request forges");
        let mut seen = Vec::new();
        let mut out = Vec::new();
        // Newest first: the latest proposal on a branch names its plans.
        for r in known
            .iter()
            .rev()
            .filter(|r| r.event.kind == Kind::Proposed && r.event.repo == repo)
        {
            let Some(branch) = &r.event.branch else {
                continue;
            };
            if seen.contains(&branch) {
                continue;
            }
            seen.push(branch);
            let Some(pull) = pulls.find(repo, branch).map_err(|e| e.to_string())? else {
                continue;
            };
            let (merged, commit) = match (pull.state, &pull.merge_commit, &pull.head_commit) {
                (PullState::Merged, Some(m), _) => (true, m.clone()),
                (PullState::Closed, _, Some(h)) => (false, h.clone()),
                _ => continue,
            };
            let reviewers = if merged {
                pulls
                    .approvals(repo, pull.number)
                    .map_err(|e| e.to_string())?
            } else {
                Vec::new()
            };
            let who = pull.merged_by.clone().unwrap_or_default();
            out.push(Verdict {
                repo: repo.to_owned(),
                branch: branch.clone(),
                who: vec![who.clone()],
                actor: who,
                reviewers,
                plans: r.event.plans.clone(),
                env: r.event.env.clone(),
                commit,
                proposal: pull.head_commit.clone(),
                merged,
            });
        }
        Ok(out)
    }

    fn record_verdict(&self, v: &Verdict) -> Result<String, String> {
        let approvers: Vec<&str> = v
            .env
            .as_deref()
            .and_then(|e| self.platform.environments.get(e))
            .map(|s| s.approvers.iter().map(|a| a.value.as_str()).collect())
            .unwrap_or_default();
        let by_approver = |names: &[String]| {
            names
                .iter()
                .any(|n| !n.is_empty() && approvers.contains(&n.as_str()))
        };
        let allowed = approvers.is_empty() || by_approver(&v.who) || by_approver(&v.reviewers);
        let kind = match (v.merged, allowed) {
            (false, _) => Kind::Rejected,
            (true, true) => Kind::Approved,
            (true, false) => Kind::Violation,
        };
        let event = Event {
            kind,
            branch: Some(v.branch.clone()),
            ..self.event(&v.repo, &v.plans, v.env.as_ref(), &v.actor, &v.commit)
        };
        self.record(&event)?;
        if v.merged {
            // Merged is on the default branch, which Flux applies.
            self.record(&Event {
                kind: Kind::Applied,
                ..event.clone()
            })?;
        }
        let verdict = match kind {
            Kind::Rejected => format!("rejected: closed without merging by {}", v.actor),
            Kind::Approved => format!("approved: merged by {}", v.actor),
            _ => format!(
                "VIOLATION: merged by {}, who is not an approver ({})",
                v.actor,
                approvers.join(", ")
            ),
        };
        let line = format!("{verdict} at {} in {}", event.time, v.commit);
        self.tell(v, &line)?;
        Ok(format!("{}: {}: {line}", v.repo, v.branch))
    }

    /// Puts the verdict on the proposal: a comment on its pull request,
    /// or a line added to its git note.
    fn tell(&self, v: &Verdict, line: &str) -> Result<(), String> {
        if let Some(pulls) = self.forge.pulls() {
            let Some(pull) = pulls.find(&v.repo, &v.branch).map_err(|e| e.to_string())? else {
                return Ok(());
            };
            return pulls
                .comment(&v.repo, pull.number, VERDICT_MARKER, line)
                .map_err(|e| e.to_string());
        }
        let path = self.cache.path(&v.repo);
        let cached = Repo::open(&path)
            .ok()
            .flatten()
            .ok_or_else(|| format!("{}: the cache cannot be opened", v.repo))?;
        let Some(proposal) = v.proposal.as_deref() else {
            return Ok(());
        };
        let proposal =
            ObjectId::from_hex(proposal.as_bytes()).map_err(|e| format!("{}: {e}", v.repo))?;
        let earlier = cached
            .note(NOTES, proposal)
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        super::note(
            self.cache,
            &cached,
            &v.repo,
            &self.forge.url(&v.repo),
            proposal,
            &format!("{earlier}\n{line}\n"),
            self.identity,
            self.signer,
            super::now(),
        )
        .map_err(|e| e.to_string())
    }

    fn event(
        &self,
        repo: &str,
        plans: &[String],
        env: Option<&String>,
        actor: &str,
        commit: &str,
    ) -> Event {
        Event {
            kind: Kind::Applied,
            time: super::stamp(super::now()),
            actor: actor.to_owned(),
            plans: plans.to_vec(),
            env: env.cloned(),
            repo: repo.to_owned(),
            commit: Some(commit.to_owned()),
            branch: None,
            spec_commit: self.spec_commit.map(str::to_owned),
        }
    }

    fn record(&self, event: &Event) -> Result<(), String> {
        audit::record(
            self.spec_repo,
            event,
            self.signer,
            self.identity,
            super::now(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}
