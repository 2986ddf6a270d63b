//! `GET /api/v1/plans/{plan}/status`: the daemon's twin of `druppie
//! status --plan P --json`, after its reconcile.

use super::{Daemon, serve_setup};

#[test]
fn the_daemon_serves_a_plans_status_as_the_cli_reads_it() {
    let s = serve_setup();
    let d = Daemon::start(&s);
    let api = d.json("/api/v1/plans/permits/status");
    let dev = &api["environments"][0];
    assert_eq!(dev["env"], "dev", "{api}");
    assert_eq!(dev["live"]["went_live"]["event"], "applied", "{api}");
    assert_eq!(dev["live"]["went_live"]["by"], "druppie@example.org");
    assert_eq!(dev["next"]["state"], "up-to-date", "{api}");
    let prod = &api["environments"][1];
    assert_eq!(prod["next"]["state"], "proposed", "{api}");
    assert_eq!(prod["next"]["already"], true, "{api}");

    // The CLI on the spec repo (with the trail the daemon pushed) and
    // the forge's repos says the same.
    let forge = s.forge();
    let spec = super::spec_clone_with_trail(&s, "spec-status");
    let run = crate::support::druppie(
        &spec,
        &[
            "--config",
            s.config.to_str().unwrap(),
            "--spec",
            spec.to_str().unwrap(),
            "status",
            "--plan",
            "permits",
            "--json",
            "--repos",
            forge.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let cli: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(cli["plans"][0], api);

    // An unknown plan: 404, naming the nearest.
    let (code, body) = d.get("/api/v1/plans/permitz/status");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("did you mean `permits`?"), "{body}");
    assert!(d.terminate().success());
}
