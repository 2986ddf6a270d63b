//! Pinned block versions (a canary): plans that pin a block render it as
//! it was at the commit of that version, the others follow the block as
//! it is; pins are checked, and history is read as hostile as a checkout.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{Fixture, Run, git};

const WEBAPP_V2: &str = "\
---
id: webapp-python
name: Python web app
type: service
version: 1.1.0
description: A FastAPI service.
capabilities: [web, api]
requires: [database]
inputs:
  image: {type: string, required: true}
  replicas: {type: integer, default: 1, minimum: 1, maximum: 20}
  database_secret: {type: string, default: \"\"}
  port: {type: integer, default: 8080}
outputs:
  url: \"http://{{ plan }}-{{ component }}.{{ namespace }}.svc:8000\"
---
# Python web app

Serves HTTP, on a port of its choosing.
";

const DEPLOYMENT: &str = "templates/webapp-python/infra/deployment.yaml.j2";
const V1_TEMPLATE: &str = "kind: Deployment\n# v1 of {{ plan }}\n";
const V2_TEMPLATE: &str = "kind: Deployment\n# v2 of {{ plan }}, port {{ port }}\n";

fn plan(name: &str, pin: Option<&str>) -> String {
    let mut text = format!(
        "name: {name}\nstack: webapp-db\nowner: team-{name}\nenvironments: [dev]\ninputs:\n  app: {{image: registry.example.org/{name}:1.0.0}}\n"
    );
    if let Some(version) = pin {
        text.push_str(&format!("blocks:\n  webapp-python: \"{version}\"\n"));
    }
    text
}

fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
}

/// The block at 1.0.0 committed, `between` run, then 1.1.0 (a new input,
/// a new template) committed; plans `alpha` and `beta` pin 1.0.0, `gamma`
/// follows the block.
fn canary_with(between: impl FnOnce(&Path)) -> Fixture {
    let f = Fixture::valid()
        .with(DEPLOYMENT, V1_TEMPLATE)
        .with("spec/plans/permits.yaml", plan("alpha", Some("1.0.0")))
        .with("spec/plans/beta.yaml", plan("beta", Some("1.0.0")))
        .with("spec/plans/gamma.yaml", plan("gamma", None));
    git(f.path(), &["init", "-q"]);
    commit_all(f.path(), "webapp-python 1.0.0");
    between(f.path());
    let f = f
        .with("bouwblokken/webapp-python.md", WEBAPP_V2)
        .with(DEPLOYMENT, V2_TEMPLATE);
    commit_all(f.path(), "webapp-python 1.1.0");
    f
}

fn canary() -> Fixture {
    canary_with(|_| {})
}

/// Every file `render` writes: path -> text.
fn render(f: &Fixture, out: &Path) -> BTreeMap<String, String> {
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let mut files = BTreeMap::new();
    collect(out, out, &mut files);
    files
}

fn collect(root: &Path, dir: &Path, into: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(root, &path, into);
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            let text = std::fs::read_to_string(&path).expect("utf-8");
            into.insert(rel.to_string_lossy().into_owned(), text);
        }
    }
}

fn deployment<'f>(files: &'f BTreeMap<String, String>, plan: &str) -> &'f str {
    &files[&format!("infra/apps/dev/{plan}/app/deployment.yaml")]
}

fn lock<'f>(files: &'f BTreeMap<String, String>, plan: &str) -> &'f str {
    &files[&format!("infra/apps/dev/{plan}/.druppie-lock.yaml")]
}

#[test]
fn pinned_plans_render_the_old_block_and_the_others_the_new() {
    let f = canary();
    let tmp = tempfile::tempdir().expect("tmp");
    let files = render(&f, &tmp.path().join("out"));
    assert_eq!(
        deployment(&files, "alpha"),
        "kind: Deployment\n# v1 of alpha\n"
    );
    assert_eq!(
        deployment(&files, "beta"),
        "kind: Deployment\n# v1 of beta\n"
    );
    assert_eq!(
        deployment(&files, "gamma"),
        "kind: Deployment\n# v2 of gamma, port 8080\n"
    );
    // The lock records the version each plan used.
    let locked = |plan| {
        lock(&files, plan)
            .lines()
            .find(|l| l.contains("block: \"webapp-python\""))
            .expect("webapp-python locked")
            .to_owned()
    };
    assert!(
        locked("alpha").contains("version: \"1.0.0\""),
        "{}",
        locked("alpha")
    );
    assert!(
        locked("beta").contains("version: \"1.0.0\""),
        "{}",
        locked("beta")
    );
    assert!(
        locked("gamma").contains("version: \"1.1.0\""),
        "{}",
        locked("gamma")
    );
}

