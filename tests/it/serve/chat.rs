//! The chat API (`/v1/chat/completions`, `/v1/models`, `/v1/agents`)
//! driven by the official `openai` Python client, its answers checked
//! against OpenAI's own API description through Prism, and hostile
//! requests refused with OpenAI's error object and nothing pushed.

use std::process::Command;

use serde_json::{Value, json};

use super::{Daemon, serve_setup};
use crate::apply::Setup;
use crate::support::git;

const TOKEN: &str = "it-chat-token-5d1e";

/// The serve setup, with a skill (a persona) and the platform's project
/// image convention (so a new plan's image is known) pushed to the spec
/// repo.
pub(crate) fn chat_setup() -> Setup {
    let s = serve_setup();
    let work = s.tmp.path().join("spec-work");
    std::fs::create_dir_all(work.join("skills")).expect("skills");
    std::fs::copy(
        crate::support::repo_root().join("skills/planner.md"),
        work.join("skills/planner.md"),
    )
    .expect("a skill");
    let platform = work.join("spec/platform.yaml");
    let mut text = std::fs::read_to_string(&platform).expect("platform");
    text.push_str("projects:\n  image: \"registry.example.org/{{ owner }}/{{ repo }}:0.1.0\"\n");
    std::fs::write(&platform, text).expect("platform");
    git(&work, &["add", "-A"]);
    git(
        &work,
        &["commit", "-qm", "a persona and the image convention"],
    );
    git(&work, &["push", "-q", "origin", "main"]);
    s
}

