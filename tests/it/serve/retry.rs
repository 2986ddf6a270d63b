//! The daemon's retry decision, made from typed errors: a failure that
//! may pass (the spec remote unreachable) is retried with backoff until
//! it converges with no new push; an invalid spec commit is terminal for
//! that commit, not retried, and the next valid commit reconciles.

use std::time::{Duration, Instant};

use super::{Daemon, push_payload, push_plan_change, serve_setup};
use crate::apply::Setup;
use crate::support::git;

/// The first wait and the longest after a transient failure, short so
/// that a few backoff periods pass in a second.
const RETRY: &str = "retry_backoff = \"100ms\"\nretry_backoff_max = \"400ms\"\n";

/// [`serve_setup`] with a short backoff (`[server]` is the config's last
/// table).
fn setup() -> Setup {
    let s = serve_setup();
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    assert!(
        config.contains("\n[server]\n")
            && !config[config.find("\n[server]\n").unwrap() + 1..].contains("\n[")
    );
    config.push_str(RETRY);
    std::fs::write(&s.config, config).expect("config");
    s
}

fn count(d: &Daemon, result: &str) -> f64 {
    d.metric(&format!("druppie_reconciles_total{{result=\"{result}\"}}"))
}

/// Log lines saying a retry is scheduled.
fn retries(d: &Daemon) -> usize {
    d.logs()
        .iter()
        .filter(|l| l.contains("\"will retry\""))
        .count()
}

#[test]
fn an_unreachable_spec_remote_is_retried_with_backoff_and_converges_with_no_new_push() {
    let s = setup();
    let d = Daemon::start(&s);
    assert_eq!(d.state("permits", "dev")["state"], "in-sync");
    let spec = s.forge().join("spec.git");
    let away = s.forge().join("spec-away.git");

    // A change is pushed, then the spec remote goes away before the
    // daemon fetches it.
    let after = push_plan_change(&s, 5);
    std::fs::rename(&spec, &away).expect("the remote goes away");
    assert_eq!(
        d.hook("push", "r-1", &push_payload("spec", &after), None),
        202
    );
    d.wait("retried twice", |d| {
        retries(d) >= 2 && count(d, "failed") >= 2.0
    });
    let dev = d.state("permits", "dev");
    assert_eq!(dev["state"], "failed", "{dev}");
    let why = dev["message"].as_str().expect("a cause");
    assert!(
        why.starts_with("the spec repo: spec: git fetch failed:"),
        "{why}"
    );
    let status = d.json("/api/v1/status");
    assert_eq!(status["last_error"].as_str(), Some(why), "{status}");
    // Every retry was a backoff wait, not a stop: nothing terminal.
    assert_eq!(count(&d, "terminal"), 0.0);

    // The remote is back; no push, no webhook, no poll (1 h): the next
    // retry applies the change.
    std::fs::rename(&away, &spec).expect("the remote is back");
    let back = Instant::now();
    // A plan's state is published during the reconcile; `last_error`
    // is cleared at its end, after the reconcile is counted.
    d.wait("converged", |d| {
        let dev = d.state("permits", "dev");
        dev["state"] == "in-sync"
            && dev["spec_commit"] == after.as_str()
            && d.json("/api/v1/status")["last_error"].is_null()
    });
    assert!(
        back.elapsed() < Duration::from_secs(5),
        "within the backoff cap: {:?}",
        back.elapsed()
    );
    let infra = s.forge().join("infra.git");
    assert_eq!(
        git(
            &infra,
            &["show", "main:apps/dev/permits/app/deployment.yaml"]
        ),
        "kind: Deployment\nimage: registry.example.org/permits:1.0.5\n"
    );
    // Once converged, it stops retrying.
    let settled = (retries(&d), d.reconciles());
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!((retries(&d), d.reconciles()), settled);
    assert!(d.terminate().success());
}

#[test]
fn an_invalid_spec_commit_is_terminal_not_retried_and_the_next_valid_commit_reconciles() {
    let s = setup();
    let d = Daemon::start(&s);
    assert_eq!(d.state("permits", "dev")["state"], "in-sync");
    let work = s.tmp.path().join("spec-work");

    // A commit naming a stack that does not exist.
    git(&work, &["pull", "-q", "--ff-only", "origin", "main"]);
    let plan = work.join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    std::fs::write(&plan, text.replace("stack: webapp-db", "stack: webapp-dbx")).expect("plan");
    git(&work, &["commit", "-qam", "a stack that does not exist"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let bad = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let before = d.reconciles();
    assert_eq!(
        d.hook("push", "t-1", &push_payload("spec", &bad), None),
        202
    );
    d.wait("the invalid commit reconciled", |d| d.reconciles() > before);
    assert_eq!(count(&d, "terminal"), 1.0);
    let dev = d.state("permits", "dev");
    assert_eq!(dev["state"], "failed", "{dev}");
    let why = dev["message"].as_str().expect("a cause");
    assert!(
        why.starts_with("spec/plans/permits.yaml:2:") && why.contains("webapp-dbx"),
        "a located validation error: {why}"
    );

    // Several backoff periods (100, 200, 400, 400 ms …) pass, and the
    // same commit pushed again: no reconcile, no retry.
    let settled = d.reconciles();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        d.hook("push", "t-2", &push_payload("spec", &bad), None),
        202
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.reconciles(), settled, "not retried");
    assert_eq!(retries(&d), 0);
    assert_eq!(count(&d, "terminal"), 1.0);
    assert_eq!(count(&d, "failed"), 0.0);

    // The next commit fixes it and reconciles.
    std::fs::write(&plan, &text).expect("plan");
    git(&work, &["commit", "-qam", "the stack back"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let good = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    assert_eq!(
        d.hook("push", "t-3", &push_payload("spec", &good), None),
        202
    );
    d.wait("the next commit reconciled", |d| {
        let dev = d.state("permits", "dev");
        dev["state"] == "in-sync" && dev["spec_commit"] == good.as_str()
    });
    assert_eq!(count(&d, "terminal"), 1.0);
    assert!(d.terminate().success());
}

#[test]
fn a_revision_is_render_checked_once_and_again_when_the_spec_moves() {
    let s = super::serve_setup();
    let d = Daemon::start(&s);
    let checks = |d: &Daemon| {
        d.logs()
            .iter()
            .filter(|l| l.contains(r#""message":"render check passed""#))
            .count()
    };
    assert_eq!(checks(&d), 1);
    // Webhooks about a target repo: the spec is where it was.
    for i in 0..2 {
        let target = d.reconciles() + 1.0;
        let body = super::push_payload("infra", &"0".repeat(40));
        assert_eq!(d.hook("push", &format!("idle-{i}"), &body, None), 202);
        d.wait("a reconcile", |d| d.reconciles() >= target);
    }
    assert_eq!(checks(&d), 1, "the same revision is not rendered again");
    // The spec moves: the new revision is checked.
    let after = super::push_plan_change(&s, 3);
    let body = super::push_payload("spec", &after);
    assert_eq!(d.hook("push", "moved", &body, None), 202);
    d.wait("the new revision checked", |d| checks(d) == 2);
    assert!(d.terminate().success());
}
