//! Flux and Deployment readiness of one plan × environment.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::Serialize;
use serde_json::Value;

use super::{Cluster, Error, api_code};

/// One plan × environment in the cluster: its names, its namespace and
/// its directory in the infra repo (e.g. `apps/dev/docs-portal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub plan: String,
    pub env: String,
    /// The namespace the plan's workloads run in.
    pub namespace: String,
    /// The plan's directory in the infra repo, relative to its root.
    pub path: String,
}

/// What the cluster says about one [`Target`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    /// The plan's own Flux Kustomization (labelled `druppie.io/plan` and
    /// `druppie.io/environment`), else the one whose path covers the
    /// target's directory most closely (an infra repo written before
    /// druppie wrote one per plan); `None` when neither exists (or Flux
    /// is not installed).
    pub kustomization: Option<KustomizationStatus>,
    /// The Deployments in the target's namespace, by name.
    pub deployments: Vec<DeploymentStatus>,
}

impl ClusterStatus {
    /// Flux reports the Kustomization Ready and every Deployment has as
    /// many available replicas as it wants.
    pub fn ready(&self) -> bool {
        self.kustomization.as_ref().and_then(|k| k.ready) == Some(true)
            && self.deployments.iter().all(|d| d.available >= d.desired)
    }
}

/// A Flux `Kustomization` and its `Ready` condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KustomizationStatus {
    /// The Kustomization's own namespace (usually `flux-system`).
    pub namespace: String,
    pub name: String,
    /// The `Ready` condition: `True`, `False`, or `None` while unknown or absent.
    pub ready: Option<bool>,
    /// The `Ready` condition's reason, e.g. `ReconciliationSucceeded`.
    pub reason: Option<String>,
    /// The `Ready` condition's message, e.g. which health check failed.
    pub message: Option<String>,
    /// `status.lastAppliedRevision`, e.g. `main@sha1:0a1b…`.
    pub revision: Option<String>,
}

/// Desired and available replicas of one Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentStatus {
    pub name: String,
    /// `spec.replicas` (1 when unset).
    pub desired: i32,
    /// `status.availableReplicas` (0 when unset).
    pub available: i32,
}

/// The labels druppie puts on a plan's own Kustomization
/// ([`crate::render::flux`]).
const PLAN_LABEL: &str = "druppie.io/plan";
const ENV_LABEL: &str = "druppie.io/environment";

impl Cluster {
    /// Flux and Deployment readiness of one plan × environment.
    ///
    /// # Errors
    /// [`Error::Kustomizations`] or [`Error::Deployments`] when the API
    /// server cannot be asked or refuses; a cluster without Flux's
    /// Kustomization type gives no Kustomization rather than an error.
    pub async fn status(&self, target: &Target) -> Result<ClusterStatus, Error> {
        let kustomization = self.kustomization_for(target).await?;
        let deployments = self.deployments(&target.namespace).await?;
        Ok(ClusterStatus {
            kustomization,
            deployments,
        })
    }

    async fn kustomization_for(
        &self,
        target: &Target,
    ) -> Result<Option<KustomizationStatus>, Error> {
        let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
        let api: Api<DynamicObject> =
            Api::all_with(self.client().clone(), &ApiResource::from_gvk(&gvk));
        let list = match api.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(e) if api_code(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(Error::Kustomizations(e)),
        };
        let mut items: Vec<DynamicObject> = list.items;
        // Ties (two Kustomizations for one path) go to the first by namespace/name.
        items.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        // Only the one druppie writes: its name, in Flux's namespace. A
        // Kustomization elsewhere wearing the labels (any tenant may
        // make one) says nothing about the plan.
        let name = crate::spec::names::flux_name(&target.plan, &target.env);
        let own = items.iter().find(|k| {
            let label = |key: &str| k.metadata.labels.as_ref().and_then(|l| l.get(key));
            k.metadata.namespace.as_deref() == Some(crate::render::flux::FLUX_NAMESPACE)
                && k.metadata.name.as_deref() == Some(name.as_str())
                && label(PLAN_LABEL) == Some(&target.plan)
                && label(ENV_LABEL) == Some(&target.env)
        });
        if let Some(own) = own {
            return Ok(Some(kustomization_status(own)));
        }
        let path = normalize(&target.path);
        let best = items
            .iter()
            .filter_map(|k| {
                let spec_path = normalize(k.data.pointer("/spec/path")?.as_str()?);
                covers(spec_path, path).then_some((spec_path.len(), k))
            })
            .fold(
                None::<(usize, &DynamicObject)>,
                |best, (len, k)| match best {
                    Some((best_len, _)) if best_len >= len => best,
                    _ => Some((len, k)),
                },
            );
        Ok(best.map(|(_, k)| kustomization_status(k)))
    }

