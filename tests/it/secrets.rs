//! Secrets never leave: a forge whose error answers echo the token (as
//! is, percent-encoded, in the Basic header git would send, in base64)
//! makes `druppie apply` fail and the daemon's reconcile fail, and the
//! token appears in none of what they print, log or serve.

use std::io::{BufRead as _, BufReader};
use std::process::Command;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::apply::setup_gitea;
use crate::prism::{Act, Proxy};
use crate::serve::{Daemon, push_payload};

/// A token with characters that encode differently in each form.
const TOKEN: &str = "tok/en+with=odd&chars?0123456789";

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every form of the token the forge echoes, and a piece of each that
/// only the token determines.
fn forms() -> Vec<String> {
    let basic = STANDARD.encode(format!("druppie:{TOKEN}"));
    let plain = URL_SAFE_NO_PAD.encode(TOKEN);
    vec![
        TOKEN.to_owned(),
        percent(TOKEN),
        percent(TOKEN).to_lowercase(),
        basic[12..basic.len() - 4].to_owned(),
        plain[4..plain.len() - 4].to_owned(),
    ]
}

/// An error answer that echoes the token in every form.
fn echo() -> &'static str {
    let message = format!(
        "bad credentials {TOKEN}; sent as Basic {}; in a URL as ?access_token={}; lower {}; base64 {}",
        STANDARD.encode(format!("druppie:{TOKEN}")),
        percent(TOKEN),
        percent(TOKEN).to_lowercase(),
        URL_SAFE_NO_PAD.encode(TOKEN),
    );
    Box::leak(
        serde_json::json!({ "message": message })
            .to_string()
            .into_boxed_str(),
    )
}

fn assert_clean(what: &str, text: &str) {
    for form in forms() {
        assert!(!text.contains(&form), "{what} holds {form:?}:\n{text}");
    }
}

/// Every forge request the runs make is answered with the echo.
fn echoing_forge(proxy: &Proxy) {
    for line in [
        "GET /repos/platform/infra",
        "GET /repos/platform/permits-app",
        "GET /repos/platform/infra/pulls",
        "POST /repos/platform/infra/pulls",
    ] {
        proxy.on(line, 10_000, Act::Reply(401, vec![], echo()));
    }
}

/// The Gitea setup with the token in `DRUPPIE_LEAK_TOKEN`.
fn setup() -> (crate::apply::Setup, Proxy) {
    let (s, proxy) = setup_gitea("platform-team");
    let config = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        config.replace("DRUPPIE_IT_TOKEN", "DRUPPIE_LEAK_TOKEN"),
    )
    .unwrap();
    echoing_forge(&proxy);
    (s, proxy)
}

#[test]
fn a_forge_echoing_the_token_never_gets_it_into_applys_output() {
    let (s, proxy) = setup();
    let out = Command::new(env!("CARGO_BIN_EXE_druppie"))
        .args(["--spec", s.f.path().to_str().unwrap()])
        .args(["--config", s.config.to_str().unwrap(), "apply", "--yes"])
        .current_dir(s.f.path())
        .env("DRUPPIE_LEAK_TOKEN", TOKEN)
        .env("DRUPPIE_LOG", "debug")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    // The forge was asked, and said what it says, minus the token.
    assert!(
        stderr.contains("401 Unauthorized (the token is missing, wrong or expired): bad credentials ***; sent as Basic "),
        "{stderr}"
    );
    assert!(
        stderr.contains("in a URL as ?access_token=***; lower ***; base64 "),
        "{stderr}"
    );
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &stderr);
    // The token did reach the forge: it is scrubbed, not missing.
    let sent = proxy.seen();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|r| r.header("authorization") == Some(&format!("token {TOKEN}")))
    );
}

