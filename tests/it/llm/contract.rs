//! The requests druppie sends to the model, checked against OpenAI's
//! description, and Prism's random answers, which never become a
//! proposal.

use super::*;

#[test]
fn the_request_checker_refuses_what_openais_description_refuses() {
    let bad = openai_violations(&[
        json!({"model": "m", "messages": [{"role": "userx", "content": "hi"}]}).to_string(),
        json!({"model": "m"}).to_string(),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 99})
            .to_string(),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).to_string(),
    ]);
    for i in 0..3 {
        assert!(
            bad.iter().any(|b| b.contains(&format!("request-{i}.json"))),
            "{i}: {bad:#?}"
        );
    }
    assert!(
        !bad.iter().any(|b| b.contains("request-3.json")),
        "{bad:#?}"
    );
}

#[test]
fn the_planners_requests_pass_openais_description_and_what_the_model_answers_is_checked_before_anything_is_proposed()
 {
    let proxy = Proxy::new(prism::openai());
    let s = setup(&proxy.url, "repair_rounds = 2\n");
    let bad_draft = json!({"plan": {"name": "../../spec/platform", "stack": "webapp-db",
        "owner": "team-x", "intent": "x", "environments": ["dev", "test", "prod"], "inputs": {},
        "overrides": {}}, "stack": null});
    // The tools, one of them unknown; then an answer that is not JSON,
    // a draft whose name is a path, and another answer that is not
    // JSON: every repair round is spent.
    answer(
        &proxy,
        json!({"role": "assistant", "content": null, "tool_calls": [
            call("c1", "search_blocks", json!({"query": "database"})),
            call("c2", "read_block", json!({"id": "postgresql"})),
            call("c3", "list_stacks_and_plans", json!({})),
            call("c4", "validate_draft", json!({"draft": bad_draft})),
            call("c5", "rm_rf", json!({})),
        ]}),
    );
    answer(
        &proxy,
        json!({"role": "assistant", "content": "Sure! Here is your plan."}),
    );
    answer(
        &proxy,
        json!({"role": "assistant", "content": json!({"draft": bad_draft, "choices": [],
            "questions": [], "notes": []}).to_string()}),
    );
    answer(
        &proxy,
        json!({"role": "assistant", "content": "```json\n{}\n```"}),
    );
    let run = assert_the_key_stays_in(&s);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("plan permit-portal (rules (language model's answer rejected) planner)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("The language model's answer was rejected: it is not the JSON object"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("The rule-based planner drafted this instead")
    );
    // Every request druppie sent is one OpenAI's description allows.
    let chats = chats(&proxy);
    // Four for `--yes`; the `--json` run's go to Prism's own answers.
    assert!(chats.len() >= 5, "{:?}", proxy.lines());
    assert!(chats.iter().all(|r| r.status == 200), "{chats:#?}");
    assert_eq!(
        chats[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let first = chats[0].json();
    assert_eq!(first["model"], "gpt-4o-mini");
    assert_eq!(first["response_format"]["type"], "json_schema");
    assert_eq!(
        first["response_format"]["json_schema"]["name"],
        "druppie_plan_draft"
    );
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(
        tools,
        [
            "search_blocks",
            "read_block",
            "list_stacks_and_plans",
            "validate_draft"
        ]
    );
    let system = first["messages"][0]["content"].as_str().expect("system");
    assert!(system.contains("# Planner"), "the planner skill: {system}");
    // The tools' answers went back, each to its call.
    let second = chats[1].json();
    let answers: Vec<(String, String)> = second["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap_or("").to_owned(),
                m["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(answers.len(), 5, "{second:#}");
    assert!(
        answers[0].1.contains("\"id\":\"postgresql\""),
        "{answers:?}"
    );
    assert!(answers[1].1.contains("\"instances\""), "{answers:?}");
    assert!(answers[2].1.contains("\"webapp-db\""), "{answers:?}");
    assert!(
        answers[3].1.contains("\"valid\":false")
            && answers[3].1.contains("may hold only lowercase letters"),
        "{answers:?}"
    );
    assert!(answers[4].1.contains("there is no tool"), "{answers:?}");
    // Each rejected answer went back with why.
    let third = chats[2].json();
    let last = third["messages"]
        .as_array()
        .expect("messages")
        .last()
        .cloned();
    assert!(
        last.as_ref()
            .and_then(|m| m["content"].as_str())
            .is_some_and(|c| c.contains("Your answer was rejected")),
        "{last:?}"
    );
    let fourth = chats[3].json();
    let last = fourth["messages"]
        .as_array()
        .expect("messages")
        .last()
        .cloned();
    assert!(
        last.as_ref()
            .and_then(|m| m["content"].as_str())
            .is_some_and(|c| c.contains("Your draft does not check out")),
        "{last:?}"
    );
    // What was opened is the rules' proposal, and only that.
    let proposals = s.proposals();
    assert_eq!(
        proposals,
        [(
            "druppie/propose/permit-portal".to_owned(),
            "rules (language model's answer rejected)".to_owned()
        )]
    );
    assert!(!s.spec.path().join("spec/plans/platform.yaml").exists());
}

#[test]
fn prisms_random_answers_never_become_a_proposal() {
    let proxy = Proxy::new(prism::openai());
    let s = setup(&proxy.url, "max_requests = 4\n");
    for name in ["portal-a", "portal-b", "portal-c"] {
        let run = s.propose(&["--yes", "--name", name]);
        // Prism's completions are random: a refusal, tool calls to
        // tools that do not exist, text that is no draft. The rules
        // draft every time, and say why.
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stdout
                .contains(&format!("plan {name} (rules (language model")),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("The rule-based planner drafted this instead")
        );
        assert_clean("stdout", &run.stdout);
        assert_clean("stderr", &run.stderr);
    }
    let proposals = s.proposals();
    assert_eq!(proposals.len(), 3, "{proposals:?}");
    for (branch, planner) in &proposals {
        assert!(
            planner.starts_with("rules (language model"),
            "{branch} was drafted by {planner:?}"
        );
    }
    assert_clean("the spec repo", &s.everything());
    assert!(chats(&proxy).len() >= 3);
}
