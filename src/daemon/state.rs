//! What the daemon knows between reconciles, all rebuilt from git after a
//! restart: the status of every plan × environment, the last dry run,
//! the catalog, the metrics, and the stream of events.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

use super::journal::Journal;
use super::metrics::Metrics;
use super::queue::Queue;
use crate::registry::Registry;
use crate::spec::Shards;

/// Where one plan stands in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanState {
    InSync,
    PendingApproval,
    /// Promotion: the change waits to be live in an earlier environment.
    Waiting,
    Drifted,
    Conflict,
    Failed,
    Applying,
}

impl PlanState {
    /// The state's name, as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            PlanState::InSync => "in-sync",
            PlanState::PendingApproval => "pending-approval",
            PlanState::Waiting => "waiting",
            PlanState::Drifted => "drifted",
            PlanState::Conflict => "conflict",
            PlanState::Failed => "failed",
            PlanState::Applying => "applying",
        }
    }

    pub const ALL: [PlanState; 7] = [
        PlanState::InSync,
        PlanState::Applying,
        PlanState::Waiting,
        PlanState::PendingApproval,
        PlanState::Conflict,
        PlanState::Drifted,
        PlanState::Failed,
    ];
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanStatus {
    pub plan: String,
    pub env: String,
    pub state: PlanState,
    /// The spec commit last reconciled.
    pub spec_commit: Option<String>,
    /// The pull request (or, on plain git, the branch) awaiting approval.
    pub pull: Option<String>,
    /// Why it failed, drifted or conflicts.
    pub message: Option<String>,
    /// Flux and Deployment readiness, when a cluster is connected.
    pub cluster: Option<serde_json::Value>,
}

/// A plan, as `/api/v1/plans` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PlanInfo {
    pub name: String,
    pub stack: String,
    pub owner: String,
    pub intent: Option<String>,
    pub environments: Vec<String>,
}

/// An environment as the platform declares it, in promotion order.
#[derive(Debug, Clone, Serialize)]
pub struct EnvInfo {
    pub name: String,
    pub trust: crate::spec::model::Trust,
    /// Who must approve a proposal there (`approvers` in platform.yaml).
    pub approvers: Vec<String>,
}

/// A block placed by a plan in an environment, as one of its components.
#[derive(Debug, Clone, Serialize)]
pub struct Placement {
    pub plan: String,
    pub env: String,
    pub component: String,
    pub block: String,
    pub version: String,
    /// The component's project repo.
    pub repo: String,
    /// The outputs that are web addresses.
    pub urls: Vec<Link>,
}

/// A named web address.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub name: String,
    pub url: String,
}

/// Something that happened, for `/api/v1/events`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    ReconcileStarted {
        id: String,
        trigger: String,
    },
    ReconcileFinished {
        id: String,
        result: String,
        revision: Option<String>,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    ChangeApplied {
        id: String,
        repo: String,
        env: Option<String>,
        plans: Vec<String>,
        commit: String,
    },
    PrOpened {
        id: String,
        repo: String,
        env: Option<String>,
        plans: Vec<String>,
        branch: String,
        pull: Option<String>,
    },
    /// An approval (or a violation or rejection) recorded on the trail.
    ApprovalRecorded {
        id: String,
        verdict: String,
        repo: String,
        env: Option<String>,
        plans: Vec<String>,
        actor: String,
    },
    Verification {
        id: String,
        plan: String,
        env: String,
        url: String,
        result: String,
    },
    /// A verification's verdict recorded on the trail: `verified` or
    /// `failed`, once per plan, environment and applied commit.
    VerificationRecorded {
        id: String,
        plan: String,
        env: String,
        commit: String,
        result: String,
    },
    /// A promotion recorded on the trail: the change became live in
    /// `env` after `from`, committed there or merged, whether a
    /// reconcile or `POST /api/v1/promote` brought it.
    PromotionRecorded {
        id: String,
        repo: String,
        env: Option<String>,
        from: String,
        plans: Vec<String>,
        commit: Option<String>,
    },
    /// A promotion asked through the API ran: `result` is what it did
    /// (`proposed`, `committed`, `already-proposed`, `nothing`) or
    /// `refused`/`failed` with `error`.
    Promotion {
        id: String,
        plan: String,
        from: Option<String>,
        to: String,
        result: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::ReconcileStarted { .. } => "reconcile-started",
            Event::ReconcileFinished { .. } => "reconcile-finished",
            Event::ChangeApplied { .. } => "change-applied",
            Event::PrOpened { .. } => "pr-opened",
            Event::ApprovalRecorded { .. } => "approval-recorded",
            Event::Verification { .. } => "verification",
            Event::VerificationRecorded { .. } => "verification-recorded",
            Event::PromotionRecorded { .. } => "promotion-recorded",
            Event::Promotion { .. } => "promotion",
        }
    }
}

/// What the last reconcile left.
#[derive(Default)]
pub struct View {
    /// The first reconcile finished: the API answers from the spec.
    pub ready: bool,
    pub revision: Option<String>,
    pub dirty: bool,
    pub statuses: Vec<PlanStatus>,
    pub plans: Vec<PlanInfo>,
    pub registry: Registry,
    /// The last dry run (`druppie diff --json`, made when first asked).
    pub diff: Option<std::sync::Arc<super::dry_run::DryRun>>,
    /// Every plan's freight and what waits where, as `druppie status`.
    pub freight: Vec<crate::status::PlanStatus>,
    /// The stacks, for the MCP server's `list_stacks`.
    pub stacks: Vec<crate::mcp::StackEntry>,
    /// The platform's environments, in promotion order.
    pub environments: Vec<EnvInfo>,
    /// Every component of every plan in every environment.
    pub placements: Vec<Placement>,
    pub last_error: Option<String>,
}

