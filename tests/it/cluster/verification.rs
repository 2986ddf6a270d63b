//! Post-deploy verification end to end: what Flux reports (through the
//! mock API server) decides when the daemon records `verified` or
//! `failed` for the commit it applied.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{
    ClusterState, Deployment, Kustomization, MockKube, TOKEN, events, health_path, note, recorded,
    serve, settle, wait_for, with_health,
};
use crate::apply::{Setup, setup};
use crate::serve::Daemon;
use crate::support::git;

/// The apply fixture (permits: dev deploys, prod proposes) with the app's
/// health URL on the mock, the daemon started on it; returns the setup,
/// the mock, the daemon and the infra commit it applied to dev.
fn started() -> (Setup, MockKube, Daemon, String) {
    let s = setup("");
    let kube = MockKube::start(&s.tmp.path().join("kube"));
    let s = with_health(s, &kube);
    let d = serve(&s, &kube);
    let applied = recorded(&s, "applied", "permits", "dev");
    assert_eq!(applied.len(), 1, "{:?}", events(&s));
    let commit = applied[0].clone();
    (s, kube, d, commit)
}

/// What the cluster reports in the status API for `plan` in `env`.
fn cluster_status(d: &Daemon, plan: &str, env: &str) -> Value {
    d.state(plan, env)["cluster"].clone()
}

/// The `verification-recorded` events' results, from the logs.
fn verdicts(d: &Daemon) -> Vec<String> {
    d.logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["event"] == "verification-recorded")
        .filter_map(|v| {
            let detail: Value = serde_json::from_str(v["fields"]["detail"].as_str()?).ok()?;
            Some(detail["result"].as_str()?.to_owned())
        })
        .collect()
}

