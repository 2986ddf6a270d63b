//! Shards held through one `coordination.k8s.io/v1` Lease each
//! (`<prefix>-shard-<n>`), so that replicas split the plans between them
//! and no shard is worked on by two at once.
//!
//! Every round a replica renews the Leases it holds and takes free or
//! expired ones up to its fair share (the shards divided by the replicas
//! holding one, itself counted, rounded up). A replica below its share
//! while none is free asks the replica holding the most for one, by
//! writing its name in the Lease's `druppie.io/wanted-by` annotation; the
//! holder gives the Lease back once no reconcile of its own works on that
//! shard, reserved for the asker for one lease duration. A replica that
//! dies stops renewing, and its Leases are free once their duration has
//! passed since the last renewal.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use super::lease::{expired, taken, whole_seconds};
use super::{Cluster, Error, api_code};

mod heard;
pub use heard::{HEARD, Ring};

/// The annotation with which a replica asks for a Lease.
pub const WANTED_BY: &str = "druppie.io/wanted-by";

/// One replica's contender for `count` shard Leases.
pub struct ShardLeases {
    api: Api<Lease>,
    namespace: String,
    prefix: String,
    identity: String,
    duration: Duration,
    count: u32,
    /// The resourceVersion of `<prefix>-heard` read last (`Some(None)`:
    /// read, and there was none; `None`: not read yet).
    heard: std::sync::Mutex<Option<Option<String>>>,
}

impl std::fmt::Debug for ShardLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardLeases")
            .field("namespace", &self.namespace)
            .field("prefix", &self.prefix)
            .field("identity", &self.identity)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

/// What one Lease says, as a round reads it.
enum Seen {
    /// Held by this replica.
    Ours,
    /// Held, and renewed within its duration, by another.
    Theirs(String),
    /// Given back for another replica, which may take it first.
    Reserved,
    /// Missing, given up or expired: anyone may take it.
    Free,
}

impl ShardLeases {
    /// A contender for the Leases `<prefix>-shard-0` to
    /// `<prefix>-shard-<count - 1>` in `namespace` as `identity`, holding
    /// each for `duration` after its renewal.
    pub fn new(
        cluster: &Cluster,
        namespace: &str,
        prefix: &str,
        identity: &str,
        duration: Duration,
        count: u32,
    ) -> ShardLeases {
        ShardLeases {
            api: Api::namespaced(cluster.client().clone(), namespace),
            namespace: namespace.to_owned(),
            prefix: prefix.to_owned(),
            identity: identity.to_owned(),
            duration,
            count: count.max(1),
            heard: std::sync::Mutex::new(None),
        }
    }

    /// The Lease of `shard`.
    pub fn name(&self, shard: u32) -> String {
        format!("{}-shard-{shard}", self.prefix)
    }

