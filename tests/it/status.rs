//! `druppie status` with the real binary on a plain-git forge: what is
//! live in each environment (its freight: spec commit and the digest
//! `diff` computes for that render) and who made it live, beside what
//! the ExecutionPlan has waiting where.

use serde_json::Value;

use crate::apply::Setup;
use crate::promotion::{merge, three_stages};
use crate::support::{Run, git};

fn run(s: &Setup, args: &[&str]) -> Run {
    let forge = s.forge();
    let mut full = vec!["--config", s.config.to_str().unwrap()];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--repos", forge.to_str().unwrap()]);
    s.f.run(&full)
}

/// `druppie status --json`, which exits 0.
fn status(s: &Setup) -> Value {
    let run = run(s, &["status", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    serde_json::from_str(&run.stdout).expect("JSON")
}

/// The plan `permits` in `env` of a status.
fn env<'a>(status: &'a Value, env: &str) -> &'a Value {
    let plan = status["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .find(|p| p["plan"] == "permits")
        .expect("permits");
    plan["environments"]
        .as_array()
        .expect("environments")
        .iter()
        .find(|e| e["env"] == env)
        .unwrap_or_else(|| panic!("{env} in {plan}"))
}

/// `diff --json`: the render digest of each change set of `permits`, by
/// environment (`""`: a project repo, by its name), and the execution
/// plan's steps.
fn rendered(s: &Setup) -> (Vec<(String, String)>, Vec<Value>) {
    let run = run(s, &["diff", "--json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let report: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let digests = report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["plans"] == serde_json::json!(["permits"]))
        .map(|c| {
            let at = c["env"].as_str().unwrap_or(c["repo"].as_str().unwrap());
            let digest = c["render_digest"].as_str().expect("a render digest");
            assert_eq!(digest.len(), 64, "{c}");
            (at.to_owned(), digest.to_owned())
        })
        .collect();
    let steps = report["execution_plan"]["steps"]
        .as_array()
        .expect("steps")
        .clone();
    (digests, steps)
}

fn digest_of<'a>(digests: &'a [(String, String)], at: &str) -> &'a str {
    &digests
        .iter()
        .find(|(a, _)| a == at)
        .unwrap_or_else(|| panic!("{at} in {digests:?}"))
        .1
}

#[test]
fn status_shows_what_diff_rendered_as_live_freight_and_what_waits_where() {
    let s = three_stages();
    let spec = git(s.f.path(), &["rev-parse", "HEAD"]).trim().to_owned();
    let (before, _) = rendered(&s);
    // Nothing is live yet: dev's commit is pending, test and prod wait.
    let first = status(&s);
    assert_eq!(env(&first, "dev")["live"], Value::Null);
    assert_eq!(env(&first, "dev")["next"]["state"], "commit");
    assert_eq!(env(&first, "test")["next"]["on"], "dev");
    assert_eq!(s.apply().code, 0);

    // dev is live with exactly what diff rendered; test's proposal is
    // what the ExecutionPlan says it is; prod waits for test.
    let (_, steps) = rendered(&s);
    let now = status(&s);
    let dev = env(&now, "dev");
    assert_eq!(dev["trust"], "deploy");
    assert_eq!(dev["live"]["digest"], digest_of(&before, "dev"), "{dev}");
    assert_eq!(dev["live"]["spec_commit"], spec.as_str());
    assert_eq!(dev["live"]["went_live"]["event"], "applied", "{dev}");
    assert_eq!(dev["live"]["went_live"]["by"], "druppie@example.org");
    let main = git(&s.forge().join("infra.git"), &["rev-parse", "main"]);
    assert_eq!(dev["live"]["commit"], main.trim());
    assert_eq!(dev["live"]["blocks"][0]["block"], "postgresql", "{dev}");
    assert_eq!(dev["next"]["state"], "up-to-date");
    let test_step = steps
        .iter()
        .find(|st| st["params"]["env"] == "test")
        .expect("a step for test");
    assert_eq!(test_step["action"], "pull_request", "{steps:?}");
    let test = env(&now, "test");
    assert_eq!(test["live"], Value::Null);
    assert_eq!(test["next"]["state"], "proposed", "{test}");
    assert_eq!(test["next"]["branch"], test_step["params"]["branch"]);
    assert_eq!(test["next"]["already"], test_step["params"]["already"]);
    assert_eq!(env(&now, "prod")["next"]["state"], "waiting");
    assert_eq!(env(&now, "prod")["next"]["on"], "test");
    // The project repo's freight is what diff rendered for it too.
    let project = &now["plans"][0]["projects"][0];
    let repo = project["repo"].as_str().expect("a project repo");
    assert_eq!(project["live"]["digest"], digest_of(&before, repo));
    assert_eq!(project["next"]["state"], "up-to-date");
    assert_eq!(now["errors"], serde_json::json!([]));

    // The proposal opens; it holds the change and waits for a merge.
    assert_eq!(s.apply().code, 0);
    let (pending, _) = rendered(&s);
    let test = env(&status(&s), "test").clone();
    assert_eq!(test["next"]["state"], "proposed");
    assert_eq!(test["next"]["already"], true, "{test}");

    // A person merges it; the next apply records who, and opens prod's.
    merge(&s, "druppie/test/permits");
    assert_eq!(s.apply().code, 0);
    let merged = status(&s);
    let test = env(&merged, "test");
    assert_eq!(
        test["live"]["digest"],
        digest_of(&pending, "test"),
        "{test}"
    );
    assert_eq!(test["live"]["went_live"]["event"], "approved", "{test}");
    assert_eq!(
        test["live"]["went_live"]["by"],
        "Person <person@example.org>"
    );
    assert_eq!(test["live"]["promoted_from"], "dev", "{test}");
    assert_eq!(test["next"]["state"], "up-to-date");
    let prod = env(&merged, "prod");
    assert_eq!(prod["next"]["state"], "proposed", "{prod}");
    assert_eq!(prod["next"]["already"], true, "{prod}");

    // The text: one block per plan, one aligned line per environment.
    let text = run(&s, &["status", "--plan", "permits"]);
    assert_eq!(text.code, 0, "{}", text.transcript());
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines[0], "permits", "{}", text.stdout);
    let dev_line = lines[1];
    let digest = dev["live"]["digest"].as_str().unwrap();
    assert!(dev_line.starts_with("  dev "), "{}", text.stdout);
    assert!(
        dev_line.contains(&format!("live {}", &digest[..12]))
            && dev_line.contains(&format!("spec {}", &spec[..12]))
            && dev_line.contains(" by druppie@example.org")
            && dev_line.ends_with("up to date"),
        "{}",
        text.stdout
    );
    assert!(
        lines[2].contains("approved ")
            && lines[2].contains(" by Person <person@example.org>, promoted from dev"),
        "{}",
        text.stdout
    );
    assert!(
        lines[3].starts_with("  prod ")
            && lines[3].ends_with("proposed on druppie/prod/permits, waiting for a merge"),
        "{}",
        text.stdout
    );
    // Aligned: every environment's freight starts in one column.
    let column = |l: &str| l.find("nothing live").or_else(|| l.find("live "));
    assert_eq!(column(lines[1]), column(lines[2]), "{}", text.stdout);
    assert_eq!(column(lines[1]), column(lines[3]), "{}", text.stdout);

    // A newer change waits for dev; prod's proposal of the earlier one
    // is still open, and named.
    crate::never_wedged::release(&s, 7);
    let newer = status(&s);
    assert_eq!(env(&newer, "dev")["next"]["state"], "commit");
    assert_eq!(
        env(&newer, "prod")["next"],
        serde_json::json!({"state": "waiting", "on": "test", "open": "druppie/prod/permits"})
    );
}

