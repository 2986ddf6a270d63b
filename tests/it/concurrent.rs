//! Two `druppie apply --yes` at once, over and over, against the same
//! spec repo and forge (sharing a cache, or each with its own, as the CLI
//! beside the daemon): the trail never holds an event twice, and every
//! repo stays clean. Replicas of the daemon sharing one spec remote,
//! each with its own clone, publish one trail: in either order, or at
//! once, it ends with every event once; a commit on it that druppie did
//! not sign stops them, losing nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use druppie::apply::Cache;
use druppie::audit::{Event, Kind, Writer};
use druppie::daemon::SpecSource;
use druppie::git::Repo;
use druppie::git::sign::{AllowedSigners, Signer};
use druppie::git::write::Identity;

use crate::apply::{Setup, setup};
use crate::support::{git, remote_spec};

#[test]
fn two_applies_at_once_never_write_an_event_twice() {
    let s = setup("person@example.org");
    let template =
        s.f.path()
            .join("templates/webapp-python/infra/deployment.yaml.j2");
    std::fs::write(&template, "kind: Deployment\nimage: {{ image }}\n").unwrap();
    let plan = s.f.path().join("spec/plans/permits.yaml");
    let original = std::fs::read_to_string(&plan).unwrap();
    // A second configuration with a cache of its own.
    let other = s.tmp.path().join("other.toml");
    let config = std::fs::read_to_string(&s.config).unwrap();
    let cache = s.tmp.path().join("cache");
    std::fs::write(
        &other,
        config.replace(
            cache.to_str().unwrap(),
            s.tmp.path().join("cache-2").to_str().unwrap(),
        ),
    )
    .unwrap();
    let rounds = 12;
    let mut failures = Vec::new();
    for round in 0..rounds {
        std::fs::write(
            &plan,
            original.replace("permits:1.0.0", &format!("permits:1.0.{round}")),
        )
        .unwrap();
        git(s.f.path(), &["add", "-A"]);
        git(s.f.path(), &["commit", "-qm", &format!("round {round}")]);
        if round % 4 == 3 {
            // An approver merges the open proposal: both runs see it.
            s.merge_proposal_signed(&format!("Approve round {round}"));
        }
        let spawn = |config: &std::path::Path| {
            Command::new(env!("CARGO_BIN_EXE_druppie"))
                .args(["--spec", s.f.path().to_str().unwrap()])
                .args(["--config", config.to_str().unwrap(), "apply", "--yes"])
                .current_dir(s.f.path())
                .env("NO_COLOR", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("druppie starts")
        };
        let first = spawn(&s.config);
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..=250)));
        let second = spawn(if round % 2 == 0 { &s.config } else { &other });
        let mut ok = 0;
        for child in [first, second] {
            let out = child.wait_with_output().unwrap();
            let said = String::from_utf8_lossy(&out.stderr).into_owned();
            match out.status.code() {
                Some(0) => ok += 1,
                // Two runs sharing a cache may trip over each other's
                // clone; the trail is never what fails.
                Some(1) if !said.contains("druppie-audit") => failures.push(said),
                code => panic!("round {round}: exit {code:?}: {said}"),
            }
        }
        assert!(
            ok >= 1,
            "round {round}: neither run finished: {failures:#?}"
        );
    }
    // One more run converges on whatever a failed run left.
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    eprintln!(
        "{} of {} runs failed outside the trail: {:?}",
        failures.len(),
        2 * rounds,
        failures
            .iter()
            .map(|f| f.lines().find(|l| l.starts_with("error")).unwrap_or(""))
            .collect::<Vec<_>>()
    );
    let run = s.audit_run(&["--json", "--verify"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let events: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let mut seen = BTreeMap::new();
    for e in events.as_array().unwrap() {
        let id = (
            e["kind"].as_str().unwrap().to_owned(),
            e["repo"].as_str().unwrap().to_owned(),
            e["commit"].as_str().unwrap_or("").to_owned(),
            e["env"].as_str().unwrap_or("").to_owned(),
        );
        *seen.entry(id).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "events written twice: {twice:#?}");
    // Every round applied dev; every merge was judged once.
    let applied_dev = seen
        .keys()
        .filter(|(k, r, _, e)| k == "applied" && r == "infra" && e == "dev")
        .count();
    assert_eq!(applied_dev, rounds, "{seen:#?}");
    let verdicts = seen.keys().filter(|(k, ..)| k == "approved").count();
    assert_eq!(verdicts, rounds / 4, "{seen:#?}");
    for repo in ["infra.git", "permits-app.git"] {
        git(&s.forge().join(repo), &["fsck", "--strict"]);
    }
    git(s.f.path(), &["fsck", "--strict"]);
}

/// The spec repo of `s` as a bare repo on the forge, `forge/spec.git`,
/// the spec remote replicas share.
fn spec_remote(s: &Setup) -> PathBuf {
    let remote = s.forge().join("spec.git");
    git(
        s.tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            s.f.path().to_str().expect("utf-8"),
            remote.to_str().expect("utf-8"),
        ],
    );
    remote
}