/// The proposal branches of the forge's spec repo.
fn proposals(s: &Setup) -> Vec<String> {
    git(
        &s.forge().join("spec.git"),
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/druppie/propose",
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// `branch` of the spec repo, checked out, passes `druppie validate`,
/// and its commit is druppie's, signed.
fn validates(s: &Setup, branch: &str) -> String {
    let dir = s.tmp.path().join(branch.replace('/', "-"));
    git(
        s.tmp.path(),
        &[
            "clone",
            "-q",
            "--branch",
            branch,
            s.forge().join("spec.git").to_str().expect("utf-8"),
            dir.to_str().expect("utf-8"),
        ],
    );
    let run = crate::support::druppie(&dir, &["--spec", ".", "validate", "--render"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    s.verify("spec", branch);
    let plan = branch.rsplit('/').next().expect("a plan");
    std::fs::read_to_string(dir.join(format!("spec/plans/{plan}.yaml"))).expect("the plan file")
}

#[test]
fn the_openai_client_lists_druppie_asks_questions_and_opens_proposals_that_validate() {
    let s = chat_setup();
    let d = Daemon::start_env(&s, &[], &[("DRUPPIE_API_TOKEN", TOKEN)]);
    let script = crate::support::repo_root().join("tests/openai-client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(d.url("/v1"))
        .arg(TOKEN)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the openai client failed (pip install openai; .ci/run does): {stderr}\nlogs:\n{}",
        d.logs().join("\n")
    );
    let got: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    if std::env::var_os("DRUPPIE_IT_SHOW").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(got["models"], json!(["druppie"]));

    // A catalog question: the blocks that give a database, and why.
    let catalog = &got["catalog"];
    assert_eq!(
        (&catalog["object"], &catalog["model"], &catalog["role"]),
        (
            &json!("chat.completion"),
            &json!("druppie"),
            &json!("assistant")
        )
    );
    assert_eq!(catalog["finish_reason"], "stop");
    let text = catalog["content"].as_str().expect("content");
    assert!(
        text.contains("`postgresql`") && text.contains("Gives: database"),
        "{text}"
    );
    assert_eq!(catalog["druppie"]["blocks"][0], "postgresql", "{catalog}");

    // A status question: what waits where, and why.
    let status = got["status"]["content"].as_str().expect("content");
    assert!(
        status.contains("**prod**: pending-approval (proposal druppie/prod/permits)")
            && status.contains(
                "waiting for a merge of druppie/prod/permits: merging it is the approval"
            ),
        "{status}"
    );
    assert!(status.contains("proposed in prod"), "the trail: {status}");

    // Streamed answers are the same answers, chunk by chunk, ending with
    // a finish reason and the usage.
    for what in ["catalog", "status"] {
        let (whole, stream) = (&got[what], &got[format!("{what}_stream")]);
        assert_eq!(stream["content"], whole["content"], "{what}");
        assert!(stream["chunks"].as_u64() > Some(1), "{stream}");
        assert_eq!(stream["ids"], 1, "one id for every chunk");
        assert_eq!(stream["roles"], json!(["assistant"]));
        assert_eq!(stream["finish_reason"], "stop");
        assert!(stream["usage"].as_u64() > Some(0), "{stream}");
        assert_eq!(stream["druppie"], whole["druppie"], "{what}");
    }

    // The request becomes a proposal on the spec repo whose plan
    // validates; the answer names its branch and the blocks chosen.
    let proposal = &got["proposal"];
    let text = proposal["content"].as_str().expect("content");
    let branch = "druppie/propose/permit-portal";
    assert!(text.contains(&format!("on branch `{branch}`")), "{text}");
    assert!(
        text.contains("**webapp-python**") && text.contains("**postgresql**"),
        "{text}"
    );
    assert_eq!(proposal["druppie"]["opened"]["branch"], branch);
    let plan = validates(&s, branch);
    assert!(
        plan.contains("owner: team-x") && plan.contains("stack: webapp-db"),
        "{plan}"
    );
    assert!(
        plan.contains("intent: \"a permit portal with a database for team-x\""),
        "{plan}"
    );
    // Streamed, under the name the metadata gives.
    let stream = &got["proposal_stream"];
    let branch = "druppie/propose/permit-portal-stream";
    let text = stream["content"].as_str().expect("content");
    assert!(text.contains(&format!("on branch `{branch}`")), "{text}");
    assert_eq!(stream["druppie"]["opened"]["branch"], branch);
    validates(&s, branch);
    assert_eq!(
        proposals(&s),
        [
            "druppie/propose/permit-portal",
            "druppie/propose/permit-portal-stream"
        ]
    );
    // Another model is OpenAI's 404.
    assert_eq!(
        got["other_model"],
        json!({"status": 404, "code": "model_not_found"})
    );
    // The proposals are spec branches only: nothing reached the infra repo.
    let infra = git(
        &s.forge().join("infra.git"),
        &["for-each-ref", "--format=%(refname:short)"],
    );
    assert!(!infra.contains("permit-portal"), "{infra}");
}

/// `POST /v1/chat/completions` with `body` and an optional token.
fn post(d: &Daemon, token: Option<&str>, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
    let mut req = reqwest::blocking::Client::new()
        .post(d.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().expect("POST");
    let code = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text })),
    )
}

fn ask(text: &str) -> String {
    json!({"model": "druppie", "messages": [{"role": "user", "content": text}]}).to_string()
}

/// OpenAI's error object: `{"error": {message, type, param, code}}`.
fn openai_error(body: &Value) -> &str {
    let e = &body["error"];
    assert!(
        e["message"].is_string() && e["type"].is_string(),
        "not OpenAI's error object: {body}"
    );
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "{body}"
    );
    e["code"].as_str().unwrap_or_default()
}

