//! `druppie audit --since/--plan/--env` against a trail whose events
//! happened at known instants: times are compared as instants whatever
//! their offset, spans count back from now, and a filter that names
//! nothing known is an error with the names that are.

use std::process::Command;

use druppie::audit::{Event, Kind, Writer};
use druppie::git::Repo;
use druppie::git::sign::Signer;
use druppie::git::write::Identity;
use druppie::when::Timestamp;

use crate::support::{Fixture, PLAN, Run, git};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// A valid spec repo (plans `permits` and `shop`, environments `dev` and
/// `prod`) whose trail holds, oldest first, events of `permits` written
/// `ago` seconds before now, each time written with `offset` seconds of
/// UTC offset, and named by the commit it is about: `a…`, `b…`, ….
struct Trail {
    f: Fixture,
    now: i64,
}

/// (seconds before now, offset of the written time in seconds, env).
const EVENTS: [(i64, i32, &str); 5] = [
    (10 * DAY, 0, "dev"),
    (3 * DAY, 0, "prod"),
    // The one time written with +02:00.
    (2 * HOUR, 2 * 3600, "dev"),
    (3 * HOUR, 0, "dev"),
    (30 * 60, 0, "dev"),
];

fn commit_of(n: usize) -> String {
    let c = char::from(b'a' + n as u8);
    std::iter::repeat_n(c, 40).collect()
}

fn trail() -> Trail {
    let f = Fixture::valid().with(
        "spec/plans/shop.yaml",
        PLAN.replace("name: permits", "name: shop"),
    );
    git(f.path(), &["init", "-q"]);
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-qm", "spec"]);
    let key = f.path().join(".git/druppie_ed25519");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "druppie", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let now = Timestamp::now().as_second();
    let t = Trail { f, now };
    for (n, (ago, offset, env)) in EVENTS.into_iter().enumerate() {
        t.record(n, env, &druppie::apply::stamp((now - ago, offset)));
    }
    t
}

impl Trail {
    /// Appends the `n`-th event, in `env`, at `time` as written.
    fn record(&self, n: usize, env: &str, time: &str) {
        let key = self.f.path().join(".git/druppie_ed25519");
        let signer = Signer::load(&key).expect("the key loads");
        let identity = Identity {
            name: "druppie".into(),
            email: "druppie@example.org".into(),
        };
        let repo = Repo::open(self.f.path()).unwrap().expect("a repository");
        let mut writer = Writer::new(&repo, &signer, &identity).expect("a writer");
        let event = Event {
            kind: Kind::Applied,
            time: time.to_owned(),
            actor: "druppie".into(),
            plans: vec!["permits".into()],
            env: Some(env.into()),
            repo: "infra".into(),
            commit: Some(commit_of(n)),
            branch: None,
            spec_commit: None,
            from: None,
        };
        writer.record(&[event], (self.now, 0)).expect("recorded");
    }

    fn audit(&self, args: &[&str]) -> Run {
        let mut full = vec!["audit"];
        full.extend_from_slice(args);
        self.f.run(&full)
    }

    /// The events `args` select, by their position in [`EVENTS`].
    fn selected(&self, args: &[&str]) -> Vec<usize> {
        let mut full = args.to_vec();
        full.push("--json");
        let run = self.audit(&full);
        assert_eq!(run.code, 0, "{}", run.transcript());
        let events: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
        events
            .as_array()
            .expect("a list")
            .iter()
            .map(|e| {
                let commit = e["commit"].as_str().expect("a commit");
                (0..=EVENTS.len())
                    .find(|&n| commit_of(n) == commit)
                    .expect("one of ours")
            })
            .collect()
    }

    /// `now - ago` as RFC 3339 with `offset` seconds of offset.
    fn time(&self, ago: i64, offset: i32) -> String {
        druppie::apply::stamp((self.now - ago, offset))
    }
}

#[test]
fn since_compares_instants_whatever_the_offset() {
    let t = trail();
    assert_eq!(t.selected(&[]), [0, 1, 2, 3, 4]);
    // `Z` and `+00:00` name the same instant.
    let one_day = t.time(DAY, 0).replace("+00:00", "Z");
    assert!(one_day.ends_with('Z'), "{one_day}");
    assert_eq!(t.selected(&["--since", &one_day]), [2, 3, 4]);
    // Four hours ago written at +02:00 reads "two hours ago" as text:
    // event 3 (three hours ago, written at +00:00) is after it.
    let four_hours = t.time(4 * HOUR, 2 * 3600);
    assert!(four_hours.ends_with("+02:00"), "{four_hours}");
    assert_eq!(t.selected(&["--since", &four_hours]), [2, 3, 4]);
    // Ninety minutes ago at +02:00: event 2 (two hours ago, written at
    // +02:00) is before it, event 4 after.
    assert_eq!(t.selected(&["--since", &t.time(90 * 60, 2 * 3600)]), [4]);
}

#[test]
fn since_takes_spans_back_from_now() {
    let t = trail();
    assert_eq!(t.selected(&["--since", "1h"]), [4]);
    assert_eq!(t.selected(&["--since", "150m"]), [2, 4]);
    assert_eq!(t.selected(&["--since", "7d"]), [1, 2, 3, 4]);
    assert_eq!(t.selected(&["--since", "2w"]), [0, 1, 2, 3, 4]);
    assert_eq!(t.selected(&["--since", "90s"]), Vec::<usize>::new());
    let run = t.audit(&["--since", "90s"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "no events\n"));
}