#[test]
fn a_forge_echoing_the_token_never_gets_it_into_the_daemons_logs_status_or_events() {
    let (s, _proxy) = setup();
    let mut config = std::fs::read_to_string(&s.config).unwrap();
    config.push_str(
        "\n[server]\nlisten = \"127.0.0.1:0\"\npoll_interval = \"1h\"\nwebhook_secret_env = \"DRUPPIE_IT_WEBHOOK_SECRET\"\n",
    );
    std::fs::write(&s.config, config).unwrap();
    let spec = s.f.path().to_str().unwrap().to_owned();
    let d = Daemon::start_env(
        &s,
        &["--spec", &spec],
        &[("DRUPPIE_LEAK_TOKEN", TOKEN), ("DRUPPIE_LOG", "debug")],
    );
    // The event stream, read until the daemon stops.
    let events = Arc::new(Mutex::new(String::new()));
    let reader = {
        let response = d.subscribe();
        let kept = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(response).lines().map_while(Result::ok) {
                let mut all = kept.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        })
    };
    let before = d.reconciles();
    assert_eq!(
        d.hook("push", "leak-1", &push_payload("spec", "x"), None),
        202
    );
    d.wait("another reconcile", |d| d.reconciles() > before);
    let (code, status) = d.get("/api/v1/status");
    assert_eq!(code, 200);
    let parsed: serde_json::Value = serde_json::from_str(&status).unwrap();
    let last = parsed["last_error"].as_str().unwrap_or_default();
    assert!(last.contains("bad credentials ***"), "{status}");
    assert_clean("/api/v1/status", &status);
    for path in ["/metrics", "/api/v1/diff", "/api/v1/plans", "/api/v1/audit"] {
        assert_clean(path, &d.get(path).1);
    }
    let logs = d.logs().join("\n");
    assert!(logs.contains("bad credentials ***"), "{logs}");
    assert!(d.terminate().success());
    reader.join().unwrap();
    let events = events.lock().unwrap().clone();
    assert!(events.contains("bad credentials ***"), "{events}");
    assert_clean("/api/v1/events", &events);
    assert_clean("the log", &logs);
}

/// A spec that names the webhook secret where validation quotes it back
/// (an unknown stack): the message's source is the spec, not the forge.
fn spec_quoting(secret: &str, s: &crate::apply::Setup) {
    let plan = s.f.path().join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(
        &plan,
        text.replace("stack: webapp-db", &format!("stack: \"{secret}\"")),
    )
    .unwrap();
    crate::support::git(
        s.f.path(),
        &["commit", "-qam", "a stack named like a secret"],
    );
}

#[test]
fn the_cli_scrubs_a_secret_whatever_the_source_of_the_message() {
    let s = crate::apply::setup("platform-team");
    spec_quoting("hook-secret-value-42", &s);
    let out = Command::new(env!("CARGO_BIN_EXE_druppie"))
        .args(["--spec", s.f.path().to_str().unwrap()])
        .args(["--config", s.config.to_str().unwrap(), "validate"])
        .current_dir(s.f.path())
        .env("DRUPPIE_WEBHOOK_SECRET", "hook-secret-value-42")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unknown stack `***`"), "{stderr}");
    assert!(!stderr.contains("hook-secret-value-42"), "{stderr}");
}

#[test]
fn the_daemon_scrubs_its_status_and_logs_whatever_the_source_of_the_message() {
    let s = crate::apply::setup("platform-team");
    spec_quoting(crate::serve::SECRET, &s);
    let mut config = std::fs::read_to_string(&s.config).unwrap();
    config.push_str(
        "\n[server]\nlisten = \"127.0.0.1:0\"\npoll_interval = \"1h\"\nwebhook_secret_env = \"DRUPPIE_IT_WEBHOOK_SECRET\"\n",
    );
    std::fs::write(&s.config, config).unwrap();
    let spec = s.f.path().to_str().unwrap().to_owned();
    let d = Daemon::start_env(&s, &["--spec", &spec], &[]);
    let (_, status) = d.get("/api/v1/status");
    assert!(status.contains("unknown stack `***`"), "{status}");
    assert!(!status.contains(crate::serve::SECRET), "{status}");
    let logs = d.logs().join("\n");
    assert!(logs.contains("unknown stack `***`"), "{logs}");
    assert!(!logs.contains(crate::serve::SECRET), "{logs}");
    assert!(d.terminate().success());
}