#[test]
fn the_daemon_verifies_a_plan_once_flux_reports_its_applied_commit_ready() {
    let (s, kube, d, commit) = started();
    let infra = s.forge().join("infra.git");
    let first = git(&infra, &["rev-list", "--max-parents=0", "main"])
        .trim()
        .to_owned();
    assert_ne!(first, commit);
    // The environment's own Kustomization is Ready at the applied commit
    // all along: what counts is the plan's.
    let env_wide = Kustomization::at_path("apps-dev", "./apps/dev").ready_at(&commit);
    let state = |plan: Kustomization, available: i32| ClusterState {
        kustomizations: vec![
            env_wide.clone(),
            plan,
            Kustomization::of_plan("permits", "prod"),
        ],
        deployments: vec![Deployment {
            namespace: "permits-dev".into(),
            name: "permits-app".into(),
            replicas: 1,
            available,
        }],
        health: BTreeMap::new(),
    };
    let permits = || Kustomization::of_plan("permits", "dev");

    // No Flux at all yet.
    settle(&d);
    assert!(recorded(&s, "verified", "permits", "dev").is_empty());
    assert_eq!(
        cluster_status(&d, "permits", "dev")["kustomization"],
        Value::Null
    );

    // Flux has applied the commit, but the plan's health checks fail.
    kube.set(&state(permits().failing_at(&commit), 1));
    settle(&d);
    assert!(recorded(&s, "verified", "permits", "dev").is_empty());
    assert!(recorded(&s, "failed", "permits", "dev").is_empty());
    let seen = cluster_status(&d, "permits", "dev");
    assert_eq!(seen["kustomization"]["name"], "permits-dev", "{seen}");
    assert_eq!(seen["kustomization"]["ready"], false, "{seen}");

    // Ready, but at an older revision.
    kube.set(&state(permits().ready_at(&first), 1));
    settle(&d);
    assert!(recorded(&s, "verified", "permits", "dev").is_empty());
    // Ready at the commit, but the Deployment has no available replica.
    kube.set(&state(permits().ready_at(&commit), 0));
    settle(&d);
    assert!(recorded(&s, "verified", "permits", "dev").is_empty());
    let health = health_path("permits-dev", "app");
    assert_eq!(kube.asked("GET", &health), 0, "no health check yet");

    // Ready at the commit druppie applied, and available: verified, once.
    kube.set(&state(permits().ready_at(&commit), 1));
    let verified = wait_for(
        &s,
        &d,
        "verified",
        "permits",
        "dev",
        Duration::from_secs(15),
    );
    assert_eq!(verified, vec![commit.clone()]);
    assert_eq!(kube.asked("GET", &health), 1);
    settle(&d);
    assert_eq!(
        recorded(&s, "verified", "permits", "dev"),
        vec![commit.clone()],
        "once"
    );
    assert_eq!(kube.asked("GET", &health), 1, "not checked again");
    assert_eq!(verdicts(&d), ["verified"], "one verdict event");
    let seen = cluster_status(&d, "permits", "dev");
    assert_eq!(seen["kustomization"]["ready"], true, "{seen}");
    assert_eq!(
        seen["kustomization"]["revision"],
        format!("main@sha1:{commit}"),
        "{seen}"
    );
    d.wait("the verdict in the commit's note", |_| {
        note(&s, &commit).contains("druppie: permits verified in dev: every health URL answers")
    });

    // What the daemon asked: Flux across namespaces, the plan's
    // Deployments, and the Lease in its namespace (created, then renewed).
    let lease = "/apis/coordination.k8s.io/v1/namespaces/druppie/leases";
    let asked: Vec<String> = kube
        .requests()
        .iter()
        .filter(|r| r.port == "api")
        .map(|r| format!("{} {} {}", r.method, r.url(), r.code))
        .collect();
    let first_read = format!("GET {lease}/druppie 404");
    assert!(
        asked
            .iter()
            .all(|r| r.ends_with(" 200") || r.ends_with(" 201") || *r == first_read),
        "every request answered, with the token: {asked:#?}"
    );
    for wanted in [
        "GET /apis/kustomize.toolkit.fluxcd.io/v1/",
        "GET /apis/apps/v1/namespaces/permits-dev/deployments",
        &format!("POST {lease} 201"),
        &format!("PUT {lease}/druppie 200"),
    ] {
        assert!(
            asked.iter().any(|r| r.starts_with(wanted)),
            "{wanted}: {asked:#?}"
        );
    }
    assert!(
        d.logs().iter().all(|l| !l.contains(TOKEN)),
        "the token stays out of the logs"
    );
    assert!(d.terminate().success());
    let run = s.audit_run(&["--json", "--verify"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn a_health_url_answering_500_is_recorded_as_failed() {
    let (s, kube, d, commit) = started();
    let health = health_path("permits-dev", "app");
    kube.set(&ClusterState {
        kustomizations: vec![Kustomization::of_plan("permits", "dev").ready_at(&commit)],
        health: BTreeMap::from([(health.clone(), 500)]),
        ..ClusterState::default()
    });
    // Five attempts, two seconds apart.
    let failed = wait_for(&s, &d, "failed", "permits", "dev", Duration::from_secs(20));
    assert_eq!(failed, vec![commit.clone()]);
    assert!(recorded(&s, "verified", "permits", "dev").is_empty());
    assert_eq!(kube.asked("GET", &health), 5);
    d.wait("the verdict's event", |d| verdicts(d) == ["failed"]);
    d.wait("the verdict in the commit's note", |_| {
        let note = note(&s, &commit);
        note.contains("druppie: permits verification FAILED in dev: ")
            && note.contains("answered 500")
    });
    // A verdict is final for its commit: the health URL healing does not
    // turn it into `verified`.
    kube.set(&ClusterState {
        kustomizations: vec![Kustomization::of_plan("permits", "dev").ready_at(&commit)],
        ..ClusterState::default()
    });
    settle(&d);
    assert!(recorded(&s, "verified", "permits", "dev").is_empty());
    assert!(d.terminate().success());
}

/// Flux reports the revision of its source, the head of `main`: when two
/// plans are committed in one run (one commit each, pushed together),
/// the first plan's Kustomization reports the second plan's commit, which
/// contains the first's.
#[test]
fn a_plan_is_verified_when_flux_applied_a_later_commit_that_contains_its_own() {
    let s = setup("");
    std::fs::write(
        s.f.path().join("spec/plans/licences.yaml"),
        "name: licences\nstack: webapp-db\nowner: team-licences\nenvironments: [dev]\n\
         inputs:\n  app: {image: registry.example.org/licences:1.0.0}\n",
    )
    .expect("plan");
    git(s.f.path(), &["add", "-A"]);
    git(s.f.path(), &["commit", "-qm", "a second plan in dev"]);
    let kube = MockKube::start(&s.tmp.path().join("kube"));
    let s = with_health(s, &kube);
    let d = serve(&s, &kube);
    let head = git(&s.forge().join("infra.git"), &["rev-parse", "main"])
        .trim()
        .to_owned();
    let own: Vec<Vec<String>> = ["licences", "permits"]
        .iter()
        .map(|plan| recorded(&s, "applied", plan, "dev"))
        .collect();
    assert_eq!(own[0].len(), 1, "{own:?}");
    assert_eq!(own[1].len(), 1, "{own:?}");
    assert_ne!(own[0], own[1], "one commit per plan");
    assert!(own.iter().any(|c| c[0] != head), "{own:?} {head}");
    // Flux applied the head of main, and both plans are Ready there.
    kube.set(&ClusterState {
        kustomizations: vec![
            Kustomization::of_plan("licences", "dev").ready_at(&head),
            Kustomization::of_plan("permits", "dev").ready_at(&head),
        ],
        ..ClusterState::default()
    });
    for (plan, commits) in ["licences", "permits"].iter().zip(&own) {
        let verified = wait_for(&s, &d, "verified", plan, "dev", Duration::from_secs(15));
        assert_eq!(&verified, commits, "{plan}");
    }
    assert!(d.terminate().success());
}

#[test]
fn a_merged_proposal_is_verified_at_its_merge_commit() {
    let (s, kube, d, dev) = started();
    // prod proposes: nothing applied there until a person merges.
    assert!(recorded(&s, "applied", "permits", "prod").is_empty());
    s.merge_proposal("Merge druppie/prod/permits");
    let merge = git(&s.forge().join("infra.git"), &["rev-parse", "main"])
        .trim()
        .to_owned();
    let applied = wait_for(
        &s,
        &d,
        "applied",
        "permits",
        "prod",
        Duration::from_secs(15),
    );
    assert_eq!(applied, vec![merge.clone()], "the merge commit is applied");
    kube.set(&ClusterState {
        kustomizations: vec![
            Kustomization::of_plan("permits", "dev").ready_at(&dev),
            Kustomization::of_plan("permits", "prod").ready_at(&merge),
        ],
        ..ClusterState::default()
    });
    let verified = wait_for(
        &s,
        &d,
        "verified",
        "permits",
        "prod",
        Duration::from_secs(15),
    );
    assert_eq!(verified, vec![merge.clone()]);
    assert_eq!(kube.asked("GET", &health_path("permits", "app")), 1);
    d.wait("the verdict in the merge commit's note", |_| {
        note(&s, &merge).contains("druppie: permits verified in prod: every health URL answers")
    });
    assert!(d.terminate().success());
}
