//! Promotion order: whether a plan's change may go to an environment
//! yet, from what is still to do in the environments before it.

use super::only_locks;
use crate::diff::{ChangeSet, ChangeSets, Unverified};
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

    /// The environment a change to `cs` is promoted from: the one
    /// before `cs`'s in the promotion order, of those its plan is
    /// deployed to (`observe` ones aside). `None` for the first, for
    /// `observe`, and with `promote: parallel`.
    pub(super) fn before(&self, cs: &'a ChangeSet) -> Option<&'a ChangeSet> {
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
        Some(before)
    }

    /// Whether `cs` waits for the environment before it, and why: the
    /// plan's change there is not live yet (not committed where it
    /// deploys, not merged where it proposes), or, where that
    /// environment asks for verification, what is live there is not
    /// verified. A change to lock files alone does not hold it back.
    pub(super) fn waiting(&self, cs: &'a ChangeSet, unverified: &[Unverified]) -> Option<Wait> {
        let before = self.before(cs)?;
        let env = before.env.clone().unwrap_or_default();
        if !only_locks(before) {
            return Some(Wait {
                env,
                why: "once it is live in".to_owned(),
            });
        }
        unverified
            .iter()
            .find(|u| u.env == env && cs.plans.contains(&u.plan))
            .map(|u| Wait {
                env,
                why: format!("once it is verified ({}) in", u.why),
            })
    }
}

/// What a change waits for: the environment, and how it is not live
/// there yet ("once it is live in", "once it is verified (…) in").
pub(super) struct Wait {
    pub env: String,
    pub why: String,
}

/// Fills `changes.unverified` from `trail`, for the environments of
/// `platform` that ask for verification (`verify: true`): what apply,
/// the daemon's status and `druppie status` decide promotion with.
pub fn gate(
    changes: &mut ChangeSets,
    trail: &[crate::audit::Recorded],
    platform: &crate::spec::model::Platform,
) {
    changes.unverified = unverified(trail, &platform.infra.repo.value, changes, |env| {
        platform.environments.get(env).is_some_and(|s| s.verify)
    });
}

/// The plans whose live change in `infra` is not verified, in every
/// environment a change set of `changes` is in that asks for
/// verification (`verify`): the last commit applied there has no
/// `verified` event on `trail` yet, or a `failed` one.
pub fn unverified(
    trail: &[crate::audit::Recorded],
    infra: &str,
    changes: &ChangeSets,
    verify: impl Fn(&str) -> bool,
) -> Vec<Unverified> {
    let mut out: Vec<Unverified> = Vec::new();
    for cs in changes.sets.iter().filter(|cs| cs.repo == infra) {
        let Some(env) = cs.env.as_deref().filter(|e| verify(e)) else {
            continue;
        };
        for plan in &cs.plans {
            let why = match crate::audit::last_applied(trail, infra, plan, env) {
                Some((_, Some(crate::audit::Kind::Verified))) => continue,
                Some((_, Some(_))) => "its verification failed",
                Some((_, None)) | None => "not verified yet",
            };
            if !out.iter().any(|u| &u.plan == plan && u.env == env) {
                out.push(Unverified {
                    plan: plan.clone(),
                    env: env.to_owned(),
                    why: why.to_owned(),
                });
            }
        }
    }
    out
}
