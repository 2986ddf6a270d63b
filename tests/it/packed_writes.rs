//! A first apply of many plans writes its objects as a pack, not one
//! file each, and what reaches the forge is as git and the signatures
//! want it.

use std::path::Path;

use crate::apply::setup;
use crate::support::git;

/// The objects stored one file each (`objects/ab/cdef…`) in a bare repo.
fn loose(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(repo.join("objects")).unwrap().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if name.len() != 2 {
            continue;
        }
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            out.push(format!("{name}{}", file.file_name().to_string_lossy()));
        }
    }
    out
}

/// Plans named `stores`, each a database in dev, committed to the spec.
fn add_stores(spec: &Path, stores: &[String]) {
    std::fs::write(
        spec.join("spec/stacks/db.yaml"),
        "name: db\ndescription: A database.\ncomponents:\n  db:\n    block: postgresql\n",
    )
    .unwrap();
    for store in stores {
        std::fs::write(
            spec.join(format!("spec/plans/{store}.yaml")),
            format!("name: {store}\nstack: db\nowner: team-store\nenvironments: [dev]\n"),
        )
        .unwrap();
    }
    git(spec, &["add", "-A"]);
    git(
        spec,
        &["commit", "-qm", &format!("{} stores", stores.len())],
    );
}

#[test]
fn a_large_first_apply_is_written_as_a_pack_and_every_commit_verifies() {
    let s = setup("platform-team");
    // Twenty more plans, each a database in dev: one run of twenty-one
    // commits on the infra repo's main, a few hundred objects.
    let spec = s.f.path();
    let stores: Vec<String> = (0..20).map(|i| format!("store-{i:02}")).collect();
    add_stores(spec, &stores);

    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    let infra = s.forge().join("infra.git");
    let main = git(&infra, &["log", "--format=%s", "main"]);
    assert_eq!(main.lines().count(), 22, "{main}");

    // In the cache's clone, the commits on main are in a pack druppie
    // wrote; what is left one file each is what the clone started with
    // and the prod proposal with its note (small writes stay as git
    // writes small ones).
    let clone = s.tmp.path().join("cache/infra.git");
    let loose = loose(&clone);
    let ours = git(&clone, &["rev-list", "main", "--not", "main~21"]);
    assert_eq!(ours.lines().count(), 21);
    for commit in ours.lines() {
        assert!(!loose.contains(&commit.to_owned()), "{commit} is loose");
    }
    let packed = git(&clone, &["count-objects", "-v"]);
    let in_pack: usize = packed
        .lines()
        .find_map(|l| l.strip_prefix("in-pack: "))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(in_pack > 200, "{packed}");
    assert!(loose.len() < 40, "{} loose objects: {packed}", loose.len());
    git(&clone, &["fsck", "--strict", "--no-dangling"]);

    // The forge took it whole: `git fsck --strict` finds nothing, and
    // every commit druppie made (twenty-one on main, the prod proposal
    // and the note on it) carries its good signature.
    let all = git(&infra, &["log", "--all", "--format=%ce %s"]);
    assert_eq!(s.verify_all(&infra), 23, "{all}");
}

/// `druppie <args> --repos <forge>` with the setup's config.
fn druppie(s: &crate::apply::Setup, args: &[&str]) -> crate::support::Run {
    let forge = s.forge();
    let mut full = vec!["--config", s.config.to_str().unwrap()];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--repos", forge.to_str().unwrap()]);
    s.f.run(&full)
}

