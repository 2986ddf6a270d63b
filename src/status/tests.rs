use super::*;
use crate::audit::Event;

fn set(env: Option<&str>, trust: Option<Trust>, paths: &[&str]) -> ChangeSet {
    let repo = if env.is_some() {
        "infra"
    } else {
        "permits-app"
    };
    ChangeSet::modifying(repo, env, trust, "permits", paths)
}

fn changes(sets: Vec<ChangeSet>) -> ChangeSets {
    ChangeSets {
        sets,
        order: vec!["dev".into(), "test".into(), "prod".into()],
        ..ChangeSets::default()
    }
}

/// The state of each change set, as [`Look`] reads the plan's steps.
fn states(changes: &ChangeSets) -> Vec<Next> {
    let plan = crate::execution::plan(changes, String::new());
    let look = Look {
        changes,
        plan: &plan,
    };
    changes
        .sets
        .iter()
        .map(|cs| look.next(cs, "permits"))
        .collect()
}

#[test]
fn each_target_shows_the_step_the_execution_plan_has_for_it() {
    let dev = set(
        Some("dev"),
        Some(Trust::Deploy),
        &["apps/dev/permits/a.yaml"],
    );
    let test = set(
        Some("test"),
        Some(Trust::Propose),
        &["apps/test/permits/a.yaml"],
    );
    let prod = set(Some("prod"), Some(Trust::Propose), &[]);
    let project = set(None, None, &["README.md"]);
    let mut all = changes(vec![dev, test, prod, project]);
    let got = states(&all);
    assert_eq!(
        got,
        [
            Next::Commit { files: 1 },
            Next::Waiting {
                on: "dev".into(),
                open: None
            },
            Next::UpToDate,
            Next::Proposed {
                branch: "druppie/permits".into(),
                already: false,
                files: 1
            },
        ]
    );
    // test's proposal of an earlier change is still open while the
    // newer one waits for dev: it is named.
    all.proposals.push(crate::live::Proposal {
        repo: "infra".into(),
        branch: "druppie/test/permits".into(),
        tip: "2".repeat(40),
        edited_by: None,
        id: Some("0".repeat(16)),
    });
    assert_eq!(
        states(&all)[1],
        Next::Waiting {
            on: "dev".into(),
            open: Some("druppie/test/permits".into())
        }
    );
}

#[test]
fn a_change_closed_without_merging_shows_as_rejected_and_a_policy_error_blocks() {
    let test = set(
        Some("test"),
        Some(Trust::Propose),
        &["apps/test/permits/a.yaml"],
    );
    let id = crate::execution::proposal_id(&test);
    let mut rejected = changes(vec![test.clone()]);
    rejected.proposals.push(crate::live::Proposal {
        repo: "infra".into(),
        branch: "refs/druppie/rejected/test/permits".into(),
        tip: "2".repeat(40),
        edited_by: None,
        id: Some(id),
    });
    assert_eq!(
        states(&rejected),
        [Next::Rejected {
            branch: "druppie/test/permits".into()
        }]
    );
    let mut blocked = test;
    blocked.findings.push(crate::policy::Finding {
        policy: "no-latest".into(),
        severity: Severity::Error,
        repo: "infra".into(),
        env: Some("test".into()),
        path: "apps/test/permits/a.yaml".into(),
        document: 1,
        line: None,
        object: None,
        message: "no".into(),
    });
    assert_eq!(
        states(&changes(vec![blocked])),
        [Next::Blocked { findings: 1 }]
    );
}

fn recorded(kind: Kind, env: &str, commit: &str, actor: &str) -> Recorded {
    Recorded {
        commit: "e".repeat(40),
        event: Event {
            kind,
            time: "2026-12-04T10:00:00+00:00".into(),
            actor: actor.into(),
            plans: vec!["permits".into()],
            env: Some(env.into()),
            repo: "infra".into(),
            commit: Some(commit.into()),
            branch: None,
            spec_commit: None,
            from: None,
        },
        signature: "druppie".into(),
    }
}

#[test]
fn the_merger_is_who_made_merged_freight_live_and_other_commits_do_not_count() {
    let landed = ObjectIdHex::new('a');
    let other = "b".repeat(40);
    let trail = vec![
        recorded(Kind::Applied, "test", &other, "druppie@example.org"),
        recorded(
            Kind::Approved,
            "test",
            &landed.0,
            "Person <person@example.org>",
        ),
        recorded(
            Kind::Applied,
            "test",
            &landed.0,
            "Person <person@example.org>",
        ),
        Recorded {
            event: Event {
                from: Some("dev".into()),
                ..recorded(
                    Kind::Promoted,
                    "test",
                    &landed.0,
                    "Person <person@example.org>",
                )
                .event
            },
            ..recorded(Kind::Promoted, "test", &landed.0, "")
        },
        // Another environment's event on the same commit is not this one's.
        recorded(Kind::Verified, "prod", &landed.0, "druppie@example.org"),
        recorded(Kind::Failed, "test", &landed.0, "druppie@example.org"),
    ];
    let at = Place {
        repo: "infra",
        branch: "main",
        env: Some("test"),
        plan: "permits",
        dir: "apps/test/permits",
        also: &[],
    };
    let index = landing::Index::new(&trail);
    let found = landing::events(&index, &at, landed.id());
    let went_live = found.went_live.expect("landed");
    assert_eq!(went_live.event, Kind::Approved);
    assert_eq!(went_live.by, "Person <person@example.org>");
    assert_eq!(found.verification.map(|v| v.event), Some(Kind::Failed));
    assert_eq!(found.promoted_from.as_deref(), Some("dev"));
    // A commit druppie applied is druppie's.
    let found = landing::events(&index, &at, ObjectIdHex::new('b').id());
    assert_eq!(found.promoted_from, None);
    assert_eq!(
        found.went_live.map(|l| (l.event, l.by)),
        Some((Kind::Applied, "druppie@example.org".to_owned()))
    );
}

/// A commit id made of one hex digit.
struct ObjectIdHex(String);

impl ObjectIdHex {
    fn new(digit: char) -> ObjectIdHex {
        ObjectIdHex(digit.to_string().repeat(40))
    }

    fn id(&self) -> crate::git::ObjectId {
        crate::git::ObjectId::from_hex(self.0.as_bytes()).expect("hex")
    }
}

#[test]
fn short_forms_are_hex_only() {
    assert_eq!(short(&"a1".repeat(20)), "a1a1a1a1a1a1");
    assert_eq!(short("abc"), "abc");
    // A lock a person wrote: no escape sequence, no slicing inside a
    // character.
    assert_eq!(short("\u{1b}[2Jabcdef0123456"), "?");
    assert_eq!(short("ééééééééééé"), "?");
    assert_eq!(short(""), "?");
}
