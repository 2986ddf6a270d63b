//! Every plan's freight after a reconcile, for `GET
//! /api/v1/plans/{plan}/status`: what `druppie status --json` shows for
//! the plan, read from the daemon's clones of the target repos and the
//! audit trail.

use super::source::Revision;
use crate::apply::{Done, Outcome};
use crate::audit::Recorded;
use crate::compose::ComposeOptions;
use crate::diff::{self, ChangeSets};
use crate::live::Sources;
use crate::spec::{Opened, Selection, Validated};
use crate::status::PlanStatus;

/// The freight of the plans of `selection` (`scope`: what it covers, as
/// the apply had it), as the repos in the cache are after `outcome`;
/// `None` when the spec does not render (the status already says why).
pub(super) fn of(
    reconciler: &super::Reconciler,
    opened: &Opened,
    (selection, scope): (&Selection, &ComposeOptions),
    revision: &Revision,
    outcome: &Outcome,
    trail: &[Recorded],
) -> Option<Vec<PlanStatus>> {
    let sources = Sources {
        infra: None,
        repos: Some(reconciler.cache.dir().to_owned()),
    };
    // The diff apply ran is the repos as they are unless it wrote: then
    // it is diffed again.
    let wrote = outcome.steps.iter().any(|s| {
        !matches!(
            s.done,
            Done::AlreadyProposed { .. } | Done::Waiting { .. } | Done::Observed
        )
    });
    let mut fresh;
    let changes: &ChangeSets = match &outcome.changes {
        Some(changes) if !wrote => changes,
        _ => {
            let own = reconciler.signer.own_key();
            let options = diff::Options {
                sources: &sources,
                scope,
                spec_commit: revision.commit.as_deref(),
                limits: reconciler.limits,
                own_key: Some(&own),
            };
            let started = std::time::Instant::now();
            fresh = diff::diff(&opened.valid, selection, &options).ok()?;
            tracing::debug!(elapsed = ?started.elapsed(), "freight: diffed again");
            if let Some(deployment) = &opened.valid.deployment {
                crate::execution::gate(&mut fresh, trail, &deployment.platform);
            }
            &fresh
        }
    };
    let started = std::time::Instant::now();
    let plan = crate::execution::plan(changes, String::new());
    tracing::debug!(elapsed = ?started.elapsed(), "freight: execution plan");
    let report = crate::status::status(&opened.valid, selection, changes, &plan, &sources, trail);
    tracing::debug!(elapsed = ?started.elapsed(), "freight: status read");
    for e in &report.errors {
        tracing::warn!(error = %crate::error::chain(e), "reading what is live");
    }
    Some(report.plans)
}

/// The freight `before` showed, with that of `plans` as `fresh` has it,
/// in the spec's order of plans.
pub(super) fn merged(
    before: &[PlanStatus],
    fresh: Vec<PlanStatus>,
    plans: &std::collections::BTreeSet<String>,
    valid: &Validated,
) -> Vec<PlanStatus> {
    let mut by_plan: std::collections::BTreeMap<String, PlanStatus> = before
        .iter()
        .filter(|p| !plans.contains(&p.plan))
        .map(|p| (p.plan.clone(), p.clone()))
        .collect();
    by_plan.extend(fresh.into_iter().map(|p| (p.plan.clone(), p)));
    valid
        .plans()
        .iter()
        .filter_map(|m| by_plan.remove(&m.name))
        .collect()
}