    /// One round: renews the Leases held (giving back one that is asked
    /// for, unless `busy` names its shard), takes free ones up to the fair
    /// share, and asks for one when below it. Returns the shards held
    /// now; each was written in this round, so it holds for a lease
    /// duration from the round's start.
    ///
    /// # Errors
    /// [`Error::Lease`] when a Lease cannot be read, or written for any
    /// reason but losing a race (409); the caller must then count on none
    /// of its shards beyond the last round that succeeded.
    pub async fn round(&self, busy: &BTreeSet<u32>) -> Result<BTreeSet<u32>, Error> {
        let now = Timestamp::now();
        let mut leases = Vec::new();
        for shard in 0..self.count {
            let name = self.name(shard);
            let lease = self.api.get_opt(&name).await;
            leases.push(lease.map_err(|e| self.error("read", &name, e))?);
        }
        let seen: Vec<Seen> = leases.iter().map(|l| self.seen(l.as_ref(), now)).collect();
        let mut others: BTreeMap<&str, u32> = BTreeMap::new();
        for s in &seen {
            if let Seen::Theirs(holder) = s {
                *others.entry(holder.as_str()).or_default() += 1;
            }
        }
        let replicas = u32::try_from(others.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let share = self.count.div_ceil(replicas) as usize;
        let mut held = BTreeSet::new();
        for (shard, (lease, s)) in (0..).zip(leases.iter().zip(&seen)) {
            let (Seen::Ours, Some(lease)) = (s, lease) else {
                continue;
            };
            if self.keep(lease.clone(), shard, busy, now).await? {
                held.insert(shard);
            }
        }
        for (shard, (lease, s)) in (0..).zip(leases.iter().zip(&seen)) {
            if held.len() >= share {
                break;
            }
            let free = match s {
                Seen::Free => true,
                Seen::Reserved => lease.as_ref().and_then(wanted_by) == Some(&self.identity),
                Seen::Ours | Seen::Theirs(_) => false,
            };
            if free && self.write(lease.clone(), shard, now).await? {
                held.insert(shard);
            }
        }
        let asking = leases
            .iter()
            .flatten()
            .any(|l| wanted_by(l) == Some(&self.identity));
        let richest = others.iter().max_by_key(|(_, n)| **n);
        if let Some((holder, &n)) = richest
            && held.len() < share
            && !asking
            && n as usize > held.len() + 1
        {
            // Its highest shard no other replica asked for yet: a
            // request is never overwritten, so askers do not take turns
            // at the same shard.
            let theirs = leases.iter().zip(&seen).rev().find_map(|(l, s)| match s {
                Seen::Theirs(h) if h == holder => l.clone().filter(|l| wanted_by(l).is_none()),
                _ => None,
            });
            if let Some(lease) = theirs {
                self.ask(lease).await?;
            }
        }
        Ok(held)
    }

    /// Renews a Lease held, or gives it back when another replica asked
    /// for it and `busy` does not name its shard; `true` when renewed.
    /// A replica asking writes the Lease too: when that write came
    /// between our read and our renewal, the Lease is read again.
    async fn keep(
        &self,
        mut lease: Lease,
        shard: u32,
        busy: &BTreeSet<u32>,
        now: Timestamp,
    ) -> Result<bool, Error> {
        for _ in 0..3 {
            let asked = wanted_by(&lease).is_some_and(|w| *w != self.identity);
            if asked && !busy.contains(&shard) {
                self.give_back(lease, now).await?;
                return Ok(false);
            }
            if self.write(Some(lease), shard, now).await? {
                return Ok(true);
            }
            let name = self.name(shard);
            let again = self.api.get_opt(&name).await;
            match again.map_err(|e| self.error("read", &name, e))? {
                Some(l) if holder(&l) == Some(&self.identity) => lease = l,
                _ => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Gives up every Lease this replica holds, so that others need not
    /// wait for them to expire.
    ///
    /// # Errors
    /// [`Error::Lease`] when a Lease cannot be read or written; losing a
    /// race is not an error.
    pub async fn release(&self) -> Result<(), Error> {
        let now = Timestamp::now();
        for shard in 0..self.count {
            let name = self.name(shard);
            let lease = self.api.get_opt(&name).await;
            let lease = lease.map_err(|e| self.error("read", &name, e))?;
            if let Some(lease) = lease
                && holder(&lease) == Some(&self.identity)
            {
                self.give_back(lease, now).await?;
            }
        }
        Ok(())
    }

    fn seen(&self, lease: Option<&Lease>, now: Timestamp) -> Seen {
        let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
            return Seen::Free;
        };
        let lapsed = expired(spec, now, self.seconds());
        match lease.and_then(holder) {
            Some(h) if h == self.identity => Seen::Ours,
            Some(h) if !lapsed => Seen::Theirs(h.to_owned()),
            None if !lapsed && lease.and_then(wanted_by).is_some() => Seen::Reserved,
            _ => Seen::Free,
        }
    }

    /// Takes or renews `shard`'s Lease, `current` as read (`None`: it
    /// does not exist yet); `false` when another replica wrote it first.
    async fn write(
        &self,
        current: Option<Lease>,
        shard: u32,
        now: Timestamp,
    ) -> Result<bool, Error> {
        let name = self.name(shard);
        let Some(mut lease) = current else {
            let lease = taken(
                (&self.namespace, &name),
                &self.identity,
                self.seconds(),
                now,
            );
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if api_code(&e) == Some(409) => Ok(false),
                Err(e) => Err(self.error("create", &name, e)),
            };
        };
        if wanted_by(&lease) == Some(&self.identity) {
            set_wanted_by(&mut lease, None);
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.seconds());
        self.replace(&name, &lease, "update").await
    }

    /// Gives `lease` up; when a replica asked for it, it is reserved for
    /// that one for a lease duration.
    async fn give_back(&self, mut lease: Lease, now: Timestamp) -> Result<(), Error> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let reserved = wanted_by(&lease).is_some_and(|w| *w != self.identity);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(if reserved { self.seconds() } else { 1 });
        self.replace(&name, &lease, "release").await.map(drop)
    }

    /// Asks `lease`'s holder to give it back to this replica.
    async fn ask(&self, mut lease: Lease) -> Result<(), Error> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        set_wanted_by(&mut lease, Some(&self.identity));
        self.replace(&name, &lease, "update").await.map(drop)
    }

