//! Leader election over a `coordination.k8s.io/v1` Lease.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

use super::{Cluster, Error, api_code};

/// Leader election over a `coordination.k8s.io/v1` Lease: two replicas
/// never reconcile at once.
///
/// Call [`Leader::try_acquire`] several times per lease duration (client-go
/// retries every 2 s for a 15 s lease) and stop reconciling as soon as it
/// returns `false` or fails: once the duration has passed since the last
/// renewal, another replica may take over.
pub struct Leader {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

impl Leader {
    /// A contender for the Lease `namespace/name` as `identity` (e.g. the
    /// pod name), holding it for `duration` after each renewal.
    pub fn new(
        cluster: &Cluster,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Leader {
        Leader {
            api: Api::namespaced(cluster.client().clone(), namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
        }
    }

    /// Takes the lease when it is free or expired, renews it when held by us.
    ///
    /// `Ok(false)` when another holder's lease is still valid, or another
    /// replica wrote the Lease between our read and our write (409 Conflict).
    ///
    /// # Errors
    /// [`Error::Lease`] when the Lease cannot be read or written for any
    /// other reason; the caller must then assume it is not the leader.
    pub async fn try_acquire(&self) -> Result<bool, Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error("read", e))?
        else {
            let lease = taken(
                (&self.namespace, &self.name),
                &self.identity,
                self.seconds(),
                now,
            );
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if api_code(&e) == Some(409) => Ok(false),
                Err(e) => Err(self.error("create", e)),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        if holder != Some(self.identity.as_str()) {
            if holder.is_some() && !expired(spec, now, self.seconds()) {
                return Ok(false);
            }
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.seconds());
        // `lease` carries the resourceVersion we read: a write by another
        // replica since then makes this replace fail with 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if api_code(&e) == Some(409) => Ok(false),
            Err(e) => Err(self.error("update", e)),
        }
    }

    /// Gives the lease up, so another replica need not wait for it to
    /// expire; does nothing when it is not ours (or gone).
    ///
    /// # Errors
    /// [`Error::Lease`] when the Lease cannot be read or written; losing a
    /// race to another replica is not an error.
    pub async fn release(&self) -> Result<(), Error> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error("read", e))?
        else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(api_code(&e), Some(404 | 409)) => Ok(()),
            Err(e) => Err(self.error("release", e)),
        }
    }

    fn seconds(&self) -> i32 {
        whole_seconds(self.duration)
    }

    fn error(&self, action: &'static str, source: kube::Error) -> Error {
        Error::Lease {
            action,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            source,
        }
    }
}

/// A new Lease `namespace/name`, held by `identity` from `now` for
/// `seconds`.
pub(super) fn taken(
    (namespace, name): (&str, &str),
    identity: &str,
    seconds: i32,
    now: Timestamp,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.to_owned()),
            lease_duration_seconds: Some(seconds),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
    }
}

/// Whether the holder's last renewal is older than its lease duration
/// (the one it wrote, else `seconds`); a lease never renewed has expired.
pub(super) fn expired(spec: &LeaseSpec, now: Timestamp, seconds: i32) -> bool {
    let Some(MicroTime(renewed)) = spec.renew_time else {
        return true;
    };
    let seconds = spec.lease_duration_seconds.unwrap_or(seconds);
    now.duration_since(renewed) >= SignedDuration::from_secs(i64::from(seconds))
}

