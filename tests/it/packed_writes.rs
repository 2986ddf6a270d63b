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

#[test]
fn a_large_first_apply_is_written_as_a_pack_and_every_commit_verifies() {
    let s = setup("platform-team");
    // Twenty more plans, each a database in dev: one run of twenty-one
    // commits on the infra repo's main, a few hundred objects.
    let spec = s.f.path();
    std::fs::write(
        spec.join("spec/stacks/db.yaml"),
        "name: db\ndescription: A database.\ncomponents:\n  db:\n    block: postgresql\n",
    )
    .unwrap();
    for i in 0..20 {
        std::fs::write(
            spec.join(format!("spec/plans/store-{i:02}.yaml")),
            format!("name: store-{i:02}\nstack: db\nowner: team-store\nenvironments: [dev]\n"),
        )
        .unwrap();
    }
    git(spec, &["add", "-A"]);
    git(spec, &["commit", "-qm", "twenty stores"]);

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

#[test]
fn a_long_run_of_events_is_written_to_the_trail_as_a_pack_that_verifies() {
    let s = setup("platform-team");
    // Forty more plans, each a database in dev: forty `applied` events
    // and more in one run, over a hundred objects on the trail.
    let spec = s.f.path();
    std::fs::write(
        spec.join("spec/stacks/db.yaml"),
        "name: db\ndescription: A database.\ncomponents:\n  db:\n    block: postgresql\n",
    )
    .unwrap();
    for i in 0..40 {
        std::fs::write(
            spec.join(format!("spec/plans/store-{i:02}.yaml")),
            format!("name: store-{i:02}\nstack: db\nowner: team-store\nenvironments: [dev]\n"),
        )
        .unwrap();
    }
    git(spec, &["add", "-A"]);
    git(spec, &["commit", "-qm", "forty stores"]);

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
