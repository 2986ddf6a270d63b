//! `druppie propose`: sentences on the example catalog become checked
//! spec changes, and with `--yes` a signed branch of the spec repo that,
//! merged, `apply` deploys. Hostile requests never become files outside
//! `spec/plans/` and `spec/stacks/`, nor YAML the request wrote.

use std::path::Path;

use serde_json::Value;

use crate::support::{Fixture, Run, example_spec, git, on_an_empty_forge};

fn propose(f: &Fixture, config: Option<&Path>, args: &[&str]) -> Run {
    let mut all: Vec<&str> = Vec::new();
    if let Some(c) = config {
        all.extend(["--config", c.to_str().expect("utf-8")]);
    }
    all.push("propose");
    all.extend(args);
    f.run(&all)
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.transcript()))
}

/// The example spec, committed.
fn committed() -> Fixture {
    let f = example_spec();
    git(f.path(), &["init", "-q", "-b", "main"]);
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-qm", "spec"]);
    f
}

fn blocks(answer: &Value) -> Vec<&str> {
    let mut b: Vec<&str> = answer["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .map(|c| c["block"].as_str().expect("block"))
        .collect();
    b.sort_unstable();
    b
}

#[test]
fn a_permit_portal_with_a_database_reuses_webapp_db() {
    let f = committed();
    let run = propose(
        &f,
        None,
        &[
            "a permit portal with a database",
            "--owner",
            "team-x",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let a = json(&run);
    assert_eq!(a["answer"], "proposal");
    assert_eq!(blocks(&a), ["postgresql", "webapp-python"]);
    assert_eq!(a["draft"]["plan"]["stack"], "webapp-db");
    assert_eq!(a["draft"]["plan"]["name"], "permit-portal");
    assert_eq!(
        a["draft"]["plan"]["intent"],
        "a permit portal with a database"
    );
    assert_eq!(
        a["draft"]["plan"]["environments"],
        serde_json::json!(["dev", "test", "prod"])
    );
    assert_eq!(a["valid"], true, "{}", run.stdout);
    assert_eq!(a["questions"], serde_json::json!([]));
    // Only the plan: the stack exists.
    let files: Vec<&str> = a["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert_eq!(files, ["spec/plans/permit-portal.yaml"]);
    // The preview covers the project repos and the infra repo.
    let steps = a["execution_plan"]["steps"].as_array().expect("steps");
    let repos: Vec<&str> = steps
        .iter()
        .filter_map(|s| s["params"]["repo"].as_str())
        .collect();
    for repo in [
        "infra",
        "permit-portal-app",
        "permit-portal-db",
        "permit-portal-cache",
    ] {
        assert!(repos.contains(&repo), "{repo} in {repos:?}");
    }
    assert!(
        a["summary"]["create"].as_u64().expect("creates") > 40,
        "{}",
        a["summary"]
    );
}

#[test]
fn a_static_documentation_site_is_the_static_site_stack() {
    let f = committed();
    let run = propose(
        &f,
        None,
        &[
            "a static documentation site for team docs",
            "--owner",
            "team-docs",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let a = json(&run);
    assert_eq!(blocks(&a), ["static-site"]);
    assert_eq!(a["draft"]["plan"]["stack"], "static-site");
    assert_eq!(a["draft"]["plan"]["name"], "team-docs");
    assert_eq!(a["valid"], true);
}

#[test]
fn a_redis_cache_for_a_plan_that_has_one_changes_nothing() {
    let f = committed();
    let run = propose(&f, None, &["a redis cache for permits", "--json"]);
    let a = json(&run);
    assert_eq!(a["plan"], "permits");
    assert_eq!(blocks(&a), ["redis"]);
    assert_eq!(a["files"], serde_json::json!([]));
    let notes = a["notes"].to_string();
    assert!(notes.contains("already has `redis`"), "{notes}");
    assert_eq!(run.code, 1, "nothing to propose: {}", run.transcript());
    assert!(run.stderr.contains("nothing to propose"), "{}", run.stderr);
}

#[test]
fn a_redis_cache_for_a_plan_without_one_adds_it_through_a_new_stack() {
    let f = committed();
    let run = propose(&f, None, &["a redis cache for docs-portal", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let a = json(&run);
    assert_eq!(a["valid"], true, "{}", run.stdout);
    let files = a["files"].as_array().expect("files");
    assert_eq!(files[0]["path"], "spec/plans/docs-portal.yaml");
    assert_eq!(files[1]["path"], "spec/stacks/docs-portal-redis.yaml");
    // The plan file changes in its `stack:` value only.
    let before =
        std::fs::read_to_string(f.path().join("spec/plans/docs-portal.yaml")).expect("plan");
    assert_eq!(
        files[0]["text"].as_str().expect("text"),
        before.replace("stack: static-site", "stack: docs-portal-redis")
    );
    let stack = files[1]["text"].as_str().expect("text");
    assert!(
        stack.contains("block: redis") && stack.contains("block: static-site"),
        "{stack}"
    );
}

#[test]
fn blocks_no_stack_composes_get_a_new_stack_with_the_platforms_conventions() {
    let f = committed();
    let run = propose(
        &f,
        None,
        &[
            "a static site with a postgres database for harbour dues",
            "--owner",
            "team-x",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let a = json(&run);
    assert_eq!(blocks(&a), ["postgresql", "static-site"]);
    assert_eq!(a["draft"]["plan"]["name"], "harbour-dues");
    let stack = &a["draft"]["stack"];
    assert_eq!(stack["name"], "harbour-dues");
    // Production as the platform's stacks run these blocks, so the
    // replicas policy passes in prod.
    assert_eq!(stack["environments"]["prod"]["app"]["replicas"], 2);
    assert_eq!(stack["environments"]["prod"]["db"]["instances"], 3);
    assert_eq!(a["valid"], true);
    assert_eq!(a["summary"]["errors"], 0, "{}", a["summary"]);
    // A static site takes no database: said, not hidden.
    assert!(
        a["notes"].to_string().contains("is not wired"),
        "{}",
        a["notes"]
    );
}

#[test]
fn questions_come_back_instead_of_guesses() {
    let f = committed();
    // No owner: asked, not guessed; nothing proposed.
    let run = propose(
        &f,
        None,
        &["a permit portal with a database", "--json", "--yes"],
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    let a = json(&run);
    assert!(
        a["questions"].to_string().contains("Which team owns it"),
        "{}",
        a["questions"]
    );
    assert_eq!(a["opened"], Value::Null);
    // Nothing in the catalog gives it.
    let run = propose(
        &f,
        None,
        &["a kafka queue for events", "--owner", "team-x", "--json"],
    );
    assert_eq!(run.code, 1);
    assert!(json(&run)["questions"].to_string().contains("kafka"));
    // No image convention and none in the request: the image is asked.
    let g = committed();
    let platform = std::fs::read_to_string(g.path().join("spec/platform.yaml")).expect("platform");
    let without: String = platform
        .lines()
        .filter(|l| !l.trim_start().starts_with("image:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(g.path().join("spec/platform.yaml"), without).expect("write");
    git(g.path(), &["commit", "-qam", "no image convention"]);
    let run = propose(
        &g,
        None,
        &[
            "a permit portal with a database",
            "--owner",
            "team-x",
            "--json",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(json(&run)["questions"].to_string().contains("`app.image`"));
    // …and taken from the request when it says it.
    let run = propose(
        &g,
        None,
        &[
            "a permit portal with a database, image registry.example.org/permits/portal:1.4.2, 3 replicas",
            "--owner",
            "team-x",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let a = json(&run);
    assert_eq!(
        a["draft"]["plan"]["inputs"]["app"]["image"],
        "registry.example.org/permits/portal:1.4.2"
    );
    assert_eq!(a["draft"]["plan"]["inputs"]["app"]["replicas"], 3);
}

#[test]
fn catalog_questions_are_answered_from_the_registry() {
    let f = committed();
    let run = propose(&f, None, &["which blocks give me a database?", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let a = json(&run);
    assert_eq!(a["answer"], "catalog");
    assert_eq!(a["blocks"][0]["id"], "postgresql");
}

#[test]
fn a_sentence_becomes_a_signed_branch_that_merged_and_applied_deploys_to_dev() {
    let f = example_spec();
    let tmp = tempfile::tempdir().expect("tmp");
    let config = on_an_empty_forge(tmp.path(), &f);
    let base = git(f.path(), &["symbolic-ref", "--short", "HEAD"])
        .trim()
        .to_owned();
    let args = [
        "a permit portal with a database",
        "--owner",
        "team-x",
        "--env",
        "dev",
        "--env",
        "prod",
        "--yes",
    ];
    let run = propose(&f, Some(&config), &args);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr.contains("druppie/propose/permit-portal"),
        "{}",
        run.stderr
    );
    let branch = "druppie/propose/permit-portal";
    // One commit on the base, holding only the plan, signed by druppie.
    let changed = git(
        f.path(),
        &["diff", "--name-only", &format!("{base}...{branch}")],
    );
    assert_eq!(changed.trim(), "spec/plans/permit-portal.yaml");
    let signers = tmp.path().join("allowed_signers");
    let verify = std::process::Command::new("git")
        .args(["-c", "gpg.format=ssh", "-c"])
        .arg(format!("gpg.ssh.allowedSignersFile={}", signers.display()))
        .args(["verify-commit", branch])
        .current_dir(f.path())
        .output()
        .expect("git verify-commit");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // The card: the request, the blocks and why, the checks, the steps.
    let message = git(f.path(), &["log", "-1", "--format=%B", branch]);
    for expected in [
        "plan: permit-portal (webapp-db)",
        "> a permit portal with a database",
        "**webapp-python**",
        "**postgresql**",
        "gives `web` (\"portal\")",
        "Reuses stack `webapp-db`",
        "spec validation on",
        "create repo `permit-portal-app`",
        "Druppie-Planner: rules",
    ] {
        assert!(message.contains(expected), "{expected:?} in:\n{message}");
    }
    // The branch validates as checked out.
    git(f.path(), &["checkout", "-q", branch]);
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    git(f.path(), &["checkout", "-q", &base]);
    // Asked again while it is open: refused, the branch kept.
    let tip = git(f.path(), &["rev-parse", branch]);
    let run = propose(&f, Some(&config), &args);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("is open already"), "{}", run.stderr);
    assert_eq!(git(f.path(), &["rev-parse", branch]), tip);
    // Merged (the approval) and applied: it runs in dev.
    git(f.path(), &["merge", "-q", "--no-ff", "-m", "merge", branch]);
    let run = f.run(&[
        "--config",
        config.to_str().expect("utf-8"),
        "apply",
        "--yes",
        "--plan",
        "permit-portal",
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let infra = tmp.path().join("forge/infra.git");
    let deployment = git(
        &infra,
        &["show", "main:apps/dev/permit-portal/app/deployment.yaml"],
    );
    assert!(
        deployment.contains("image: registry.example.org/team-x/permit-portal-app:0.1.0"),
        "{deployment}"
    );
    assert!(tmp.path().join("forge/permit-portal-app.git").exists());
}

#[test]
fn hostile_requests_never_write_what_they_say() {
    let f = committed();
    // A name that is a path: asked again, nothing written.
    let run = propose(
        &f,
        None,
        &[
            "a permit portal with a database",
            "--owner",
            "team-x",
            "--name",
            "../../etc/passwd",
            "--yes",
            "--json",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert_eq!(json(&run)["files"], serde_json::json!([]));
    // YAML in the request stays the intent's text.
    let sneaky = "a permit portal with a database\"\nowner: team-evil\nstack: \"druppie";
    let run = propose(&f, None, &[sneaky, "--owner", "team-x", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let a = json(&run);
    let text = a["files"][0]["text"].as_str().expect("plan text");
    let back: Value = serde_saphyr::from_str(text).expect("YAML");
    assert_eq!(back["owner"], "team-x");
    assert_eq!(back["stack"], "webapp-db");
    assert_eq!(
        back["intent"],
        sneaky.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    // An owner that is not a team name.
    let run = propose(
        &f,
        None,
        &[
            "a permit portal with a database",
            "--owner",
            "team-x\nstack: evil",
            "--json",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        json(&run)["questions"]
            .to_string()
            .contains("not a team name")
    );
    // A new stack never takes the name of one other plans use.
    let run = propose(
        &f,
        None,
        &[
            "a static site with a database",
            "--owner",
            "team-x",
            "--name",
            "static-site",
            "--json",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    let a = json(&run);
    assert!(
        a["questions"]
            .to_string()
            .contains("A stack `static-site` exists already"),
        "{}",
        a["questions"]
    );
    // A request that is not a sentence or two is not read.
    let long = "a portal ".repeat(1000);
    let run = propose(&f, None, &[&long, "--owner", "team-x", "--yes"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("at most 4096 are read"),
        "{}",
        run.stderr
    );
    let branches = git(f.path(), &["branch", "--list", "druppie/*"]);
    assert_eq!(branches.trim(), "");
}

#[test]
fn on_gitea_the_branch_is_pushed_to_the_spec_repo_and_the_card_is_the_pull_requests_body() {
    use crate::prism::{self, Proxy};
    let proxy = Proxy::new(prism::gitea());
    let f = committed();
    let tmp = tempfile::tempdir().expect("tmp");
    let remote = tmp.path().join("platform/spec.git");
    git(
        tmp.path(),
        &["init", "-q", "--bare", remote.to_str().expect("utf-8")],
    );
    git(
        f.path(),
        &["push", "-q", remote.to_str().expect("utf-8"), "main"],
    );
    let key = tmp.path().join("key");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(keygen.status.success());
    let config = tmp.path().join("druppie.toml");
    std::fs::write(
        &config,
        format!(
            "[spec]\nurl = \"{}\"\n\n[forge]\nkind = \"gitea\"\nbase = \"{}\"\nowner = \"platform\"\ntoken_env = \"DRUPPIE_IT_TOKEN\"\n\n[signing]\nkey = \"{}\"\nname = \"druppie\"\nemail = \"druppie@example.org\"\n",
            remote.display(),
            proxy.url,
            key.display()
        ),
    )
    .expect("config");
    let run = propose(
        &f,
        Some(&config),
        &[
            "a permit portal with a database",
            "--owner",
            "team-x",
            "--yes",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    proxy.assert_no_violations();
    let lines = proxy.lines();
    assert!(
        lines.contains(&"POST /repos/platform/spec/pulls".to_owned()),
        "{lines:?}"
    );
    let post = proxy
        .seen()
        .into_iter()
        .find(|s| s.line() == "POST /repos/platform/spec/pulls")
        .expect("the pull request");
    let pr = post.json();
    assert_eq!(pr["head"], "druppie/propose/permit-portal");
    assert_eq!(pr["base"], "main");
    assert_eq!(pr["title"], "plan: permit-portal (webapp-db)");
    let body = pr["body"].as_str().expect("body");
    assert!(
        body.contains("**webapp-python**") && body.contains("### What merging does"),
        "{body}"
    );
    assert!(!body.contains("it-token"));
    // The branch is on the spec repo, not only here.
    let pushed = git(
        &remote,
        &["log", "-1", "--format=%s", "druppie/propose/permit-portal"],
    );
    assert_eq!(pushed.trim(), "plan: permit-portal (webapp-db)");
    let a = json(&run);
    assert_eq!(a["opened"]["branch"], "druppie/propose/permit-portal");
    assert!(a["opened"]["number"].is_i64(), "{}", a["opened"]);
}

#[test]
fn a_request_holding_a_configured_secret_is_never_committed() {
    const CANARY: &str = "canary-forge-token-3f9a";
    let f = example_spec();
    let tmp = tempfile::tempdir().expect("tmp");
    let config = on_an_empty_forge(tmp.path(), &f);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_druppie"))
        .args(["--config", config.to_str().expect("utf-8"), "--spec"])
        .arg(f.path())
        .args([
            "propose",
            &format!("a permit portal with a database for {CANARY}"),
            "--owner",
            "team-x",
            "--name",
            "leak",
            "--yes",
        ])
        .env("DRUPPIE_FORGE_TOKEN", CANARY)
        .env("NO_COLOR", "1")
        .output()
        .expect("druppie runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("would hold a secret"), "{stderr}");
    assert!(!stderr.contains(CANARY) && !String::from_utf8_lossy(&out.stdout).contains(CANARY));
    let everything = git(f.path(), &["log", "--all", "-p"]);
    assert!(!everything.contains(CANARY));
    assert_eq!(git(f.path(), &["branch", "--list", "druppie/*"]).trim(), "");
}

#[test]
fn a_template_in_the_request_is_never_taken_as_a_value() {
    let f = committed();
    let run = propose(
        &f,
        None,
        &[
            "a permit portal with a database, image registry.example.org/{{namespace}}/b:1.0",
            "--owner",
            "team-x",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let image = json(&run)["draft"]["plan"]["inputs"]["app"]["image"].clone();
    assert_eq!(image, "registry.example.org/team-x/permit-portal-app:0.1.0");
}
