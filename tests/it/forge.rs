//! Contract tests: the Gitea and GitHub forges' requests, checked by Prism
//! against Gitea's own API description and GitHub's official OpenAPI
//! description, and how the forges behave on faults and refusals.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use druppie::forge::{Dialect, Forge, Proposal, PullState, Rest};
use druppie::secret::{Scrubber, Secret};
use serde_json::{Value, json};

use crate::prism::{self, Act, Proxy};

pub const TOKEN: &str = "s3cret-token-value";

thread_local! {
    /// The waits a forge asked for on this test's thread.
    static WAITS: RefCell<Vec<Duration>> = const { RefCell::new(Vec::new()) };
}

fn record_wait(d: Duration) {
    WAITS.with(|w| w.borrow_mut().push(d));
}

fn waits() -> Vec<Duration> {
    WAITS.with(|w| w.borrow().clone())
}

fn forge(dialect: Dialect, proxy: &Proxy) -> Rest {
    Rest::new(
        dialect,
        &proxy.url,
        "https://git.example.org",
        "platform",
        Some(Secret::new(TOKEN)),
        Scrubber::new(),
    )
    .unwrap()
    .with_wait(record_wait)
}

pub fn gitea() -> (Proxy, Rest) {
    let proxy = Proxy::new(prism::gitea());
    let forge = forge(Dialect::Gitea, &proxy);
    (proxy, forge)
}

pub fn github() -> (Proxy, Rest) {
    let proxy = Proxy::new(prism::github());
    let forge = forge(Dialect::GitHub, &proxy);
    (proxy, forge)
}

const PROPOSAL: Proposal = Proposal {
    head: "druppie/prod/permits",
    base: "main",
    title: "druppie: permits in prod",
    body: "druppie proposes these changes; merging this branch approves them.",
    draft: false,
};

/// Makes the first listed pull request the one druppie proposed.
fn ours(state: &'static str, merged: bool) -> Act {
    Act::Patch(Arc::new(move |v: &mut Value| {
        let pr = if v.is_array() { &mut v[0] } else { v };
        pr["head"]["ref"] = json!(PROPOSAL.head);
        pr["base"]["ref"] = json!(PROPOSAL.base);
        pr["state"] = json!(state);
        pr["number"] = json!(7);
        if pr.get("merged").is_some() {
            pr["merged"] = json!(merged);
        }
        pr["merged_at"] = if merged {
            json!("2026-11-21T10:00:00Z")
        } else {
            Value::Null
        };
    }))
}

#[test]
fn gitea_requests_match_giteas_api_description() {
    let (proxy, forge) = gitea();
    assert!(forge.exists("infra").unwrap());
    // A repo the forge does not have yet is created in the organisation.
    proxy.on(
        "GET /repos/platform/permits-app",
        1,
        Act::Reply(404, vec![], r#"{"message":"not found"}"#),
    );
    assert!(forge.ensure_repo("permits-app", "main").unwrap());
    let pulls = forge.pulls().expect("gitea has pull requests");
    let pull = pulls.propose("infra", &PROPOSAL).unwrap();
    assert!(pull.number != 0);
    pulls
        .comment(
            "infra",
            pull.number,
            "<!-- druppie:verdict -->",
            "approved: merged by alice",
        )
        .unwrap();
    proxy.assert_no_violations();
    assert_eq!(
        proxy.lines(),
        [
            "GET /repos/platform/infra",
            "GET /repos/platform/permits-app",
            "POST /orgs/platform/repos",
            "GET /repos/platform/infra/pulls",
            "POST /repos/platform/infra/pulls",
            "GET /repos/platform/infra/issues/-9007199254740991/comments",
            "POST /repos/platform/infra/issues/-9007199254740991/comments",
        ]
    );
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .all(|s| s.header("authorization") == Some(&format!("token {TOKEN}")))
    );
    assert_eq!(
        seen[2].json(),
        json!({"name": "permits-app", "private": true, "auto_init": false, "default_branch": "main"})
    );
    assert_eq!(
        seen[4].json(),
        json!({"head": PROPOSAL.head, "base": "main", "title": PROPOSAL.title, "body": PROPOSAL.body})
    );
    let comment = seen[6].json()["body"].as_str().unwrap().to_owned();
    assert!(
        comment.starts_with("approved: merged by alice"),
        "{comment}"
    );
    assert!(comment.contains("<!-- druppie:verdict -->"), "{comment}");
}

