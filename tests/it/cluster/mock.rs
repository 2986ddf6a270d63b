//! The mock API server answers kube's own client as a real one would:
//! druppie's cluster status and leader election against it, and the
//! label selectors, gets and write conflicts a client may send.

use druppie::kube::{Cluster, Leader, Source, Target};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::time::Duration;

use super::{ClusterState, Deployment, Kustomization, MockKube, Transport};

/// kube's client on the mock's kubeconfig.
async fn client(kube: &MockKube) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = Kubeconfig::read_from(kube.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn names(list: &[DynamicObject]) -> Vec<String> {
    list.iter()
        .map(|k| k.metadata.name.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn druppie_reads_the_plan_s_kustomization_and_deployments_from_the_mock() {
    let tmp = tempfile::tempdir().expect("tmp");
    let kube = MockKube::start(tmp.path());
    assert!(kube.api.starts_with("https://"), "{}", kube.api);
    kube.set(&ClusterState {
        kustomizations: vec![
            Kustomization::at_path("apps-dev", "./apps/dev").ready_at("c0"),
            Kustomization::of_plan("permits", "dev").ready_at("c1"),
            Kustomization::of_plan("docs", "dev").failing_at("c1"),
        ],
        deployments: vec![Deployment {
            namespace: "permits-dev".into(),
            name: "permits-app".into(),
            replicas: 2,
            available: 1,
        }],
        ..ClusterState::default()
    });
    let cluster = Cluster::connect(&Source::Kubeconfig(kube.kubeconfig().to_owned()))
        .await
        .expect("connect");
    let status = cluster
        .status(&Target {
            plan: "permits".into(),
            env: "dev".into(),
            namespace: "permits-dev".into(),
            path: "apps/dev/permits".into(),
        })
        .await
        .expect("status");
    let flux = status
        .kustomization
        .clone()
        .expect("the plan's Kustomization");
    assert_eq!(
        (flux.namespace.as_str(), flux.name.as_str(), flux.ready),
        ("flux-system", "permits-dev", Some(true))
    );
    assert_eq!(flux.revision.as_deref(), Some("main@sha1:c1"));
    assert_eq!(status.deployments.len(), 1, "{status:?}");
    assert_eq!(
        (
            status.deployments[0].desired,
            status.deployments[0].available
        ),
        (2, 1)
    );
    assert!(!status.ready(), "one replica short");

    // Label selectors, as a per-plan lookup would send them.
    let gvk = GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization");
    let resource = ApiResource::from_gvk(&gvk);
    let all: Api<DynamicObject> = Api::all_with(client(&kube).await, &resource);
    let select = |selector: &'static str| {
        let all = all.clone();
        async move {
            names(
                &all.list(&ListParams::default().labels(selector))
                    .await
                    .expect("list")
                    .items,
            )
        }
    };
    assert_eq!(
        select("druppie.io/plan=permits,druppie.io/environment=dev").await,
        ["permits-dev"]
    );
    assert_eq!(
        select("druppie.io/plan in (docs,permits)").await,
        ["permits-dev", "docs-dev"]
    );
    assert_eq!(select("!druppie.io/plan").await, ["apps-dev"]);
    assert_eq!(
        select("druppie.io/plan!=docs").await,
        ["apps-dev", "permits-dev"]
    );
    let flux_system: Api<DynamicObject> =
        Api::namespaced_with(client(&kube).await, "flux-system", &resource);
    let one = flux_system.get("docs-dev").await.expect("get by name");
    assert_eq!(one.data["status"]["conditions"][0]["status"], "False");
    assert!(
        flux_system
            .get_opt("gone")
            .await
            .expect("404 is None")
            .is_none()
    );
    // No Flux Kustomizations elsewhere.
    let other: Api<DynamicObject> = Api::namespaced_with(client(&kube).await, "default", &resource);
    assert!(
        other
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn the_mock_s_lease_lets_one_of_two_replicas_lead_over_plain_http() {
    let tmp = tempfile::tempdir().expect("tmp");
    let kube = MockKube::start_with(tmp.path(), Transport::Plain);
    assert!(kube.api.starts_with("http://"), "{}", kube.api);
    let cluster = Cluster::connect(&Source::Kubeconfig(kube.kubeconfig().to_owned()))
        .await
        .expect("connect");
    let lease = Duration::from_secs(15);
    let first = Leader::new(&cluster, "druppie", "druppie", "druppie-0", lease);
    let second = Leader::new(&cluster, "druppie", "druppie", "druppie-1", lease);
    assert!(first.try_acquire().await.expect("create"), "free: taken");
    assert!(
        !second.try_acquire().await.expect("read"),
        "held by the first"
    );
    assert!(first.try_acquire().await.expect("renew"), "renewed");
    first.release().await.expect("release");
    assert!(second.try_acquire().await.expect("take"), "released: taken");
    assert!(
        !first.try_acquire().await.expect("read"),
        "held by the second"
    );

    // A write on a stale resourceVersion is a conflict, as on a real server.
    let leases: Api<Lease> = Api::namespaced(client(&kube).await, "druppie");
    let read = leases.get("druppie").await.expect("get");
    leases
        .replace("druppie", &PostParams::default(), &read)
        .await
        .expect("the first write");
    let stale = leases
        .replace("druppie", &PostParams::default(), &read)
        .await
        .expect_err("a stale write");
    assert!(
        matches!(&stale, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{stale:?}"
    );
    let again = leases
        .create(&PostParams::default(), &read)
        .await
        .expect_err("exists");
    assert!(
        matches!(&again, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_kubeconfig_without_the_mock_s_ca_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let kube = MockKube::start(tmp.path());
    let text = std::fs::read_to_string(kube.kubeconfig()).expect("kubeconfig");
    let without: String = text
        .lines()
        .filter(|l| !l.contains("certificate-authority-data"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, text);
    let path = tmp.path().join("kubeconfig-without-ca");
    std::fs::write(&path, without).expect("kubeconfig");
    let cluster = Cluster::connect(&Source::Kubeconfig(path))
        .await
        .expect("connect sends nothing yet");
    let error = cluster
        .status(&Target {
            plan: "permits".into(),
            env: "dev".into(),
            namespace: "permits-dev".into(),
            path: "apps/dev/permits".into(),
        })
        .await
        .expect_err("an unknown issuer");
    let chain = druppie::error::chain(&error);
    assert!(chain.contains("certificate"), "{chain}");
    assert!(kube.requests().is_empty(), "nothing reached the mock");
}
