//! A reconcile a push asks for does only what moved in git since the
//! last one: nothing at all when nothing moved. A person's push to a
//! target repo is seen as moved; a pull request event, a poll and a
//! start look at everything.

use super::{Daemon, push_payload, serve_setup};
use crate::support::git;

/// Reconciles that found nothing moved.
fn unmoved(d: &Daemon) -> usize {
    d.logs()
        .iter()
        .filter(|l| l.contains(r#""message":"nothing moved since the last reconcile""#))
        .count()
}

/// Posts `event` with `body` and waits for its reconcile to end.
fn hook_and_wait(d: &Daemon, event: &str, delivery: &str, body: &str) {
    let target = d.reconciles() + 1.0;
    assert_eq!(d.hook(event, delivery, body, None), 202);
    d.wait("the reconcile", |d| d.reconciles() >= target);
}

/// Every plan × environment's state, pull and spec commit.
fn statuses(d: &Daemon) -> Vec<String> {
    d.json("/api/v1/status")["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .map(|p| {
            format!(
                "{} {} {} {} {}",
                p["plan"], p["env"], p["state"], p["pull"], p["spec_commit"]
            )
        })
        .collect()
}

#[test]
fn a_push_when_nothing_moved_writes_nothing_and_a_persons_push_to_a_target_is_seen() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let infra = s.forge().join("infra.git");
    let head = |rev: &str| git(&infra, &["rev-parse", rev]).trim().to_owned();
    let (main, proposal) = (head("main"), head("druppie/prod/permits"));
    let before = statuses(&d);
    assert!(
        before.iter().any(|l| l.contains("\"pending-approval\"")),
        "{before:?}"
    );

    // The first reconcile wrote (dev committed, prod proposed), so the
    // next one looks again; then webhooks about infra find nothing
    // moved: nothing written, every status as it was (prod still waits
    // for its approval).
    for i in 0..3 {
        hook_and_wait(
            &d,
            "push",
            &format!("idle-{i}"),
            &push_payload("infra", &main),
        );
    }
    assert_eq!(unmoved(&d), 2, "{}", d.logs().join("\n"));
    assert_eq!(
        (head("main"), head("druppie/prod/permits")),
        (main.clone(), proposal.clone())
    );
    assert_eq!(statuses(&d), before);
    assert_eq!(
        d.metric("druppie_pending_approvals"),
        1.0,
        "the counts stand"
    );

    // A person changes a file druppie manages in dev and pushes: the
    // refs moved, so the reconcile looks, finds the drift and restores it.
    let work = s.tmp.path().join("infra-work");
    git(
        s.tmp.path(),
        &["clone", "-q", infra.to_str().expect("utf-8"), "infra-work"],
    );
    let file = "apps/dev/permits/app/deployment.yaml";
    let rendered = std::fs::read_to_string(work.join(file)).expect("rendered");
    std::fs::write(work.join(file), "kind: Deployment\nimage: evil:latest\n").expect("edit");
    git(
        &work,
        &[
            "-c",
            "user.name=P",
            "-c",
            "user.email=p@example.org",
            "commit",
            "-qam",
            "by hand",
        ],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    let edited = head("main");
    hook_and_wait(&d, "push", "drift", &push_payload("infra", &edited));
    assert_eq!(unmoved(&d), 2, "a moved ref is looked at");
    assert_ne!(head("main"), edited, "the drift is restored");
    assert_eq!(git(&infra, &["show", &format!("main:{file}")]), rendered);

    // Nothing moved since the restoring commit: after one more look, push
    // webhooks do nothing again.
    let restored = head("main");
    hook_and_wait(
        &d,
        "push",
        "after-drift-1",
        &push_payload("infra", &restored),
    );
    hook_and_wait(
        &d,
        "push",
        "after-drift-2",
        &push_payload("infra", &restored),
    );
    assert_eq!(unmoved(&d), 3);

    // A pull request event looks at everything: a forge holds more than
    // git (a closed pull request shows only there).
    let pr = r#"{"action":"closed","number":1,"pull_request":{"number":1,"merged":false},"repository":{"name":"infra","full_name":"platform/infra"}}"#;
    hook_and_wait(&d, "pull_request", "closed", pr);
    assert_eq!(unmoved(&d), 3);
    assert_eq!(head("main"), restored);
    assert!(d.terminate().success());
}