#[test]
fn chat_without_a_configured_token_is_refused_and_reading_is_open() {
    let s = chat_setup();
    let d = Daemon::start(&s);
    let portal = ask("a permit portal with a database for team-x");
    let (code, body) = post(&d, None, portal.clone());
    assert_eq!((code, openai_error(&body)), (403, "permission_denied"));
    let (code, _) = post(&d, Some(TOKEN), portal);
    assert_eq!(code, 403);
    assert!(proposals(&s).is_empty());
    // The models and the personas are read without a token.
    let models = d.json("/v1/models");
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "druppie");
    assert_eq!(models["data"][0]["object"], "model");
    let agents = d.json("/v1/agents");
    assert_eq!(agents["object"], "list");
    let planner = &agents["data"][0];
    assert_eq!(
        (&planner["id"], &planner["object"]),
        (&json!("planner"), &json!("agent"))
    );
    assert!(
        planner["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
}

#[test]
fn hostile_chat_requests_get_openai_errors_and_push_nothing() {
    let s = chat_setup();
    let d = Daemon::start_env(&s, &[], &[("DRUPPIE_API_TOKEN", TOKEN)]);
    let portal = ask("a permit portal with a database for team-x");
    let (code, body) = post(&d, None, portal.clone());
    assert_eq!((code, openai_error(&body)), (401, "invalid_api_key"));
    let (code, _) = post(&d, Some("it-chat-token-5d1f"), portal);
    assert_eq!(code, 401);

    // Over the limit: refused unread. Just over it, so that the whole
    // body is in the socket's buffers before the refusal closes the
    // connection (10 MB made the client's write fail now and then with a
    // broken pipe before it read the answer).
    let huge = format!(
        r#"{{"model": "druppie", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "a".repeat((1 << 20) + 1024)
    );
    let (code, body) = post(&d, Some(TOKEN), huge);
    assert_eq!((code, openai_error(&body)), (413, "request_too_large"));

    // A plan name that is a path.
    let (code, body) = post(
        &d,
        Some(TOKEN),
        json!({"model": "druppie", "messages": [{"role": "user", "content": "a permit portal with a database for team-x"}], "metadata": {"name": "../../x"}})
            .to_string(),
    );
    assert_eq!((code, openai_error(&body)), (400, "invalid_name"), "{body}");
    assert_eq!(body["error"]["param"], "metadata.name");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"../../x\"")),
        "{body}"
    );
    // Control characters, a message too long, too many messages, no
    // JSON, another model.
    let (code, body) = post(&d, Some(TOKEN), ask("a portal\u{1b}[2J for team-x"));
    assert_eq!((code, openai_error(&body)), (400, "control_character"));
    let (code, body) = post(&d, Some(TOKEN), ask(&"portal ".repeat(4000)));
    assert_eq!(
        (code, openai_error(&body)),
        (400, "string_above_max_length")
    );
    let many: Vec<Value> = (0..101)
        .map(|_| json!({"role": "user", "content": "hi"}))
        .collect();
    let (code, body) = post(
        &d,
        Some(TOKEN),
        json!({"model": "druppie", "messages": many}).to_string(),
    );
    assert_eq!((code, openai_error(&body)), (400, "too_many_messages"));
    let (code, body) = post(&d, Some(TOKEN), "{\"model\": ");
    assert_eq!((code, openai_error(&body)), (400, "invalid_json"));
    let (code, body) = post(
        &d,
        Some(TOKEN),
        json!({"model": "../gpt", "messages": [{"role": "user", "content": "hi"}]}).to_string(),
    );
    assert_eq!((code, openai_error(&body)), (404, "model_not_found"));
    assert!(proposals(&s).is_empty(), "{:?}", proposals(&s));

    // A sentence with a path in it plans under a name, never the path;
    // its questions are the answer, and nothing is proposed.
    let (code, body) = post(
        &d,
        Some(TOKEN),
        ask("a permit portal with a database for ../../x"),
    );
    assert_eq!(code, 200, "{body}");
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert!(text.starts_with("Not proposed: "), "{text}");
    assert!(
        text.contains("Open questions:") && text.contains("Which team owns it?"),
        "{text}"
    );
    assert!(body["druppie"]["opened"].is_null(), "{body}");
    assert!(proposals(&s).is_empty(), "{:?}", proposals(&s));
    // The daemon still answers.
    assert_eq!(d.get("/healthz").0, 200);
}

