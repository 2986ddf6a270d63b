//! The daemon killed at random points of its reconciles, with the cache
//! it left (and stale lock files in it), converges when started again;
//! `druppie apply` run beside it shares its cache.

use std::path::Path;
use std::time::Duration;

use super::{Daemon, commits, push_payload, push_plan_change, serve_setup, signal};
use crate::apply::Setup;
use crate::support::git;

/// The spec commits of druppie's commits on the infra repo's main.
fn applied(s: &Setup) -> Vec<String> {
    git(
        &s.forge().join("infra.git"),
        &[
            "log",
            "--format=%(trailers:key=Druppie-Spec-Commit,valueonly)",
            "main",
        ],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_owned)
    .collect()
}

fn leave_stale_locks(git_dir: &Path, locks: &[&str]) {
    for lock in locks {
        let path = git_dir.join(lock);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, "").expect("a stale lock");
    }
}

/// Every repo on the forge and in the cache is sound and every commit
/// druppie made in them verifies; no lock file is left in the cache.
fn assert_sound(s: &Setup) {
    let cache = s.tmp.path().join("cache");
    for dir in [s.forge(), cache.clone()] {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with(".tmp-"), "a leftover {name}");
            if name.ends_with(".git") {
                s.verify_all(&entry.path());
            }
        }
    }
    s.verify_all(&cache.join("spec"));
    let out = std::process::Command::new("find")
        .arg(&cache)
        .args(["-name", "*.lock"])
        .output()
        .expect("find");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "lock files left");
}

#[test]
fn a_daemon_killed_mid_reconcile_converges_with_the_cache_it_left() {
    let s = serve_setup();
    let mut d = Daemon::start(&s);
    let cache = s.tmp.path().join("cache");
    let mut released = Vec::new();
    for round in 0..8 {
        let after = push_plan_change(&s, 10 + round);
        let delivery = format!("kill-{round}");
        assert_eq!(
            d.hook("push", &delivery, &push_payload("spec", &after), None),
            202
        );
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..250)));
        signal(&d.child, "KILL");
        drop(d);
        if round % 2 == 1 {
            // As if the kill had hit while refs, the index or the config
            // were locked, in a target clone and in the spec's checkout.
            leave_stale_locks(
                &cache.join("infra.git"),
                &["refs/heads/main.lock", "packed-refs.lock", "config.lock"],
            );
            leave_stale_locks(
                &cache.join("spec/.git"),
                &[
                    "index.lock",
                    "HEAD.lock",
                    "refs/heads/druppie-audit.lock",
                    "refs/remotes/origin/main.lock",
                ],
            );
        }
        d = Daemon::start(&s);
        d.wait("converged", |d| {
            let dev = d.state("permits", "dev");
            dev["spec_commit"] == after.as_str() && dev["state"] == "in-sync"
        });
        released.push(after);
    }
    let on_main = applied(&s);
    for spec in &released {
        assert_eq!(
            on_main.iter().filter(|c| *c == spec).count(),
            1,
            "one dev commit for {spec}: {on_main:?}"
        );
    }
    assert!(d.terminate().success());
    assert_sound(&s);
}

#[test]
fn apply_beside_the_daemon_shares_its_cache() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let work = s.tmp.path().join("spec-work");
    let config = s.config.to_str().expect("utf-8").to_owned();
    for round in 0..4 {
        let after = push_plan_change(&s, 20 + round);
        // The daemon reconciles the push while `apply` runs on a checkout
        // of the same commit, with the same cache.
        assert_eq!(
            d.hook(
                "push",
                &format!("beside-{round}"),
                &push_payload("spec", &after),
                None
            ),
            202
        );
        let run = crate::support::druppie(
            &work,
            &[
                "--spec",
                work.to_str().expect("utf-8"),
                "--config",
                &config,
                "apply",
                "--yes",
            ],
        );
        assert_eq!(run.code, 0, "round {round}:\n{}", run.transcript());
        d.wait("the daemon at the commit", |d| {
            let dev = d.state("permits", "dev");
            dev["spec_commit"] == after.as_str() && dev["state"] == "in-sync"
        });
        assert_eq!(
            applied(&s).iter().filter(|c| **c == after).count(),
            1,
            "round {round}: one dev commit"
        );
    }
    let main = commits(&s, "infra", "main");
    assert!(d.terminate().success());
    assert_eq!(commits(&s, "infra", "main"), main);
    assert_sound(&s);
}

#[test]
fn a_half_made_spec_checkout_in_the_cache_is_cloned_again() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    assert!(d.terminate().success());
    // A clone cut short: a `.git` without HEAD or refs.
    let spec = s.tmp.path().join("cache/spec/.git");
    std::fs::remove_file(spec.join("HEAD")).expect("HEAD");
    std::fs::remove_dir_all(spec.join("refs")).expect("refs");
    let after = push_plan_change(&s, 30);
    let d = Daemon::start(&s);
    d.wait("converged", |d| {
        let dev = d.state("permits", "dev");
        dev["spec_commit"] == after.as_str() && dev["state"] == "in-sync"
    });
    assert_eq!(
        applied(&s).iter().filter(|c| **c == after).count(),
        1,
        "one dev commit"
    );
    assert!(d.terminate().success());
    assert_sound(&s);
}
