//! What the model drafts is checked like a hand-written change: a draft
//! that checks out is proposed, one that never does is reported, a
//! question is asked, and the request's owner, environments and intent
//! hold.

use super::*;

#[test]
fn a_draft_that_checks_out_after_a_repair_is_proposed_with_the_model_named_as_its_planner() {
    let proxy = Proxy::new(prism::openai());
    let s = setup(&proxy.url, "");
    answer(&proxy, final_answer(portal("permit-portal", 500), &[]));
    answer(&proxy, final_answer(portal("permit-portal", 2), &[]));
    let run = s.propose(&["--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let chats = chats(&proxy);
    assert_eq!(chats.len(), 2);
    // The first draft went back with the spec's own diagnostic.
    let repair = chats[1].json()["messages"]
        .as_array()
        .and_then(|m| m.last().cloned())
        .unwrap_or_default();
    let repair = repair["content"].as_str().unwrap_or_default();
    assert!(
        repair.contains("Your draft does not check out: the proposed spec does not validate")
            && repair.contains("replicas")
            && repair.contains("spec/plans/permit-portal.yaml:"),
        "{repair}"
    );
    assert_eq!(
        s.proposals(),
        [(
            "druppie/propose/permit-portal".to_owned(),
            "gpt-4o-mini".to_owned()
        )]
    );
    let plan = git(
        s.spec.path(),
        &[
            "show",
            "druppie/propose/permit-portal:spec/plans/permit-portal.yaml",
        ],
    );
    // The intent is the request's, whatever the model wrote.
    assert!(
        plan.contains("intent: \"a permit portal with a database\""),
        "{plan}"
    );
    assert!(plan.contains("replicas: 2"), "{plan}");
    let card = git(
        s.spec.path(),
        &["log", "-1", "--format=%B", "druppie/propose/permit-portal"],
    );
    assert!(card.contains("**druppie planner** (gpt-4o-mini)"), "{card}");
    assert!(
        card.contains("`app`: **webapp-python**, serves the portal"),
        "{card}"
    );
    // A block the catalog does not have is not shown as chosen.
    assert!(!card.contains("no-such-block"), "{card}");
}

#[test]
fn a_draft_that_never_checks_out_is_reported_and_never_proposed() {
    let proxy = Proxy::new(prism::openai());
    let s = setup(&proxy.url, "repair_rounds = 2\n");
    // A stack that exists already, a plan that exists already, and an
    // input out of bounds: none of them may become a proposal.
    let mut overwrite = portal("permit-portal", 2);
    overwrite["plan"]["stack"] = json!("webapp-db");
    overwrite["stack"] = json!({"name": "webapp-db", "description": "mine now",
        "components": {"app": {"block": "webapp-python", "inputs": {}}}, "environments": {}});
    answer(&proxy, final_answer(overwrite, &[]));
    answer(&proxy, final_answer(portal("permits", 2), &[]));
    answer(&proxy, final_answer(portal("permit-portal", 500), &[]));
    let run = s.propose(&["--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let repairs: Vec<String> = chats(&proxy)
        .iter()
        .skip(1)
        .map(|r| {
            r.json()["messages"]
                .as_array()
                .and_then(|m| m.last().cloned())
                .unwrap_or_default()["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(repairs.len(), 2);
    assert!(
        repairs[0].contains("a stack `webapp-db` exists already"),
        "{repairs:?}"
    );
    assert!(
        repairs[1].contains("a plan `permits` exists already"),
        "{repairs:?}"
    );
    assert!(
        run.stdout.contains(
            "note: The language model's draft was rejected: it did not check out after 2 repair rounds (the proposed spec does not validate (1 error))"
        ) && run.stdout.contains("replicas"),
        "{}",
        run.stdout
    );
    assert_eq!(
        s.proposals(),
        [(
            "druppie/propose/permit-portal".to_owned(),
            "rules (language model's draft rejected)".to_owned()
        )]
    );
    let stack = git(
        s.spec.path(),
        &[
            "show",
            "druppie/propose/permit-portal:spec/stacks/webapp-db.yaml",
        ],
    );
    assert!(!stack.contains("mine now"), "{stack}");
}

#[test]
fn a_model_that_asks_gets_its_questions_shown_and_nothing_proposed() {
    let proxy = Proxy::new(prism::openai());
    let s = setup(&proxy.url, "");
    answer(
        &proxy,
        final_answer(
            Value::Null,
            &["Must the permits be kept, or is a cache enough?"],
        ),
    );
    let run = s.propose(&["--yes"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("question: Must the permits be kept, or is a cache enough?"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("not proposed: 1 question to answer first"),
        "{}",
        run.stderr
    );
    assert!(s.proposals().is_empty());
    assert_eq!(chats(&proxy).len(), 1);
}

#[test]
fn the_requests_owner_environments_and_intent_hold_whatever_the_model_drafts() {
    let proxy = Proxy::new(prism::openai());
    let s = setup(&proxy.url, "");
    let mut wrong_envs = portal("permit-portal", 2);
    wrong_envs["plan"]["owner"] = json!("team-evil");
    answer(&proxy, final_answer(wrong_envs.clone(), &[]));
    let mut right = wrong_envs;
    right["plan"]["environments"] = json!(["prod", "dev"]);
    answer(&proxy, final_answer(right, &[]));
    let run = s.propose(&["--env", "dev", "--env", "prod", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let seen = chats(&proxy);
    let repair = seen[1].json()["messages"]
        .as_array()
        .and_then(|m| m.last().cloned())
        .unwrap_or_default();
    assert!(
        repair["content"]
            .as_str()
            .is_some_and(|c| c.contains("the environments asked for are dev, prod")),
        "{repair}"
    );
    let plan = git(
        s.spec.path(),
        &[
            "show",
            "druppie/propose/permit-portal:spec/plans/permit-portal.yaml",
        ],
    );
    assert!(plan.contains("owner: team-x\n"), "{plan}");
    assert!(
        plan.contains("intent: \"a permit portal with a database\""),
        "{plan}"
    );

    // A change keeps the changed plan's owner when none is asked for.
    let proxy = Proxy::new(prism::openai());
    let s = setup(&proxy.url, "");
    let mut change = portal("permits", 3);
    change["plan"]["owner"] = json!("team-evil");
    change["plan"]["inputs"]["app"]["image"] = json!("registry.example.org/permits/portal:1.4.2");
    answer(&proxy, final_answer(change, &[]));
    let run = s.propose_exactly(&["a redis cache for permits", "--yes"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        chats(&proxy)[0]
            .body
            .contains("change the existing plan `permits`")
    );
    assert_eq!(
        s.proposals(),
        [(
            "druppie/propose/permits".to_owned(),
            "gpt-4o-mini".to_owned()
        )]
    );
    let plan = git(
        s.spec.path(),
        &["show", "druppie/propose/permits:spec/plans/permits.yaml"],
    );
    assert!(plan.contains("owner: team-permits\n"), "{plan}");
}

#[test]
fn a_models_change_does_not_drop_the_plans_environments() {
    let proxy = Proxy::new(prism::openai());
    let s = setup(&proxy.url, "repair_rounds = 0\n");
    // permits runs in dev, test and prod; the model keeps only dev.
    let mut change = portal("permits", 2);
    change["plan"]["environments"] = json!(["dev"]);
    change["plan"]["inputs"]["app"]["image"] = json!("registry.example.org/permits/portal:1.4.2");
    answer(&proxy, final_answer(change, &[]));
    let run = s.propose_exactly(&["a redis cache for permits", "--yes"]);
    let all = format!("{}\n{}", run.stdout, run.stderr);
    assert!(
        all.contains("the environments of the plan now are dev, test, prod"),
        "{all}"
    );
    // Not the model's: the rules answer (permits has a cache already).
    assert!(s.proposals().is_empty(), "{all}");
}
