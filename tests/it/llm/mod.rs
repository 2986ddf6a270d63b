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

mod canary;
mod contract;
mod drafts;
mod fallback;

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
        let mut all = vec![SENTENCE, "--owner", "team-x"];
        all.extend_from_slice(args);
        self.propose_exactly(&all)
    }

    /// `druppie propose ARGS`, with the canary key and debug logs.
    fn propose_exactly(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_druppie"))
            .arg("--config")
            .arg(&self.config)
            .arg("--spec")
            .arg(self.spec.path())
            .arg("propose")
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

/// An address where nothing listens.
fn nowhere() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/v1")
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