impl View {
    /// The environments: the platform's, in promotion order; before a
    /// platform is known, those the plans name, sorted.
    pub fn environment_names(&self) -> Vec<String> {
        if !self.environments.is_empty() {
            return self.environments.iter().map(|e| e.name.clone()).collect();
        }
        let mut envs: Vec<String> = self
            .plans
            .iter()
            .flat_map(|p| p.environments.iter().cloned())
            .collect();
        envs.sort();
        envs.dedup();
        envs
    }
}

/// Shared by the worker and the HTTP handlers.
pub struct Shared {
    pub view: Mutex<View>,
    pub queue: Queue,
    pub metrics: Metrics,
    /// Every event, numbered, the newest kept for clients that resume.
    pub events: Journal,
    /// This replica holds the leader Lease (always, without a cluster);
    /// with shards, the Lease of shard 0.
    leading: AtomicBool,
    /// The shards this replica holds, when the plans are sharded.
    holding: Mutex<Holding>,
    /// The webhook this replica received since it last told the other
    /// replicas (sharded only).
    news: Mutex<Option<super::queue::Trigger>>,
}

/// The shards a replica holds, and until when it may count on them.
#[derive(Debug, Default)]
struct Holding {
    /// `None`: the plans are not sharded.
    shards: Option<Shards>,
    /// The Leases were renewed for at least this long.
    until: Option<Instant>,
    /// The shards the reconcile in flight works on: not given back
    /// before it ends.
    busy: BTreeSet<u32>,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            view: Mutex::new(View::default()),
            queue: Queue::default(),
            metrics: Metrics::default(),
            events: Journal::new(),
            leading: AtomicBool::new(true),
            holding: Mutex::new(Holding::default()),
            news: Mutex::new(None),
        }
    }

    /// Keeps a webhook this replica received to tell the others, when
    /// the plans are sharded (each replica reconciles its own shards,
    /// and a forge sends a webhook to one of them).
    pub fn heard(&self, trigger: &super::queue::Trigger) {
        if trigger.heard().is_none() || self.holding.lock().expect("holding lock").shards.is_none()
        {
            return;
        }
        let mut news = self.news.lock().expect("news lock");
        let kept = news.take();
        *news = Some(match kept {
            Some(kept) => kept.covering(trigger.clone()),
            None => trigger.clone(),
        });
    }

    /// The webhook to tell the other replicas, taken.
    pub fn news(&self) -> Option<super::queue::Trigger> {
        self.news.lock().expect("news lock").take()
    }

    /// Takes what a round of the shard election won: `shards`, renewed
    /// until `until`. A shard gained asks for a reconcile of everything
    /// this replica now holds.
    pub fn hold(&self, shards: Shards, until: Instant) {
        let mut holding = self.holding.lock().expect("holding lock");
        let before = holding.shards.replace(shards.clone());
        holding.until = Some(until);
        drop(holding);
        self.metrics.shards(&shards);
        self.set_leading(shards.held().contains(&0));
        if before.as_ref() != Some(&shards) {
            tracing::info!(shards = %shards, "shards held");
        }
        let gained = match &before {
            Some(b) => !shards.held().is_subset(b.held()),
            None => !shards.held().is_empty(),
        };
        if gained {
            self.queue.push(super::queue::Trigger::Shards);
        }
    }

    /// The shards a reconcile may work on now, marked busy until
    /// [`Shared::end`]: `Some(None)` when the plans are not sharded and
    /// this replica leads, `Some(Some(s))` for the shards held, `None`
    /// when it may reconcile nothing (it leads nothing, holds no shard,
    /// or its Leases may have expired).
    pub fn begin(&self) -> Option<Option<Shards>> {
        let mut holding = self.holding.lock().expect("holding lock");
        let Some(shards) = holding.shards.clone() else {
            return self.leading().then_some(None);
        };
        let valid = holding.until.is_some_and(|u| Instant::now() < u);
        if !valid || shards.held().is_empty() {
            return None;
        }
        holding.busy.clone_from(shards.held());
        Some(Some(shards))
    }

    /// The reconcile in flight ended: its shards may be given back.
    pub fn end(&self) {
        self.holding.lock().expect("holding lock").busy.clear();
    }

    /// The shards a reconcile works on now.
    pub fn busy(&self) -> BTreeSet<u32> {
        self.holding.lock().expect("holding lock").busy.clone()
    }

    /// Whether this replica may still write for the shards it began
    /// with: the last round renewed every one of them, within their
    /// duration (always, when the plans are not sharded).
    pub fn still_holds(&self) -> bool {
        let holding = self.holding.lock().expect("holding lock");
        let Some(shards) = &holding.shards else {
            return true;
        };
        holding.until.is_some_and(|u| Instant::now() < u) && holding.busy.is_subset(shards.held())
    }

    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    pub fn set_leading(&self, leading: bool) {
        if self.leading.swap(leading, Ordering::SeqCst) != leading {
            tracing::info!(leading, "leadership changed");
        }
    }

    /// Numbers `event` and sends it to every SSE client and sink (none
    /// listening is fine; none can hold the caller up).
    pub fn emit(&self, event: Event) {
        let detail = serde_json::to_string(&event).unwrap_or_default();
        let sent = self.events.emit(event);
        tracing::info!(event = sent.name(), event_id = %sent.id, detail = %detail, "event");
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_states_name_is_how_the_api_spells_it() {
        for state in PlanState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.name());
        }
    }
}
