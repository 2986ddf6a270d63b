//! Replicas sharing the plans: two or three `druppie serve` processes, each
//! with its own clone of the spec repo and its own cache, on one
//! plain-git forge and one mock API server, split 4 shards between them
//! through one Lease each. One is killed; once its Leases expire the
//! others take its shards and reconcile its plans.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use druppie::spec::shard::shard_of;
use serde_json::Value;

use super::{MockKube, NAMESPACE};
use crate::apply::Setup;
use crate::serve::{Daemon, push_payload, serve_setup};
use crate::support::{PLAN, git};

const SHARDS: u32 = 4;
/// Each shard holds at least one of these (shards 2, 0, 3, 1, 2, 0).
const PLANS: [&str; 6] = [
    "permits", "payments", "pensions", "pools", "ports", "portal",
];

/// The spec on the forge with [`PLANS`], their app at 1.0.0.
fn platform() -> Setup {
    let s = serve_setup();
    let work = s.tmp.path().join("spec-work");
    for plan in &PLANS[1..] {
        std::fs::write(
            work.join(format!("spec/plans/{plan}.yaml")),
            PLAN.replace("name: permits", &format!("name: {plan}")),
        )
        .expect("plan");
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "five more plans"]);
    git(&work, &["push", "-q", "origin", "main"]);
    s
}

/// Replica `n`'s configuration: the shared one with its own cache, 4
/// shards and 3 s Leases.
fn replica_config(s: &Setup, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(&s.config).expect("config");
    let cache = s.tmp.path().join("cache");
    let own = s.tmp.path().join(format!("cache-{n}"));
    assert!(text.contains(&format!("\"{}\"", cache.display())), "{text}");
    let text = text
        .replace(
            &format!("\"{}\"", cache.display()),
            &format!("\"{}\"", own.display()),
        )
        .replace(
            "poll_interval = \"1h\"",
            &format!("poll_interval = \"1h\"\nshards = {SHARDS}\nlease_duration = \"3s\""),
        );
    let path = s.tmp.path().join(format!("druppie-{n}.toml"));
    std::fs::write(&path, text).expect("replica config");
    path
}

fn start_replica(s: &Setup, kube: &MockKube, n: usize) -> Daemon {
    let config = replica_config(s, n);
    let kubeconfig = kube.kubeconfig().to_str().expect("utf-8").to_owned();
    let name = format!("druppie-{n}");
    Daemon::start_replica(
        s,
        &config,
        &[
            ("KUBECONFIG", &kubeconfig),
            ("POD_NAME", &name),
            ("POD_NAMESPACE", NAMESPACE),
        ],
    )
}