/// A lease duration in whole seconds, at least one.
pub(super) fn whole_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use http::Method;
    use serde_json::Value;

    use super::*;
    use crate::kube::testing::{ApiServer, mock_cluster};

    const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/druppie/leases";
    const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/druppie/leases/druppie-leader";

    fn leader(cluster: &Cluster) -> Leader {
        Leader::new(
            cluster,
            "druppie",
            "druppie-leader",
            "druppie-0",
            Duration::from_secs(15),
        )
    }

    fn ago(seconds: i64) -> MicroTime {
        let at = Timestamp::now().checked_sub(SignedDuration::from_secs(seconds));
        MicroTime(at.expect("a time in range"))
    }

    /// A Lease as the API server returns it, at resourceVersion 41.
    fn lease(holder: &str, renewed_secs_ago: i64, transitions: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("druppie-leader".into()),
                namespace: Some("druppie".into()),
                resource_version: Some("41".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                acquire_time: Some(ago(3600)),
                renew_time: Some(ago(renewed_secs_ago)),
                lease_transitions: Some(transitions),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Answers the GET with `current`, accepts the PUT that follows, and
    /// returns what was written.
    async fn replaced(server: &mut ApiServer, current: Lease) -> Value {
        server.expect(Method::GET, LEASE).await.reply(200, &current);
        let replace = server.expect(Method::PUT, LEASE).await;
        let body = replace.body.clone();
        replace.reply(200, &body);
        body
    }

    fn time(body: &Value, field: &str) -> Timestamp {
        let text = body["spec"][field]
            .as_str()
            .unwrap_or_else(|| panic!("spec.{field} is set"));
        text.parse().expect("an RFC 3339 time")
    }

    fn recent(at: Timestamp) -> bool {
        Timestamp::now().duration_since(at) < SignedDuration::from_secs(5)
    }

    #[tokio::test]
    async fn acquire_creates_the_lease_when_there_is_none() {
        let (cluster, mut server) = mock_cluster();
        let leader = leader(&cluster);
        let serve = async {
            server
                .expect(Method::GET, LEASE)
                .await
                .fail(404, "NotFound");
            let create = server.expect(Method::POST, LEASES).await;
            let body = create.body.clone();
            create.reply(201, &body);
            body
        };
        let (acquired, body) = tokio::join!(leader.try_acquire(), serve);
        assert!(acquired.expect("acquire"));
        assert_eq!(body["metadata"]["name"], "druppie-leader");
        assert_eq!(body["spec"]["holderIdentity"], "druppie-0");
        assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
        assert!(recent(time(&body, "acquireTime")) && recent(time(&body, "renewTime")));
    }

    #[tokio::test]
    async fn acquire_renews_our_own_lease() {
        let (cluster, mut server) = mock_cluster();
        let leader = leader(&cluster);
        let serve = replaced(&mut server, lease("druppie-0", 5, 3));
        let (acquired, body) = tokio::join!(leader.try_acquire(), serve);
        assert!(acquired.expect("renew"));
        assert_eq!(body["metadata"]["resourceVersion"], "41");
        assert_eq!(body["spec"]["holderIdentity"], "druppie-0");
        assert_eq!(
            body["spec"]["leaseTransitions"], 3,
            "a renewal is no transition"
        );
        assert!(recent(time(&body, "renewTime")), "renewTime moved to now");
        assert!(!recent(time(&body, "acquireTime")), "acquireTime kept");
    }

    #[tokio::test]
    async fn acquire_leaves_another_holders_fresh_lease_alone() {
        let (cluster, mut server) = mock_cluster();
        let leader = leader(&cluster);
        drop(cluster);
        let acquire = tokio::spawn(async move { leader.try_acquire().await });
        let get = server.expect(Method::GET, LEASE).await;
        get.reply(200, &lease("druppie-1", 2, 3));
        server.expect_done().await;
        let acquired = acquire.await.expect("no panic");
        assert!(!acquired.expect("no error"));
    }

    #[tokio::test]
    async fn acquire_takes_over_an_expired_lease() {
        let (cluster, mut server) = mock_cluster();
        let leader = leader(&cluster);
        let serve = replaced(&mut server, lease("druppie-1", 60, 3));
        let (acquired, body) = tokio::join!(leader.try_acquire(), serve);
        assert!(acquired.expect("take over"));
        assert_eq!(body["metadata"]["resourceVersion"], "41");
        assert_eq!(body["spec"]["holderIdentity"], "druppie-0");
        assert_eq!(body["spec"]["leaseTransitions"], 4);
        assert!(recent(time(&body, "acquireTime")) && recent(time(&body, "renewTime")));
    }

    #[tokio::test]
    async fn acquire_is_refused_when_another_replica_wins_the_race() {
        let (cluster, mut server) = mock_cluster();
        let leader = leader(&cluster);
        let serve = async {
            server
                .expect(Method::GET, LEASE)
                .await
                .reply(200, &lease("druppie-1", 60, 3));
            server
                .expect(Method::PUT, LEASE)
                .await
                .fail(409, "Conflict");
            // And again when both found no Lease and the other created it first.
            server
                .expect(Method::GET, LEASE)
                .await
                .fail(404, "NotFound");
            server
                .expect(Method::POST, LEASES)
                .await
                .fail(409, "AlreadyExists");
        };
        let ((replaced, created), ()) = tokio::join!(
            async { (leader.try_acquire().await, leader.try_acquire().await) },
            serve
        );
        assert!(!replaced.expect("a lost replace is no error"));
        assert!(!created.expect("a lost create is no error"));
    }

    #[tokio::test]
    async fn acquire_fails_when_the_lease_cannot_be_read() {
        let (cluster, mut server) = mock_cluster();
        let leader = leader(&cluster);
        let serve = async {
            server
                .expect(Method::GET, LEASE)
                .await
                .fail(503, "ServiceUnavailable");
        };
        let (acquired, ()) = tokio::join!(leader.try_acquire(), serve);
        let error = acquired.expect_err("unavailable");
        assert_eq!(
            error.to_string(),
            "cannot read Lease druppie/druppie-leader"
        );
        assert!(
            error.is_transient(),
            "an API server answering 503 may recover"
        );
    }

    #[tokio::test]
    async fn release_clears_our_holder_and_leaves_anothers() {
        let (cluster, mut server) = mock_cluster();
        let leader = leader(&cluster);
        drop(cluster);
        let release = tokio::spawn(async move { (leader.release().await, leader.release().await) });
        server
            .expect(Method::GET, LEASE)
            .await
            .reply(200, &lease("druppie-0", 1, 3));
        let replace = server.expect(Method::PUT, LEASE).await;
        let body = replace.body.clone();
        replace.reply(200, &body);
        server
            .expect(Method::GET, LEASE)
            .await
            .reply(200, &lease("druppie-1", 1, 4));
        server.expect_done().await;
        let (ours, anothers) = release.await.expect("no panic");
        ours.expect("release ours");
        anothers.expect("another's lease is left alone");
        assert_eq!(body["metadata"]["resourceVersion"], "41");
        assert_eq!(body["spec"].get("holderIdentity"), None);
        assert_eq!(body["spec"]["leaseDurationSeconds"], 1);
    }
}
