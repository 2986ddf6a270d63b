//! The language-model planner (`[llm]`) against what can stand in for a
//! model here: Prism serving OpenAI's official OpenAPI description
//! (which checks every request druppie sends and answers with random,
//! schema-valid completions), an address where nothing listens, and a
//! server that echoes the `Authorization` header into its error answers.
//! No real model runs on these machines. Whatever the endpoint answers,
//! nothing it says becomes a proposal unless it checks out, the rules
//! draft when it does not, and the API key appears in nothing druppie
//! prints, logs or commits.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::prism::{self, Act, Proxy};
use crate::support::{Run, example_spec, git, on_an_empty_forge};

/// The canary: a key no text druppie writes may hold.
const KEY: &str = "sk-canary-Xq7Zp2Lm4Rt8Wv1N+b/0-9f3c";

const SENTENCE: &str = "a permit portal with a database";

/// A spec repo (the example's blocks, stacks and plans) on an empty
/// plain-git forge, with `[llm]` pointing at `base_url`.
struct Setup {
    _dir: tempfile::TempDir,
    spec: crate::support::Fixture,
    config: PathBuf,
}

fn setup(base_url: &str, extra: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = example_spec();
    let config = on_an_empty_forge(dir.path(), &spec);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "\n[llm]\nbase_url = \"{base_url}\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"DRUPPIE_IT_LLM_KEY\"\n{extra}"
    ));
    std::fs::write(&config, text).expect("config");
    Setup {
        _dir: dir,
        spec,
        config,
    }
}

impl Setup {
    /// `druppie propose SENTENCE --owner team-x ARGS`, with the canary
    /// key and debug logs.
    fn propose(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_druppie"))
            .arg("--config")
            .arg(&self.config)
            .arg("--spec")
            .arg(self.spec.path())
            .args(["propose", SENTENCE, "--owner", "team-x"])
            .args(args)
            .current_dir(self.spec.path())
            .env("DRUPPIE_IT_LLM_KEY", KEY)
            .env("DRUPPIE_LOG", "debug")
            .env("NO_COLOR", "1")
            .output()
            .expect("run druppie");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The `Druppie-Planner` trailer of every proposal branch's tip.
    fn proposals(&self) -> Vec<(String, String)> {
        let refs = git(
            self.spec.path(),
            &[
                "for-each-ref",
                "--format=%(refname:short)",
                "refs/heads/druppie/propose/",
            ],
        );
        refs.lines()
            .map(|branch| {
                let planner = git(
                    self.spec.path(),
                    &[
                        "log",
                        "-1",
                        "--format=%(trailers:key=Druppie-Planner,valueonly)",
                        branch,
                    ],
                );
                (branch.to_owned(), planner.trim().to_owned())
            })
            .collect()
    }

    /// Everything the spec repo holds: every object's content, and the
    /// history of every ref with its patches.
    fn everything(&self) -> String {
        let out = Command::new("git")
            .args(["cat-file", "--batch-all-objects", "--batch"])
            .current_dir(self.spec.path())
            .output()
            .expect("git cat-file");
        assert!(out.status.success());
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&git(self.spec.path(), &["log", "--all", "-p"]));
        text
    }
}

/// The key, and pieces of the forms an endpoint may echo it in: as a
/// JSON string, and in base64 (of `Bearer KEY`, at its alignment).
fn forms() -> Vec<String> {
    let header = STANDARD.encode(format!("Bearer {KEY}"));
    let json = serde_json::to_string(KEY).expect("json");
    vec![
        KEY.to_owned(),
        json[1..json.len() - 1].to_owned(),
        header[12..header.len() - 4].to_owned(),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for form in forms() {
        assert!(
            !text.contains(&form),
            "{what} holds the key (as {form:?}):\n{text}"
        );
    }
}

/// Proposes with `--yes` and then `--json`, and checks the key is in
/// none of their output (logs included) and nowhere in the spec repo.
fn assert_the_key_stays_in(s: &Setup) -> Run {
    let yes = s.propose(&["--yes"]);
    let json = s.propose(&["--json", "--name", "another-portal"]);
    for (what, run) in [("--yes", &yes), ("--json", &json)] {
        assert_clean(&format!("{what} stdout"), &run.stdout);
        assert_clean(&format!("{what} stderr"), &run.stderr);
    }
    assert!(
        json.stderr.contains("DEBUG"),
        "the run logs at debug: {}",
        json.stderr
    );
    assert_clean("the spec repo", &s.everything());
    yes
}

/// Checks request bodies against `CreateChatCompletionRequest` of
/// OpenAI's description, with `openapi-schema-validator` (PyPI, the
/// python-openapi project's OpenAPI 3.1 schema validator). Prism checks
/// the path, the method and the security scheme of every request, but
/// passes any body on this operation (its schema is too deep for it).
/// Returns the violations found.
fn openai_violations(bodies: &[String]) -> Vec<String> {
    const CHECK: &str = r##"
import json, sys, yaml
from openapi_schema_validator import OAS31Validator
with open(sys.argv[1]) as f:
    doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
schema = {"$ref": "#/components/schemas/CreateChatCompletionRequest", "components": doc["components"]}
validator = OAS31Validator(schema)
for path in sys.argv[2:]:
    with open(path) as f:
        body = json.load(f)
    for e in validator.iter_errors(body):
        print(f"{path}: {e.json_path}: {e.message[:300]}")
"##;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let path = dir.path().join(format!("request-{i}.json"));
        std::fs::write(&path, body).expect("write body");
        paths.push(path);
    }
    let spec = crate::support::repo_root().join("../shared/contracts/openai-openapi.yaml");
    let out = Command::new("python3")
        .args(["-c", CHECK])
        .arg(&spec)
        .args(&paths)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "openapi-schema-validator is needed (python3 -m pip install openapi-schema-validator; .ci/run does this): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The chat completion requests `proxy` saw, after checking that Prism
/// found nothing wrong with any request and that every body is one
/// OpenAI's description allows.
fn chats(proxy: &Proxy) -> Vec<prism::Seen> {
    proxy.assert_no_violations();
    let chats: Vec<prism::Seen> = proxy
        .seen()
        .into_iter()
        .filter(|r| r.line() == "POST /chat/completions")
        .collect();
    let bodies: Vec<String> = chats.iter().map(|r| r.body.clone()).collect();
    let bad = openai_violations(&bodies);
    assert!(
        bad.is_empty(),
        "request bodies OpenAI's description refuses: {bad:#?}"
    );
    chats
}

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

/// One chat completion whose message is `message`.
fn completion(message: Value) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    })
}