#[test]
fn gitea_updates_the_open_pull_request_instead_of_opening_a_second() {
    let (proxy, forge) = gitea();
    proxy.on("GET /repos/platform/infra/pulls", 1, ours("open", false));
    forge.pulls().unwrap().propose("infra", &PROPOSAL).unwrap();
    proxy.assert_no_violations();
    assert_eq!(
        proxy.lines(),
        [
            "GET /repos/platform/infra/pulls",
            "PATCH /repos/platform/infra/pulls/7"
        ]
    );
    assert_eq!(
        proxy.seen()[1].json(),
        json!({"title": PROPOSAL.title, "body": PROPOSAL.body})
    );
}

#[test]
fn gitea_adopts_a_pull_request_that_already_exists() {
    // The create answers 409 (opened meanwhile, or by a run that stopped
    // before it said so); the second look finds it.
    let (proxy, forge) = gitea();
    proxy.on("POST /repos/platform/infra/pulls", 1, Act::Prefer(409));
    let list = "GET /repos/platform/infra/pulls";
    proxy.on(
        list,
        1,
        Act::Patch(Arc::new(|v: &mut Value| *v = json!([]))),
    );
    proxy.on(list, 1, ours("open", false));
    forge.pulls().unwrap().propose("infra", &PROPOSAL).unwrap();
    proxy.assert_no_violations();
    assert_eq!(
        proxy.lines(),
        [
            list,
            "POST /repos/platform/infra/pulls",
            list,
            "PATCH /repos/platform/infra/pulls/7"
        ]
    );
    assert_eq!(proxy.seen()[1].status, 409);
}

#[test]
fn a_merged_gitea_pull_request_names_who_merged_it() {
    let (proxy, forge) = gitea();
    proxy.on("GET /repos/platform/infra/pulls", 1, ours("closed", true));
    let pull = forge
        .pulls()
        .unwrap()
        .find("infra", PROPOSAL.head)
        .unwrap()
        .expect("found by its head branch");
    proxy.assert_no_violations();
    assert_eq!(pull.state, PullState::Merged);
    assert_eq!(pull.merged_by.as_deref(), Some("string"));
    assert!(pull.merge_commit.is_some());
    let q = &proxy.seen()[0].target;
    assert!(q.contains("state=all") && q.contains("limit=50"), "{q}");
}

#[test]
fn a_request_the_description_does_not_allow_is_caught() {
    // What the contract tests rest on: Prism refuses a malformed request.
    let proxy = Proxy::new(prism::gitea());
    let resp = prism::client()
        .post(format!("{}/repos/platform/infra/pulls", proxy.url))
        .header("authorization", format!("token {TOKEN}"))
        .json(&json!({"head": 42, "labels": "x"}))
        .send()
        .unwrap();
    assert!(resp.status().is_client_error());
    let seen = proxy.seen();
    let violation = seen[0].violation.as_deref().unwrap_or_default();
    assert!(violation.contains("labels"), "{violation}");
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let (proxy, forge) = gitea();
    proxy.on(
        "GET /repos/platform/infra",
        2,
        Act::Reply(503, vec![], r#"{"message":"unavailable"}"#),
    );
    assert!(forge.exists("infra").unwrap());
    assert_eq!(proxy.lines().len(), 3, "two failures, then the answer");
    let w = waits();
    assert_eq!(w.len(), 2);
    assert!(
        w.iter()
            .all(|d| *d > Duration::ZERO && *d <= Duration::from_secs(60))
    );
}

#[test]
fn rate_limits_are_waited_out_as_the_forge_says() {
    let (proxy, forge) = github();
    proxy.on(
        "GET /repos/platform/infra",
        1,
        Act::Reply(429, vec![("retry-after", "3".to_owned())], "{}"),
    );
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 20;
    proxy.on(
        "GET /repos/platform/infra",
        1,
        Act::Reply(
            403,
            vec![
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset.to_string()),
            ],
            r#"{"message":"API rate limit exceeded"}"#,
        ),
    );
    assert!(forge.exists("infra").unwrap());
    let w = waits();
    assert_eq!(w[0], Duration::from_secs(3));
    assert!(
        w[1] >= Duration::from_secs(18) && w[1] <= Duration::from_secs(20),
        "{w:?}"
    );
    proxy.assert_no_violations();
}

