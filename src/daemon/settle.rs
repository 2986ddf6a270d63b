//! What a reconcile leaves for the API: the status of every plan ×
//! environment, the dry run (`/api/v1/diff`) and the metrics. A
//! reconcile of some plans only ([`super::last::Narrowed`]) takes the
//! others' as the last reconcile left them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::dry_run::DryRun;
use super::last::Narrowed;
use super::reconcile::{Ended, Reconciler};
use super::source::Revision;
use super::state::{PlanState, PlanStatus, Shared};
use crate::apply::{Done, Outcome, Step};
use crate::diff::Action;
use crate::diff::report;
use crate::spec::Opened;

/// Open proposals as (plan, repo, branch).
pub(super) type Proposals = BTreeSet<(String, String, String)>;

impl Reconciler {
    /// The status of every plan × environment, the dry run and metrics
    /// after `outcome`; `open`: every open proposal.
    pub(super) fn settle(
        &self,
        shared: &Shared,
        opened: &Opened,
        revision: &Revision,
        outcome: &Outcome,
        ended: &Ended,
        (narrowed, open): (Option<&Narrowed>, &Proposals),
    ) {
        let valid = &opened.valid;
        let started = std::time::Instant::now();
        // What the last reconcile left, by plan and environment.
        let last_statuses: HashMap<(&str, &str), &PlanStatus> = narrowed
            .map(|n| &n.last.statuses)
            .into_iter()
            .flatten()
            .map(|s| ((s.plan.as_str(), s.env.as_str()), s))
            .collect();
        let kept = |plan: &str, env: &str| {
            narrowed.filter(|n| !n.plans.contains(plan) && matches!(ended, Ended::Success))?;
            let mut kept = (*last_statuses.get(&(plan, env))?).clone();
            kept.spec_commit.clone_from(&revision.commit);
            Some(kept)
        };
        let by_plan = ByPlan::of(outcome);
        let statuses: Vec<PlanStatus> = opened
            .picks()
            .iter()
            .map(|pick| {
                let (plan, env) = (pick.plan_name(), pick.env_name());
                kept(plan, env).unwrap_or_else(|| status(plan, env, revision, &by_plan, ended))
            })
            .collect();
        let files: u64 = written_files(outcome);
        if matches!(ended, Ended::Success) {
            let now = crate::apply::now().0 as f64;
            shared.metrics.succeeded(now, files, pending(open));
        }
        tracing::debug!(elapsed = ?started.elapsed(), "statuses");
        let diff = (outcome.changes.clone())
            .map(|changes| Arc::new(DryRun::of(changes, report::intent(valid, None))));
        let mut view = shared.view.lock().expect("view lock");
        view.statuses = statuses;
        if diff.is_some() {
            view.diff = diff;
        }
        // The revision the dry run is of, shown with it, and how the
        // reconcile ended: `/api/v1/status` never shows these statuses
        // with the last reconcile's error (the reconcile's end sets it
        // again, with anything that failed after this).
        view.revision.clone_from(&revision.commit);
        view.dirty = revision.dirty;
        view.last_error = ended.error();
    }
}

/// The proposals waiting for a merge after `outcome`, as (plan, repo,
/// branch).
pub(super) fn open(outcome: &Outcome) -> Proposals {
    outcome
        .steps
        .iter()
        .filter_map(|s| match &s.done {
            Done::Proposed { branch, .. }
            | Done::AlreadyProposed { branch, .. }
            | Done::Held { branch, .. } => Some((s, branch)),
            _ => None,
        })
        .flat_map(|(s, branch)| {
            s.plans
                .iter()
                .map(|plan| (plan.clone(), s.repo.clone(), branch.clone()))
        })
        .collect()
}

/// How many proposals wait for a merge: one per branch.
fn pending(open: &Proposals) -> u64 {
    let branches: BTreeSet<(&str, &str)> = open
        .iter()
        .map(|(_, repo, branch)| (repo.as_str(), branch.as_str()))
        .collect();
    branches.len() as u64
}

/// An outcome's steps and change sets with files, by plan: each plan ×
/// environment's status reads its own, not all of them (10,000 plans).
struct ByPlan<'o> {
    steps: HashMap<&'o str, Vec<&'o Step>>,
    sets: HashMap<&'o str, Vec<&'o crate::diff::ChangeSet>>,
}