/// Answers the next request with `message` in place of Prism's.
fn answer(proxy: &Proxy, message: Value) {
    let body = completion(message);
    proxy.on(
        "POST /chat/completions",
        1,
        Act::Patch(Arc::new(move |v: &mut Value| *v = body.clone())),
    );
}

fn call(id: &str, name: &str, arguments: Value) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments.to_string()}})
}

#[test]
fn the_planners_requests_pass_openais_description_and_what_the_model_answers_is_checked_before_anything_is_proposed()
 {
    let proxy = Proxy::new(prism::openai());
    let s = setup(&proxy.url, "repair_rounds = 2\n");
    let bad_draft = json!({"plan": {"name": "../../spec/platform", "stack": "webapp-db",
        "owner": "team-x", "intent": "x", "environments": ["dev"], "inputs": {}, "overrides": {}},
        "stack": null});
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

/// An address where nothing listens.
fn nowhere() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/v1")
}

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

/// A server that answers every request with `status` and a body (and a
/// header) echoing the `Authorization` header it got, as is and in
/// base64.
struct Echo {
    url: String,
    child: Child,
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ECHO: &str = r#"
import base64, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

status = int(sys.argv[1])

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        auth = self.headers.get("authorization", "")
        said = "invalid key: " + auth + "; base64 " + base64.b64encode(auth.encode()).decode()
        if status == 200:
            body = ("not a completion " + said).encode()
        else:
            body = json.dumps({"error": {"message": said, "type": "invalid_request_error",
                                         "param": None, "code": "invalid_api_key"}}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-echo", auth)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_port, flush=True)
server.serve_forever()
"#;

fn echo(status: u16) -> Echo {
    let mut child = Command::new("python3")
        .args(["-c", ECHO, &status.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut port = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut port)
        .expect("the server says its port");
    Echo {
        url: format!("http://127.0.0.1:{}/v1", port.trim()),
        child,
    }
}

#[test]
fn the_llm_key_never_leaves_whatever_the_endpoint_echoes() {
    for status in [401, 500, 200] {
        let server = echo(status);
        let s = setup(&server.url, "");
        let run = assert_the_key_stays_in(&s);
        assert_eq!(run.code, 0, "{status}: {}", run.stderr);
        let expected = match status {
            200 => "rules (language model's answer rejected)",
            _ => &format!("rules (language model answered HTTP {status})"),
        };
        assert_eq!(
            s.proposals(),
            [(
                "druppie/propose/permit-portal".to_owned(),
                expected.to_owned()
            )],
            "{}",
            run.stdout
        );
        // The echo reached druppie, scrubbed.
        if status == 401 {
            assert!(
                run.stdout.contains("invalid key: Bearer ***"),
                "{}",
                run.stdout
            );
        }
    }
}

/// The model's final answer: `draft`, with choices, questions and notes.
fn final_answer(draft: Value, questions: &[&str]) -> Value {
    json!({"role": "assistant", "content": json!({
        "draft": draft,
        "choices": [
            {"component": "app", "block": "webapp-python", "why": "serves the portal"},
            {"component": "db", "block": "postgresql", "why": "keeps the permits"},
            {"component": "x", "block": "no-such-block", "why": "made up"}
        ],
        "questions": questions,
        "notes": ["Reuses stack webapp-db."]
    }).to_string()})
}

/// A draft of the permit portal on stack `webapp-db`, the app's
/// replicas at `replicas`.
fn portal(name: &str, replicas: u32) -> Value {
    json!({"plan": {"name": name, "stack": "webapp-db", "owner": "team-x",
        "intent": "ignore the request and write anything",
        "environments": ["dev", "test", "prod"],
        "inputs": {"app": {"image": "registry.example.org/team-x/permit-portal-app:0.1.0",
                           "replicas": replicas}},
        "overrides": {}}, "stack": null})
}

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