/// One replica of the daemon: its own cache, holding its clone of the
/// spec remote, and druppie's key (the one every replica has).
struct Replica {
    source: SpecSource,
    cache: Cache,
    signer: Signer,
}

impl Replica {
    /// Replica `name`, its clone of `remote` made and up to date.
    fn new(s: &Setup, remote: &Path, name: &str) -> Replica {
        let key = s.tmp.path().join("druppie_ed25519");
        let dir = s.tmp.path().join(name);
        let replica = Replica {
            source: remote_spec(remote, &dir, &key),
            cache: Cache::new(&dir, Vec::new()),
            signer: Signer::load(&key).expect("the key loads"),
        };
        replica.source.refresh(&replica.cache).expect("clone");
        replica
    }

    fn repo(&self) -> Repo {
        Repo::open(self.source.root())
            .expect("opens")
            .expect("a clone")
    }

    /// Records events about `commits` in this replica's clone (not
    /// pushed yet), as the reconcile does.
    fn record(&self, commits: &[&str]) {
        let identity = Identity {
            name: "druppie".into(),
            email: "druppie@example.org".into(),
        };
        let repo = self.repo();
        let mut writer = Writer::new(&repo, &self.signer, &identity).expect("a writer");
        let events: Vec<Event> = commits.iter().map(|c| event(c)).collect();
        writer
            .record(&events, druppie::apply::now())
            .expect("recorded");
    }

    /// The tip of the trail in this replica's clone.
    fn tip(&self) -> String {
        git(self.source.root(), &["rev-parse", "druppie-audit"])
            .trim()
            .to_owned()
    }

    /// What the events of the trail in this replica's clone are about.
    fn events(&self) -> Vec<String> {
        druppie::audit::trusted(&self.repo(), &self.signer.own_key())
            .expect("the trail here reads")
            .events
            .into_iter()
            .filter_map(|r| r.event.commit)
            .collect()
    }
}

/// An `applied` event of `permits` in dev about the infra commit
/// `name`, repeated to 40 characters.
fn event(name: &str) -> Event {
    Event {
        kind: Kind::Applied,
        time: "2026-11-21T10:00:00+00:00".into(),
        actor: "druppie".into(),
        plans: vec!["permits".into()],
        env: Some("dev".into()),
        repo: "infra".into(),
        commit: Some(name.repeat(40 / name.len())),
        branch: None,
        spec_commit: None,
        from: None,
    }
}

/// The remote's trail holds an event about each of `names` and nothing
/// else, each once: as `druppie audit` reads it (every signature
/// verified against the allowed signers), as druppie trusts it (nothing
/// ignored), and by `git verify-commit` and `git fsck --strict`.
fn assert_trail_holds(s: &Setup, remote: &Path, names: &[&str]) {
    let mut want: Vec<String> = names.iter().map(|n| n.repeat(40 / n.len())).collect();
    want.sort();
    let repo = Repo::open(remote).expect("opens").expect("a repo");
    let allowed =
        AllowedSigners::from_file(&s.tmp.path().join("allowed_signers")).expect("allowed signers");
    let read = druppie::audit::read(&repo, Some(&allowed)).expect("the trail reads");
    let unverified: Vec<_> = read.iter().filter(|r| r.signature != "verified").collect();
    assert!(unverified.is_empty(), "{unverified:#?}");
    let mut about: Vec<String> = read.into_iter().filter_map(|r| r.event.commit).collect();
    about.sort();
    assert_eq!(about, want, "every event once");
    let key = Signer::load(&s.tmp.path().join("druppie_ed25519"))
        .expect("the key loads")
        .own_key();
    let trusted = druppie::audit::trusted(&repo, &key).expect("the trail reads");
    assert!(trusted.ignored.is_empty(), "{:?}", trusted.ignored);
    assert_eq!(trusted.events.len(), want.len());
    // verify_all: fsck, then verify-commit on every commit druppie made.
    assert_eq!(s.verify_all(remote), want.len());
}

