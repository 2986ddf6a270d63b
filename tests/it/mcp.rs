//! The MCP server through a client no one here wrote: the official
//! Python SDK (`mcp` on PyPI) runs `tests/mcp-client.py`, which lists
//! the tools and calls them, against `druppie mcp` over stdio and
//! against `druppie serve`'s Streamable HTTP endpoint `/mcp`.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::serve::{Daemon, serve_setup};
use crate::support::{example_spec, git, repo_root};

/// The tools, by name; every one but `propose` only reads.
const TOOLS: [&str; 9] = [
    "audit_timeline",
    "diff",
    "get_block",
    "list_plans",
    "list_stacks",
    "plan_status",
    "preview_draft",
    "propose",
    "search_blocks",
];

/// Runs the Python client in `cwd` against `target` (`stdio COMMAND
/// ARGS…` or `http URL`) with `calls`; its transcript.
fn client(cwd: &Path, calls: &Value, target: &[&str]) -> Value {
    client_env(cwd, calls, target, &[])
}

/// [`client`] with environment variables (passed on to a stdio server).
fn client_env(cwd: &Path, calls: &Value, target: &[&str], env: &[(&str, &str)]) -> Value {
    let mut child = Command::new("python3")
        .arg(repo_root().join("tests/mcp-client.py"))
        .args(target)
        .current_dir(cwd)
        .env_remove("DRUPPIE_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (pip install mcp)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(calls.to_string().as_bytes())
        .expect("the calls are written");
    drop(stdin);
    let out = child.wait_with_output().expect("the client ends");
    assert!(
        out.status.success(),
        "the MCP client failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client prints JSON")
}

/// `druppie --spec DIR mcp` through the client.
fn over_stdio(spec: &Path, calls: &Value) -> Value {
    over_stdio_env(spec, calls, &[])
}

fn over_stdio_env(spec: &Path, calls: &Value, env: &[(&str, &str)]) -> Value {
    let druppie = env!("CARGO_BIN_EXE_druppie");
    let spec = spec.to_str().expect("utf-8");
    client_env(
        Path::new(spec),
        calls,
        &["stdio", druppie, "--spec", spec, "mcp"],
        env,
    )
}

/// The answer to call `i`: its structured content, after checking it
/// succeeded and that its text is the same JSON.
fn ok(t: &Value, i: usize) -> &Value {
    let call = &t["calls"][i];
    assert_eq!(call["is_error"], false, "call {i}: {call}");
    let text: Value = serde_json::from_str(call["text"].as_str().expect("text")).expect("JSON");
    assert_eq!(
        text, call["structured"],
        "call {i}: text and structured content differ"
    );
    &call["structured"]
}

/// The text of call `i`, which must be a tool error.
fn refused(t: &Value, i: usize) -> String {
    let call = &t["calls"][i];
    assert_eq!(call["is_error"], true, "call {i} should be refused: {call}");
    call["text"].as_str().expect("text").to_owned()
}

fn names(tools: &Value) -> Vec<String> {
    let mut names: Vec<String> = tools
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn druppie_mcp_over_stdio_answers_every_tool_on_the_example() {
    let f = example_spec();
    git(f.path(), &["init", "-q", "-b", "main"]);
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-q", "-m", "example"]);
    let t = over_stdio(
        f.path(),
        &json!([
            ["search_blocks", {"query": "database"}],
            ["get_block", {"id": "postgresql"}],
            ["list_plans", {}],
            ["list_stacks", {}],
            ["plan_status", {"plan": "permits"}],
            ["diff", {"plan": "permits", "env": "dev"}],
            ["audit_timeline", {}],
            ["plan_status", {"plan": "permitz"}],
            ["get_block", {"id": "postgresq"}],
            ["diff", {"env": "staging"}],
            ["audit_timeline", {"plan": "permitz"}],
            ["propose", {"sentence": "a permit portal with a database"}],
        ]),
    );

    assert_eq!(names(&t["tools"]), TOOLS, "{}", t["tools"]);
    for tool in t["tools"].as_array().expect("tools") {
        assert_eq!(tool["read_only"], tool["name"] != "propose", "{tool}");
    }
    assert_eq!(t["server"]["name"], "druppie");
    let instructions = t["server"]["instructions"].as_str().expect("instructions");
    assert!(instructions.contains("read-only"), "{instructions}");

    let search = ok(&t, 0);
    assert_eq!(search["blocks"][0]["id"], "postgresql", "{search}");
    let block = ok(&t, 1);
    assert_eq!(block["type"], "database", "{block}");
    assert!(block["inputs"].as_array().expect("inputs").len() > 1);
    let docs = block["documentation"].as_str().expect("documentation");
    assert!(docs.contains("PostgreSQL"), "{docs}");
    let plans = ok(&t, 2);
    let permits = plans["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .find(|p| p["name"] == "permits")
        .expect("permits is listed");
    assert_eq!(permits["stack"], "webapp-db");
    assert_eq!(permits["environments"], json!(["dev", "test", "prod"]));
    let stacks = ok(&t, 3);
    let webapp_db = stacks["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .find(|s| s["name"] == "webapp-db")
        .expect("webapp-db is listed");
    let blocks: Vec<&Value> = webapp_db["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| &c["block"])
        .collect();
    assert!(blocks.contains(&&json!("postgresql")), "{webapp_db}");
    assert!(blocks.contains(&&json!("webapp-python")), "{webapp_db}");

    // Nothing is live: every environment waits for its first commit.
    let status = ok(&t, 4);
    assert_eq!(status["plans"][0]["plan"], "permits", "{status}");
    let envs: Vec<&Value> = status["plans"][0]["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .map(|e| &e["env"])
        .collect();
    assert_eq!(
        envs,
        [&json!("dev"), &json!("test"), &json!("prod")],
        "{status}"
    );
    assert_eq!(status["plans"][0]["environments"][0]["live"], Value::Null);

    // The dry run of permits in dev: the same report as `druppie diff
    // --plan permits --env dev --json`.
    let diff = ok(&t, 5);
    let run = crate::support::druppie(
        f.path(),
        &["diff", "--plan", "permits", "--env", "dev", "--json"],
    );
    assert_eq!(run.code, 2, "{}", run.transcript());
    let cli: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(diff["changes"], cli["changes"]);
    assert_eq!(diff["summary"], cli["summary"]);
    assert_eq!(diff["execution_plan"], cli["execution_plan"]);
    assert!(
        diff["summary"]["create"].as_u64().unwrap_or(0) > 0,
        "{}",
        diff["summary"]
    );

    let audit = ok(&t, 6);
    assert_eq!(audit["events"], json!([]), "{audit}");

    // Unknown names: a tool error whose text is the diagnostic, with the
    // nearest name.
    let text = refused(&t, 7);
    assert!(text.contains("unknown plan `permitz`"), "{text}");
    assert!(text.contains("did you mean `permits`?"), "{text}");
    let text = refused(&t, 8);
    assert!(text.contains("unknown block `postgresq`"), "{text}");
    assert!(text.contains("did you mean `postgresql`?"), "{text}");
    let text = refused(&t, 9);
    assert!(text.contains("unknown environment `staging`"), "{text}");
    let text = refused(&t, 10);
    assert!(text.contains("unknown plan `permitz`"), "{text}");
    assert!(text.contains("did you mean `permits`?"), "{text}");
    // Propose is off by default (and `sentence` is no argument of it).
    let call = &t["calls"][11];
    assert!(
        call["is_error"] == true || call.get("protocol_error").is_some(),
        "{call}"
    );
}

#[test]
fn an_assistant_previews_and_proposes_a_plan_through_mcp() {
    let f = example_spec();
    let tmp = tempfile::tempdir().expect("tmp");
    let config = crate::support::on_an_empty_forge(tmp.path(), &f);
    let base = git(f.path(), &["symbolic-ref", "--short", "HEAD"]);
    let read_only = over_stdio_config(
        f.path(),
        &config,
        &json!([["propose", {"request": "a permit portal with a database", "owner": "team-x"}]]),
    );
    let text = refused(&read_only, 0);
    assert!(text.contains("propose is off"), "{text}");
    let mut toml = std::fs::read_to_string(&config).expect("config");
    toml.push_str("\n[mcp]\nallow_propose = true\n");
    std::fs::write(&config, toml).expect("config");
    let draft = json!({"plan": {
        "name": "handbook", "stack": "static-site", "owner": "team-docs",
        "intent": "the team handbook", "environments": ["dev"],
        "inputs": {"site": {"image": "registry.example.org/team-docs/handbook:1.0.0"}}}});
    let t = over_stdio_config(
        f.path(),
        &config,
        &json!([
            ["preview_draft", {"request": "a permit portal with a database", "owner": "team-x"}],
            ["preview_draft", {"draft": draft}],
            ["preview_draft", {"draft": {"plan": {"name": "../../etc", "stack": "static-site",
                "owner": "team-x", "intent": "x", "environments": ["dev"]}}}],
            ["preview_draft", {"draft": {"plan": {"name": "x"}, "extra": 1}}],
            ["propose", {"request": "a permit portal with a database", "owner": "team-x",
                "environments": ["dev"]}],
            ["preview_draft", {"request": "which blocks give me a database?"}],
            // A draft is a new plan: it cannot rewrite an existing one
            // (its owner, environments, inputs) nor name a non-team owner.
            ["propose", {"draft": {"plan": {"name": "permits", "stack": "static-site",
                "owner": "team-evil", "intent": "take over", "environments": ["dev"],
                "inputs": {"site": {"image": "registry.example.org/evil/x:1.0.0"}}}}}],
            ["preview_draft", {"draft": {"plan": {"name": "handbook2", "stack": "static-site",
                "owner": "team-x\nstack: webapp-db", "intent": "x", "environments": ["dev"],
                "inputs": {"site": {"image": "registry.example.org/x/y:1.0.0"}}}}}],
        ]),
    );
    let takeover = ok(&t, 6);
    assert_eq!(takeover["opened"], Value::Null, "{takeover}");
    assert_eq!(takeover["files"], json!([]), "{takeover}");
    assert!(
        takeover["questions"]
            .to_string()
            .contains("A plan `permits` exists already"),
        "{takeover}"
    );
    let owner = ok(&t, 7);
    assert_eq!(owner["files"], json!([]), "{owner}");
    assert!(
        owner["questions"]
            .to_string()
            .contains("is not a team name"),
        "{owner}"
    );
    let preview = ok(&t, 0);
    assert_eq!(preview["answer"], "proposal", "{preview}");
    assert_eq!(preview["valid"], true, "{preview}");
    assert_eq!(preview["draft"]["plan"]["stack"], "webapp-db");
    assert_eq!(preview["opened"], Value::Null);
    let client = ok(&t, 1);
    assert_eq!(client["planner"], "mcp client");
    assert_eq!(client["valid"], true, "{client}");
    assert!(
        client["summary"]["create"].as_u64().unwrap_or(0) > 0,
        "{client}"
    );
    // A name that is a path never becomes a file: a question instead.
    let hostile = ok(&t, 2);
    assert_eq!(hostile["files"], json!([]), "{hostile}");
    assert!(
        hostile["questions"].to_string().contains("plan name"),
        "{hostile}"
    );
    let text = refused(&t, 3);
    assert!(text.contains("draft:"), "{text}");
    let proposed = ok(&t, 4);
    assert_eq!(
        proposed["opened"]["branch"], "druppie/propose/permit-portal",
        "{proposed}"
    );
    let catalog = ok(&t, 5);
    assert_eq!(catalog["blocks"][0]["id"], "postgresql", "{catalog}");
    // The proposal is a branch of the spec repo, on its base, holding
    // only the plan.
    let changed = git(
        f.path(),
        &[
            "diff",
            "--name-only",
            &format!("{}...druppie/propose/permit-portal", base.trim()),
        ],
    );
    assert_eq!(changed.trim(), "spec/plans/permit-portal.yaml");
    // Previews wrote nothing.
    let branches = git(f.path(), &["branch", "--list", "druppie/*"]);
    assert_eq!(branches.trim(), "druppie/propose/permit-portal");
}

/// `druppie --config CONFIG --spec DIR mcp` through the client.
fn over_stdio_config(spec: &Path, config: &Path, calls: &Value) -> Value {
    let druppie = env!("CARGO_BIN_EXE_druppie");
    let spec = spec.to_str().expect("utf-8");
    let config = config.to_str().expect("utf-8");
    client(
        Path::new(spec),
        calls,
        &["stdio", druppie, "--config", config, "--spec", spec, "mcp"],
    )
}

#[test]
fn hostile_mcp_arguments_are_refused_and_read_no_file() {
    let f = example_spec();
    let huge = "database ".repeat(20_000);
    let t = over_stdio(
        f.path(),
        &json!([
            ["get_block", {"id": "../../etc/passwd"}],
            ["get_block", {"id": "/etc/passwd"}],
            ["get_block", {"id": "postgresql/../../../../etc/passwd"}],
            ["search_blocks", {"query": huge}],
            ["plan_status", {"plan": "../../etc"}],
            ["diff", {"env": "dev; rm -rf /"}],
            ["audit_timeline", {"since": "9".repeat(100_000)}],
            ["audit_timeline", {"limit": 1_000_000_000u64}],
            ["get_block", {"id": "postgresql", "path": "/etc/passwd"}],
            ["get_block", {"id": 5}],
            ["search_blocks", {"query": "database"}],
        ]),
    );
    for i in 0..10 {
        let call = &t["calls"][i];
        let text = call["text"]
            .as_str()
            .or(call["protocol_error"].as_str())
            .unwrap_or_default();
        assert!(
            call["is_error"] == true || call.get("protocol_error").is_some(),
            "call {i} should be refused: {call}"
        );
        assert!(!text.contains("root:"), "call {i} read a file: {text}");
        assert!(
            text.len() < 2_000,
            "call {i} echoes its input: {} bytes",
            text.len()
        );
    }
    assert!(refused(&t, 0).contains("`../../etc/passwd` is not a block id"));
    assert!(refused(&t, 3).contains("at most 1000"));
    assert!(refused(&t, 4).contains("is not a plan name"));
    assert!(refused(&t, 7).contains("limit"));
    // The server still answers.
    assert_eq!(ok(&t, 10)["blocks"][0]["id"], "postgresql");
}

#[test]
fn a_secret_the_spec_names_never_reaches_an_mcp_answer() {
    const CANARY: &str = "canary-f0rge-t0ken-5e1a";
    let f = example_spec().edit(
        "bouwblokken/postgresql.md",
        "with generated credentials",
        &format!("with generated credentials ({CANARY})"),
    );
    let t = over_stdio_env(
        f.path(),
        &json!([
            ["search_blocks", {"query": "database"}],
            ["get_block", {"id": "postgresql"}],
            ["get_block", {"id": "postgresq"}],
        ]),
        &[("DRUPPIE_FORGE_TOKEN", CANARY)],
    );
    let transcript = t["calls"].to_string();
    assert!(!transcript.contains(CANARY), "{transcript}");
    let block = ok(&t, 1);
    assert!(
        block["description"]
            .as_str()
            .is_some_and(|d| d.contains("generated credentials (***)")),
        "{block}"
    );
}

#[test]
fn the_daemon_serves_the_tools_at_mcp_from_its_last_reconcile() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let t = client(
        s.tmp.path(),
        &json!([
            ["search_blocks", {"query": "database"}],
            ["get_block", {"id": "postgresql"}],
            ["list_plans", {}],
            ["list_stacks", {}],
            ["plan_status", {"plan": "permits"}],
            ["diff", {}],
            ["audit_timeline", {"plan": "permits", "env": "dev"}],
            ["plan_status", {"plan": "permitz"}],
            ["diff", {"plan": "permits"}],
            ["get_block", {"id": "../../etc/passwd"}],
        ]),
        &["http", &d.url("/mcp")],
    );
    assert_eq!(names(&t["tools"]), TOOLS, "{}", t["tools"]);

    let blocks = d.json("/api/v1/blocks?q=database");
    assert_eq!(ok(&t, 0)["blocks"], blocks);
    assert!(
        ok(&t, 1)["documentation"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert_eq!(ok(&t, 2)["plans"], d.json("/api/v1/plans"));
    assert!(!ok(&t, 3)["stacks"].as_array().expect("stacks").is_empty());
    // The plan's freight, as `/api/v1/plans/permits/status` serves it:
    // live in dev, applied by druppie.
    let status = ok(&t, 4);
    assert_eq!(status["plans"][0], d.json("/api/v1/plans/permits/status"));
    assert_eq!(
        status["plans"][0]["environments"][0]["live"]["went_live"]["event"], "applied",
        "{status}"
    );
    assert_eq!(ok(&t, 5), &d.json("/api/v1/diff"));
    // The trail the daemon pushed: permits applied to dev.
    let audit = ok(&t, 6);
    let events = audit["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "applied" && e["env"] == "dev"),
        "{audit}"
    );
    assert!(events.iter().all(|e| e["env"] == "dev"), "{audit}");

    let text = refused(&t, 7);
    assert!(text.contains("did you mean `permits`?"), "{text}");
    let text = refused(&t, 8);
    assert!(text.contains("without `plan` and `env`"), "{text}");
    assert!(refused(&t, 9).contains("is not a block id"));
}

#[test]
fn a_browser_cannot_reach_mcp_on_the_daemon() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let http = reqwest::blocking::Client::new();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "page", "version": "1"}}
    });
    let post = |origin: Option<&str>| {
        let mut r = http
            .post(d.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(initialize.to_string());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send().expect("POST /mcp").status().as_u16()
    };
    assert_eq!(post(None), 200);
    assert_eq!(post(Some("http://attacker.example")), 403);
}

#[test]
fn an_assistant_proposes_through_the_daemons_mcp_with_its_api_token() {
    const TOKEN: &str = "it-mcp-token-7c2b";
    let s = crate::serve::chat::chat_setup();
    let mut config = std::fs::read_to_string(&s.config).expect("config");
    config.push_str("\n[mcp]\nallow_propose = true\n");
    std::fs::write(&s.config, config).expect("config");
    let d = Daemon::start_env(&s, &[], &[("DRUPPIE_API_TOKEN", TOKEN)]);
    let request = json!({"request": "a permit portal with a database", "owner": "team-x",
        "environments": ["dev"]});
    // Without the token: the reading tools answer, propose does not.
    let t = client(
        s.tmp.path(),
        &json!([["preview_draft", request], ["propose", request]]),
        &["http", &d.url("/mcp")],
    );
    let preview = ok(&t, 0);
    assert_eq!(preview["valid"], true, "{preview}");
    assert_eq!(preview["draft"]["plan"]["stack"], "webapp-db");
    assert!(refused(&t, 1).contains("needs the daemon's API token"));
    let spec = s.forge().join("spec.git");
    let branches = git(&spec, &["branch", "--list", "druppie/*"]);
    assert_eq!(branches.trim(), "", "nothing was pushed");
    // With it: the proposal is a branch of the spec repo on the forge.
    let t = client_env(
        s.tmp.path(),
        &json!([["propose", request]]),
        &["http", &d.url("/mcp")],
        &[("MCP_BEARER", TOKEN)],
    );
    let proposed = ok(&t, 0);
    assert_eq!(
        proposed["opened"]["branch"], "druppie/propose/permit-portal",
        "{proposed}"
    );
    let subject = git(
        &spec,
        &["log", "-1", "--format=%s", "druppie/propose/permit-portal"],
    );
    assert_eq!(subject.trim(), "plan: permit-portal (webapp-db)");
    let changed = git(
        &spec,
        &[
            "diff",
            "--name-only",
            "main...druppie/propose/permit-portal",
        ],
    );
    assert_eq!(changed.trim(), "spec/plans/permit-portal.yaml");
}

#[test]
fn the_mcp_server_runs_without_transparent_huge_pages_as_the_daemon_does() {
    let f = example_spec();
    let mut child = Command::new(env!("CARGO_BIN_EXE_druppie"))
        .args(["--spec", f.path().to_str().expect("utf-8"), "mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start druppie mcp");
    let status = format!("/proc/{}/status", child.id());
    // It turns them off as it starts; it then waits on stdin.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let thp = loop {
        let read = std::fs::read_to_string(&status).expect("its status");
        let line = read.lines().find(|l| l.starts_with("THP_enabled:"));
        match line {
            Some(l) if l.ends_with('0') => break l.to_owned(),
            _ if std::time::Instant::now() > deadline => break line.unwrap_or("").to_owned(),
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    // Closing stdin before any message ends it.
    drop(child.stdin.take());
    child.wait().expect("it ends when stdin closes");
    assert!(thp.ends_with('0'), "{thp:?}");
}
