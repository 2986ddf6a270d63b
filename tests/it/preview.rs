//! `druppie preview`: the multi-repo diff a spec change would cause,
//! between two revisions of a real spec repo.

use crate::support::{Fixture, git};

fn spec_repo() -> Fixture {
    let f = Fixture::valid().with(
        "templates/webapp-python/infra/deployment.yaml.j2",
        "kind: Deployment\nreplicas: {{ replicas }}\n",
    );
    git(f.path(), &["init", "-q"]);
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-qm", "base"]);
    f
}

#[test]
fn a_spec_change_shows_as_the_repo_changes_it_would_cause() {
    let f = spec_repo().edit(
        "spec/plans/permits.yaml",
        "app: {replicas: 2}",
        "app: {replicas: 3}",
    );
    git(f.path(), &["commit", "-qam", "scale prod"]);
    let run = f.run(&["preview", "--base", "HEAD~1", "--head", "HEAD"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("modify apps/prod/permits/app/deployment.yaml\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("-replicas: 2\n+replicas: 3\n"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("apps/dev/"), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with("1 repo, +0 ~2 -0, 0 conflicts, 0 drift, 0 warnings\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn the_checkout_itself_is_the_default_head() {
    let f = spec_repo();
    let run = f.run(&["preview", "--base", "HEAD"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        run.stdout,
        "0 repos, +0 ~0 -0, 0 conflicts, 0 drift, 0 warnings\n"
    );
    // A plan removed in the checkout: its files go.
    std::fs::remove_file(f.path().join("spec/plans/permits.yaml")).unwrap();
    let f = f.with(
        "spec/plans/other.yaml",
        crate::support::PLAN.replace("name: permits", "name: other"),
    );
    let run = f.run(&["preview", "--base", "HEAD", "--env", "dev", "--json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    // The removed plan's directory is that plan's own change set.
    let removed = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cs| cs["plans"] == serde_json::json!(["permits"]))
        .expect("a change set of the removed plan");
    // Its files go, and the environment's list of Flux directories no
    // longer names it.
    assert!(
        removed["files"].as_array().unwrap().iter().all(|f| {
            f["action"] == "delete"
                || (f["path"] == "clusters/dev/druppie/kustomization.yaml"
                    && f["action"] == "modify")
        }),
        "{removed:#}"
    );
    assert!(
        removed["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "apps/dev/permits/app/deployment.yaml")
    );
}

#[test]
fn an_unknown_revision_is_a_clear_error() {
    let f = spec_repo();
    let run = f.run(&["preview", "--base", "no-such-branch"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("unknown revision `no-such-branch`"),
        "{}",
        run.stderr
    );
}

#[test]
fn with_pr_the_preview_is_one_comment_on_the_spec_pull_request() {
    use crate::prism::{self, Proxy};
    let proxy = Proxy::new(prism::gitea());
    let f = spec_repo().edit(
        "spec/plans/permits.yaml",
        "app: {replicas: 2}",
        "app: {replicas: 3}",
    );
    git(f.path(), &["commit", "-qam", "scale prod"]);
    let config = f.path().join("druppie.toml");
    std::fs::write(
        &config,
        format!(
            "[spec]\nurl = \"https://git.example.org/platform/spec.git\"\n\n[forge]\nkind = \"gitea\"\nbase = \"{}\"\nowner = \"platform\"\ntoken_env = \"DRUPPIE_IT_TOKEN\"\n",
            proxy.url
        ),
    )
    .unwrap();
    let run = f.run(&[
        "--config",
        config.to_str().unwrap(),
        "preview",
        "--base",
        "HEAD~1",
        "--head",
        "HEAD",
        "--pr",
        "12",
    ]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    proxy.assert_no_violations();
    assert_eq!(
        proxy.lines(),
        [
            "GET /repos/platform/spec/issues/12/comments",
            "POST /repos/platform/spec/issues/12/comments"
        ]
    );
    let body = proxy.seen()[1].json()["body"].as_str().unwrap().to_owned();
    assert!(
        body.starts_with("**druppie preview**: what merging this changes (merge HEAD onto HEAD~1)\n\n1 repo, +0 ~2 -0"),
        "{body}"
    );
    assert!(body.contains("```diff\n"), "{body}");
    assert!(body.contains("-replicas: 2\n+replicas: 3\n"), "{body}");
    assert!(
        body.ends_with("```\n\n<!-- druppie:preview -->\n"),
        "{body}"
    );
}

#[test]
fn the_scratch_directory_is_private_removed_and_never_shown() {
    let f = spec_repo().edit(
        "spec/plans/permits.yaml",
        "app: {replicas: 2}",
        "app: {replicas: 3}",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = env!("CARGO_BIN_EXE_druppie");
    let spec = f.path().to_str().expect("utf-8");
    for extra in [&[][..], &["--json"][..]] {
        let out = std::process::Command::new(bin)
            .args(["--spec", spec, "preview", "--base", "HEAD"])
            .args(extra)
            .current_dir(f.path())
            .env("TMPDIR", tmp.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run druppie");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        if extra.is_empty() {
            assert!(stdout.contains("as rendered at HEAD"), "{stdout}");
        }
        let scratch = tmp.path().to_str().expect("utf-8");
        assert!(!stdout.contains(scratch), "{stdout}");
        assert!(!stdout.contains("druppie-preview"), "{stdout}");
        assert!(!stderr.contains(scratch), "{stderr}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).expect("read").collect();
        assert!(
            left.is_empty(),
            "the scratch directory is removed: {left:?}"
        );
    }
}
