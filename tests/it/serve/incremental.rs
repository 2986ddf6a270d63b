//! A reconcile a push asks for does only what moved in git since the
//! last one: nothing at all when nothing moved. A person's push to a
//! target repo is seen as moved; a pull request event, a poll and a
//! start look at everything.

use super::{Daemon, push_payload, push_plan_change, push_spec, serve_setup};
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

/// Index entries of the checkout at `dir` whose files are not older than
/// the index, to the second: git reads each again on its next index write.
fn racy(dir: &std::path::Path) -> usize {
    let index = std::fs::metadata(dir.join(".git/index")).expect("an index");
    let written = index
        .modified()
        .expect("a time")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let entries = git(dir, &["ls-files", "--debug"]);
    let mtimes: Vec<u64> = entries
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mtime: "))
        .map(|t| {
            t.split(':')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("seconds")
        })
        .collect();
    assert!(!mtimes.is_empty(), "{entries}");
    mtimes.iter().filter(|&&m| m >= written).count()
}

#[test]
fn a_new_clones_checkout_is_settled_so_the_next_change_does_not_read_every_file_again() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let clone = s.tmp.path().join("cache/spec");
    d.wait("the spec checkout settled", |_| racy(&clone) == 0);
    // The next change's checkout leaves only what it wrote to settle.
    let after = push_plan_change(&s, 4);
    hook_and_wait(&d, "push", "change", &push_payload("spec", &after));
    assert!(
        racy(&clone) <= 1,
        "{}",
        git(&clone, &["ls-files", "--debug"])
    );
    assert!(d.terminate().success());
}

/// What a reconcile left that a person sees: every status, the dry run,
/// every plan's freight, and every ref of every repo on the forge.
fn snapshot(d: &Daemon, s: &crate::apply::Setup) -> Vec<String> {
    let mut seen = statuses(d);
    seen.push(d.json("/api/v1/diff").to_string());
    for plan in d.json("/api/v1/plans").as_array().expect("plans") {
        let name = plan["name"].as_str().expect("a name");
        seen.push(d.json(&format!("/api/v1/plans/{name}/status")).to_string());
    }
    let mut repos: Vec<_> = std::fs::read_dir(s.forge())
        .expect("the forge")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "git"))
        .filter(|p| !p.ends_with("spec.git"))
        .collect();
    repos.sort();
    for repo in repos {
        seen.push(format!("{}\n{}", repo.display(), git(&repo, &["show-ref"])));
    }
    seen
}

/// Reconciles after a push until one finds nothing moved (at most four):
/// what the pushes and their reconciles left has gone as far as it goes.
fn settle(d: &Daemon, step: usize) {
    let before = unmoved(d);
    for i in 0..4 {
        hook_and_wait(
            d,
            "push",
            &format!("settle-{step}-{i}"),
            &push_payload("infra", &"1".repeat(40)),
        );
        if unmoved(d) > before {
            return;
        }
    }
    panic!("step {step}: never settled; logs:\n{}", d.logs().join("\n"));
}

