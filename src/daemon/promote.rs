//! A promotion asked through the API (`POST /api/v1/promote`), run by
//! the worker after the reconcile it queued: the same library steps as
//! `druppie promote`, on the daemon's spec clone.

use super::reconcile::Reconciler;
use super::state::{Event, Shared};
use crate::apply::promote::{self, Freight, Prepared, PromoteError};
use crate::apply::{Done, Failure, Run};
use crate::git::Repo;
use crate::spec::Shards;

/// Why a promotion did not run to its end.
#[derive(Debug, thiserror::Error)]
enum Stopped {
    #[error(transparent)]
    Refused(#[from] PromoteError),
    #[error("the spec does not open: {0}")]
    Spec(String),
    #[error("{0}")]
    Failed(String),
    #[error(
        "the plan is in shard {shard} of {count}, which another replica holds: that one promotes it"
    )]
    Elsewhere { shard: u32, count: u32 },
}

impl Reconciler {
    /// Promotes `plan` to `to` and says how it went as a `promotion`
    /// event (and the steps' own events, like a reconcile).
    /// `shards`: the shards this replica holds (`None`: every plan).
    pub fn promote(
        &self,
        shared: &Shared,
        id: &str,
        (plan, to): (&str, &str),
        shards: Option<&Shards>,
    ) {
        let promoted = match shards.filter(|s| !s.owns(plan)) {
            Some(s) => Err(Stopped::Elsewhere {
                shard: crate::spec::shard::shard_of(plan, s.count()),
                count: s.count(),
            }),
            None => self.promoting(shared, id, plan, to),
        };
        let (from, result, error) = match promoted {
            Ok((freight, result)) => (Some(freight.from), result, None),
            Err(e @ (Stopped::Refused(_) | Stopped::Elsewhere { .. })) => {
                (None, "refused".to_owned(), Some(e.to_string()))
            }
            Err(e) => (None, "failed".to_owned(), Some(e.to_string())),
        };
        match &error {
            None => tracing::info!(plan, to, result, "promoted"),
            Some(e) => tracing::warn!(plan, to, result, error = %e, "promotion"),
        }
        shared.emit(Event::Promotion {
            id: id.to_owned(),
            plan: plan.to_owned(),
            from,
            to: to.to_owned(),
            result,
            error,
        });
    }

    fn promoting(
        &self,
        shared: &Shared,
        id: &str,
        plan: &str,
        to: &str,
    ) -> Result<(Freight, String), Stopped> {
        let root = self.source.root();
        let now = crate::spec::open(root, &Default::default(), &Default::default())
            .map_err(|e| Stopped::Spec(crate::error::chain(&e)))?;
        let spec_repo = Repo::discover(root)
            .ok_or_else(|| Stopped::Spec(format!("{} is not a git repository", root.display())))?;
        let trail = crate::audit::trusted(&spec_repo, &self.signer.own_key())
            .map_err(|e| Stopped::Failed(crate::error::chain(&e)))?
            .events;
        let failed = |e: &dyn std::error::Error| Stopped::Failed(crate::error::chain(e));
        let tmp = tempfile::Builder::new()
            .prefix("druppie-promote-")
            .tempdir()
            .map_err(|e| failed(&e))?;
        let Prepared {
            freight,
            spec,
            scope,
        } = promote::prepare(
            &now.valid,
            &spec_repo,
            root,
            &self.cache,
            self.forge.as_ref(),
            &trail,
            (plan, to),
            &tmp.path().join("spec"),
        )
        .map_err(|e| match e {
            PromoteError::Revision(e) => Stopped::Spec(crate::error::chain(&e)),
            e => Stopped::Refused(e),
        })?;
        drop(now);
        // What the trail held before this run: the events it adds are told.
        let known = trail.len();
        let run = Run {
            forge: self.forge.as_ref(),
            cache: &self.cache,
            signer: &self.signer,
            identity: &self.identity,
            spec_repo: &spec_repo,
            spec_commit: Some(&freight.spec_commit),
            trigger: "api",
            limits: self.limits,
            promote: Some(&freight),
            fetched: &[],
            fence: None,
        };
        let (outcome, result) = run.apply(&spec.valid, &spec.selection, &scope, &mut |_, _| true);
        self.tell(shared, id, &spec_repo, known, &outcome);
        if let Err(e) = self.source.publish(&self.cache) {
            tracing::warn!(error = %e, "pushing the audit trail");
        }
        match result {
            Ok(()) => {}
            Err(Failure::Promote(e)) => return Err(Stopped::Refused(e)),
            Err(e) => return Err(failed(&e)),
        }
        let did = outcome
            .steps
            .iter()
            .find(|s| s.env.as_deref() == Some(to))
            .map_or("nothing", |s| match s.done {
                Done::Committed { .. } => "committed",
                Done::Proposed { .. } => "proposed",
                Done::AlreadyProposed { .. } => "already-proposed",
                Done::Held { .. } => "held",
                _ => "nothing",
            });
        Ok((freight, did.to_owned()))
    }
}