/// The answers match OpenAI's own description of them: Prism, serving
/// `openai-openapi.yaml` as a validating proxy in front of the daemon,
/// passes the requests and the answers.
#[test]
fn chat_answers_match_openais_api_description() {
    let s = chat_setup();
    let d = Daemon::start_env(&s, &[], &[("DRUPPIE_API_TOKEN", TOKEN)]);
    let spec = crate::support::repo_root().join("../shared/contracts/openai-openapi.yaml");
    let prism = crate::prism::proxy(&spec, &d.url("/v1"));
    let http = crate::prism::client();
    let check = |r: reqwest::blocking::Response, what: &str| -> Value {
        let violations = r
            .headers()
            .get("sl-violations")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        assert!(violations.is_none(), "{what}: {violations:?} {body}");
        assert_eq!(status, 200, "{what}: {body}");
        serde_json::from_str(&body).expect("JSON")
    };
    let models = check(
        http.get(format!("{}/models", prism.url))
            .bearer_auth(TOKEN)
            .send()
            .expect("GET"),
        "models",
    );
    assert_eq!(models["data"][0]["id"], "druppie");
    for question in [
        "which blocks give me a database?",
        "why is permits pending in prod?",
        "a permit portal with a database",
    ] {
        let answer = check(
            http.post(format!("{}/chat/completions", prism.url))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(ask(question))
                .send()
                .expect("POST"),
            question,
        );
        assert_eq!(answer["object"], "chat.completion");
    }
    // And druppie's own description, errors included.
    let ours = crate::prism::proxy(
        &crate::support::repo_root().join("docs/openapi.yaml"),
        &d.url(""),
    );
    let send = |token: &str, body: String| {
        let r = http
            .post(format!("{}/v1/chat/completions", ours.url))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("POST");
        let violations = r.headers().get("sl-violations").cloned();
        let code = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        assert!(violations.is_none(), "{violations:?} {body}");
        code
    };
    assert_eq!(send(TOKEN, ask("which blocks give me a database?")), 200);
    assert_eq!(send(TOKEN, ask("a portal\u{7}")), 400);
    assert_eq!(send("wrong", ask("a portal")), 401);
    let other = json!({"model": "druppie", "messages": [{"role": "user", "content": "hi"}], "metadata": {"name": "Not A Label"}});
    assert_eq!(send(TOKEN, other.to_string()), 400);
}

#[test]
fn with_a_local_checkout_the_proposal_is_a_branch_of_it_built_on_its_committed_spec() {
    let s = super::setup_with_image();
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    config.push_str("\n[server]\nlisten = \"127.0.0.1:0\"\npoll_interval = \"1h\"\n");
    std::fs::write(&s.config, config).expect("config");
    let platform = s.f.path().join("spec/platform.yaml");
    let mut text = std::fs::read_to_string(&platform).expect("platform");
    text.push_str("projects:\n  image: \"registry.example.org/{{ owner }}/{{ repo }}:0.1.0\"\n");
    std::fs::write(&platform, text).expect("platform");
    git(s.f.path(), &["commit", "-qam", "the image convention"]);
    let main = git(s.f.path(), &["rev-parse", "main"]).trim().to_owned();
    let spec = s.f.path().to_str().expect("utf-8").to_owned();
    let d = Daemon::start_env(&s, &["--spec", &spec], &[("DRUPPIE_API_TOKEN", TOKEN)]);
    // A person's uncommitted edit is not part of what is proposed.
    let plan = s.f.path().join("spec/plans/permits.yaml");
    let committed = std::fs::read_to_string(&plan).expect("plan");
    std::fs::write(&plan, committed.replace("permits:1.0.0", "permits:9.9.9")).expect("edit");
    let (code, body) = post(
        &d,
        Some(TOKEN),
        ask("a permit portal with a database for team-x"),
    );
    assert_eq!(code, 200, "{body}");
    let branch = "druppie/propose/permit-portal";
    assert_eq!(body["druppie"]["opened"]["branch"], branch, "{body}");
    let repo = s.f.path();
    assert_eq!(
        git(repo, &["rev-parse", &format!("{branch}^")]).trim(),
        main,
        "built on main"
    );
    assert_eq!(
        git(
            repo,
            &["show", &format!("{branch}:spec/plans/permits.yaml")]
        ),
        committed
    );
    assert_eq!(
        git(repo, &["diff", "--name-only", "main", branch]),
        "spec/plans/permit-portal.yaml\n"
    );
    s.verify_at(repo, branch);
    // The checkout itself is as the person left it.
    assert_eq!(
        git(repo, &["symbolic-ref", "--short", "HEAD"]).trim(),
        "main"
    );
    assert_eq!(
        git(repo, &["status", "--porcelain"]),
        " M spec/plans/permits.yaml\n"
    );
    // Asked again, the proposal is there already: said, not duplicated.
    let (code, body) = post(
        &d,
        Some(TOKEN),
        ask("a permit portal with a database for team-x"),
    );
    assert_eq!(code, 200, "{body}");
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert!(
        text.contains("is open already on branch `druppie/propose/permit-portal`"),
        "{text}"
    );
    assert_eq!(
        git(repo, &["rev-list", "--count", &format!("main..{branch}")]).trim(),
        "1"
    );
}

