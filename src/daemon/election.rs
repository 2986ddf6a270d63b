//! Which replica reconciles what: with a cluster, the replicas elect a
//! leader through the Lease `druppie`, or (`[server] shards` above 1)
//! split the plans through one Lease per shard and pass webhooks to each
//! other; without one, this replica reconciles every plan.

use std::sync::Arc;
use std::time::Duration;

use super::{Options, Reconciler, cluster, queue, state, worker};

/// The Lease replicas elect a leader with (and the prefix of the shards'
/// Leases).
const LEASE: &str = "druppie";
/// How often a held Lease is renewed, at most.
const LEASE_RENEW: Duration = Duration::from_secs(2);
/// The most shards `[server] shards` may ask for.
pub const MAX_SHARDS: u32 = 256;

/// How replicas share the work: one leader reconciles every plan
/// (`shards` 1), or each replica the plans of the shards it holds.
#[derive(Debug, Clone, Copy)]
pub struct Election {
    pub shards: u32,
    /// How long a Lease holds after its renewal.
    pub lease: Duration,
}

impl Default for Election {
    fn default() -> Self {
        Election {
            shards: 1,
            lease: Duration::from_secs(15),
        }
    }
}

impl Election {
    /// How often Leases are renewed: every 2 s, and at least seven times
    /// per duration (client-go renews a 15 s Lease every 2 s).
    fn renew(&self) -> Duration {
        LEASE_RENEW.min(self.lease / 7)
    }
}

/// The Leases a replica holds: the leader's, or the shards'.
pub(super) enum Leases {
    Leader(crate::kube::Leader),
    Shards(crate::kube::ShardLeases),
}

impl Leases {
    pub(super) async fn release(&self) -> Result<(), crate::kube::Error> {
        match self {
            Leases::Leader(l) => l.release().await,
            Leases::Shards(s) => s.release().await,
        }
    }
}

/// Connects to the cluster when one is configured and starts the leader
/// election; without a cluster, status, verification and leader
/// election are off, which one log line says.
pub(super) fn connect(
    runtime: &tokio::runtime::Runtime,
    options: &Options,
    reconciler: &mut Reconciler,
    shared: &Arc<state::Shared>,
) -> Option<(tokio::task::JoinHandle<()>, Arc<Leases>)> {
    let election = options.election;
    let Some(source) = &options.cluster else {
        tracing::info!(
            "no cluster: cluster status, post-deploy verification and leader election are off"
        );
        if election.shards > 1 {
            tracing::warn!(
                shards = election.shards,
                "no cluster to hold shard Leases in: this replica reconciles every plan; run one replica"
            );
        }
        return None;
    };
    let cluster = match runtime.block_on(crate::kube::Cluster::connect(source)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach the cluster: cluster status, post-deploy verification and leader election are off");
            return None;
        }
    };
    let (namespace, identity) = (&options.namespace, &options.identity);
    let leases = Arc::new(if election.shards > 1 {
        Leases::Shards(crate::kube::ShardLeases::new(
            &cluster,
            namespace,
            LEASE,
            identity,
            election.lease,
            election.shards,
        ))
    } else {
        Leases::Leader(crate::kube::Leader::new(
            &cluster,
            namespace,
            LEASE,
            identity,
            election.lease,
        ))
    });
    reconciler.cluster = Some(cluster::Link {
        cluster,
        runtime: runtime.handle().clone(),
    });
    shared.set_leading(false);
    let task = {
        let (leases, shared) = (leases.clone(), shared.clone());
        runtime.spawn(async move {
            let mut backoff = worker::Backoff::default();
            loop {
                let wait = elect(&leases, &shared, election, &mut backoff).await;
                tokio::time::sleep(wait).await;
            }
        })
    };
    Some((task, leases))
}