/// Commits everything in the spec clone and pushes it; the commit. A
/// random change may change nothing (prod replicas set to what they
/// were): the spec still moves, by an empty commit.
#[test]
fn incremental_and_whole_reconciles_agree_on_random_spec_changes() {
    let seed = std::env::var("DRUPPIE_IT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("seed {seed} (DRUPPIE_IT_SEED={seed} repeats this run)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let s = serve_setup();
    let work = s.tmp.path().join("spec-work");
    let plans = work.join("spec/plans");
    let template = s
        .tmp
        .path()
        .join("spec-work/templates/webapp-python/infra/deployment.yaml.j2");
    let permits = std::fs::read_to_string(plans.join("permits.yaml")).expect("the plan");
    for name in ["ledger", "meters"] {
        let text = permits.replace("name: permits", &format!("name: {name}"));
        std::fs::write(plans.join(format!("{name}.yaml")), text).expect("a plan");
    }
    push_spec(&work, "three plans");
    let d = Daemon::start(&s);
    settle(&d, 0);
    let mut narrowed = 0;
    let mut next_name = 0;
    for step in 1..=8 {
        let mut live: Vec<String> = std::fs::read_dir(&plans)
            .expect("plans")
            .map(|e| {
                e.expect("a plan")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        live.sort();
        let pick = live[rng.usize(..live.len())].clone();
        let path = plans.join(&pick);
        let what = match rng.u8(..10) {
            // Most changes are one plan's, as most spec pull requests are.
            0..=4 => {
                let text = std::fs::read_to_string(&path).expect("plan");
                let at = text.find(":1.0.").expect("an image tag") + 5;
                let end = at + text[at..].find('}').expect("the flow mapping's end");
                let tag = rng.u32(..1000);
                std::fs::write(&path, format!("{}{tag}{}", &text[..at], &text[end..]))
                    .expect("plan");
                format!("{pick}: image tag 1.0.{tag}")
            }
            5 => {
                let text = std::fs::read_to_string(&path).expect("plan");
                let replicas = rng.u8(2..9);
                let text = match text.find("replicas: ") {
                    Some(at) => format!("{}replicas: {replicas}{}", &text[..at], &text[at + 11..]),
                    None => text,
                };
                std::fs::write(&path, text).expect("plan");
                format!("{pick}: prod replicas {replicas}")
            }
            6 => {
                next_name += 1;
                let name = format!("extra{next_name}");
                let text = permits.replace("name: permits", &format!("name: {name}"));
                std::fs::write(plans.join(format!("{name}.yaml")), text).expect("plan");
                format!("a new plan {name}")
            }
            7 if live.len() > 1 => {
                std::fs::remove_file(&path).expect("remove");
                format!("{pick} removed")
            }
            8 => {
                let tag = rng.u32(..1000);
                std::fs::write(
                    &template,
                    format!("kind: Deployment\nimage: {{{{ image }}}}\n# template {tag}\n"),
                )
                .expect("template");
                format!("the deployment template ({tag})")
            }
            _ => {
                std::fs::write(work.join("NOTES.md"), format!("step {step}\n")).expect("notes");
                "a file outside the spec".to_owned()
            }
        };
        let commit = push_spec(&work, &what);
        let before = d
            .logs()
            .iter()
            .filter(|l| l.contains("only the spec moved"))
            .count();
        hook_and_wait(
            &d,
            "push",
            &format!("step-{step}"),
            &push_payload("spec", &commit),
        );
        let after = d
            .logs()
            .iter()
            .filter(|l| l.contains("only the spec moved"))
            .count();
        narrowed += after - before;
        // A narrowed reconcile of one plan's edit reads that file again
        // (none, when the edit left it as it was), not the whole spec,
        // and so does its render check, in the child kept from the last.
        if after > before && (what.contains("image tag") || what.contains("replicas")) {
            let logs = d.logs();
            for message in ["only the spec moved", "render check passed"] {
                let line = logs.iter().rev().find(|l| l.contains(message));
                assert!(
                    line.is_some_and(|l| ["0", "1"]
                        .iter()
                        .any(|n| l.contains(&format!(r#""files_read_again":{n},"#))
                            || l.contains(&format!(r#""files_read_again":{n}}}"#)))),
                    "seed {seed}, step {step} ({what}): {line:?}"
                );
            }
        }
        settle(&d, step);
        let incremental = snapshot(&d, &s);
        // A pull request event: the whole spec, as the CLI runs it.
        hook_and_wait(
            &d,
            "pull_request",
            &format!("whole-{step}"),
            r#"{"action":"synchronize","number":1,"pull_request":{"number":1,"merged":false},"repository":{"name":"infra","full_name":"platform/infra"}}"#,
        );
        let whole = snapshot(&d, &s);
        for (a, b) in incremental.iter().zip(&whole) {
            assert_eq!(
                a, b,
                "seed {seed}, step {step} ({what}): incremental, then whole"
            );
        }
        assert_eq!(
            incremental.len(),
            whole.len(),
            "seed {seed}, step {step} ({what})"
        );
    }
    println!("{narrowed} of 8 changes reconciled only the plans they reach");
    assert!(d.terminate().success());
}
