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
/// Call [`Leader::try_acquire`] well within the lease duration (a third of
/// it, as client-go does) and stop reconciling when it returns `false` or
/// fails: once the duration has passed since the last renewal, another
/// replica may take over.
pub struct Leader {
    api: Api<Lease>,
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
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
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.seconds()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if api_code(&e) == Some(409) => Ok(false),
                Err(e) => Err(self.error("create", e)),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        if holder != Some(self.identity.as_str()) {
            if holder.is_some() && !self.expired(spec, now) {
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

    /// Whether the holder's last renewal is older than its lease duration
    /// (the one it wrote, else ours); a lease never renewed has expired.
    fn expired(&self, spec: &LeaseSpec, now: Timestamp) -> bool {
        let Some(MicroTime(renewed)) = spec.renew_time else {
            return true;
        };
        let seconds = spec
            .lease_duration_seconds
            .unwrap_or_else(|| self.seconds());
        now.duration_since(renewed) >= SignedDuration::from_secs(i64::from(seconds))
    }

    /// The lease duration in whole seconds, at least one.
    fn seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1)
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
