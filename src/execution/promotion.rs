//! Promotion order: whether a plan's change may go to an environment
//! yet, from what is still to do in the environments before it.

use super::only_locks;
use crate::diff::{ChangeSet, ChangeSets};
use crate::spec::model::Trust;

/// Each plan's change sets in the infra repo, by promotion rank of their
/// environment (`observe` ones aside).
pub(super) struct Stages<'a> {
    order: &'a [String],
    by_plan: std::collections::HashMap<Plan<'a>, Vec<(usize, &'a ChangeSet)>>,
}

/// A plan's change sets in one repo: the repo and the plans.
type Plan<'a> = (&'a str, &'a [String]);

impl<'a> Stages<'a> {
    pub(super) fn of(changes: &'a ChangeSets) -> Stages<'a> {
        let order = changes.order.as_slice();
        let mut by_plan: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
        for cs in &changes.sets {
            let rank = cs
                .env
                .as_deref()
                .and_then(|e| order.iter().position(|o| o == e));
            if let Some(rank) = rank
                && cs.trust.is_some_and(|t| t != Trust::Observe)
            {
                by_plan
                    .entry((cs.repo.as_str(), cs.plans.as_slice()))
                    .or_default()
                    .push((rank, cs));
            }
        }
        Stages { order, by_plan }
    }

    /// The environment before `cs`'s in the promotion order (of those
    /// its plan is deployed to, `observe` ones aside) while the plan's
    /// change there is not live yet: not committed (`deploy`), or not
    /// merged (`propose`). A change to lock files alone does not hold it
    /// back; `promote: parallel` never waits.
    pub(super) fn waiting(&self, cs: &ChangeSet) -> Option<String> {
        let env = cs.env.as_deref()?;
        if cs.trust == Some(Trust::Observe) || cs.parallel {
            return None;
        }
        let at = self.order.iter().position(|o| o == env)?;
        let (_, before) = self
            .by_plan
            .get(&(cs.repo.as_str(), cs.plans.as_slice()))?
            .iter()
            .filter(|(rank, _)| *rank < at)
            .max_by_key(|(rank, _)| *rank)?;
        (!only_locks(before)).then(|| before.env.clone().unwrap_or_default())
    }
}