#[test]
fn a_pinned_plan_takes_the_old_inputs_schema() {
    // `port` exists only in 1.1.0: a plan pinned to 1.0.0 that sets it is
    // told so, at the plan, with the pin named.
    let f = canary();
    let f = f.with(
        "spec/plans/permits.yaml",
        plan("alpha", Some("1.0.0")).replace(":1.0.0}", ":1.0.0, port: 9000}"),
    );
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("unknown input `port` for block `webapp-python`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("spec/plans/permits.yaml:6:"),
        "{}",
        run.stderr
    );
    // Followed (unpinned), the same input is fine.
    let f = f.with(
        "spec/plans/gamma.yaml",
        plan("gamma", None).replace(":1.0.0}", ":1.0.0, port: 9000}"),
    );
    let run = f.run(&["validate"]);
    assert!(
        !run.stderr.contains("spec/plans/gamma.yaml"),
        "{}",
        run.stderr
    );
}

#[test]
fn raising_one_pin_changes_only_that_plans_output() {
    let f = canary();
    let tmp = tempfile::tempdir().expect("tmp");
    let before = render(&f, &tmp.path().join("before"));
    let f = f.edit("spec/plans/beta.yaml", "\"1.0.0\"", "\"1.1.0\"");
    let after = render(&f, &tmp.path().join("after"));
    let changed: Vec<&String> = after
        .keys()
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert_eq!(
        changed,
        [
            "infra/apps/dev/beta/.druppie-lock.yaml",
            "infra/apps/dev/beta/app/deployment.yaml"
        ],
        "only beta changes"
    );
    assert_eq!(
        deployment(&after, "beta"),
        "kind: Deployment\n# v2 of beta, port 8080\n"
    );
    assert_eq!(before.len(), after.len());
}

fn diff(f: &Fixture, repos: &Path) -> Run {
    f.run(&["diff", "--json", "--repos", repos.to_str().expect("utf-8")])
}

#[test]
fn diff_sees_the_pinned_render_and_a_raised_pin() {
    let f = canary();
    let tmp = tempfile::tempdir().expect("tmp");
    let repos = tmp.path().join("repos");
    render(&f, &repos);
    for entry in std::fs::read_dir(&repos).expect("repos") {
        let dir = entry.expect("entry").path();
        git(&dir, &["init", "-q"]);
        commit_all(&dir, "first render");
    }
    // What render wrote is exactly what diff wants: nothing to change.
    let run = diff(&f, &repos);
    assert_eq!(run.code, 0, "{}", run.transcript());

    let f = f.edit("spec/plans/permits.yaml", "\"1.0.0\"", "\"1.1.0\"");
    let run = diff(&f, &repos);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let mut paths: Vec<&str> = report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|c| c["files"].as_array().expect("files").iter())
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "apps/dev/alpha/.druppie-lock.yaml",
            "apps/dev/alpha/app/deployment.yaml"
        ],
        "{report:#}"
    );
}

/// Paths of every file change in a JSON report, sorted.
fn changed_paths(run: &Run) -> Vec<String> {
    let report: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.transcript()));
    let mut paths: Vec<String> = report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .flat_map(|c| c["files"].as_array().expect("files").iter())
        .map(|f| f["path"].as_str().expect("path").to_owned())
        .collect();
    paths.sort_unstable();
    paths
}