/// One round of the election; returns how long to wait before the
/// next. A transient error (the API server unreachable, 5xx, 429) is
/// tried again at the next renewal; any other (RBAC, a malformed Lease)
/// needs a person, so it backs off and says what is missing. A replica
/// counts on its shards for a Lease duration from the start of the round
/// that renewed them, less one renewal interval, and no longer.
async fn elect(
    leases: &Leases,
    shared: &state::Shared,
    election: Election,
    backoff: &mut worker::Backoff,
) -> Duration {
    let started = std::time::Instant::now();
    let held = match leases {
        Leases::Leader(leader) => leader.try_acquire().await.map(|held| {
            shared.set_leading(held);
        }),
        Leases::Shards(shards) => {
            let round = shards.round(&shared.busy()).await.map(|held| {
                let until = started + election.lease.saturating_sub(election.renew());
                shared.hold(crate::spec::Shards::new(election.shards, held), until);
            });
            pass_on(shards, shared).await;
            round
        }
    };
    match held {
        Ok(()) => {
            backoff.reset();
            election.renew()
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "leader election; trying again");
            if let Leases::Leader(_) = leases {
                shared.set_leading(false);
            }
            election.renew()
        }
        Err(e) => {
            if let Leases::Leader(_) = leases {
                shared.set_leading(false);
            }
            let wait = backoff.failed(std::time::Instant::now());
            tracing::error!(error = %e, retry_in = ?wait, "leader election needs the block's Lease RBAC (get, create, update leases)");
            wait
        }
    }
}

/// Tells the other replicas the webhook this one received, or queues
/// the one another received.
async fn pass_on(shards: &crate::kube::ShardLeases, shared: &state::Shared) {
    let news = shared.news();
    let told = news.as_ref().and_then(queue::Trigger::heard);
    match shards.ring(told.as_deref()).await {
        Ok(crate::kube::Ring::Heard(text)) => match queue::Trigger::from_heard(&text) {
            Some(trigger) => {
                tracing::info!(heard = %text, "another replica received a webhook");
                shared.queue.push(trigger);
            }
            None => tracing::warn!(heard = %text, "a webhook passed on that druppie did not write"),
        },
        Ok(crate::kube::Ring::Quiet | crate::kube::Ring::Told) => {}
        Ok(crate::kube::Ring::Lost) => {
            if let Some(news) = &news {
                shared.heard(news);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "passing webhooks between replicas; trying again");
            if let Some(news) = &news {
                shared.heard(news);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One election round against a scripted API server.
    async fn round(
        answer: impl FnOnce(crate::kube::testing::Received),
        backoff: &mut worker::Backoff,
    ) -> (Duration, bool) {
        let (cluster, mut server) = crate::kube::testing::mock_cluster();
        let election = Election::default();
        let leader = Leases::Leader(crate::kube::Leader::new(
            &cluster,
            "druppie",
            "druppie",
            "druppie-0",
            election.lease,
        ));
        let shared = state::Shared::new();
        shared.set_leading(true);
        let serve = async {
            let request = server
                .expect(
                    http::Method::GET,
                    "/apis/coordination.k8s.io/v1/namespaces/druppie/leases/druppie",
                )
                .await;
            answer(request);
        };
        let (wait, ()) = tokio::join!(elect(&leader, &shared, election, backoff), serve);
        (wait, shared.leading())
    }

    #[tokio::test]
    async fn a_transient_election_error_retries_at_the_renewal_and_a_refusal_backs_off() {
        let mut backoff = worker::Backoff::default();
        let (wait, leading) = round(|r| r.fail(503, "ServiceUnavailable"), &mut backoff).await;
        assert_eq!((wait, leading), (LEASE_RENEW, false));
        let (first, leading) = round(|r| r.fail(403, "Forbidden"), &mut backoff).await;
        assert!(!leading);
        let (second, _) = round(|r| r.fail(403, "Forbidden"), &mut backoff).await;
        let (third, _) = round(|r| r.fail(403, "Forbidden"), &mut backoff).await;
        assert!(first <= Duration::from_secs(1), "{first:?}");
        assert!(
            third >= Duration::from_secs(2),
            "backs off: {first:?} {second:?} {third:?}"
        );
    }
}
