//! An endpoint that cannot be reached, does not answer in time, or runs
//! past its limits leaves the rules planner to draft, and says so.

use super::*;

#[test]
fn an_unreachable_model_leaves_the_rules_to_propose_and_says_so() {
    let s = setup(&nowhere(), "");
    let rules = s.propose(&["--planner", "rules", "--json"]);
    assert_eq!(rules.code, 0, "{}", rules.stderr);
    let rules: Value = serde_json::from_str(&rules.stdout).expect("json");
    assert_eq!(rules["planner"], "rules");
    let run = assert_the_key_stays_in(&s);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("plan permit-portal (rules (language model unreachable) planner)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("note: The language model could not be reached (error sending request"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("proposed on branch druppie/propose/permit-portal")
    );
    assert_eq!(
        s.proposals(),
        [(
            "druppie/propose/permit-portal".to_owned(),
            "rules (language model unreachable)".to_owned()
        )]
    );
    // The very files the rules planner writes on its own.
    let plan = git(
        s.spec.path(),
        &[
            "show",
            "druppie/propose/permit-portal:spec/plans/permit-portal.yaml",
        ],
    );
    assert_eq!(rules["files"][0]["path"], "spec/plans/permit-portal.yaml");
    assert_eq!(rules["files"][0]["text"], plan.as_str());
    let card = git(
        s.spec.path(),
        &["log", "-1", "--format=%B", "druppie/propose/permit-portal"],
    );
    assert!(card.contains("could not be reached"), "{card}");
}

#[test]
fn a_model_that_does_not_answer_in_time_leaves_the_rules_to_propose() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let s = setup(&url, "timeout = \"1s\"\n");
    let started = std::time::Instant::now();
    let run = s.propose(&["--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let answer: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(answer["planner"], "rules (language model timed out)");
    assert_eq!(
        answer["notes"][0],
        "The language model did not answer within 1 s. The rule-based planner drafted this instead; nothing the model answered is in it."
    );
}

#[test]
fn a_model_past_its_token_budget_or_its_requests_leaves_the_rules_to_propose() {
    let search = json!({"role": "assistant", "content": null, "tool_calls": [
        call("c1", "search_blocks", json!({"query": "database"}))]});
    for (extra, requests, planner, note) in [
        (
            "token_budget = 15\n",
            1,
            "rules (language model over its token budget)",
            "The language model used 20 tokens, past the budget of 15 (`[llm] token_budget`).",
        ),
        (
            "max_requests = 2\n",
            2,
            "rules (language model did not finish)",
            "The language model sent 2 requests without a final answer (`[llm] max_requests`).",
        ),
    ] {
        let proxy = Proxy::new(prism::openai());
        let s = setup(&proxy.url, extra);
        answer(&proxy, search.clone());
        answer(&proxy, search.clone());
        let run = s.propose(&["--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let answer: Value = serde_json::from_str(&run.stdout).expect("json");
        assert_eq!(answer["planner"], planner);
        assert!(
            answer["notes"][0]
                .as_str()
                .is_some_and(|n| n.starts_with(note)),
            "{answer:#}"
        );
        assert_eq!(chats(&proxy).len(), requests);
    }
}