fn logged(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The shards a replica said it held last.
fn held(d: &Daemon) -> BTreeSet<u32> {
    logged(&d.logs())
        .iter()
        .rev()
        .find(|v| v["fields"]["message"] == "shards held")
        .and_then(|v| v["fields"]["shards"].as_str().map(shard_list))
        .unwrap_or_default()
}

/// `0,2/4` → {0, 2}.
fn shard_list(text: &str) -> BTreeSet<u32> {
    let (held, _) = text.split_once('/').expect("I,J/N");
    held.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a shard number"))
        .collect()
}

/// A reconcile a replica ran: its first and last log time (RFC 3339,
/// UTC, so they sort as text), and the shards it worked on.
type Worked = (String, String, BTreeSet<u32>);

/// Every reconcile a replica ran.
fn reconciles(lines: &[String]) -> Vec<Worked> {
    let mut spans: BTreeMap<String, Worked> = BTreeMap::new();
    for v in logged(lines) {
        let Some(id) = v["span"]["id"]
            .as_str()
            .filter(|_| v["span"]["name"] == "reconcile")
        else {
            continue;
        };
        let at = v["timestamp"].as_str().expect("a timestamp").to_owned();
        let entry = spans
            .entry(id.to_owned())
            .or_insert_with(|| (at.clone(), at.clone(), BTreeSet::new()));
        entry.1 = at;
        if v["fields"]["message"] == "reconciling the plans of the shards held" {
            entry.2 = shard_list(v["fields"]["shards"].as_str().expect("shards"));
        }
    }
    spans.into_values().collect()
}

/// The infra repo's file `path` on main ("" while it has none).
fn infra_file(s: &Setup, path: &str) -> String {
    let out = std::process::Command::new("git")
        .args(["show", &format!("main:{path}")])
        .current_dir(s.forge().join("infra.git"))
        .output()
        .expect("git show");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A person releases `version` of `plan`'s app and pushes; returns the
/// spec commit.
fn release(work: &std::path::Path, plan: &str, version: &str) -> String {
    let path = work.join(format!("spec/plans/{plan}.yaml"));
    let text = std::fs::read_to_string(&path).expect("plan");
    std::fs::write(&path, text.replace("1.0.0", version)).expect("plan");
    git(work, &["commit", "-qam", &format!("{plan} {version}")]);
    git(work, &["push", "-q", "origin", "main"]);
    git(work, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// Each running replica holds a shard, no two the same, all of them
/// held, and none more than one shard more than another: where the
/// split stays (no replica asks for one).
fn split(replicas: &[Option<Daemon>]) -> bool {
    let sets: Vec<BTreeSet<u32>> = replicas.iter().flatten().map(held).collect();
    let union: BTreeSet<u32> = sets.iter().flatten().copied().collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let sizes = sets.iter().map(BTreeSet::len);
    let (least, most) = (sizes.clone().min(), sizes.max());
    least.is_some_and(|l| l >= 1 && most.is_some_and(|m| m <= l + 1))
        && union.len() == SHARDS as usize
        && total == union.len()
}

fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool, logs: impl Fn() -> String) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < until,
            "timed out waiting for {what}; logs:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_replicas_split_the_shards_and_take_over_a_killed_ones_after_its_leases_expire() {
    split_and_take_over(3);
}

#[test]
fn of_two_replicas_the_survivor_takes_every_shard_of_the_killed_one() {
    split_and_take_over(2);
}

/// `count` replicas split the shards, pass a webhook on, and take over
/// the shards of one killed; no shard is ever worked on by two at once.
fn split_and_take_over(count: usize) {
    let s = platform();
    let kube = MockKube::start(&s.tmp.path().join("kube"));
    let mut replicas: Vec<Option<Daemon>> = (0..count)
        .map(|n| Some(start_replica(&s, &kube, n)))
        .collect();
    let all_logs = |replicas: &[Option<Daemon>]| {
        replicas
            .iter()
            .flatten()
            .map(|d| d.logs().join("\n"))
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let deployment = |plan: &str| infra_file(&s, &format!("apps/dev/{plan}/app/deployment.yaml"));

    // Every plan is written, and the shards end up split: each replica
    // holds at least one, no two the same one, all four held.
    wait_until(
        "every plan in dev",
        Duration::from_secs(60),
        || PLANS.iter().all(|p| deployment(p).contains("1.0.0")),
        || all_logs(&replicas),
    );
    wait_until(
        "the shards split",
        Duration::from_secs(30),
        || split(&replicas),
        || all_logs(&replicas),
    );

    // A release of ports, its webhook sent to a replica that does not
    // hold its shard: passed on, its holder writes it (no poll here).
    let work = s.tmp.path().join("spec-work");
    let after = release(&work, "ports", "1.0.2");
    let ports = shard_of("ports", SHARDS);
    let deaf = replicas
        .iter()
        .flatten()
        .find(|d| !held(d).contains(&ports))
        .expect("a replica without ports's shard");
    let body = push_payload("spec", &after);
    assert_eq!(deaf.hook("push", "delivery-ports", &body, None), 202);
    // Every replica but the one the forge told hears of it.
    let heard = |d: &Daemon| {
        logged(&d.logs()).into_iter().any(|v| {
            v["fields"]["message"] == "another replica received a webhook"
                && v["fields"]["heard"] == format!("push {after}")
        })
    };
    wait_until(
        "the holder of ports's shard to hear of the push and write it",
        Duration::from_secs(15),
        || {
            let holder = replicas.iter().flatten().find(|d| held(d).contains(&ports));
            holder.is_some_and(heard) && deployment("ports").contains("1.0.2")
        },
        || all_logs(&replicas),
    );

    // The holder of `pensions`'s shard dies without giving it back.
    let shard = shard_of("pensions", SHARDS);
    let victim = replicas
        .iter()
        .position(|d| d.as_ref().is_some_and(|d| held(d).contains(&shard)))
        .expect("someone holds it");
    let dead = replicas[victim].take().expect("running");
    let dead_logs = dead.logs();
    let killed = Instant::now();
    drop(dead);

    // A release of pensions, pushed while nobody holds its shard.
    release(&work, "pensions", "1.0.1");

    wait_until(
        "a survivor to release pensions",
        Duration::from_secs(30),
        || deployment("pensions").contains("1.0.1"),
        || all_logs(&replicas),
    );
    assert!(
        killed.elapsed() >= Duration::from_secs(2),
        "taken over before the Lease could expire: {:?}",
        killed.elapsed()
    );
    assert!(
        replicas.iter().flatten().any(|d| held(d).contains(&shard)),
        "a survivor holds shard {shard}"
    );
    wait_until(
        "the survivors to split all shards",
        Duration::from_secs(30),
        || split(&replicas),
        || all_logs(&replicas),
    );

    // What the survivors' /metrics say agrees: one holder per shard.
    for shard in 0..SHARDS {
        let series = format!("druppie_shard_held{{shard=\"{shard}\"}}");
        let holders: f64 = replicas.iter().flatten().map(|d| d.metric(&series)).sum();
        assert!(
            (holders - 1.0).abs() < f64::EPSILON,
            "shard {shard}: {holders} holders"
        );
    }

    // No shard was ever worked on by two replicas at once.
    let mut runs: Vec<(usize, Worked)> = Vec::new();
    for (n, d) in replicas.iter().enumerate() {
        let lines = match d {
            Some(d) => d.logs(),
            None => dead_logs.clone(),
        };
        runs.extend(reconciles(&lines).into_iter().map(|r| (n, r)));
    }
    assert!(runs.len() >= 3, "{runs:?}");
    for (i, (a, (a_from, a_to, a_shards))) in runs.iter().enumerate() {
        for (b, (b_from, b_to, b_shards)) in &runs[i + 1..] {
            let overlap = a_from <= b_to && b_from <= a_to;
            assert!(
                a == b || !overlap || a_shards.is_disjoint(b_shards),
                "replicas {a} and {b} both worked on {a_shards:?} ∩ {b_shards:?} at once: {a_from}..{a_to} and {b_from}..{b_to}"
            );
        }
    }
    for d in replicas.into_iter().flatten() {
        assert!(d.terminate().success());
    }
}
