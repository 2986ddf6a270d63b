//! Promotion past an environment that asks for verification
//! (`verify: true`), end to end: the real daemon, the mock cluster, a
//! plain-git forge. The next environment's proposal opens only once the
//! change is verified where it is live.

use std::time::Duration;

use super::{ClusterState, Deployment, Kustomization, MockKube, recorded, serve, settle, wait_for};
use crate::apply::setup;
use crate::promotion::{edit, promoted_from};
use crate::support::git;

#[test]
fn a_change_is_proposed_to_prod_only_once_verified_in_dev() {
    let s = setup("");
    let spec = s.f.path();
    let edit = |path: &str, from: &str, to: &str| edit(spec, path, from, to);
    edit(
        "spec/platform.yaml",
        "    trust: deploy",
        "    trust: deploy\n    verify: true",
    );
    edit("spec/plans/permits.yaml", "promote: {prod: parallel}\n", "");
    git(spec, &["commit", "-qam", "dev verifies; prod waits for it"]);
    let kube = MockKube::start(&s.tmp.path().join("kube"));
    let d = serve(&s, &kube);
    let applied = recorded(&s, "applied", "permits", "dev");
    assert_eq!(applied.len(), 1);
    let commit = applied[0].clone();
    let infra = s.forge().join("infra.git");
    let proposals = || git(&infra, &["branch", "--list", "druppie/*"]);
    // Committed to dev, but Flux has not applied it: prod waits.
    settle(&d);
    assert_eq!(proposals(), "", "nothing proposed before dev is verified");
    // The status says why (between reconciles: one may be applying).
    d.wait("prod waiting for dev's verification", |d| {
        let prod = d.state("permits", "prod");
        prod["state"] == "waiting"
            && prod["message"].as_str().is_some_and(|m| {
                m.contains(
                    "permits's change goes to prod once it is verified (not verified yet) in dev",
                )
            })
    });
    // Flux reports the commit Ready and the app available: verified,
    // and the next reconcile opens prod's proposal, promoted from dev.
    kube.set(&ClusterState {
        kustomizations: vec![Kustomization::of_plan("permits", "dev").ready_at(&commit)],
        deployments: vec![Deployment {
            namespace: "permits-dev".into(),
            name: "permits-app".into(),
            replicas: 1,
            available: 1,
        }],
        ..ClusterState::default()
    });
    wait_for(
        &s,
        &d,
        "verified",
        "permits",
        "dev",
        Duration::from_secs(15),
    );
    d.wait("prod's proposal", |_| {
        proposals().contains("druppie/prod/permits")
    });
    assert_eq!(promoted_from(&infra, "druppie/prod/permits"), "dev");
    assert!(d.terminate().success());
}
