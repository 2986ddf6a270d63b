//! `druppie diff` against real git repos in temp dirs: creates, clean
//! runs, drift, three-way merges, conflicts, prunes, unowned files,
//! policies, text and JSON output.

use std::path::{Path, PathBuf};

use crate::support::{Fixture, Run, git};

fn commit_all(repo: &Path, message: &str) {
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", message, "--allow-empty"]);
}

/// A person writes a file in a repo and commits it.
fn edit_and_commit(repo: &Path, path: &str, content: &str, message: &str) {
    let full = repo.join(path);
    std::fs::create_dir_all(full.parent().expect("has parent")).expect("mkdir");
    std::fs::write(full, content).expect("write");
    commit_all(repo, message);
}

/// Renders the fixture into `<tmp>/repos/<repo>` and commits each as a git
/// work tree on `main`, as a person applying the first render would.
fn render_into_git(f: &Fixture, tmp: &Path) -> PathBuf {
    let repos = tmp.join("repos");
    let run = f.run(&["render", "--out", repos.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    for entry in std::fs::read_dir(&repos).expect("read repos") {
        let dir = entry.expect("entry").path();
        git(&dir, &["init", "-q"]);
        commit_all(&dir, "first render");
    }
    repos
}

fn diff(f: &Fixture, repos: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["diff", "--repos", repos.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    f.run(&args)
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.transcript()))
}

/// (path, action) of every file change in a JSON report.
fn actions(report: &serde_json::Value) -> Vec<(String, String)> {
    report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|c| c["files"].as_array().expect("files").iter())
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_owned(),
                f["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect()
}

fn file_diff<'r>(report: &'r serde_json::Value, path: &str) -> &'r str {
    report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|c| c["files"].as_array().expect("files").iter())
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no change for {path} in {report:#}"))["diff"]
        .as_str()
        .expect("diff")
}

const README: &str = "\
# {{ plan }} {{ component }}

Intro written by the template.

Some words.
More words.
Even more words.

Replicas: {{ replicas }}
";

/// The valid fixture plus a seeded project README for the app.
fn with_readme() -> Fixture {
    Fixture::valid().with("templates/webapp-python/project/README.md.j2", README)
}

