//! druppie's view of the Kubernetes cluster: what Flux has applied and
//! whether the Deployments it created are available ([`Cluster::status`]),
//! which replica may reconcile ([`Leader`]) or which plans
//! ([`ShardLeases`]), and whether a deployed block
//! answers on its health URL ([`verify`]).
//!
//! This module only reads the cluster, apart from the Leases: the
//! infra repo is the way druppie changes what runs, and Flux applies it.
//! The account druppie runs as needs `list` on
//! `kustomizations.kustomize.toolkit.fluxcd.io` in all namespaces, `list`
//! on `deployments` in each plan's namespace, and `get`, `create` and
//! `update` on `leases` in its own.

mod lease;
mod shards;
mod status;
#[cfg(test)]
pub(crate) mod testing;
mod verify;

pub use lease::Leader;
pub use shards::{HEARD, Ring, ShardLeases, WANTED_BY};
pub use status::{ClusterStatus, DeploymentStatus, KustomizationStatus, Target};
pub use verify::{Verification, verify};

use std::path::PathBuf;

use kube::config::{InClusterError, KubeConfigOptions, Kubeconfig, KubeconfigError};

/// Where the cluster's credentials come from; the caller decides
/// (in-cluster when `KUBERNETES_SERVICE_HOST` is set, else a kubeconfig file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The pod's service account: token and CA under
    /// `/var/run/secrets/kubernetes.io/serviceaccount/`, API server from
    /// `KUBERNETES_SERVICE_HOST`/`_PORT` (read by the kube client, as every
    /// in-cluster Kubernetes client does).
    InCluster,
    /// A kubeconfig file, with its current context.
    Kubeconfig(PathBuf),
}

/// A Kubernetes operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig file cannot be read or has no usable current context.
    #[error("cannot load kubeconfig {path}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    /// The pod's service account configuration cannot be loaded.
    #[error("cannot load the in-cluster service account configuration")]
    InCluster(#[source] InClusterError),
    /// The configuration was read but no client could be built from it.
    #[error("cannot build a Kubernetes client")]
    Client(#[source] kube::Error),
    /// Flux Kustomizations cannot be listed.
    #[error("cannot list Flux Kustomizations")]
    Kustomizations(#[source] kube::Error),
    /// Deployments of a namespace cannot be listed.
    #[error("cannot list Deployments in namespace {namespace}")]
    Deployments {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    /// The leader Lease or a shard's cannot be read or written.
    #[error("cannot {action} Lease {namespace}/{name}")]
    Lease {
        action: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// Whether asking again later may succeed: the API server was
    /// unreachable, overloaded or failing (5xx, 429) or the request timed
    /// out. Configuration, authentication and permission problems are not.
    pub fn is_transient(&self) -> bool {
        let source = match self {
            Error::Kubeconfig { .. } | Error::InCluster(_) | Error::Client(_) => return false,
            Error::Kustomizations(source)
            | Error::Deployments { source, .. }
            | Error::Lease { source, .. } => source,
        };
        match api_code(source) {
            Some(code) => code == 429 || code >= 500,
            None => matches!(source, kube::Error::HyperError(_) | kube::Error::Service(_)),
        }
    }
}

/// A connection to one cluster's API server.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // kube::Client has no Debug; its credentials must not print anyway.
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects to the cluster that `source` names; no request is sent yet.
    ///
    /// ring is the only TLS provider druppie links; when the process has
    /// not installed a default provider yet, this installs ring.
    ///
    /// # Errors
    /// [`Error::Kubeconfig`] or [`Error::InCluster`] when the configuration
    /// cannot be loaded, [`Error::Client`] when its TLS or auth settings
    /// are unusable.
    pub async fn connect(source: &Source) -> Result<Cluster, Error> {
        let config = match source {
            Source::InCluster => kube::Config::incluster().map_err(Error::InCluster)?,
            Source::Kubeconfig(path) => {
                let failed = |source| Error::Kubeconfig {
                    path: path.clone(),
                    source,
                };
                let file = Kubeconfig::read_from(path).map_err(failed)?;
                kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                    .await
                    .map_err(failed)?
            }
        };
        install_ring();
        let client = kube::Client::try_from(config).map_err(Error::Client)?;
        Ok(Cluster { client })
    }

    /// Wraps a client built elsewhere (a test's mock service, a custom config).
    pub fn from_client(client: kube::Client) -> Cluster {
        Cluster { client }
    }

    pub(crate) fn client(&self) -> &kube::Client {
        &self.client
    }
}

/// Makes ring the process's TLS provider unless one is installed already:
/// rustls clients panic without one, and ring is the only one we link.
fn install_ring() {
    // Err means a provider is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The Kubernetes status code of an API error, if `error` is one.
fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn connect_names_a_missing_kubeconfig() {
        let path = PathBuf::from("/nonexistent/druppie/kubeconfig");
        let error = Cluster::connect(&Source::Kubeconfig(path.clone()))
            .await
            .expect_err("no such file");
        assert_eq!(
            error.to_string(),
            "cannot load kubeconfig /nonexistent/druppie/kubeconfig"
        );
        assert!(!error.is_transient());
        assert!(matches!(error, Error::Kubeconfig { path: p, .. } if p == path));
    }

    #[tokio::test]
    async fn connect_builds_a_tls_client_and_reports_an_unreachable_api_server() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kubeconfig");
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
             clusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\n\
             users:\n- name: test\n  user:\n    token: not-a-real-token\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n"
        );
        std::fs::write(&path, kubeconfig).expect("write kubeconfig");
        let cluster = Cluster::connect(&Source::Kubeconfig(path))
            .await
            .expect("a usable kubeconfig");
        let target = Target {
            plan: "docs-portal".into(),
            env: "dev".into(),
            namespace: "docs-portal-dev".into(),
            path: "apps/dev/docs-portal".into(),
        };
        let error = cluster.status(&target).await.expect_err("nothing listens");
        assert!(matches!(error, Error::Kustomizations(_)), "{error:?}");
        assert!(
            error.is_transient(),
            "an unreachable API server may come back: {error:?}"
        );
    }

    /// Run against a real cluster: `KUBECONFIG=~/.kube/config cargo test
    /// --lib kube::tests -- --ignored`.
    #[tokio::test]
    #[ignore = "needs cluster"]
    async fn reads_kube_system_from_a_real_cluster() {
        let path = std::env::var_os("KUBECONFIG").expect("KUBECONFIG names a kubeconfig file");
        let cluster = Cluster::connect(&Source::Kubeconfig(path.into()))
            .await
            .expect("connect");
        let target = Target {
            plan: "none".into(),
            env: "none".into(),
            namespace: "kube-system".into(),
            path: "clusters/none".into(),
        };
        let status = cluster.status(&target).await.expect("status");
        assert!(
            status
                .deployments
                .iter()
                .any(|d| d.name == "coredns" && d.desired >= 1),
            "kube-system runs CoreDNS: {status:?}"
        );
    }
}