    async fn deployments(&self, namespace: &str) -> Result<Vec<DeploymentStatus>, Error> {
        let api: Api<Deployment> = Api::namespaced(self.client().clone(), namespace);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|source| Error::Deployments {
                namespace: namespace.to_owned(),
                source,
            })?;
        let mut deployments: Vec<DeploymentStatus> = list
            .items
            .into_iter()
            .map(|d| DeploymentStatus {
                name: d.metadata.name.unwrap_or_default(),
                desired: d.spec.replicas.unwrap_or(1),
                available: d.status.and_then(|s| s.available_replicas).unwrap_or(0),
            })
            .collect();
        deployments.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(deployments)
    }
}

/// A repo path without `./` in front or `/` at the end; the root is `""`.
fn normalize(path: &str) -> &str {
    let mut path = path.trim();
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let path = path.trim_start_matches('/').trim_end_matches('/');
    if path == "." { "" } else { path }
}

/// Whether the directory `dir` is `path` or one of its ancestors.
fn covers(dir: &str, path: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn kustomization_status(k: &DynamicObject) -> KustomizationStatus {
    let status = k.data.get("status");
    let ready = status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|conditions| {
            conditions
                .iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        });
    let text = |value: Option<&Value>, key: &str| {
        value
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    KustomizationStatus {
        namespace: k.metadata.namespace.clone().unwrap_or_default(),
        name: k.metadata.name.clone().unwrap_or_default(),
        ready: match ready.and_then(|c| c.get("status")).and_then(Value::as_str) {
            Some("True") => Some(true),
            Some("False") => Some(false),
            _ => None,
        },
        reason: text(ready, "reason"),
        message: text(ready, "message"),
        revision: text(status, "lastAppliedRevision"),
    }
}

#[cfg(test)]
mod tests {
    use http::Method;
    use k8s_openapi::List;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus as Observed};
    use kube::api::ObjectMeta;
    use serde_json::json;

    use super::*;
    use crate::kube::testing::mock_cluster;

    const KUSTOMIZATIONS: &str = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations";

    fn kustomization(name: &str, path: &str, status: Value) -> Value {
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": { "name": name, "namespace": "flux-system" },
            "spec": { "path": path, "interval": "1m", "prune": true },
            "status": status,
        })
    }

    fn ready(status: &str, reason: &str) -> Value {
        json!({ "conditions": [{ "type": "Ready", "status": status, "reason": reason, "message": "m" }] })
    }

    fn kustomization_list(items: Vec<Value>) -> Value {
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "KustomizationList",
            "metadata": { "resourceVersion": "7" },
            "items": items,
        })
    }

    fn deployment(name: &str, replicas: Option<i32>, available: Option<i32>) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("docs-portal-dev".into()),
                ..ObjectMeta::default()
            },
            spec: DeploymentSpec {
                replicas,
                ..DeploymentSpec::default()
            },
            status: available.map(|n| Observed {
                available_replicas: Some(n),
                ..Observed::default()
            }),
        }
    }

    fn target() -> Target {
        Target {
            plan: "docs-portal".into(),
            env: "dev".into(),
            namespace: "docs-portal-dev".into(),
            path: "./apps/dev/docs-portal/".into(),
        }
    }

    #[tokio::test]
    async fn status_picks_the_kustomization_with_the_longest_covering_path() {
        let (cluster, mut server) = mock_cluster();
        let serve = async {
            server.expect(Method::GET, KUSTOMIZATIONS).await.reply(
                200,
                &kustomization_list(vec![
                    kustomization("flux-system", "./clusters/dev", ready("True", "Succeeded")),
                    kustomization("apps", "./apps/", ready("True", "Succeeded")),
                    kustomization("apps-de", "./apps/de", ready("True", "Succeeded")),
                    kustomization(
                        "apps-dev",
                        "./apps/dev",
                        json!({
                            "lastAppliedRevision": "main@sha1:0a1b2c",
                            "conditions": [
                                { "type": "Reconciling", "status": "True", "reason": "Progressing" },
                                { "type": "Ready", "status": "False", "reason": "HealthCheckFailed",
                                  "message": "Deployment/docs-portal-dev/web not ready" },
                            ],
                        }),
                    ),
                    kustomization("docs-portal-old", "apps/dev/docs-portal-old", ready("True", "Succeeded")),
                ]),
            );
            let deployments = server
                .expect(
                    Method::GET,
                    "/apis/apps/v1/namespaces/docs-portal-dev/deployments",
                )
                .await;
            deployments.reply(200, &List::<Deployment>::default());
        };
        let target = target();
        let (status, ()) = tokio::join!(cluster.status(&target), serve);
        let status = status.expect("status");
        assert_eq!(
            status.kustomization,
            Some(KustomizationStatus {
                namespace: "flux-system".into(),
                name: "apps-dev".into(),
                ready: Some(false),
                reason: Some("HealthCheckFailed".into()),
                message: Some("Deployment/docs-portal-dev/web not ready".into()),
                revision: Some("main@sha1:0a1b2c".into()),
            })
        );
        assert!(!status.ready());
    }

    fn labelled(name: &str, path: &str, plan: &str, env: &str, status: Value) -> Value {
        let mut k = kustomization(name, path, status);
        k["metadata"]["labels"] = json!({
            "app.kubernetes.io/managed-by": "druppie",
            "druppie.io/plan": plan,
            "druppie.io/environment": env,
        });
        k
    }

    #[tokio::test]
    async fn status_reads_the_plans_own_kustomization_by_its_labels() {
        let (cluster, mut server) = mock_cluster();
        let serve = async {
            server.expect(Method::GET, KUSTOMIZATIONS).await.reply(
                200,
                &kustomization_list(vec![
                    // Wears the plan's labels, Ready, but not druppie's:
                    // another namespace.
                    {
                        let mut k = labelled(
                            "docs-portal-dev",
                            "./apps/dev/docs-portal",
                            "docs-portal",
                            "dev",
                            ready("True", "Succeeded"),
                        );
                        k["metadata"]["namespace"] = json!("aaa-tenant");
                        k
                    },
                    // Covers the plan's directory exactly, but is not the plan's.
                    kustomization(
                        "a-legacy",
                        "./apps/dev/docs-portal",
                        ready("True", "Succeeded"),
                    ),
                    labelled(
                        "docs-portal-test",
                        "./apps/test/docs-portal",
                        "docs-portal",
                        "test",
                        ready("True", "Succeeded"),
                    ),
                    labelled(
                        "permits-dev",
                        "./apps/dev/permits",
                        "permits",
                        "dev",
                        ready("True", "Succeeded"),
                    ),
                    labelled(
                        "docs-portal-dev",
                        "./apps/dev/docs-portal",
                        "docs-portal",
                        "dev",
                        ready("False", "HealthCheckFailed"),
                    ),
                ]),
            );
            server
                .expect(
                    Method::GET,
                    "/apis/apps/v1/namespaces/docs-portal-dev/deployments",
                )
                .await
                .reply(200, &List::<Deployment>::default());
        };
        let target = target();
        let (status, ()) = tokio::join!(cluster.status(&target), serve);
        let flux = status.expect("status").kustomization.expect("found");
        assert_eq!(
            (flux.name.as_str(), flux.ready, flux.reason.as_deref()),
            ("docs-portal-dev", Some(false), Some("HealthCheckFailed"))
        );
    }

    #[tokio::test]
    async fn status_counts_desired_and_available_replicas() {
        let (cluster, mut server) = mock_cluster();
        let serve = async {
            server.expect(Method::GET, KUSTOMIZATIONS).await.reply(
                200,
                &kustomization_list(vec![kustomization(
                    "apps-dev",
                    "./apps/dev",
                    ready("True", "Succeeded"),
                )]),
            );
            let list = List {
                items: vec![
                    deployment("web", Some(3), Some(2)),
                    deployment("api", Some(2), Some(2)),
                    deployment("worker", None, None),
                ],
                ..List::default()
            };
            server
                .expect(
                    Method::GET,
                    "/apis/apps/v1/namespaces/docs-portal-dev/deployments",
                )
                .await
                .reply(200, &list);
        };
        let target = target();
        let (status, ()) = tokio::join!(cluster.status(&target), serve);
        let status = status.expect("status");
        let counts: Vec<(&str, i32, i32)> = status
            .deployments
            .iter()
            .map(|d| (d.name.as_str(), d.desired, d.available))
            .collect();
        assert_eq!(counts, [("api", 2, 2), ("web", 3, 2), ("worker", 1, 0)]);
        assert_eq!(
            status.kustomization.as_ref().and_then(|k| k.ready),
            Some(true)
        );
        assert!(!status.ready(), "web and worker are short of replicas");
    }

    #[tokio::test]
    async fn status_without_flux_has_no_kustomization() {
        let (cluster, mut server) = mock_cluster();
        let serve = async {
            server
                .expect(Method::GET, KUSTOMIZATIONS)
                .await
                .fail(404, "NotFound");
            server
                .expect(
                    Method::GET,
                    "/apis/apps/v1/namespaces/docs-portal-dev/deployments",
                )
                .await
                .reply(200, &List::<Deployment>::default());
        };
        let target = target();
        let (status, ()) = tokio::join!(cluster.status(&target), serve);
        let status = status.expect("a cluster without Flux still has a status");
        assert_eq!(status.kustomization, None);
        assert!(status.deployments.is_empty());
        assert!(!status.ready());
    }

    #[tokio::test]
    async fn status_names_the_namespace_it_cannot_read() {
        let (cluster, mut server) = mock_cluster();
        let serve = async {
            let list = server.expect(Method::GET, KUSTOMIZATIONS).await;
            list.reply(200, &kustomization_list(vec![]));
            server
                .expect(
                    Method::GET,
                    "/apis/apps/v1/namespaces/docs-portal-dev/deployments",
                )
                .await
                .fail(403, "Forbidden");
        };
        let target = target();
        let (status, ()) = tokio::join!(cluster.status(&target), serve);
        let error = status.expect_err("forbidden");
        assert_eq!(
            error.to_string(),
            "cannot list Deployments in namespace docs-portal-dev"
        );
        assert!(
            matches!(&error, Error::Deployments { source, .. } if api_code(source) == Some(403))
        );
    }

    #[test]
    fn ready_condition_is_true_false_or_unknown() {
        let parse = |status: Value| {
            let object: DynamicObject =
                serde_json::from_value(kustomization("k", "./apps", status))
                    .expect("a Kustomization");
            let status = kustomization_status(&object);
            (status.ready, status.reason)
        };
        assert_eq!(
            parse(ready("True", "ReconciliationSucceeded")).0,
            Some(true)
        );
        assert_eq!(
            parse(ready("False", "BuildFailed")),
            (Some(false), Some("BuildFailed".into()))
        );
        assert_eq!(
            parse(ready("Unknown", "Progressing")),
            (None, Some("Progressing".into()))
        );
        assert_eq!(parse(json!({})), (None, None));
    }

    #[test]
    fn ready_needs_flux_ready_and_every_deployment_available() {
        let flux = |ready| KustomizationStatus {
            namespace: "flux-system".into(),
            name: "apps".into(),
            ready,
            reason: None,
            message: None,
            revision: None,
        };
        let web = |available| DeploymentStatus {
            name: "web".into(),
            desired: 2,
            available,
        };
        let status = |kustomization, deployments| ClusterStatus {
            kustomization,
            deployments,
        };
        assert!(status(Some(flux(Some(true))), vec![web(2)]).ready());
        assert!(status(Some(flux(Some(true))), vec![]).ready());
        assert!(!status(Some(flux(Some(true))), vec![web(1)]).ready());
        assert!(!status(Some(flux(None)), vec![web(2)]).ready());
        assert!(!status(None, vec![web(2)]).ready());
    }

    #[test]
    fn paths_match_at_component_boundaries() {
        assert_eq!(normalize("./apps/dev/"), "apps/dev");
        assert_eq!(normalize("./"), "");
        assert!(covers("apps/dev", "apps/dev/docs-portal"));
        assert!(covers("apps/dev", "apps/dev"));
        assert!(covers("", "apps/dev"));
        assert!(!covers("apps/de", "apps/dev/docs-portal"));
        assert!(!covers("apps/dev/docs-portal-old", "apps/dev/docs-portal"));
    }
}