/// On Gitea (Prism serving its API description), the proposal is also a
/// pull request of the spec repo, and the answer carries its link.
#[test]
fn on_gitea_the_answer_carries_the_proposals_pull_request() {
    use crate::prism::{self, Proxy};
    let proxy = Proxy::new(prism::gitea());
    let s = chat_setup();
    let config = std::fs::read_to_string(&s.config).expect("config");
    let plain = format!(
        "[forge]\nkind = \"git\"\nbase = \"{}\"\n",
        s.forge().display()
    );
    assert!(config.contains(&plain), "{config}");
    std::fs::write(
        &s.config,
        config.replace(
            &plain,
            &format!(
                "[forge]\nkind = \"gitea\"\nbase = \"{}\"\nowner = \"platform\"\ntoken_env = \"DRUPPIE_IT_TOKEN\"\n",
                proxy.url
            ),
        ),
    )
    .expect("config");
    let d = Daemon::start_env(
        &s,
        &[],
        &[
            ("DRUPPIE_API_TOKEN", TOKEN),
            ("DRUPPIE_IT_TOKEN", "it-token"),
        ],
    );
    let (code, body) = post(
        &d,
        Some(TOKEN),
        ask("a permit portal with a database for team-x"),
    );
    assert_eq!(code, 200, "{body}\nlogs:\n{}", d.logs().join("\n"));
    let opened = &body["druppie"]["opened"];
    assert_eq!(opened["branch"], "druppie/propose/permit-portal", "{body}");
    let url = opened["url"].as_str().expect("a pull request URL");
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert!(text.contains(&format!("Pull request: {url}\n")), "{text}");
    // (The reconcile's git fetches from the forge go to Prism too, and
    // fail: only the API requests are the contract.)
    let api: Vec<prism::Seen> = proxy
        .seen()
        .into_iter()
        .filter(|r| !r.target.contains(".git/"))
        .collect();
    for r in &api {
        assert!(r.violation.is_none(), "{}: {:?}", r.line(), r.violation);
    }
    let pulls: Vec<prism::Seen> = proxy
        .seen()
        .into_iter()
        .filter(|r| r.line() == "POST /repos/forge/spec/pulls")
        .collect();
    assert_eq!(pulls.len(), 1, "{:?}", proxy.lines());
    let pull = pulls[0].json();
    assert_eq!(
        (&pull["head"], &pull["base"]),
        (&json!("druppie/propose/permit-portal"), &json!("main"))
    );
    assert!(
        pull["body"]
            .as_str()
            .is_some_and(|b| b.contains("proposes plan `permit-portal`")),
        "{pull}"
    );
    // Pushed to the spec repo itself.
    validates(&s, "druppie/propose/permit-portal");
}