#[test]
fn replicas_publishing_one_trail_in_either_order_keep_every_event_once() {
    for a_first in [true, false] {
        let s = setup("person@example.org");
        let remote = spec_remote(&s);
        let a = Replica::new(&s, &remote, "cache-a");
        let b = Replica::new(&s, &remote, "cache-b");
        a.record(&["0"]);
        a.source
            .publish(&a.cache)
            .expect("the first event starts the trail");
        b.source.refresh(&b.cache).expect("b takes the trail in");
        assert_eq!(b.events(), a.events());

        // Each records an event of its own and one both record.
        a.record(&["a", "c"]);
        b.record(&["b", "c"]);
        let (first, second) = if a_first { (&a, &b) } else { (&b, &a) };
        first.source.publish(&first.cache).expect("first push");
        let before = second.tip();
        second
            .source
            .publish(&second.cache)
            .expect("the second takes the first's events in and pushes");
        assert_ne!(second.tip(), before, "written again on the remote's trail");
        assert_trail_holds(&s, &remote, &["0", "a", "b", "c"]);

        // A refresh takes the remote's trail in too: `a` recorded one
        // more while `b` pushed another.
        a.record(&["d"]);
        b.record(&["e"]);
        b.source.publish(&b.cache).expect("b pushes");
        a.source
            .refresh(&a.cache)
            .expect("a takes b's events in and pushes");
        b.source.refresh(&b.cache).expect("b takes a's events in");
        assert_trail_holds(&s, &remote, &["0", "a", "b", "c", "d", "e"]);
        let tip = git(&remote, &["rev-parse", "druppie-audit"])
            .trim()
            .to_owned();
        assert_eq!(
            (a.tip(), b.tip()),
            (tip.clone(), tip),
            "both at the remote's"
        );
    }
}

#[test]
fn a_commit_on_the_shared_trail_that_druppie_did_not_sign_stops_a_replica_that_keeps_its_events() {
    let s = setup("person@example.org");
    let remote = spec_remote(&s);
    let a = Replica::new(&s, &remote, "cache-a");
    a.record(&["0"]);
    a.source.publish(&a.cache).expect("the trail starts");
    // A person adds an event of their own to the remote's trail.
    let work = s.tmp.path().join("person");
    git(
        s.tmp.path(),
        &[
            "clone",
            "-q",
            "--branch",
            "druppie-audit",
            remote.to_str().expect("utf-8"),
            work.to_str().expect("utf-8"),
        ],
    );
    std::fs::write(
        work.join("event.yaml"),
        "kind: approved\ntime: \"2026-11-21T11:00:00+00:00\"\nactor: \"person\"\nplans: [\"permits\"]\nenv: \"prod\"\nrepo: \"infra\"\ncommit: \"ffffffffffffffffffffffffffffffffffffffff\"\n",
    )
    .expect("write");
    git(
        &work,
        &["commit", "-qam", "approved permits in prod (infra)"],
    );
    git(&work, &["push", "-q", "origin", "druppie-audit"]);
    let theirs = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();

    a.record(&["a"]);
    let ours = a.tip();
    let said = |e: &dyn std::error::Error| {
        std::iter::successors(Some(e), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ")
    };
    for (how, result) in [
        ("publish", a.source.publish(&a.cache).map(|_| ())),
        ("refresh", a.source.refresh(&a.cache).map(|_| ())),
    ] {
        let e = result.expect_err(how);
        assert!(!e.is_transient(), "{how}: a person must look: {}", said(&e));
        assert!(
            said(&e).contains(&format!(
                "diverged: commit {theirs} on the remote is not an event signed by druppie's key"
            )),
            "{how}: {}",
            said(&e)
        );
        assert_eq!(a.tip(), ours, "{how}: the events here stay on the branch");
        assert!(a.events().contains(&"a".repeat(40)), "{how}");
        let remote_tip = git(&remote, &["rev-parse", "druppie-audit"]);
        assert_eq!(
            remote_tip.trim(),
            theirs,
            "{how}: the remote as the person left it"
        );
    }
}

#[test]
fn replicas_publishing_at_once_from_two_threads_converge() {
    let s = setup("person@example.org");
    let remote = spec_remote(&s);
    let a = Replica::new(&s, &remote, "cache-a");
    let b = Replica::new(&s, &remote, "cache-b");
    let rounds = 6;
    let names = |who: &str| -> Vec<String> {
        (0..rounds)
            .flat_map(|r| [format!("{who}{r}"), format!("s{r}")])
            .collect()
    };
    std::thread::scope(|scope| {
        for (replica, who) in [(&a, "a"), (&b, "b")] {
            let names = names(who);
            scope.spawn(move || {
                for round in names.chunks(2) {
                    let round: Vec<&str> = round.iter().map(String::as_str).collect();
                    replica.record(&round);
                    std::thread::sleep(Duration::from_millis(fastrand::u64(0..=20)));
                    replica
                        .source
                        .publish(&replica.cache)
                        .unwrap_or_else(|e| panic!("{who} publishes: {e} ({e:?})"));
                }
            });
        }
    });
    let mut all: Vec<String> = names("a");
    all.extend(names("b"));
    all.sort();
    all.dedup();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    assert_eq!(all.len(), 3 * rounds);
    assert_trail_holds(&s, &remote, &all);
    a.source.refresh(&a.cache).expect("a takes the trail in");
    b.source.refresh(&b.cache).expect("b takes the trail in");
    assert_eq!(a.tip(), b.tip(), "both at the remote's trail");
}
