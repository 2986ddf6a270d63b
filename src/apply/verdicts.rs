//! The verdicts on proposals the trail knows: merged or closed, read
//! from plain git (merge commits, deleted branches) or from the forge's
//! pull requests; and the promotion a merged proposal makes.

use std::collections::BTreeSet;

use super::approvals::Target;
use super::trail::{Trail, TrailError, Verdict, actor};
use crate::audit::{self, Event, Kind};
use crate::forge::PullState;

impl Trail<'_> {
    /// Plain git: the proposals the trail knows that the default branch
    /// merged, each judged by the merge commit's signature.
    pub(super) fn merge_verdicts(
        &self,
        target: &Target,
        known: &[audit::Recorded],
        ignored: &mut Vec<String>,
    ) -> Result<Vec<Verdict>, TrailError> {
        let proposed: BTreeSet<String> = known
            .iter()
            .filter(|r| r.event.kind == Kind::Proposed && r.event.repo == target.name)
            .filter_map(|r| r.event.commit.clone())
            .collect();
        let mut out = self.gone_verdicts(target, known)?;
        for m in target.merged(&proposed, ignored)? {
            let approval = self.signed_approval(target, &m)?;
            let retire = target
                .landed_whole(&m.tip, &m.proposal)?
                .then(|| m.tip.clone());
            out.push(Verdict {
                repo: target.name.to_owned(),
                actor: actor(&m),
                branch: m.branch,
                plans: m.plans,
                env: m.env,
                commit: m.merge,
                proposal: Some(m.proposal),
                retire,
                merged: true,
                approval,
            });
        }
        Ok(out)
    }

    /// Plain git: proposals whose branch a person deleted since the
    /// trail last spoke of them: merged first (then judged like any
    /// merge), or closed without merging (`rejected`).
    fn gone_verdicts(
        &self,
        target: &Target,
        known: &[audit::Recorded],
    ) -> Result<Vec<Verdict>, TrailError> {
        // The last event on each branch of this repo: only a proposal
        // still waiting for its verdict is looked at.
        let mut last: std::collections::BTreeMap<&str, &Event> = std::collections::BTreeMap::new();
        for r in known.iter().filter(|r| r.event.repo == target.name) {
            if let Some(branch) = &r.event.branch {
                last.insert(branch, &r.event);
            }
        }
        let present: BTreeSet<String> = target.proposal_branches()?.into_iter().collect();
        let mut out = Vec::new();
        for (branch, e) in last {
            let (Kind::Proposed, Some(proposal)) = (e.kind, &e.commit) else {
                continue;
            };
            if present.contains(branch) {
                continue;
            }
            let verdict = match target.gone(branch, proposal)? {
                Err(()) => continue,
                Ok(Some(m)) => {
                    let approval = self.signed_approval(target, &m)?;
                    Verdict {
                        repo: target.name.to_owned(),
                        branch: m.branch.clone(),
                        actor: actor(&m),
                        plans: m.plans.clone(),
                        env: m.env.clone(),
                        commit: m.merge.clone(),
                        proposal: Some(m.proposal.clone()),
                        retire: None,
                        merged: true,
                        approval,
                    }
                }
                // Deleted after a person took it over: closed for a fresh
                // proposal, which nothing then holds back.
                Ok(None) => Verdict {
                    repo: target.name.to_owned(),
                    branch: branch.to_owned(),
                    actor: "whoever deleted the branch (plain git does not say)".to_owned(),
                    plans: e.plans.clone(),
                    env: e.env.clone(),
                    commit: proposal.clone(),
                    proposal: Some(proposal.clone()),
                    retire: (!target.was_held(proposal)?).then(|| proposal.clone()),
                    merged: false,
                    approval: Ok(None),
                },
            };
            out.push(verdict);
        }
        Ok(out)
    }

    /// The merged or closed pull requests of the proposals the trail
    /// knows for `repo`.
    pub(super) fn pull_verdicts(
        &self,
        repo: &str,
        known: &[audit::Recorded],
    ) -> Result<Vec<Verdict>, TrailError> {
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
            let Some(pull) = pulls.find(repo, branch)? else {
                continue;
            };
            let (merged, commit) = match (pull.state, &pull.merge_commit, &pull.head_commit) {
                (PullState::Merged, Some(m), _) => (true, m.clone()),
                (PullState::Closed, _, Some(h)) => (false, h.clone()),
                _ => continue,
            };
            let who = pull.merged_by.clone().unwrap_or_default();
            let approval = if merged {
                let reviewers = pulls.approvals(repo, pull.number)?;
                self.forge_approval(r.event.env.as_ref(), &who, &reviewers)?
            } else {
                Ok(None)
            };
            out.push(Verdict {
                repo: repo.to_owned(),
                branch: branch.clone(),
                actor: who,
                plans: r.event.plans.clone(),
                env: r.event.env.clone(),
                commit,
                retire: pull.head_commit.clone(),
                proposal: pull.head_commit.clone(),
                merged,
                approval,
            });
        }
        Ok(out)
    }
}

/// The environment the proposal `v` judges promotes its change from, as
/// its `proposed` event says: the event of its own commit, else the
/// latest on its branch (a person's commit on top of druppie's).
pub(super) fn promoted_from(known: &[audit::Recorded], v: &Verdict) -> Option<String> {
    let proposed = known
        .iter()
        .rev()
        .filter(|r| r.event.kind == Kind::Proposed && r.event.repo == v.repo);
    let own = proposed
        .clone()
        .find(|r| v.proposal.is_some() && r.event.commit == v.proposal);
    own.or_else(|| {
        proposed
            .clone()
            .find(|r| r.event.branch.as_deref() == Some(v.branch.as_str()))
    })
    .and_then(|r| r.event.from.clone())
}