#[test]
fn a_wrong_token_is_one_clear_message_without_the_token_and_no_retry() {
    let (proxy, forge) = gitea();
    proxy.on(
        "GET /repos/platform/infra",
        1,
        Act::Reply(
            401,
            vec![],
            r#"{"message":"user does not exist [uid: 0, name: ]"}"#,
        ),
    );
    let err = forge.exists("infra").unwrap_err().to_string();
    assert_eq!(
        err,
        "infra: GET /repos/platform/infra: 401 Unauthorized (the token is missing, wrong or expired): user does not exist [uid: 0, name: ]"
    );
    assert!(!err.contains(TOKEN));
    assert_eq!(proxy.lines().len(), 1, "a refusal is not retried");
    assert!(waits().is_empty());
}

#[test]
fn an_unreachable_forge_is_reported_after_bounded_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let forge = Rest::new(
        Dialect::Gitea,
        &format!("http://127.0.0.1:{port}"),
        "https://git.example.org",
        "platform",
        Some(Secret::new(TOKEN)),
        Scrubber::new(),
    )
    .unwrap()
    .with_wait(record_wait);
    let err = forge.exists("infra").unwrap_err().to_string();
    assert!(
        err.starts_with("infra: GET /repos/platform/infra: the forge cannot be reached: "),
        "{err}"
    );
    assert!(err.ends_with("(after 5 attempts)"), "{err}");
    assert_eq!(waits().len(), 4);
}

