//! `POST /api/v1/promote`, `druppie promote`'s twin: only with the API's
//! bearer token, checked before anything is queued, and run by the
//! worker with the same library steps.

use super::{Daemon, serve_setup};
use crate::support::git;

const TOKEN: &str = "it-api-token-7f3a";

#[test]
fn a_promotion_over_the_api_needs_the_token_and_proposes_what_dev_runs() {
    let s = serve_setup();
    // prod waits for dev (no `promote: {prod: parallel}`).
    let work = s.tmp.path().join("spec-work");
    let plan = work.join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    assert!(text.contains("promote: {prod: parallel}\n"), "{text}");
    std::fs::write(&plan, text.replace("promote: {prod: parallel}\n", "")).expect("plan");
    git(&work, &["commit", "-qam", "prod after dev"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let d = Daemon::start_env(&s, &[], &[("DRUPPIE_API_TOKEN", TOKEN)]);
    let http = reqwest::blocking::Client::new();
    let post = |token: Option<&str>, body: &str| {
        let mut req = http
            .post(d.url("/api/v1/promote"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().expect("POST");
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    let request = r#"{"plan": "permits", "to": "prod"}"#;
    let before = d.reconciles();
    assert_eq!(post(None, request).0, 401);
    assert_eq!(post(Some("it-api-token-7f3b"), request).0, 401);
    assert_eq!(post(Some(TOKEN), "{").0, 400);
    assert_eq!(
        post(Some(TOKEN), r#"{"plan": "permits", "to": "prod", "x": 1}"#).0,
        400
    );
    let (code, body) = post(Some(TOKEN), r#"{"plan": "permit", "to": "prod"}"#);
    assert_eq!(
        (code, body.contains("no plan `permit`")),
        (404, true),
        "{body}"
    );
    let (code, body) = post(Some(TOKEN), r#"{"plan": "permits", "to": "staging"}"#);
    assert_eq!(code, 422, "{body}");
    assert_eq!(d.reconciles(), before, "nothing refused was queued");
    let (code, body) = post(Some(TOKEN), request);
    assert_eq!(code, 202, "{body}");
    d.wait("the promotion", |d| {
        d.logs().iter().any(|l| {
            l.contains("\"message\":\"promoted\"") || l.contains("\"message\":\"promotion\"")
        })
    });
    let said: Vec<String> = d
        .logs()
        .into_iter()
        .filter(|l| {
            l.contains("\"message\":\"promoted\"") || l.contains("\"message\":\"promotion\"")
        })
        .collect();
    assert!(
        said[0].contains("\"result\":\"proposed\"")
            || said[0].contains("\"result\":\"already-proposed\""),
        "{said:?}"
    );
    // prod's proposal holds what dev runs, and says it promotes from dev.
    let infra = s.forge().join("infra.git");
    assert_eq!(
        crate::promotion::promoted_from(&infra, "druppie/prod/permits"),
        "dev"
    );
    let dev = git(
        &infra,
        &["show", "main:apps/dev/permits/.druppie-lock.yaml"],
    );
    let spec = git(
        &infra,
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Druppie-Spec-Commit,valueonly)",
            "druppie/prod/permits",
        ],
    );
    assert!(dev.contains(spec.trim()), "{dev}\n{spec}");
    // The token never reaches the logs.
    assert!(!d.logs().iter().any(|l| l.contains(TOKEN)));
    assert!(d.terminate().success());
}