    /// Replaces a Lease at the resourceVersion read; `false` when another
    /// replica wrote it since (409) or it is gone (404).
    async fn replace(
        &self,
        name: &str,
        lease: &Lease,
        action: &'static str,
    ) -> Result<bool, Error> {
        match self.api.replace(name, &PostParams::default(), lease).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(api_code(&e), Some(404 | 409)) => Ok(false),
            Err(e) => Err(self.error(action, name, e)),
        }
    }

    fn seconds(&self) -> i32 {
        whole_seconds(self.duration)
    }

    fn error(&self, action: &'static str, name: &str, source: kube::Error) -> Error {
        Error::Lease {
            action,
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            source,
        }
    }
}

fn holder(lease: &Lease) -> Option<&str> {
    let spec = lease.spec.as_ref()?;
    spec.holder_identity.as_deref().filter(|h| !h.is_empty())
}

fn wanted_by(lease: &Lease) -> Option<&String> {
    lease.metadata.annotations.as_ref()?.get(WANTED_BY)
}

fn set_wanted_by(lease: &mut Lease, who: Option<&str>) {
    let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match who {
        Some(who) => annotations.insert(WANTED_BY.to_owned(), who.to_owned()),
        None => annotations.remove(WANTED_BY),
    };
}

#[cfg(test)]
pub(super) mod tests {
    use http::Method;
    use k8s_openapi::jiff::SignedDuration;
    use kube::api::ObjectMeta;
    use serde_json::Value;

    use super::*;
    use crate::kube::testing::{ApiServer, mock_cluster};

    pub(crate) const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/druppie/leases";

    fn path(shard: u32) -> String {
        format!("{LEASES}/druppie-shard-{shard}")
    }

    fn contender(cluster: &Cluster, count: u32) -> ShardLeases {
        let d = Duration::from_secs(15);
        ShardLeases::new(cluster, "druppie", "druppie", "druppie-0", d, count)
    }

