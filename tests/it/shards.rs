//! Plans split into shards: `apply --shard I/N` writes, and prunes, only
//! the plans of its shard, so N jobs (or replicas) each take a part and
//! together cover every plan once.

use druppie::spec::shard::shard_of;

use crate::apply::{Setup, setup};
use crate::support::{PLAN, git};

/// A second plan, in the other of two shards than `permits`.
fn second_plan() -> &'static str {
    let theirs = shard_of("permits", 2);
    ["payments", "portal", "parking", "pensions", "passports"]
        .into_iter()
        .find(|p| shard_of(p, 2) != theirs)
        .expect("one of five names hashes to the other shard")
}

/// The infra repo's files on main, one per line.
fn infra_files(s: &Setup) -> String {
    git(
        &s.forge().join("infra.git"),
        &["ls-tree", "-r", "--name-only", "main"],
    )
}

fn apply_shard(s: &Setup, shard: &str) -> crate::support::Run {
    let config = s.config.to_str().expect("utf-8");
    s.f.run(&["--config", config, "apply", "--yes", "--shard", shard])
}

fn commit_spec(s: &Setup, message: &str) {
    git(s.f.path(), &["add", "-A"]);
    git(s.f.path(), &["commit", "-qm", message]);
}

#[test]
fn apply_with_a_shard_writes_and_prunes_only_the_plans_of_that_shard() {
    let s = setup("");
    let other = second_plan();
    std::fs::write(
        s.f.path().join(format!("spec/plans/{other}.yaml")),
        PLAN.replace("name: permits", &format!("name: {other}")),
    )
    .expect("write the second plan");
    commit_spec(&s, "a second plan");
    let (mine, theirs) = (shard_of("permits", 2), shard_of(other, 2));
    let dev = |plan: &str| format!("dev/{plan}/");

    let run = apply_shard(&s, &format!("{mine}/2"));
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.contains("permits: committed"), "{}", run.stdout);
    assert!(!run.stdout.contains(other), "{}", run.stdout);
    let files = infra_files(&s);
    assert!(files.contains(&dev("permits")), "{files}");
    assert!(!files.contains(&dev(other)), "{files}");

    let run = apply_shard(&s, &format!("{theirs}/2"));
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains(&format!("{other}: committed")),
        "{}",
        run.stdout
    );
    let files = infra_files(&s);
    assert!(
        files.contains(&dev("permits")) && files.contains(&dev(other)),
        "{files}"
    );

    // permits leaves the spec: only the job holding its shard prunes it.
    std::fs::remove_file(s.f.path().join("spec/plans/permits.yaml")).expect("remove");
    commit_spec(&s, "permits is retired");
    let run = apply_shard(&s, &format!("{theirs}/2"));
    assert_eq!(run.code, 0, "{}", run.transcript());
    let files = infra_files(&s);
    assert!(
        files.contains(&dev("permits")),
        "another shard's plan is kept: {files}"
    );
    let run = apply_shard(&s, &format!("{mine}/2"));
    assert_eq!(run.code, 0, "{}", run.transcript());
    let files = infra_files(&s);
    assert!(
        !files.contains(&dev("permits")),
        "pruned by its shard: {files}"
    );
    assert!(files.contains(&dev(other)), "{files}");
}

#[test]
fn a_shard_that_is_not_one_of_its_count_is_refused_with_the_form_it_takes() {
    let s = setup("");
    let run = apply_shard(&s, "2/2");
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("`2/2` is not a shard like 0/4"),
        "{}",
        run.stderr
    );
}

/// A run whose fence says stop writes nothing more: the replica's
/// Leases may have expired, and another may be writing the same plans.
#[test]
fn a_run_whose_fence_closes_writes_nothing_and_says_why() {
    use std::cell::Cell;

    use druppie::apply::{Cache, Failure, Run};
    use druppie::git::sign::Signer;
    use druppie::git::write::Identity;

    let s = setup("");
    let forge = druppie::forge::PlainGit::new(s.forge().to_str().expect("utf-8"));
    let cache = Cache::new(&s.tmp.path().join("cache"), Vec::new());
    let signer = Signer::load(&s.tmp.path().join("druppie_ed25519")).expect("key");
    let identity = Identity {
        name: "druppie".into(),
        email: "druppie@example.org".into(),
    };
    let spec_repo = druppie::git::Repo::discover(s.f.path()).expect("the spec is in git");
    let opened = druppie::spec::open(s.f.path(), &Default::default(), &Default::default())
        .expect("the spec opens");
    let asked = Cell::new(0);
    let closed = || {
        asked.set(asked.get() + 1);
        false
    };
    let run = Run {
        forge: &forge,
        cache: &cache,
        signer: &signer,
        identity: &identity,
        spec_repo: &spec_repo,
        spec_commit: None,
        trigger: "cli",
        limits: Default::default(),
        promote: None,
        fetched: &[],
        fence: Some(&closed),
    };
    let (outcome, result) = run.apply(
        &opened.valid,
        &opened.selection,
        &Default::default(),
        &mut |_, _| true,
    );
    let error = match result {
        Err(Failure::Apply(e)) => e,
        Err(other) => panic!("another failure: {other}"),
        Ok(()) => panic!("the run went on"),
    };
    assert!(error.to_string().contains("may no longer write"), "{error}");
    assert!(error.is_transient());
    assert_eq!(asked.get(), 1, "asked before the first step");
    assert!(outcome.steps.is_empty());
    let refs = git(
        &s.forge().join("infra.git"),
        &["rev-list", "--count", "main"],
    );
    assert_eq!(refs.trim(), "1", "nothing written");
}