#[test]
fn github_requests_match_githubs_openapi_description() {
    let (proxy, forge) = github();
    assert!(forge.exists("infra").unwrap());
    proxy.on(
        "GET /repos/platform/permits-app",
        1,
        Act::Reply(404, vec![], r#"{"message":"Not Found"}"#),
    );
    assert!(forge.ensure_repo("permits-app", "main").unwrap());
    let pulls = forge.pulls().expect("github has pull requests");
    let pull = pulls.propose("infra", &PROPOSAL).unwrap();
    pulls
        .comment("infra", pull.number, "<!-- druppie:verdict -->", "approved")
        .unwrap();
    proxy.on("GET /repos/platform/infra/pulls", 1, ours("closed", true));
    proxy.on("GET /repos/platform/infra/pulls/7", 1, ours("closed", true));
    let merged = pulls.find("infra", PROPOSAL.head).unwrap().unwrap();
    let reviewers = pulls.approvals("infra", merged.number).unwrap();
    proxy.assert_no_violations();
    let n = pull.number;
    assert_eq!(
        proxy.lines(),
        [
            "GET /repos/platform/infra".to_owned(),
            "GET /repos/platform/permits-app".to_owned(),
            "POST /orgs/platform/repos".to_owned(),
            "GET /repos/platform/infra/pulls".to_owned(),
            "POST /repos/platform/infra/pulls".to_owned(),
            format!("GET /repos/platform/infra/issues/{n}/comments"),
            format!("POST /repos/platform/infra/issues/{n}/comments"),
            "GET /repos/platform/infra/pulls".to_owned(),
            // The list leaves out who merged; the pull request has it.
            "GET /repos/platform/infra/pulls/7".to_owned(),
            // The head commit an approving review must have approved.
            "GET /repos/platform/infra/pulls/7".to_owned(),
            "GET /repos/platform/infra/pulls/7/reviews".to_owned(),
        ]
    );
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .all(|s| s.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    assert!(
        seen[3]
            .target
            .contains("head=platform%3Adruppie%2Fprod%2Fpermits"),
        "{}",
        seen[3].target
    );
    assert_eq!(merged.state, PullState::Merged);
    assert!(merged.merged_by.is_some() && merged.merge_commit.is_some());
    assert!(
        reviewers.iter().all(|r| !r.is_empty()),
        "logins of approving reviews: {reviewers:?}"
    );
}

#[test]
fn github_adopts_the_pull_request_its_422_says_exists() {
    let (proxy, forge) = github();
    let list = "GET /repos/platform/infra/pulls";
    proxy.on(
        list,
        1,
        Act::Patch(Arc::new(|v: &mut Value| *v = json!([]))),
    );
    proxy.on("POST /repos/platform/infra/pulls", 1, Act::Prefer(422));
    proxy.on(list, 1, ours("open", false));
    forge.pulls().unwrap().propose("infra", &PROPOSAL).unwrap();
    proxy.assert_no_violations();
    assert_eq!(
        proxy.lines(),
        [
            list,
            "POST /repos/platform/infra/pulls",
            list,
            "PATCH /repos/platform/infra/pulls/7"
        ]
    );
}

#[test]
fn git_gets_the_token_from_its_environment_never_from_the_url() {
    let (_proxy, forge) = gitea();
    let url = forge.url("infra");
    assert_eq!(url, "https://git.example.org/platform/infra.git");
    let env = forge.git_env();
    let token: Vec<&(String, String)> = env.iter().filter(|(_, v)| v.contains(TOKEN)).collect();
    assert_eq!(token.len(), 1, "the token is in one variable only");
    assert_eq!(token[0].0, "DRUPPIE_GIT_TOKEN");
    // git runs the helper and gets the token back.
    let out = std::process::Command::new("git")
        .args(["credential", "fill"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"protocol=https\nhost=git.example.org\n\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("password={TOKEN}")), "{said}");
}

#[test]
fn a_hostile_repo_name_stays_inside_its_path_segment_on_gitea() {
    let (proxy, forge) = gitea();
    // `?` and `#` would start a query and a fragment; encoded, they are
    // part of the repo's name, and Prism matches /repos/{owner}/{repo}.
    assert!(forge.exists("a?b#c").unwrap());
    forge
        .pulls()
        .unwrap()
        .comment("x#y", 7, "<!-- m -->", "hello")
        .unwrap();
    proxy.assert_no_violations();
    assert_eq!(
        proxy.lines(),
        [
            "GET /repos/platform/a%3Fb%23c",
            "GET /repos/platform/x%23y/issues/7/comments",
            "POST /repos/platform/x%23y/issues/7/comments",
        ]
    );
    assert_eq!(proxy.seen()[0].target, "/repos/platform/a%3Fb%23c");
}

#[test]
fn a_repo_name_that_would_climb_out_is_refused_before_any_request() {
    for (dialect, proxy) in [
        (Dialect::Gitea, Proxy::new(prism::gitea())),
        (Dialect::GitHub, Proxy::new(prism::github())),
    ] {
        let forge = forge(dialect, &proxy);
        for name in ["../../admin/users/x", "..", "../x", "a/b/c", "platform/"] {
            let err = forge.exists(name).unwrap_err();
            assert!(!err.is_transient(), "{name}: {err}");
            assert!(err.to_string().starts_with(&format!("{name}: ")), "{err}");
            let err = forge.ensure_repo(name, "main").unwrap_err();
            assert!(!err.is_transient(), "{name}: {err}");
            let pulls = forge.pulls().unwrap();
            assert!(pulls.propose(name, &PROPOSAL).is_err());
            assert!(pulls.find(name, "druppie/x").is_err());
            assert!(pulls.comment(name, 1, "<!-- m -->", "x").is_err());
        }
        assert_eq!(
            proxy.lines(),
            Vec::<String>::new(),
            "no request for a name that cannot be a segment"
        );
    }
}

#[test]
fn a_hostile_pull_request_head_stays_inside_its_query_value_on_github() {
    let (proxy, forge) = github();
    let found = forge
        .pulls()
        .unwrap()
        .find("infra", "x&state=closed#frag")
        .unwrap();
    assert!(found.is_none());
    proxy.assert_no_violations();
    let target = &proxy.seen()[0].target;
    assert!(
        target.contains("head=platform%3Ax%26state%3Dclosed%23frag&"),
        "{target}"
    );
    assert_eq!(target.matches("state=").count(), 1, "{target}");
}

#[test]
fn the_forges_error_body_echoing_the_token_is_scrubbed_at_the_source() {
    let (proxy, forge) = gitea();
    let body: &'static str = Box::leak(
        format!(r#"{{"message":"token {TOKEN} is not valid for this repo"}}"#).into_boxed_str(),
    );
    proxy.on(
        "GET /repos/platform/infra",
        1,
        Act::Reply(401, vec![], body),
    );
    let err = forge.exists("infra").unwrap_err();
    assert!(!err.is_transient());
    assert_eq!(
        err.to_string(),
        "infra: GET /repos/platform/infra: 401 Unauthorized (the token is missing, wrong or expired): token *** is not valid for this repo"
    );
}

#[test]
fn forge_errors_say_whether_a_retry_may_help() {
    let (proxy, forge) = gitea();
    proxy.on(
        "GET /repos/platform/infra",
        5,
        Act::Reply(503, vec![], r#"{"message":"unavailable"}"#),
    );
    assert!(forge.exists("infra").unwrap_err().is_transient());
    for code in [401, 403, 404, 409, 422] {
        let (proxy, forge) = gitea();
        let line = "POST /repos/platform/infra/pulls";
        proxy.on(
            "GET /repos/platform/infra/pulls",
            1,
            Act::Patch(Arc::new(|v: &mut Value| *v = json!([]))),
        );
        proxy.on(line, 1, Act::Reply(code, vec![], r#"{"message":"no"}"#));
        let err = forge.pulls().unwrap().propose("infra", &PROPOSAL);
        // 409 is "exists": the second look finds nothing, so it is reported.
        let err = err.unwrap_err();
        assert!(!err.is_transient(), "{code}: {err}");
    }
}

/// `git credential fill` for `url` with git's environment from the forge;
/// the password git would send there, if any.
fn credential_for(env: &[(String, String)], url: &str) -> Option<String> {
    let (protocol, rest) = url.split_once("://").unwrap();
    let out = std::process::Command::new("git")
        .args(["credential", "fill"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(
                format!("protocol={protocol}\nhost={rest}\npath=platform/infra.git\n\n").as_bytes(),
            )?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("password=").map(str::to_owned))
}

#[test]
fn git_hands_the_token_to_the_forges_own_origin_and_to_no_other() {
    let (_proxy, forge) = gitea();
    let env = forge.git_env();
    assert_eq!(
        credential_for(&env, "https://git.example.org").as_deref(),
        Some(TOKEN)
    );
    // Where a redirect could send git: another host, another port,
    // plain http, a host that merely starts with the forge's name.
    for elsewhere in [
        "https://evil.example.org",
        "https://git.example.org:8443",
        "http://git.example.org",
        "https://git.example.org.evil.example",
    ] {
        assert_eq!(credential_for(&env, elsewhere), None, "{elsewhere}");
    }
}

#[test]
fn a_hostile_repo_name_stays_inside_its_path_segment_on_github() {
    let (proxy, forge) = github();
    assert!(forge.exists("a?b#c").unwrap());
    assert!(forge.exists("x y%2F..%2Fadmin").unwrap());
    proxy.assert_no_violations();
    assert_eq!(
        proxy.lines(),
        [
            "GET /repos/platform/a%3Fb%23c",
            "GET /repos/platform/x%20y%252F..%252Fadmin",
        ]
    );
}