#[test]
fn a_fresh_example_checkout_shows_creates_against_infra_example() {
    let f = Fixture::example();
    let run = f.run(&["diff"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let last = run.stdout.lines().last().expect("summary");
    insta::assert_snapshot!("example_summary", last);
    assert!(
        !run.stdout.contains("podinfo"),
        "unowned files are not touched"
    );
    let report = json(&f.run(&["diff", "--json"]));
    // Every file is new, but the environments' lists of Flux directories,
    // which infra-example holds empty: the plans are added to them.
    let lists = [
        "clusters/dev/druppie/kustomization.yaml",
        "clusters/test/druppie/kustomization.yaml",
        "clusters/prod/druppie/kustomization.yaml",
    ];
    for (path, action) in actions(&report) {
        let want = if lists.contains(&path.as_str()) {
            "modify"
        } else {
            "create"
        };
        assert_eq!(action, want, "{path}");
    }
    for list in lists {
        assert!(file_diff(&report, list).contains("-resources: []\n"));
    }
    assert_eq!(report["execution_plan"]["status"], "pending");
}

#[test]
fn rendered_and_committed_repos_have_nothing_to_change() {
    let f = Fixture::example();
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = render_into_git(&f, tmp.path());
    let run = diff(&f, &repos, &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(
        run.stdout,
        "0 repos, +0 ~0 -0, 0 conflicts, 0 drift, 0 warnings\n"
    );
    // A bare repository reads the same as a work tree.
    let bare = tmp.path().join("bare");
    std::fs::create_dir(&bare).expect("mkdir");
    for entry in std::fs::read_dir(&repos).expect("repos") {
        let path = entry.expect("entry").path();
        let name = format!("{}.git", path.file_name().unwrap().to_string_lossy());
        git(
            &bare,
            &["clone", "-q", "--bare", path.to_str().unwrap(), &name],
        );
    }
    assert_eq!(diff(&f, &bare, &[]).code, 0);
    let report = json(&diff(&f, &repos, &["--json"]));
    assert_eq!(report["execution_plan"]["status"], "noop");
}

#[test]
fn uncommitted_work_tree_files_do_not_count() {
    let f = Fixture::valid();
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = render_into_git(&f, tmp.path());
    std::fs::write(
        repos.join("infra/apps/dev/permits/app/deployment.yaml"),
        "x",
    )
    .unwrap();
    assert_eq!(diff(&f, &repos, &[]).code, 0);
}

#[test]
fn a_persons_edit_to_a_seeded_file_survives_a_template_change() {
    let f = with_readme();
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = render_into_git(&f, tmp.path());
    let app = repos.join("permits-app");
    let readme = std::fs::read_to_string(app.join("README.md")).unwrap();
    let edited = readme.replace(
        "Intro written by the template.",
        "Intro rewritten by a person.",
    );
    std::fs::write(app.join("README.md"), &edited).unwrap();
    commit_all(&app, "a person edits the README");

    // The edit alone is not a change: seeded files belong to people.
    let run = diff(&f, &repos, &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("note: README.md: edited in the repo"),
        "{}",
        run.stdout
    );

    // The template changes elsewhere in the file: a clean three-way merge.
    let f = f.edit(
        "spec/plans/permits.yaml",
        "permits:1.0.0}",
        "permits:1.0.0, replicas: 4}",
    );
    let run = diff(&f, &repos, &["--json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let report = json(&run);
    assert!(actions(&report).contains(&("README.md".into(), "modify".into())));
    let d = file_diff(&report, "README.md");
    assert!(d.contains("-Replicas: 1\n+Replicas: 4\n"), "{d}");
    assert!(
        !d.contains("-Intro rewritten by a person."),
        "the edit must survive: {d}"
    );
    assert!(!d.contains("<<<<<<<"), "{d}");
}

#[test]
fn a_clashing_edit_becomes_a_conflict_not_an_overwrite() {
    let f = with_readme();
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = render_into_git(&f, tmp.path());
    let app = repos.join("permits-app");
    let readme = std::fs::read_to_string(app.join("README.md")).unwrap();
    std::fs::write(
        app.join("README.md"),
        readme.replace("Replicas: 1", "Replicas: one"),
    )
    .unwrap();
    commit_all(&app, "a person edits the same line");
    let f = f.edit(
        "spec/plans/permits.yaml",
        "permits:1.0.0}",
        "permits:1.0.0, replicas: 4}",
    );
    let run = diff(&f, &repos, &["--plan", "permits"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(
        run.stdout.contains(
            "CONFLICT README.md (edited in the repo and changed by the spec, on the same lines)"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("+<<<<<<< live\n"), "{}", run.stdout);
    assert!(run.stdout.contains("+Replicas: 4\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .ends_with("1 repo, +0 ~1 -0, 1 conflict, 0 drift, 0 warnings\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_edit_to_a_managed_file_is_drift_and_is_restored() {
    let f = Fixture::valid();
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = render_into_git(&f, tmp.path());
    let infra = repos.join("infra");
    edit_and_commit(
        &infra,
        "apps/dev/permits/app/deployment.yaml",
        "kind: Deployment\nreplicas: 9\n",
        "hand edit in the cluster repo",
    );
    let run = diff(&f, &repos, &[]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let commit = regex::Regex::new(r"at [0-9a-f]{12} ").unwrap();
    insta::assert_snapshot!(
        "drift_text",
        commit.replace_all(&run.stdout, "at [COMMIT] ")
    );
}

#[test]
fn a_removed_components_files_are_pruned_only_when_unmodified() {
    let stack_with_extra = |f: Fixture| {
        f.edit(
            "spec/stacks/webapp-db.yaml",
            "components:\n",
            "components:\n  extra:\n    block: postgresql\n  spare:\n    block: postgresql\n",
        )
    };
    let f = stack_with_extra(Fixture::valid());
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = render_into_git(&f, tmp.path());
    let infra = repos.join("infra");
    edit_and_commit(
        &infra,
        "apps/dev/permits/spare/cluster.yaml",
        "kind: Cluster # tuned by hand\n",
        "tune the spare cluster",
    );
    let f = f.edit(
        "spec/stacks/webapp-db.yaml",
        "  extra:\n    block: postgresql\n  spare:\n    block: postgresql\n",
        "",
    );
    let run = diff(&f, &repos, &["--json", "--env", "dev"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let report = json(&run);
    let got = actions(&report);
    assert!(
        got.contains(&(
            "apps/dev/permits/extra/cluster.yaml".into(),
            "delete".into()
        )),
        "{got:?}"
    );
    assert!(!got.iter().any(|(p, _)| p.contains("spare/")), "{got:?}");
    let notes = report["changes"][0]["notes"].to_string();
    assert!(
        notes.contains("spare/cluster.yaml") && notes.contains("kept because it was edited"),
        "{notes}"
    );
    assert!(got.contains(&(
        "apps/dev/permits/kustomization.yaml".into(),
        "modify".into()
    )));
}

#[test]
fn a_removed_plans_directory_is_pruned() {
    let f = Fixture::valid();
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = render_into_git(&f, tmp.path());
    std::fs::remove_file(f.path().join("spec/plans/permits.yaml")).unwrap();
    let f = f.with(
        "spec/plans/other.yaml",
        crate::support::PLAN.replace("name: permits", "name: other"),
    );
    let report = json(&diff(&f, &repos, &["--json", "--env", "dev"]));
    let got = actions(&report);
    for gone in [
        "apps/dev/permits/app/deployment.yaml",
        "apps/dev/permits/db/cluster.yaml",
        "apps/dev/permits/.druppie-lock.yaml",
    ] {
        assert!(
            got.contains(&(gone.into(), "delete".into())),
            "{gone}: {got:?}"
        );
    }
    assert!(got.contains(&("apps/dev/other/app/deployment.yaml".into(), "create".into())));
}

#[test]
fn files_druppie_did_not_write_are_never_touched() {
    let f = Fixture::valid();
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = render_into_git(&f, tmp.path());
    let infra = repos.join("infra");
    std::fs::write(infra.join("apps/dev/permits/NOTES.md"), "ours\n").unwrap();
    std::fs::create_dir_all(infra.join("apps/dev/legacy")).unwrap();
    edit_and_commit(
        &infra,
        "apps/dev/legacy/app.yaml",
        "kind: ConfigMap\n",
        "people's files",
    );
    let run = diff(&f, &repos, &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());

    // Without a lock nothing is druppie's: a clashing file is a conflict.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(fresh.join("infra/apps/dev/permits/app")).unwrap();
    std::fs::write(
        fresh.join("infra/apps/dev/permits/app/deployment.yaml"),
        "kind: Deployment # mine\n",
    )
    .unwrap();
    git(&fresh.join("infra"), &["init", "-q"]);
    commit_all(&fresh.join("infra"), "someone else's deployment");
    let report = json(&diff(&f, &fresh, &["--json", "--env", "dev"]));
    let got = actions(&report);
    assert!(
        got.contains(&(
            "apps/dev/permits/app/deployment.yaml".into(),
            "conflict".into()
        )),
        "{got:?}"
    );
    let d = file_diff(&report, "apps/dev/permits/app/deployment.yaml");
    assert!(d.contains("+<<<<<<< live\n kind: Deployment # mine\n+=======\n+kind: Deployment\n+>>>>>>> rendered"), "{d}");
}

#[test]
fn a_spec_commit_alone_does_not_change_a_lock() {
    let f = Fixture::valid();
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = render_into_git(&f, tmp.path());
    // The spec becomes a git repository: locks now record its commit.
    git(f.path(), &["init", "-q"]);
    commit_all(f.path(), "spec");
    let run = diff(&f, &repos, &[]);
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn policy_errors_are_findings_and_exit_1() {
    let f = Fixture::valid().with(
        "spec/policies/replicas.yaml",
        "name: replicas-set\nmatch:\n  kinds: [Deployment]\n  envs: [dev]\nrule: has(object.spec) && object.spec.replicas >= 1\nseverity: error\nmessage: set spec.replicas\n",
    );
    let run = f.run(&["diff"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stdout.contains("error[replicas-set]: infra (dev):apps/dev/permits/app/deployment.yaml Deployment: set spec.replicas"),
        "{}",
        run.stdout
    );
    let report = json(&f.run(&["diff", "--json"]));
    assert_eq!(report["execution_plan"]["status"], "blocked");
    assert_eq!(report["summary"]["errors"], 1);
}

#[test]
fn a_bad_cel_rule_is_a_located_error() {
    let f = Fixture::valid().with(
        "spec/policies/broken.yaml",
        "name: broken\nmatch:\n  kinds: [Deployment]\nrule: >-\n  has(object.spec) &&\n    object.spec.replicas >>= 2\nseverity: error\nmessage: m\n",
    );
    let run = f.run(&["diff"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("bad_cel", run.stderr);
}

#[test]
fn rendered_yaml_that_does_not_parse_is_an_error_finding() {
    // Files are parsed when a policy may apply to them.
    let f = Fixture::valid()
        .with("templates/postgresql/infra/cluster.yaml.j2", "kind: Cluster\nspec: [1\n")
        .with(
            "spec/policies/clusters.yaml",
            "name: clusters\nmatch:\n  kinds: [Cluster]\nrule: has(object.spec)\nseverity: warning\nmessage: m\n",
        );
    let run = f.run(&["diff", "--env", "dev"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("error[yaml]: infra (dev):apps/dev/permits/db/cluster.yaml"),
        "{}",
        run.stdout
    );
}

#[test]
fn text_and_json_reports() {
    let f = with_readme();
    let run = f.run(&["diff", "--env", "dev"]);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!("text_report", run.transcript());
    let run = f.run(&["diff", "--env", "dev", "--json"]);
    insta::assert_json_snapshot!("json_report", json(&run));
}

#[test]
fn secret_input_values_never_reach_the_output() {
    let f = Fixture::valid()
        .edit(
            "bouwblokken/postgresql.md",
            "inputs:\n",
            "inputs:\n  admin_password: {type: string, secret: true, default: \"\"}\n",
        )
        .with(
            "templates/postgresql/infra/cluster.yaml.j2",
            "kind: Cluster\npassword: {{ admin_password }}\n",
        )
        .edit(
            "spec/plans/permits.yaml",
            "inputs:\n",
            "inputs:\n  db: {admin_password: s3cr3t-Pa55}\n",
        );
    for args in [&["diff"][..], &["diff", "--json"][..]] {
        let run = f.run(args);
        assert_eq!(run.code, 2, "{}", run.transcript());
        assert!(!run.stdout.contains("s3cr3t-Pa55"), "{}", run.stdout);
        assert!(run.stdout.contains("password: ********"), "{}", run.stdout);
    }
}