    /// Shard `shard`'s Lease as the API server returns it.
    pub(crate) fn lease(
        shard: u32,
        holder: Option<&str>,
        renewed_secs_ago: i64,
        wanted: Option<&str>,
    ) -> Lease {
        let at = Timestamp::now().checked_sub(SignedDuration::from_secs(renewed_secs_ago));
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(format!("druppie-shard-{shard}")),
                namespace: Some("druppie".into()),
                resource_version: Some("41".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(at.expect("a time in range"))),
                lease_transitions: Some(2),
                ..LeaseSpec::default()
            }),
        };
        if let Some(w) = wanted {
            set_wanted_by(&mut lease, Some(w));
        }
        lease
    }

    /// Answers the GET of every shard with `current` (404 for `None`).
    async fn read(server: &mut ApiServer, current: Vec<Option<Lease>>) {
        for (shard, lease) in (0..).zip(current) {
            let get = server.expect(Method::GET, &path(shard)).await;
            match lease {
                Some(l) => get.reply(200, &l),
                None => get.fail(404, "NotFound"),
            }
        }
    }

    /// Accepts a write of `shard`'s Lease and returns its body.
    async fn written(server: &mut ApiServer, method: Method, shard: u32) -> Value {
        let at = if method == Method::POST {
            LEASES.to_owned()
        } else {
            path(shard)
        };
        let write = server.expect(method, &at).await;
        let body = write.body.clone();
        write.reply(200, &body);
        body
    }

    fn held(shards: &[u32]) -> BTreeSet<u32> {
        shards.iter().copied().collect()
    }

    #[tokio::test]
    async fn a_lone_replica_creates_and_takes_every_shard() {
        let (cluster, mut server) = mock_cluster();
        let leases = contender(&cluster, 2);
        let none = BTreeSet::new();
        let serve = async {
            read(&mut server, vec![None, None]).await;
            let a = written(&mut server, Method::POST, 0).await;
            let b = written(&mut server, Method::POST, 1).await;
            (a, b)
        };
        let (round, (a, b)) = tokio::join!(leases.round(&none), serve);
        assert_eq!(round.expect("round"), held(&[0, 1]));
        assert_eq!(a["metadata"]["name"], "druppie-shard-0");
        assert_eq!(b["spec"]["holderIdentity"], "druppie-0");
    }

    #[tokio::test]
    async fn a_newcomer_asks_the_holder_of_the_most_for_its_highest_shard() {
        let (cluster, mut server) = mock_cluster();
        let leases = contender(&cluster, 4);
        let none = BTreeSet::new();
        let theirs = (0..4)
            .map(|s| Some(lease(s, Some("druppie-1"), 2, None)))
            .collect();
        let serve = async {
            read(&mut server, theirs).await;
            written(&mut server, Method::PUT, 3).await
        };
        let (round, asked) = tokio::join!(leases.round(&none), serve);
        assert_eq!(round.expect("round"), held(&[]), "nothing is free yet");
        assert_eq!(asked["metadata"]["annotations"][WANTED_BY], "druppie-0");
        assert_eq!(asked["spec"]["holderIdentity"], "druppie-1", "still theirs");
        assert_eq!(asked["metadata"]["resourceVersion"], "41");
    }

    #[tokio::test]
    async fn a_newcomer_leaves_another_askers_request_alone() {
        let (cluster, mut server) = mock_cluster();
        let leases = contender(&cluster, 3);
        let none = BTreeSet::new();
        let current = vec![
            Some(lease(0, Some("druppie-1"), 2, None)),
            Some(lease(1, Some("druppie-1"), 2, None)),
            Some(lease(2, Some("druppie-1"), 2, Some("druppie-2"))),
        ];
        let serve = async {
            read(&mut server, current).await;
            written(&mut server, Method::PUT, 1).await
        };
        let (round, asked) = tokio::join!(leases.round(&none), serve);
        assert_eq!(round.expect("round"), held(&[]));
        assert_eq!(asked["metadata"]["name"], "druppie-shard-1");
        assert_eq!(asked["metadata"]["annotations"][WANTED_BY], "druppie-0");
    }

    #[tokio::test]
    async fn a_renewal_that_loses_to_an_askers_write_reads_the_lease_again() {
        let (cluster, mut server) = mock_cluster();
        let leases = contender(&cluster, 1);
        let busy = held(&[0]);
        let serve = async {
            read(
                &mut server,
                vec![Some(lease(0, Some("druppie-0"), 1, None))],
            )
            .await;
            server
                .expect(Method::PUT, &path(0))
                .await
                .fail(409, "Conflict");
            read(
                &mut server,
                vec![Some(lease(0, Some("druppie-0"), 1, Some("druppie-1")))],
            )
            .await;
            written(&mut server, Method::PUT, 0).await
        };
        let (round, renewed) = tokio::join!(leases.round(&busy), serve);
        assert_eq!(round.expect("round"), held(&[0]), "still held while busy");
        assert_eq!(renewed["spec"]["holderIdentity"], "druppie-0");
        assert_eq!(renewed["metadata"]["annotations"][WANTED_BY], "druppie-1");
    }

    #[tokio::test]
    async fn a_holder_gives_back_a_shard_asked_for_once_no_reconcile_works_on_it() {
        let (cluster, mut server) = mock_cluster();
        let leases = contender(&cluster, 2);
        let (none, busy) = (BTreeSet::new(), held(&[1]));
        let current = || {
            vec![
                Some(lease(0, Some("druppie-0"), 1, None)),
                Some(lease(1, Some("druppie-0"), 1, Some("druppie-1"))),
            ]
        };
        // Busy with shard 1: both renewed, the request kept.
        let serve = async {
            read(&mut server, current()).await;
            written(&mut server, Method::PUT, 0).await;
            written(&mut server, Method::PUT, 1).await
        };
        let (round, kept) = tokio::join!(leases.round(&busy), serve);
        assert_eq!(round.expect("round"), held(&[0, 1]));
        assert_eq!(kept["spec"]["holderIdentity"], "druppie-0");
        assert_eq!(kept["metadata"]["annotations"][WANTED_BY], "druppie-1");
        // Done with it: given back, reserved for the asker.
        let serve = async {
            read(&mut server, current()).await;
            written(&mut server, Method::PUT, 0).await;
            written(&mut server, Method::PUT, 1).await
        };
        let (round, given) = tokio::join!(leases.round(&none), serve);
        assert_eq!(round.expect("round"), held(&[0]));
        assert_eq!(given["spec"].get("holderIdentity"), None);
        assert_eq!(given["spec"]["leaseDurationSeconds"], 15);
        assert_eq!(given["metadata"]["annotations"][WANTED_BY], "druppie-1");
    }

    #[tokio::test]
    async fn an_expired_shard_is_taken_over_and_a_reserved_one_left_to_its_asker() {
        let (cluster, mut server) = mock_cluster();
        let leases = contender(&cluster, 3);
        let none = BTreeSet::new();
        let current = vec![
            Some(lease(0, Some("druppie-1"), 60, None)),
            Some(lease(1, None, 1, Some("druppie-2"))),
            Some(lease(2, None, 1, Some("druppie-0"))),
        ];
        let serve = async {
            read(&mut server, current).await;
            let taken = written(&mut server, Method::PUT, 0).await;
            let mine = written(&mut server, Method::PUT, 2).await;
            (taken, mine)
        };
        let (round, (taken, mine)) = tokio::join!(leases.round(&none), serve);
        assert_eq!(round.expect("round"), held(&[0, 2]));
        assert_eq!(taken["spec"]["holderIdentity"], "druppie-0");
        assert_eq!(taken["spec"]["leaseTransitions"], 3);
        assert_eq!(mine["spec"]["holderIdentity"], "druppie-0");
        assert_eq!(
            mine["metadata"]["annotations"].get(WANTED_BY),
            None,
            "the request is answered"
        );
    }

    #[tokio::test]
    async fn a_round_that_cannot_read_a_lease_fails_and_holds_nothing_new() {
        let (cluster, mut server) = mock_cluster();
        let leases = contender(&cluster, 2);
        let none = BTreeSet::new();
        let serve = async {
            server
                .expect(Method::GET, &path(0))
                .await
                .fail(403, "Forbidden");
        };
        let (round, ()) = tokio::join!(leases.round(&none), serve);
        let error = round.expect_err("forbidden");
        assert_eq!(
            error.to_string(),
            "cannot read Lease druppie/druppie-shard-0"
        );
        assert!(!error.is_transient());
    }
}