#[test]
fn more_plans_than_one_push_commits_one_by_one_go_in_at_most_a_hundred_commits_each_named() {
    let s = setup("platform-team");
    let spec = s.f.path();
    let stores: Vec<String> = (0..150).map(|i| format!("store-{i:03}")).collect();
    add_stores(spec, &stores);

    // The dry run names the commits: at most a hundred on dev, plans
    // put together in order, each plan in exactly one.
    let diff = druppie(&s, &["diff", "--json"]);
    assert_eq!(diff.code, 2, "{}", diff.transcript());
    let report: serde_json::Value = serde_json::from_str(&diff.stdout).unwrap();
    let step = report["execution_plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "commit" && s["params"]["env"] == "dev")
        .expect("a commit step on dev")
        .clone();
    let planned: Vec<(String, Vec<String>)> = step["params"]["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let plans = c["plans"].as_array().unwrap().iter();
            let plans = plans.map(|p| p.as_str().unwrap().to_owned()).collect();
            (c["subject"].as_str().unwrap().to_owned(), plans)
        })
        .collect();
    let named: Vec<&String> = planned.iter().flat_map(|(_, plans)| plans).collect();
    assert!(planned.len() <= 100, "{} commits", planned.len());
    assert!(named.len() > 150, "every plan of dev: {}", named.len());
    for store in &stores {
        assert_eq!(named.iter().filter(|p| **p == store).count(), 1, "{store}");
    }
    let (subject, plans) = &planned[0];
    assert_eq!(plans.len(), 2, "{planned:?}");
    assert_eq!(
        *subject,
        format!("druppie: 2 plans in dev ({} … {})", plans[0], plans[1])
    );

    // Apply pushes exactly those commits, each signed, its trailer
    // naming its plans.
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    let infra = s.forge().join("infra.git");
    let log = git(
        &infra,
        &[
            "log",
            "--reverse",
            "--grep=Druppie-Environment: dev",
            "--format=%H%x1f%s%x1f%(trailers:key=Druppie-Plan,valueonly,separator=%x2C )%x1e",
            "main",
        ],
    );
    let pushed: Vec<(String, String, Vec<String>)> = log
        .split('\x1e')
        .map(|r| r.trim_start_matches('\n'))
        .filter(|r| !r.is_empty())
        .map(|r| {
            let f: Vec<&str> = r.split('\x1f').collect();
            let plans = f[2].trim().split(", ").map(str::to_owned).collect();
            (f[0].to_owned(), f[1].to_owned(), plans)
        })
        .collect();
    let pushed_plans: Vec<(String, Vec<String>)> = pushed
        .iter()
        .map(|(_, s, p)| (s.clone(), p.clone()))
        .collect();
    assert_eq!(pushed_plans, planned, "apply wrote what diff said");
    for (commit, _, _) in &pushed {
        s.verify("infra", commit);
    }

    // Each plan's freight is the commit that carried it, applied.
    let status = druppie(&s, &["status", "--json"]);
    assert_eq!(status.code, 0, "{}", status.transcript());
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    for store in ["store-000", "store-077", "store-149"] {
        let carried = pushed
            .iter()
            .find(|(_, _, plans)| plans.iter().any(|p| p == store))
            .map(|(c, _, _)| c.as_str())
            .unwrap();
        let plan = status["plans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["plan"] == store)
            .unwrap();
        let dev = &plan["environments"][0];
        assert_eq!(dev["env"], "dev", "{plan}");
        assert_eq!(dev["live"]["commit"], carried, "{plan}");
        assert_eq!(dev["live"]["went_live"]["event"], "applied", "{plan}");
    }
}

#[test]
fn a_long_run_of_events_is_written_to_the_trail_as_a_pack_that_verifies() {
    let s = setup("platform-team");
    // Forty more plans, each a database in dev: forty `applied` events
    // and more in one run, over a hundred objects on the trail.
    let spec = s.f.path();
    let stores: Vec<String> = (0..40).map(|i| format!("store-{i:02}")).collect();
    add_stores(spec, &stores);

    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());

    // The trail's commits are in a pack, none one file each; git finds
    // nothing wrong with them.
    let git_dir = spec.join(".git");
    let loose = loose(&git_dir);
    let trail = git(spec, &["rev-list", "druppie-audit"]);
    assert!(trail.lines().count() > 40, "{trail}");
    for commit in trail.lines() {
        assert!(!loose.contains(&commit.to_owned()), "{commit} is loose");
    }
    git(spec, &["fsck", "--strict", "--no-dangling"]);

    // `druppie audit --verify` reads every event back with its good
    // signature, one `applied` per store.
    let events = s.audit();
    assert_eq!(events.len(), trail.lines().count());
    assert!(events.iter().all(|e| e.3 == "verified"), "{events:?}");
    let stores = events
        .iter()
        .filter(|(kind, _, env, _)| kind == "applied" && env == "dev")
        .count();
    assert!(stores >= 40, "{events:?}");
}
