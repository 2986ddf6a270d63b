//! Webhooks passed between replicas: a forge sends each webhook to one
//! replica, and with shards every replica must hear of it.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};

use super::{ShardLeases, holder};
use crate::kube::{Error, api_code};

/// The annotation of the Lease `<prefix>-heard` that passes on the
/// webhook a replica received last.
pub const HEARD: &str = "druppie.io/heard";

/// What [`ShardLeases::ring`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ring {
    /// Nothing new.
    Quiet,
    /// Our news is written.
    Told,
    /// Another replica wrote first: tell ours again.
    Lost,
    /// Another replica heard this.
    Heard(String),
}

impl ShardLeases {
    /// Passes webhooks between replicas (a forge sends each to one of
    /// them) through the Lease `<prefix>-heard`: writes `news` (what this
    /// replica heard since the last round) into its [`HEARD`]
    /// annotation, or returns what another replica wrote there since the
    /// last call. The first call only reads where things stand.
    ///
    /// # Errors
    /// [`Error::Lease`] when the Lease cannot be read or written; `news`
    /// that lost a race (409) is the caller's to pass on next time
    /// (`Ok(Some(news))` is never returned for our own).
    pub async fn ring(&self, news: Option<&str>) -> Result<Ring, Error> {
        let name = format!("{}-heard", self.prefix);
        let current = self.api.get_opt(&name).await;
        let current = current.map_err(|e| self.error("read", &name, e))?;
        let version = |l: &Lease| l.metadata.resource_version.clone();
        let last = self.heard.lock().expect("heard lock").clone();
        if let Some(news) = news {
            let mut lease = current.unwrap_or_else(|| Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec::default()),
            });
            let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
            annotations.insert(HEARD.to_owned(), news.to_owned());
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = Some(self.identity.clone());
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            let written = if lease.metadata.resource_version.is_some() {
                self.api
                    .replace(&name, &PostParams::default(), &lease)
                    .await
            } else {
                self.api.create(&PostParams::default(), &lease).await
            };
            return match written {
                Ok(l) => {
                    *self.heard.lock().expect("heard lock") = Some(version(&l));
                    Ok(Ring::Told)
                }
                Err(e) if api_code(&e) == Some(409) => Ok(Ring::Lost),
                Err(e) => Err(self.error("update", &name, e)),
            };
        }
        let now = current.as_ref().map(version);
        *self.heard.lock().expect("heard lock") = Some(now.clone().flatten());
        let Some(lease) = current else {
            return Ok(Ring::Quiet);
        };
        // Read before, and written since by another replica.
        let new = last.is_some_and(|last| last != now.flatten());
        let theirs = holder(&lease) != Some(&self.identity);
        match lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(HEARD))
        {
            Some(heard) if new && theirs => Ok(Ring::Heard(heard.clone())),
            _ => Ok(Ring::Quiet),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Method;

    use super::*;
    use crate::kube::shards::tests::{LEASES, lease};
    use crate::kube::testing::mock_cluster;

    #[tokio::test]
    async fn a_webhook_told_by_one_replica_is_heard_by_another_once() {
        const HEARD_AT: &str =
            "/apis/coordination.k8s.io/v1/namespaces/druppie/leases/druppie-heard";
        let (cluster, mut server) = mock_cluster();
        let d = Duration::from_secs(15);
        let teller = ShardLeases::new(&cluster, "druppie", "druppie", "druppie-0", d, 2);
        let listener = ShardLeases::new(&cluster, "druppie", "druppie", "druppie-1", d, 2);
        let heard = |version: &str, by: &str, text: &str| {
            let mut lease = lease(0, Some(by), 1, None);
            lease.metadata.name = Some("druppie-heard".into());
            lease.metadata.resource_version = Some(version.into());
            lease
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(HEARD.into(), text.into());
            lease
        };
        let serve = async {
            // The listener's first look: where things stand (nothing
            // was ever told).
            server
                .expect(Method::GET, HEARD_AT)
                .await
                .fail(404, "NotFound");
            // The teller tells the first news there is.
            server
                .expect(Method::GET, HEARD_AT)
                .await
                .fail(404, "NotFound");
            let write = server.expect(Method::POST, LEASES).await;
            let body = write.body.clone();
            write.reply(201, &heard("8", "druppie-0", "pull_request"));
            // The listener hears it once.
            for _ in 0..2 {
                server
                    .expect(Method::GET, HEARD_AT)
                    .await
                    .reply(200, &heard("8", "druppie-0", "pull_request"));
            }
            body
        };
        let rings = async {
            let first = listener.ring(None).await.expect("look");
            let told = teller.ring(Some("pull_request")).await.expect("tell");
            let heard = listener.ring(None).await.expect("hear");
            let again = listener.ring(None).await.expect("hear again");
            (first, told, heard, again)
        };
        let ((first, told, heard, again), body) = tokio::join!(rings, serve);
        assert_eq!(first, Ring::Quiet, "the first look only reads");
        assert_eq!(told, Ring::Told);
        assert_eq!(body["metadata"]["annotations"][HEARD], "pull_request");
        assert_eq!(body["spec"]["holderIdentity"], "druppie-0");
        assert_eq!(heard, Ring::Heard("pull_request".into()));
        assert_eq!(again, Ring::Quiet, "heard once");
    }
}
