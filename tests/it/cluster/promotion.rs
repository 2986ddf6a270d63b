//! Promotion past an environment that asks for verification
//! (`verify: true`), end to end: the real daemon, the mock cluster, a
//! plain-git forge. The next environment's proposal opens only once the
//! change is verified where it is live.

use std::time::Duration;

use super::{ClusterState, Deployment, Kustomization, MockKube, recorded, serve, settle, wait_for};
use crate::apply::setup;
use crate::promotion::{edit, promoted_from};
use crate::support::git;

/// The apply setup where dev asks for verification and prod waits for
/// it.
fn verifying_dev() -> crate::apply::Setup {
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
    s
}

/// Flux reports `commit` Ready in dev and the app available.
fn dev_ready(kube: &MockKube, commit: &str) {
    kube.set(&ClusterState {
        kustomizations: vec![Kustomization::of_plan("permits", "dev").ready_at(commit)],
        deployments: vec![Deployment {
            namespace: "permits-dev".into(),
            name: "permits-app".into(),
            replicas: 1,
            available: 1,
        }],
        ..ClusterState::default()
    });
}

#[test]
fn a_change_is_proposed_to_prod_only_once_verified_in_dev() {
    let s = verifying_dev();
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
    dev_ready(&kube, &commit);
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

#[test]
fn a_verification_seen_by_a_reconcile_that_found_nothing_moved_lets_the_next_push_propose_prod() {
    let s = verifying_dev();
    // No poll to fall back on: only webhooks reconcile.
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    config.push_str("\n[server]\nlisten = \"127.0.0.1:0\"\npoll_interval = \"1h\"\nwebhook_secret_env = \"DRUPPIE_IT_WEBHOOK_SECRET\"\n");
    std::fs::write(&s.config, config).expect("config");
    let kube = MockKube::start(&s.tmp.path().join("kube"));
    let d = serve(&s, &kube);
    let commit = recorded(&s, "applied", "permits", "dev")[0].clone();
    let infra = s.forge().join("infra.git");
    let proposals = || git(&infra, &["branch", "--list", "druppie/*"]);
    let push = |n: usize| {
        let target = d.reconciles() + 1.0;
        let body = crate::serve::push_payload("infra", &"1".repeat(40));
        assert_eq!(d.hook("push", &format!("push-{n}"), &body, None), 202);
        d.wait("the push's reconcile", |d| d.reconciles() >= target);
    };
    for n in 0..3 {
        push(n);
    }
    assert_eq!(proposals(), "", "nothing proposed before dev is verified");
    // Flux reports dev Ready: the next reconcile, which finds nothing
    // moved in git, records the verification; the push after it sees the
    // trail moved and opens prod's proposal.
    dev_ready(&kube, &commit);
    for n in 3..8 {
        push(n);
        if proposals().contains("druppie/prod/permits") {
            break;
        }
    }
    assert!(
        proposals().contains("druppie/prod/permits"),
        "{}",
        d.logs().join("\n")
    );
    assert!(d.terminate().success());
}