/// A secret that reached the catalog (a block's description holding the
/// webhook secret and the API token) never leaves in an answer, whole or
/// streamed; the stream is OpenAI's wire format line by line.
#[test]
fn a_secret_in_the_catalog_never_leaves_in_a_chat_answer_whole_or_streamed() {
    let s = chat_setup();
    let work = s.tmp.path().join("spec-work");
    let block = work.join("bouwblokken/postgresql.md");
    let text = std::fs::read_to_string(&block).expect("block");
    std::fs::write(
        &block,
        text.replace(
            "description: A CloudNativePG cluster.",
            &format!(
                "description: A CloudNativePG cluster ({} {TOKEN}).",
                super::SECRET
            ),
        ),
    )
    .expect("block");
    git(&work, &["commit", "-qam", "a leaky description"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let d = Daemon::start_env(&s, &[], &[("DRUPPIE_API_TOKEN", TOKEN)]);
    let question = "which blocks give me a database?";
    let (code, body) = post(&d, Some(TOKEN), ask(question));
    assert_eq!(code, 200, "{body}");
    let whole = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_owned();
    assert!(
        whole.contains("A CloudNativePG cluster (*** ***)."),
        "{whole}"
    );
    let streamed = reqwest::blocking::Client::new()
        .post(d.url("/v1/chat/completions"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(json!({"model": "druppie", "stream": true, "messages": [{"role": "user", "content": question}]}).to_string())
        .send()
        .expect("POST");
    assert_eq!(streamed.status(), 200);
    assert_eq!(streamed.headers()["content-type"], "text/event-stream");
    let raw = streamed.text().expect("the stream");
    for secret in [super::SECRET, TOKEN] {
        assert!(!raw.contains(secret), "{raw}");
    }
    let data: Vec<&str> = raw
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{raw}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("a JSON chunk"))
        .collect();
    let mut content = String::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert_eq!(c["id"], chunks[0]["id"]);
        let finish = &c["choices"][0]["finish_reason"];
        assert_eq!(finish.is_null(), i + 1 < chunks.len(), "{c}");
        content.push_str(c["choices"][0]["delta"]["content"].as_str().unwrap_or(""));
    }
    assert_eq!(content, whole);
}

/// With `[llm]` configured, the chat drafts with the language model as
/// `druppie propose` does; a model that cannot be reached leaves the
/// rules to draft, the answer says so, and its key appears nowhere.
#[test]
fn with_an_unreachable_language_model_the_rules_draft_and_the_answer_says_so() {
    const KEY: &str = "sk-chat-canary-8Hq2Vv0Lp";
    let s = chat_setup();
    // Port 9 (discard): nothing listens there, and no test's server can
    // be given it (it is below the ephemeral range), so nothing answers.
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    config.push_str(
        "\n[llm]\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"gpt-4o-mini\"\napi_key_env = \"DRUPPIE_IT_LLM_KEY\"\n",
    );
    std::fs::write(&s.config, config).expect("config");
    let d = Daemon::start_env(
        &s,
        &[],
        &[("DRUPPIE_API_TOKEN", TOKEN), ("DRUPPIE_IT_LLM_KEY", KEY)],
    );
    let (code, body) = post(
        &d,
        Some(TOKEN),
        ask("a permit portal with a database for team-x"),
    );
    assert_eq!(code, 200, "{body}");
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert!(
        text.contains("on branch `druppie/propose/permit-portal`"),
        "{text}"
    );
    assert!(
        text.contains("The rule-based planner drafted this instead"),
        "{text}"
    );
    assert!(
        body["druppie"]["planner"]
            .as_str()
            .is_some_and(|p| p.starts_with("rules (")),
        "{body}"
    );
    assert!(!body.to_string().contains(KEY));
    assert!(!d.logs().join("\n").contains(KEY));
    validates(&s, "druppie/propose/permit-portal");
}