#[test]
fn an_unknown_plan_is_a_located_error_with_the_nearest_name() {
    let s = three_stages();
    let run = run(&s, &["status", "--plan", "permitz"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("unknown plan `permitz`")
            && run.stderr.contains("--> --plan")
            && run.stderr.contains("did you mean `permits`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn freight_is_credited_to_the_event_that_made_it_live_and_a_hand_written_lock_to_nobody() {
    let s = three_stages();
    assert_eq!(s.apply().code, 0);
    let infra = s.forge().join("infra.git");
    let applied = git(&infra, &["rev-parse", "main"]).trim().to_owned();
    // More commits than the history walk reads, none touching the plan:
    // the trail still names who made dev's freight live.
    let work = crate::forged_approvals::work(&s);
    for i in 0..=druppie::status::HISTORY_LIMIT {
        git(
            &work,
            &[
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                &format!("unrelated {i}"),
            ],
        );
    }
    git(&work, &["push", "-q", "origin", "main"]);
    let dev = env(&status(&s), "dev").clone();
    assert_eq!(dev["live"]["commit"], applied.as_str(), "{dev}");
    assert_eq!(dev["live"]["went_live"]["event"], "applied", "{dev}");
    // A person rewrites the lock: what is live is theirs, and no event
    // of druppie's vouches for it.
    let lock = work.join("apps/dev/permits/.druppie-lock.yaml");
    let text = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(&lock, format!("{text}# edited by hand\n")).unwrap();
    git(&work, &["commit", "-qam", "a hand-written lock"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let edited = git(&work, &["rev-parse", "HEAD"]).trim().to_owned();
    let now = env(&status(&s), "dev").clone();
    assert_eq!(now["live"]["commit"], edited.as_str(), "{now}");
    assert_eq!(now["live"]["went_live"], Value::Null, "{now}");
    assert_ne!(now["live"]["digest"], dev["live"]["digest"]);
}

/// Where dev asks for verification and nothing verified it, test waits
/// in `status` as it does for `apply`.
#[test]
fn status_waits_for_verification_as_apply_does() {
    let s = three_stages();
    crate::promotion::edit(
        s.f.path(),
        "spec/platform.yaml",
        "    trust: deploy",
        "    trust: deploy\n    verify: true",
    );
    git(s.f.path(), &["commit", "-qam", "dev verifies"]);
    assert_eq!(s.apply().code, 0);
    let now = status(&s);
    let test = env(&now, "test");
    assert_eq!(test["next"]["state"], "waiting", "{test}");
    assert_eq!(test["next"]["on"], "dev", "{test}");
    let run = s.apply();
    assert!(
        run.stdout.contains("infra (test) permits: waiting: dev"),
        "{}",
        run.stdout
    );
}