#[test]
fn preview_of_a_raised_pin_shows_only_that_plan() {
    // Both revisions are exported from git and rendered: each resolves
    // its pins in the history of its own commit.
    let f = canary().edit("spec/plans/beta.yaml", "\"1.0.0\"", "\"1.1.0\"");
    commit_all(f.path(), "beta takes webapp-python 1.1.0");
    let run = f.run(&["preview", "--base", "HEAD~1", "--head", "HEAD", "--json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert_eq!(
        changed_paths(&run),
        [
            "apps/dev/beta/.druppie-lock.yaml",
            "apps/dev/beta/app/deployment.yaml"
        ]
    );
}

#[test]
fn a_pin_no_commit_satisfies_is_located_and_lists_the_versions() {
    let f = canary().edit("spec/plans/beta.yaml", "\"1.0.0\"", "\"0.9.0\"");
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains(
            "error: no commit of the spec repo has block `webapp-python` at version `0.9.0`"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--> spec/plans/beta.yaml:8:18"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("versions of `webapp-python` in the history (newest first): 1.1.0, 1.0.0"),
        "{}",
        run.stderr
    );
    // render stops too, and writes nothing.
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(!out.exists());
}

#[test]
fn a_pin_of_a_block_the_plan_does_not_use_is_an_error() {
    let f = canary().with(
        "spec/plans/beta.yaml",
        format!("{}  redis: \"1.0.0\"\n", plan("beta", Some("1.0.0"))),
    );
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains(
            "error: plan `beta` pins block `redis`, which its stack `webapp-db` does not use"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--> spec/plans/beta.yaml:9:3"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_pin_outside_a_git_repository_is_an_error() {
    let f = Fixture::valid().with("spec/plans/permits.yaml", plan("alpha", Some("1.0.0")));
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("the spec is not in a git repository, so a pinned version cannot be read"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--> spec/plans/permits.yaml:8:18"),
        "{}",
        run.stderr
    );
    // Without pins, the same spec needs no git at all.
    let f = f.with("spec/plans/permits.yaml", plan("alpha", None));
    assert_eq!(f.run(&["validate"]).code, 0);
}

fn refused(f: &Fixture, says: &str) {
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains(says), "{}", run.stderr);
    assert!(
        run.stderr.contains("--> spec/plans/permits.yaml:8:18"),
        "{}",
        run.stderr
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(!out.exists(), "nothing written");
    assert!(!run.stdout.contains("root:"), "{}", run.stdout);
}

#[test]
fn a_symlink_in_the_pinned_templates_history_is_refused() {
    let f = canary_with(|dir| {
        // 1.0.0 once had a template that was a link to a file outside.
        let link = dir.join("templates/webapp-python/infra/passwd.yaml");
        std::os::unix::fs::symlink("/etc/passwd", &link).expect("symlink");
        commit_all(dir, "a link, still 1.0.0");
        std::fs::remove_file(&link).expect("remove link");
    });
    refused(
        &f,
        "`templates/webapp-python/infra/passwd.yaml` is a symbolic link: a spec repo may hold no symbolic links, in its history either",
    );
}

/// `base` with `entry` (an ls-tree line) added at `path` (directories).
fn tree_with(dir: &Path, base: &str, path: &[&str], entry: &str) -> String {
    let listing = git(dir, &["ls-tree", base]);
    let mut lines: Vec<String> = listing.lines().map(str::to_owned).collect();
    match path.split_first() {
        None => lines.push(entry.to_owned()),
        Some((first, rest)) => {
            let line = lines
                .iter_mut()
                .find(|l| l.ends_with(&format!("\t{first}")))
                .expect("directory on the path");
            let sub = line.split_whitespace().nth(2).expect("oid").to_owned();
            let new = tree_with(dir, &sub, rest, entry);
            *line = format!("040000 tree {new}\t{first}");
        }
    }
    let input = lines.join("\n") + "\n";
    let mut child = std::process::Command::new("git")
        .arg("mktree")
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git mktree");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("mktree");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[test]
fn a_dotdot_name_in_the_pinned_templates_history_is_refused() {
    let f = canary_with(|dir| {
        // A commit no checkout could make: an entry named `..` in the
        // 1.0.0 templates, written with git's plumbing.
        std::fs::write(dir.join("evil"), "kind: Secret\n").expect("write");
        let blob = git(dir, &["hash-object", "-w", "evil"]);
        std::fs::remove_file(dir.join("evil")).expect("remove");
        let head = git(dir, &["rev-parse", "HEAD^{tree}"]);
        let tree = tree_with(
            dir,
            head.trim(),
            &["templates", "webapp-python", "infra"],
            &format!("100644 blob {}\t..", blob.trim()),
        );
        let commit = git(dir, &["commit-tree", &tree, "-p", "HEAD", "-m", "hostile"]);
        git(dir, &["update-ref", "refs/heads/main", commit.trim()]);
    });
    refused(
        &f,
        "`templates/webapp-python/infra/..` has the name `..`, which no checkout can hold",
    );
}

#[test]
fn the_daemon_resolves_pins_in_its_own_clone_of_the_spec() {
    // The spec repo is a bare repo on the forge; a person bumps the block
    // to 1.1.0 and pins the plan to 1.0.0 in one push.
    let s = crate::serve::serve_setup();
    let work = s.tmp.path().join("spec-work");
    let block = work.join("bouwblokken/webapp-python.md");
    let text = std::fs::read_to_string(&block).expect("block");
    std::fs::write(&block, text.replace("version: 1.0.0", "version: 1.1.0")).expect("block");
    std::fs::write(
        work.join(DEPLOYMENT),
        "kind: Deployment\nimage: {{ image }}\n# 1.1.0\n",
    )
    .expect("template");
    let plan = work.join("spec/plans/permits.yaml");
    let text = std::fs::read_to_string(&plan).expect("plan");
    std::fs::write(
        &plan,
        format!("{text}blocks:\n  webapp-python: \"1.0.0\"\n"),
    )
    .expect("plan");
    commit_all(&work, "webapp-python 1.1.0; permits stays on 1.0.0");
    git(&work, &["push", "-q", "origin", "main"]);

    let d = crate::serve::Daemon::start(&s);
    assert_eq!(
        d.state("permits", "dev")["state"],
        "in-sync",
        "{}",
        d.state("permits", "dev")
    );
    let infra = s.forge().join("infra.git");
    let deployment = git(
        &infra,
        &["show", "main:apps/dev/permits/app/deployment.yaml"],
    );
    assert!(!deployment.contains("1.1.0"), "{deployment}");
    assert!(
        deployment.starts_with("kind: Deployment\nimage: "),
        "{deployment}"
    );
    let lock = git(
        &infra,
        &["show", "main:apps/dev/permits/.druppie-lock.yaml"],
    );
    assert!(
        lock.contains("block: \"webapp-python\", version: \"1.0.0\""),
        "{lock}"
    );
    drop(d);
}

/// The canary on a plain-git forge: `apply` commits what each plan's pin
/// renders, and raising one pin changes only that plan in the infra repo.
#[test]
fn a_canary_is_applied_as_pinned_and_a_pin_is_raised_plan_by_plan() {
    let f = canary();
    let tmp = tempfile::tempdir().expect("tmp");
    let config = crate::support::empty_forge_config(tmp.path());
    let apply = |f: &Fixture| {
        let run = f.run(&[
            "--config",
            config.to_str().expect("utf-8"),
            "apply",
            "--yes",
        ]);
        assert_eq!(run.code, 0, "{}", run.transcript());
    };
    let infra = tmp.path().join("forge/infra.git");
    let live = |plan: &str| {
        git(
            &infra,
            &["show", &format!("main:apps/dev/{plan}/app/deployment.yaml")],
        )
    };
    apply(&f);
    assert_eq!(live("alpha"), "kind: Deployment\n# v1 of alpha\n");
    assert_eq!(live("beta"), "kind: Deployment\n# v1 of beta\n");
    assert_eq!(
        live("gamma"),
        "kind: Deployment\n# v2 of gamma, port 8080\n"
    );
    // alpha moves to 1.1.0; beta stays on its pin.
    let f = f.with("spec/plans/permits.yaml", plan("alpha", Some("1.1.0")));
    commit_all(f.path(), "alpha on webapp-python 1.1.0");
    apply(&f);
    assert_eq!(
        live("alpha"),
        "kind: Deployment\n# v2 of alpha, port 8080\n"
    );
    assert_eq!(live("beta"), "kind: Deployment\n# v1 of beta\n");
    let log = git(&infra, &["log", "--format=%s", "-1", "main"]);
    assert_eq!(log.trim(), "druppie: alpha in dev");
}
