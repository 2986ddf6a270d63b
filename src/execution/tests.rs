use super::*;

fn set(
    repo: &str,
    env: Option<&str>,
    trust: Option<Trust>,
    plan: &str,
    paths: &[&str],
) -> ChangeSet {
    ChangeSet::modifying(repo, env, trust, plan, paths)
}

fn of(sets: Vec<ChangeSet>) -> ChangeSets {
    ChangeSets {
        sets,
        ..ChangeSets::default()
    }
}

fn actions(plan: &ExecutionPlan) -> Vec<(String, String)> {
    plan.steps
        .iter()
        .map(|s| {
            let json = serde_json::to_value(s).expect("serializes");
            (
                json["action"].as_str().unwrap_or_default().to_owned(),
                json["params"]["branch"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_deploy_environment_gets_one_commit_per_plan_in_one_push() {
    let changes = of(vec![
        set(
            "infra",
            Some("dev"),
            Some(Trust::Deploy),
            "meters",
            &["apps/dev/meters/a.yaml"],
        ),
        set(
            "infra",
            Some("dev"),
            Some(Trust::Deploy),
            "permits",
            &["apps/dev/permits/a.yaml"],
        ),
    ]);
    let plan = plan(&changes, String::new());
    assert_eq!(actions(&plan), [("commit".to_owned(), "main".to_owned())]);
    let Action::Commit(c) = &plan.steps[0].action else {
        panic!("a commit step");
    };
    let subjects: Vec<&str> = c.commits.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(
        subjects,
        ["druppie: meters in dev", "druppie: permits in dev"]
    );
    assert_eq!(c.target.plans, ["meters", "permits"]);
    assert_eq!(plan.status, Status::Pending);
}

#[test]
fn a_propose_environment_gets_one_proposal_per_plan_on_its_own_branch() {
    let changes = of(vec![
        set(
            "infra",
            Some("prod"),
            Some(Trust::Propose),
            "meters",
            &["apps/prod/meters/a.yaml"],
        ),
        set(
            "infra",
            Some("prod"),
            Some(Trust::Propose),
            "permits",
            &["apps/prod/permits/a.yaml"],
        ),
        set("permits-app", None, None, "permits", &["src/app.py"]),
    ]);
    let plan = plan(&changes, String::new());
    assert_eq!(
        actions(&plan),
        [
            ("pull_request".to_owned(), "druppie/prod/meters".to_owned()),
            ("pull_request".to_owned(), "druppie/prod/permits".to_owned()),
            ("pull_request".to_owned(), "druppie/permits".to_owned()),
        ]
    );
    let Action::PullRequest(p) = &plan.steps[1].action else {
        panic!("a proposal");
    };
    assert_eq!(p.title, "druppie: permits in prod");
    assert_eq!(p.target.plans, ["permits"]);
    assert!(!p.draft);
}

#[test]
fn a_change_to_lock_files_only_is_proposed_to_nobody_but_committed_where_it_deploys() {
    let lock = |env: &str| format!("apps/{env}/permits/{LOCK_FILE}");
    let changes = of(vec![
        set(
            "infra",
            Some("dev"),
            Some(Trust::Deploy),
            "permits",
            &[&lock("dev")],
        ),
        set(
            "infra",
            Some("prod"),
            Some(Trust::Propose),
            "permits",
            &[&lock("prod")],
        ),
        set("permits-app", None, None, "permits", &[LOCK_FILE]),
    ]);
    let plan = plan(&changes, String::new());
    let names: Vec<String> = actions(&plan).into_iter().map(|(a, _)| a).collect();
    assert_eq!(names, ["commit", "nothing", "nothing"]);
    assert!(plan.writes());
    let only = of(vec![set(
        "infra",
        Some("prod"),
        Some(Trust::Propose),
        "permits",
        &[&lock("prod")],
    )]);
    let plan = super::plan(&only, String::new());
    assert!(!plan.writes() && !plan.shows_changes());
    assert_eq!(plan.status, Status::Noop);
}

#[test]
fn a_proposal_a_person_pushed_to_is_commented_on_not_rebuilt() {
    let mut changes = of(vec![set(
        "infra",
        Some("prod"),
        Some(Trust::Propose),
        "permits",
        &["apps/prod/permits/a.yaml"],
    )]);
    changes.proposals.push(crate::live::Proposal {
        repo: "infra".to_owned(),
        branch: "druppie/prod/permits".to_owned(),
        tip: "2".repeat(40),
        edited_by: Some("Rev Iewer <rev@example.org>".to_owned()),
        id: None,
    });
    let plan = plan(&changes, String::new());
    assert_eq!(
        actions(&plan),
        [("comment".to_owned(), "druppie/prod/permits".to_owned())]
    );
    let Action::Comment(h) = &plan.steps[0].action else {
        panic!("a comment");
    };
    assert!(
        h.text
            .contains("Rev Iewer <rev@example.org> pushed to this proposal"),
        "{}",
        h.text
    );
    // A proposal of another plan, or druppie's own tip, changes nothing.
    changes.proposals[0].edited_by = None;
    assert_eq!(
        actions(&super::plan(&changes, String::new()))[0].0,
        "pull_request"
    );
}

#[test]
fn a_conflict_is_a_draft_titled_conflict_even_where_the_environment_deploys() {
    let mut cs = set(
        "infra",
        Some("dev"),
        Some(Trust::Deploy),
        "permits",
        &["apps/dev/permits/a.yaml", "apps/dev/permits/b.yaml"],
    );
    cs.files[1].action = FileAction::Conflict;
    let plan = plan(&of(vec![cs]), String::new());
    let Action::PullRequest(p) = &plan.steps[0].action else {
        panic!("a proposal");
    };
    assert!(p.draft);
    assert_eq!(p.title, "CONFLICT (1 file): druppie: permits in dev");
    assert_eq!(p.conflicted, ["apps/dev/permits/b.yaml"]);
    assert_eq!(p.target.branch, "druppie/dev/permits");
}

#[test]
fn an_observe_environment_is_reported_and_a_new_repo_is_made_first() {
    let mut project = set("permits-app", None, None, "permits", &["src/app.py"]);
    project.exists = false;
    project.base = None;
    let changes = of(vec![
        set(
            "infra",
            Some("test"),
            Some(Trust::Observe),
            "permits",
            &["apps/test/permits/a.yaml"],
        ),
        project,
    ]);
    let plan = plan(&changes, String::new());
    let names: Vec<String> = actions(&plan).into_iter().map(|(a, _)| a).collect();
    assert_eq!(names, ["report", "create_repo", "commit"]);
}

fn open(branch: &str, id: Option<String>) -> crate::live::Proposal {
    crate::live::Proposal {
        repo: "infra".to_owned(),
        branch: branch.to_owned(),
        tip: "2".repeat(40),
        edited_by: None,
        id,
    }
}

#[test]
fn a_proposal_that_holds_the_change_waits_and_is_not_rebuilt_when_main_moves() {
    let cs = set(
        "infra",
        Some("prod"),
        Some(Trust::Propose),
        "permits",
        &["apps/prod/permits/a.yaml"],
    );
    let id = proposal_id(&cs);
    let mut moved = cs.clone();
    moved.base = Some("3".repeat(40));
    assert_eq!(proposal_id(&moved), id, "the same change on a moved main");
    let mut changes = of(vec![moved]);
    changes
        .proposals
        .push(open("druppie/prod/permits", Some(id.clone())));
    let plan = plan(&changes, String::new());
    let Action::PullRequest(p) = &plan.steps[0].action else {
        panic!("a proposal");
    };
    assert!(p.already);
    assert_eq!(plan.steps[0].status, Status::Proposed);
    assert_eq!(plan.status, Status::Proposed);
    assert!(!plan.writes() && plan.executes() && plan.shows_changes());
    // Another change to the same files is a new id: rebuilt.
    let mut other = cs.clone();
    other.files[0].new = Some(b"c".to_vec());
    assert_ne!(proposal_id(&other), id);
    other.files[0].new = cs.files[0].new.clone();
    other.files[0].action = FileAction::Drift;
    assert_ne!(proposal_id(&other), id, "a person's edit meanwhile");
}

#[test]
fn a_change_closed_without_merging_is_not_proposed_again_until_it_differs() {
    let cs = set(
        "infra",
        Some("prod"),
        Some(Trust::Propose),
        "permits",
        &["apps/prod/permits/a.yaml"],
    );
    let mut changes = of(vec![cs.clone()]);
    changes.proposals.push(open(
        &rejected_ref("druppie/prod/permits"),
        Some(proposal_id(&cs)),
    ));
    let plan = super::plan(&changes, String::new());
    assert!(matches!(plan.steps[0].action, Action::Nothing(_)));
    assert!(!plan.shows_changes());
    changes.sets[0].files[0].new = Some(b"newer".to_vec());
    let plan = super::plan(&changes, String::new());
    assert!(matches!(plan.steps[0].action, Action::PullRequest(_)));
}

#[test]
fn a_change_waits_until_it_is_live_in_the_environment_before() {
    let dev = set(
        "infra",
        Some("dev"),
        Some(Trust::Deploy),
        "permits",
        &["apps/dev/permits/a.yaml"],
    );
    let test = set(
        "infra",
        Some("test"),
        Some(Trust::Propose),
        "permits",
        &["apps/test/permits/a.yaml"],
    );
    let mut staging = set(
        "infra",
        Some("staging"),
        Some(Trust::Observe),
        "permits",
        &[],
    );
    staging.files.clear();
    let prod = set(
        "infra",
        Some("prod"),
        Some(Trust::Propose),
        "permits",
        &["apps/prod/permits/a.yaml"],
    );
    let other = set(
        "infra",
        Some("prod"),
        Some(Trust::Propose),
        "meters",
        &["apps/prod/meters/a.yaml"],
    );
    let mut changes = of(vec![dev, test, staging, prod, other]);
    changes.order = ["dev", "test", "staging", "prod"]
        .map(str::to_owned)
        .to_vec();
    let waits = |plan: &ExecutionPlan| -> Vec<(String, Option<String>)> {
        plan.steps
            .iter()
            .map(|s| {
                let json = serde_json::to_value(s).unwrap();
                (
                    format!(
                        "{} {}",
                        json["action"].as_str().unwrap(),
                        json["params"]["env"].as_str().unwrap_or("")
                    ),
                    json["params"]["waiting"].as_str().map(str::to_owned),
                )
            })
            .collect()
    };
    let got = waits(&plan(&changes, String::new()));
    let want = |a: &str, w: Option<&str>| (a.to_owned(), w.map(str::to_owned));
    // meters has no earlier environment in the run: it goes on. The
    // observe environment between test and prod is skipped.
    assert_eq!(
        got,
        [
            want("commit dev", None),
            want("nothing test", Some("dev")),
            want("nothing prod", Some("test")),
            want("pull_request prod", None),
        ]
    );
    // dev live (nothing left there), test proposes; only a lock change
    // in test does not hold prod back.
    changes.sets[0].files.clear();
    changes.sets[1].files[0].path = format!("apps/test/permits/{LOCK_FILE}");
    let got = waits(&plan(&changes, String::new()));
    assert_eq!(got[1], want("pull_request prod", None), "{got:?}");
    // `promote: {prod: parallel}`.
    changes.sets[1].files[0].path = "apps/test/permits/a.yaml".to_owned();
    changes.sets[3].parallel = true;
    let got = waits(&plan(&changes, String::new()));
    assert!(got.contains(&want("pull_request prod", None)), "{got:?}");
    // Diffed only to decide (`--env prod`): no step of its own.
    changes.sets[1].context = true;
    let got = waits(&plan(&changes, String::new()));
    assert!(!got.iter().any(|(a, _)| a.ends_with(" test")), "{got:?}");
}

#[test]
fn a_change_is_promoted_past_a_verifying_environment_only_once_verified_there() {
    // dev holds nothing to do (its change is committed); test proposes.
    let mut dev = set("infra", Some("dev"), Some(Trust::Deploy), "permits", &[]);
    dev.files.clear();
    let test = set(
        "infra",
        Some("test"),
        Some(Trust::Propose),
        "permits",
        &["apps/test/permits/a.yaml"],
    );
    let mut changes = of(vec![dev, test]);
    changes.order = ["dev", "test"].map(str::to_owned).to_vec();
    let step = |changes: &ChangeSets| {
        let p = plan(changes, String::new());
        serde_json::to_value(&p.steps[0]).unwrap()
    };
    let open = step(&changes);
    assert_eq!(open["action"], "pull_request");
    assert_eq!(
        open["params"]["promoted_from"], "dev",
        "the proposal promotes the change from dev: {open}"
    );
    changes.unverified = vec![crate::diff::Unverified {
        plan: "permits".into(),
        env: "dev".into(),
        why: "its verification failed".into(),
    }];
    let held = step(&changes);
    assert_eq!(held["action"], "nothing");
    assert_eq!(held["params"]["waiting"], "dev");
    let reason = held["params"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("once it is verified (its verification failed) in dev"),
        "{reason}"
    );
    // Another plan's verification holds nothing back.
    changes.unverified[0].plan = "meters".into();
    assert_eq!(step(&changes)["action"], "pull_request");
}

#[test]
fn the_trail_says_which_live_changes_are_not_verified() {
    use crate::audit::{Event, Kind, Recorded};
    let event = |kind: Kind, env: &str, commit: &str| Recorded {
        commit: "e".repeat(40),
        event: Event {
            kind,
            time: "2026-12-04T00:00:00Z".into(),
            actor: "druppie@example.org".into(),
            plans: vec!["permits".into()],
            env: Some(env.into()),
            repo: "infra".into(),
            commit: Some(commit.into()),
            branch: None,
            spec_commit: None,
            from: None,
        },
        signature: "druppie".into(),
    };
    let changes = of(vec![
        set("infra", Some("dev"), Some(Trust::Deploy), "permits", &[]),
        set("infra", Some("test"), Some(Trust::Propose), "permits", &[]),
    ]);
    let dev_verifies = |env: &str| env == "dev";
    let whys = |trail: &[Recorded]| -> Vec<(String, String)> {
        unverified(trail, "infra", &changes, dev_verifies)
            .into_iter()
            .map(|u| (u.env, u.why))
            .collect()
    };
    let not_yet = vec![("dev".to_owned(), "not verified yet".to_owned())];
    assert_eq!(whys(&[]), not_yet, "nothing applied: nothing verified");
    let mut trail = vec![
        event(Kind::Applied, "dev", "c1"),
        event(Kind::Verified, "dev", "c1"),
    ];
    assert_eq!(whys(&trail), Vec::new());
    trail.push(event(Kind::Applied, "dev", "c2"));
    assert_eq!(whys(&trail), not_yet, "a newer commit is not verified yet");
    trail.push(event(Kind::Failed, "dev", "c2"));
    assert_eq!(
        whys(&trail),
        vec![("dev".to_owned(), "its verification failed".to_owned())]
    );
}