#[test]
fn an_event_whose_time_does_not_read_is_shown_with_a_warning_whatever_since_says() {
    let t = trail();
    t.record(5, "dev", "last tuesday");
    let run = t.audit(&["--since", "1h"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.contains("last tuesday"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("its time `last tuesday` is not RFC 3339; shown whatever --since says\n"),
        "{}",
        run.stderr
    );
    let mut selected = t.selected(&["--since", "1h"]);
    selected.sort();
    assert_eq!(selected, [4, 5]);
}

#[test]
fn a_malformed_since_is_refused_with_the_forms_accepted() {
    let t = trail();
    for bad in ["yesterday", "7", "2026-11-21", "2026-11-21T00:00:00", "1mo"] {
        let run = t.audit(&["--since", bad]);
        assert_eq!(run.code, 1, "{bad}: {}", run.transcript());
        assert_eq!(run.stdout, "", "{bad}");
        assert!(
            run.stderr
                .contains(&format!("--since: `{bad}` is not a time"))
                && run.stderr.contains("2026-11-21T00:00:00Z")
                && run.stderr.contains("7d"),
            "{bad}: {}",
            run.stderr
        );
    }
}

#[test]
fn plan_and_env_select_and_an_unknown_one_names_the_known_ones() {
    let t = trail();
    assert_eq!(t.selected(&["--env", "prod"]), [1]);
    assert_eq!(
        t.selected(&["--plan", "permits", "--env", "dev"]),
        [0, 2, 3, 4]
    );
    // A plan the spec has, with no events yet.
    assert_eq!(t.selected(&["--plan", "shop"]), Vec::<usize>::new());
    let run = t.audit(&["--plan", "shop"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "no events\n"));

    let run = t.audit(&["--plan", "permit"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("--plan: unknown plan `permit`")
            && run.stderr.contains("did you mean `permits`?")
            && run.stderr.contains("`permits`, `shop`"),
        "{}",
        run.stderr
    );
    let run = t.audit(&["--env", "prd"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("--env: unknown environment `prd`")
            && run.stderr.contains("did you mean `prod`?")
            && run.stderr.contains("`dev`, `prod`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_remembered_verdict_is_not_checked_again() {
    let t = trail();
    let public = std::fs::read_to_string(t.f.path().join(".git/druppie_ed25519.pub")).unwrap();
    let signers = t.f.path().join(".git/allowed_signers");
    std::fs::write(&signers, format!("druppie@example.org {public}")).unwrap();
    let allowed = druppie::git::sign::AllowedSigners::from_file(&signers).unwrap();
    let repo = Repo::open(t.f.path()).unwrap().expect("a repository");
    let verdicts = druppie::audit::Verdicts::default();
    let first = druppie::audit::read_remembering(&repo, Some(&allowed), &verdicts).unwrap();
    assert_eq!(first.len(), EVENTS.len());
    assert!(first.iter().all(|r| r.signature == "verified"), "{first:?}");
    // Another key in the allowed signers: a fresh read says so for every
    // event; the remembered verdicts are used as they are.
    std::fs::write(
        &signers,
        "druppie@example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlKvGn6qrD4cS2n1bm8VRd8Z4E8k6q8Kz0p6uS4m3Tq\n",
    )
    .unwrap();
    let other = druppie::git::sign::AllowedSigners::from_file(&signers).unwrap();
    let fresh = druppie::audit::read(&repo, Some(&other)).unwrap();
    assert!(fresh.iter().all(|r| r.signature != "verified"), "{fresh:?}");
    let again = druppie::audit::read_remembering(&repo, Some(&other), &verdicts).unwrap();
    assert!(again.iter().all(|r| r.signature == "verified"), "{again:?}");
}

#[test]
fn a_trail_read_before_is_read_on_from_its_tip_and_whole_once_rewritten() {
    let t = trail();
    let key = Signer::load(&t.f.path().join(".git/druppie_ed25519"))
        .expect("the key loads")
        .own_key();
    let repo = Repo::open(t.f.path()).unwrap().expect("a repository");
    let commits = |trail: &druppie::audit::Trail| -> Vec<String> {
        trail
            .events
            .iter()
            .map(|r| r.event.commit.clone().unwrap_or_default())
            .collect()
    };
    let first = druppie::audit::trusted(&repo, &key).unwrap();
    assert_eq!(commits(&first), (0..5).map(commit_of).collect::<Vec<_>>());
    // One more event: read on from the tip known.
    t.record(5, "dev", &t.time(60, 0));
    let grown = druppie::audit::trusted(&repo, &key).unwrap();
    assert_eq!(commits(&grown), (0..6).map(commit_of).collect::<Vec<_>>());
    // The branch set back two events and given another one: the tip
    // known is gone from it, so the trail is read whole, without the
    // two events it no longer holds.
    git(
        t.f.path(),
        &["update-ref", "refs/heads/druppie-audit", "druppie-audit~2"],
    );
    t.record(6, "prod", &t.time(30, 0));
    let rewritten = druppie::audit::trusted(&repo, &key).unwrap();
    let mut expected: Vec<String> = (0..4).map(commit_of).collect();
    expected.push(commit_of(6));
    assert_eq!(commits(&rewritten), expected);
    assert_eq!(
        rewritten.tip,
        repo.branch_head("druppie-audit").unwrap().map(|h| h.commit)
    );
}
