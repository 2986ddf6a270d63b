//! The daemon's API against its OpenAPI description (`docs/openapi.yaml`):
//! the routes it lists are the routes served, and every answer passes
//! Prism as a validating proxy.

use druppie::daemon::webhook::{Sender, sign};
use druppie::secret::Secret;

use super::{Daemon, SECRET, push_payload, serve_setup};

/// `docs/openapi.yaml` as JSON.
fn description() -> serde_json::Value {
    let text = std::fs::read_to_string(crate::support::repo_root().join("docs/openapi.yaml"))
        .expect("docs/openapi.yaml");
    serde_saphyr::from_str(&text).expect("the description is YAML")
}

#[test]
fn the_openapi_description_lists_exactly_the_routes_served() {
    let doc = description();
    let mut described: Vec<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    described.sort();
    let mut served: Vec<(String, String)> = druppie::daemon::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    served.sort();
    assert_eq!(described, served);
}

/// What the server answers when `[server] request_timeout` fires (see
/// `a_webhook_body_sent_slowly_is_answered_503_at_the_request_timeout`):
/// every operation describes it, with the JSON error body it has.
#[test]
fn every_operation_describes_the_request_timeout_answer() {
    let doc = description();
    let timed_out = &doc["components"]["responses"]["TimedOut"];
    assert_eq!(
        timed_out["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            let answer = &op["responses"]["503"];
            let schema = &answer["content"]["application/json"]["schema"];
            let error = serde_json::json!({"$ref": "#/components/schemas/Error"});
            // The chat's own 503s are OpenAI's error object; the
            // timeout's is still `Error`, one of the two.
            let is_error = *schema == error
                || schema["oneOf"]
                    .as_array()
                    .is_some_and(|one| one.contains(&error));
            let described = answer["$ref"] == "#/components/responses/TimedOut"
                || (answer["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("request_timeout"))
                    && is_error);
            assert!(described, "{method} {path}: {answer}");
        }
    }
}

#[test]
fn every_answer_of_the_api_matches_its_openapi_description() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let spec = crate::support::repo_root().join("docs/openapi.yaml");
    let prism = crate::prism::proxy(&spec, &format!("http://{}", d.addr));
    let http = crate::prism::client();
    let check = |r: reqwest::blocking::Response, want: u16, what: &str| {
        let violations = r
            .headers()
            .get("sl-violations")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        assert!(violations.is_none(), "{what}: {violations:?} {body}");
        assert_eq!(status, want, "{what}: {body}");
        body
    };
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/status",
        "/api/v1/plans",
        "/api/v1/plans/permits/status",
        "/api/v1/blocks?q=python",
        "/api/v1/skills",
        "/api/v1/diff",
        "/api/v1/audit",
        "/v1/models",
        "/v1/agents",
    ] {
        let r = http
            .get(format!("{}{path}", prism.url))
            .send()
            .expect("GET");
        let body = check(r, 200, path);
        assert!(!body.is_empty(), "{path}");
    }
    let r = http
        .get(format!("{}/api/v1/plans/nope/status", prism.url))
        .send()
        .expect("GET");
    check(r, 404, "an unknown plan's status");
    let hook = |forge: &str, headers: &[(&str, &str)], body: &str| {
        let mut req = http
            .post(format!("{}/webhooks/{forge}", prism.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().expect("POST")
    };
    let body = push_payload("spec", "2222222222222222222222222222222222222222");
    let secret = Secret::new(SECRET);
    let gitea = sign(Sender::Gitea, &secret, body.as_bytes());
    let github = sign(Sender::GitHub, &secret, body.as_bytes());
    let gitea_headers = [
        ("x-gitea-event", "push"),
        ("x-gitea-delivery", "c-1"),
        ("x-gitea-signature", gitea.as_str()),
    ];
    check(hook("gitea", &gitea_headers, &body), 202, "gitea push");
    check(
        hook("gitea", &gitea_headers, &body),
        200,
        "gitea redelivery",
    );
    let github_headers = [
        ("x-github-event", "push"),
        ("x-github-delivery", "c-2"),
        ("x-hub-signature-256", github.as_str()),
    ];
    check(hook("github", &github_headers, &body), 202, "github push");
    let unsigned = [("x-github-event", "push"), ("x-github-delivery", "c-3")];
    check(hook("github", &unsigned, &body), 401, "unsigned");
    let bad = sign(Sender::Gitea, &secret, b"{");
    let malformed = [
        ("x-gitea-event", "push"),
        ("x-gitea-delivery", "c-4"),
        ("x-gitea-signature", bad.as_str()),
    ];
    check(hook("gitea", &malformed, "{"), 400, "malformed");
    // No API token configured: writing through the API is refused.
    let r = http
        .post(format!("{}/api/v1/promote", prism.url))
        .header("content-type", "application/json")
        .bearer_auth("anything")
        .body(r#"{"plan": "permits", "to": "prod"}"#)
        .send()
        .expect("POST");
    check(r, 403, "promote without a configured token");
    let r = http
        .post(format!("{}/v1/chat/completions", prism.url))
        .header("content-type", "application/json")
        .bearer_auth("anything")
        .body(
            r#"{"model": "druppie", "messages": [{"role": "user", "content": "a permit portal"}]}"#,
        )
        .send()
        .expect("POST");
    check(r, 403, "the chat without a configured token");
    // Over 1 MiB: refused before it is read (straight to the daemon:
    // the proxy would buffer it).
    let big = "x".repeat(druppie::daemon::BODY_LIMIT + 1);
    let r = http
        .post(d.url("/webhooks/gitea"))
        .header("x-gitea-event", "push")
        .body(big)
        .send()
        .expect("POST");
    assert_eq!(r.status().as_u16(), 413);
    // The event stream's content type, straight from the daemon.
    let r = d.subscribe();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    drop(r);
    assert!(d.terminate().success());
}