impl<'o> ByPlan<'o> {
    fn of(outcome: &'o Outcome) -> ByPlan<'o> {
        let mut steps: HashMap<&str, Vec<&Step>> = HashMap::new();
        for s in &outcome.steps {
            for plan in &s.plans {
                steps.entry(plan.as_str()).or_default().push(s);
            }
        }
        let mut sets: HashMap<&str, Vec<&crate::diff::ChangeSet>> = HashMap::new();
        let with_files = outcome.changes.iter().flat_map(|c| c.sets.iter());
        for cs in with_files.filter(|cs| !cs.files.is_empty()) {
            for plan in &cs.plans {
                sets.entry(plan.as_str()).or_default().push(cs);
            }
        }
        ByPlan { steps, sets }
    }
}

/// A plan × environment's state after the outcome `by_plan` holds.
fn status(
    plan: &str,
    env: &str,
    revision: &Revision,
    by_plan: &ByPlan<'_>,
    ended: &Ended,
) -> PlanStatus {
    let here = |e: &Option<String>| e.as_deref().is_none_or(|e| e == env);
    let steps: Vec<&Step> = (by_plan.steps.get(plan).into_iter().flatten())
        .filter(|s| here(&s.env))
        .copied()
        .collect();
    let sets: Vec<&crate::diff::ChangeSet> = (by_plan.sets.get(plan).into_iter().flatten())
        .filter(|cs| here(&cs.env))
        .copied()
        .collect();
    let pull = steps.iter().find_map(|s| match &s.done {
        Done::Proposed { branch, pull, .. }
        | Done::AlreadyProposed { branch, pull }
        | Done::Held { branch, pull, .. } => Some(pull.clone().unwrap_or_else(|| branch.clone())),
        _ => None,
    });
    let held = steps.iter().find_map(|s| match &s.done {
        Done::Held { by, .. } => Some(format!("edited by {by}; close it to get a fresh proposal")),
        _ => None,
    });
    let conflicts = sets.iter().any(|cs| cs.count(Action::Conflict) > 0);
    let written = steps
        .iter()
        .filter(|s| matches!(s.done, Done::Committed { .. }))
        .count();
    let waiting = steps.iter().find_map(|s| match &s.done {
        Done::Waiting { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    let (state, message) = match ended {
        Ended::Terminal(e) | Ended::Failed(e) => (PlanState::Failed, Some(e.clone())),
        _ if waiting.is_some() && pull.is_none() => (PlanState::Waiting, waiting),
        _ if pull.is_some() && conflicts => (
            PlanState::Conflict,
            Some("the proposal carries conflicts to resolve".to_owned()),
        ),
        _ if pull.is_some() => (PlanState::PendingApproval, held),
        _ if sets.is_empty() || sets.len() == written => (PlanState::InSync, None),
        _ if conflicts => (PlanState::Conflict, None),
        Ended::DryRun => (
            PlanState::Drifted,
            Some("uncommitted spec edits: diffed, not applied".to_owned()),
        ),
        _ => (
            PlanState::Drifted,
            Some("the live repos differ from the spec".to_owned()),
        ),
    };
    PlanStatus {
        plan: plan.to_owned(),
        env: env.to_owned(),
        state,
        spec_commit: revision.commit.clone(),
        pull,
        message,
        cluster: None,
    }
}

/// Files in the commits and proposals written.
fn written_files(outcome: &Outcome) -> u64 {
    let Some(changes) = &outcome.changes else {
        return 0;
    };
    outcome
        .steps
        .iter()
        .filter(|s| matches!(s.done, Done::Committed { .. } | Done::Proposed { .. }))
        .filter_map(|s| {
            changes
                .sets
                .iter()
                .find(|cs| cs.repo == s.repo && cs.env == s.env)
        })
        .map(|cs| cs.files.len() as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(repo: &str, env: Option<&str>, plan: &str, done: Done) -> Step {
        Step {
            repo: repo.to_owned(),
            env: env.map(str::to_owned),
            plans: vec![plan.to_owned()],
            done,
            from: None,
        }
    }

    fn proposed(branch: &str) -> Done {
        Done::Proposed {
            branch: branch.to_owned(),
            commit: "1".repeat(40),
            pull: None,
        }
    }

    #[test]
    fn pending_approvals_count_each_open_proposal_once() {
        let outcome = Outcome {
            steps: vec![
                step(
                    "infra",
                    Some("prod"),
                    "meters",
                    proposed("druppie/prod/meters"),
                ),
                step(
                    "infra",
                    Some("test"),
                    "meters",
                    proposed("druppie/test/meters"),
                ),
                step("meters-api", None, "meters", proposed("druppie/meters")),
                step(
                    "infra",
                    Some("prod"),
                    "permits",
                    Done::Held {
                        branch: "druppie/prod/permits".to_owned(),
                        by: "Rev <rev@example.org>".to_owned(),
                        pull: None,
                    },
                ),
                // A second attempt of the same run finds it proposed.
                step(
                    "infra",
                    Some("prod"),
                    "meters",
                    Done::AlreadyProposed {
                        branch: "druppie/prod/meters".to_owned(),
                        pull: None,
                    },
                ),
                step(
                    "infra",
                    Some("dev"),
                    "meters",
                    Done::Committed {
                        commit: "2".repeat(40),
                    },
                ),
            ],
            ..Outcome::default()
        };
        assert_eq!(pending(&open(&outcome)), 4);
        let revision = Revision {
            commit: None,
            dirty: false,
            settle_after: None,
            changes: None,
        };
        let held = status(
            "permits",
            "prod",
            &revision,
            &ByPlan::of(&outcome),
            &Ended::Success,
        );
        assert_eq!(held.state, PlanState::PendingApproval);
        assert_eq!(
            held.message.as_deref(),
            Some("edited by Rev <rev@example.org>; close it to get a fresh proposal")
        );
        // A plan with no step is not pending.
        let other = status(
            "docs",
            "prod",
            &revision,
            &ByPlan::of(&outcome),
            &Ended::Success,
        );
        assert_eq!(other.state, PlanState::InSync);
    }
}
