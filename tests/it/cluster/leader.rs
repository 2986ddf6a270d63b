//! Leader election end to end: the daemon reconciles only while it holds
//! the Lease on the mock API server.

use std::time::Duration;

use druppie::kube::{Cluster, Leader, Source};

use super::{IDENTITY, MockKube, NAMESPACE, events, recorded, start, with_health};
use crate::apply::setup;
use crate::support::git;

#[test]
fn a_follower_reconciles_nothing_until_the_leader_releases_the_lease() {
    let s = setup("");
    let kube = MockKube::start(&s.tmp.path().join("kube"));
    let s = with_health(s, &kube);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = runtime
        .block_on(Cluster::connect(&Source::Kubeconfig(
            kube.kubeconfig().to_owned(),
        )))
        .expect("connect");
    // Another replica holds the Lease (for 15 s from its last renewal).
    let other = Leader::new(
        &cluster,
        NAMESPACE,
        "druppie",
        "druppie-1",
        Duration::from_secs(15),
    );
    assert!(runtime.block_on(other.try_acquire()).expect("acquire"));

    let d = start(&s, &kube);
    assert_ne!(IDENTITY, "druppie-1");
    // Ready as a follower; two election rounds (2 s apart) later it still
    // follows and has written nothing.
    let lease = format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/druppie");
    d.wait("two election rounds", |_| kube.asked("GET", &lease) >= 3);
    assert_eq!(d.reconciles(), 0.0);
    let infra = s.forge().join("infra.git");
    assert_eq!(git(&infra, &["rev-list", "--count", "main"]).trim(), "1");
    assert!(events(&s).is_empty());

    // Released: the daemon takes the Lease at its next round and reconciles.
    runtime.block_on(other.release()).expect("release");
    d.wait("the first reconcile", |d| d.reconciles() >= 1.0);
    assert_eq!(recorded(&s, "applied", "permits", "dev").len(), 1);
    assert!(
        !runtime.block_on(other.try_acquire()).expect("read"),
        "the daemon holds it now"
    );
    assert!(d.terminate().success());
}
