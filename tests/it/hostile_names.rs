//! Names a hostile spec pull request could use to make druppie write
//! outside its directories, move the wrong refs or call the wrong forge
//! URL: every one is refused by `validate` with a located error, and
//! `render`, `diff` and `apply` write nothing.

use std::path::Path;
use std::process::Command;

use crate::support::{Fixture, PLATFORM, Run, git};

/// The shared platform with its project naming and branch spelled out,
/// for editing.
fn full_platform() -> String {
    PLATFORM.replace(
        "environments:",
        "projects:\n  naming: \"{{ plan }}-{{ component }}\"\n  branch: main\nenvironments:",
    )
}

fn with_platform(from: &str, to: &str) -> Fixture {
    Fixture::valid()
        .with("spec/platform.yaml", full_platform())
        .edit("spec/platform.yaml", from, to)
}

/// `validate` exits 1 with an error holding `message`, located at the
/// last line of `file` that holds `line_with` (`file:line:col`, the line
/// quoted, a caret), with a `help` line.
fn assert_refused(f: &Fixture, file: &str, line_with: &str, message: &str) -> Run {
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let text = std::fs::read_to_string(f.path().join(file)).expect("read spec file");
    let line = text
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| l.contains(line_with))
        .unwrap_or_else(|| panic!("{file} has no line with {line_with:?}"))
        + 1;
    let error = run
        .stderr
        .split("\n\n")
        .find(|block| block.contains(message))
        .unwrap_or_else(|| panic!("no error {message:?} in:\n{}", run.stderr));
    assert!(
        error.contains(&format!("--> {file}:{line}:")),
        "not located at {file}:{line}:\n{error}"
    );
    assert!(error.contains('^'), "no caret:\n{error}");
    assert!(error.contains("= help:"), "no help:\n{error}");
    run
}

#[test]
fn a_hostile_infra_repo_name_is_refused_at_validate() {
    for name in [
        "../../../X",
        "..",
        ".",
        "a/b",
        "admin/users/x",
        "x.git",
        "X.GIT",
        "x.wiki",
        "x.atom",
        "-x",
        "--upload-pack=x",
        ".github",
        "a..b",
        "a b",
        "a%2Fb",
        "café",
        &"a".repeat(101),
    ] {
        let f = with_platform("repo: infra", &format!("repo: {name:?}"));
        assert_refused(&f, "spec/platform.yaml", "repo:", "infra repo name");
    }
}

#[test]
fn a_hostile_default_branch_is_refused_at_validate() {
    for branch in [
        "--upload-pack=x",
        "-x",
        "../x",
        "a..b",
        "x.lock",
        "a.lock/b",
        "@{-1}",
        "a@{b",
        "HEAD",
        "@",
        "druppie/prod/permits",
        "a b",
        "a~1",
        "a:b",
        "a\\b",
        "a/",
        "/a",
        ".x",
        "x.",
    ] {
        for (key, line) in [
            ("infra.branch", "  branch: main\nprojects"),
            ("projects.branch", "  branch: main\nenvironments"),
        ] {
            let replaced = line.replacen("main", &format!("{branch:?}"), 1);
            let f = with_platform(line, &replaced);
            assert_refused(
                &f,
                "spec/platform.yaml",
                &format!("branch: {branch:?}"),
                &format!("`{key}`"),
            );
        }
    }
}

#[test]
fn a_naming_pattern_that_makes_bad_repo_names_is_refused_at_the_pattern() {
    for pattern in [
        "../{{ plan }}-{{ component }}",
        "{{ plan }}/{{ component }}",
        "{{ plan }}-{{ component }}.git",
        "{{ plan }}-{{ component }}.wiki",
        "-{{ plan }}-{{ component }}",
        "{{ plan }}..{{ component }}",
        "{{ tenant }}-{{ component }}",
        "{{ plan }}-{{ component",
    ] {
        let f = with_platform(
            "naming: \"{{ plan }}-{{ component }}\"",
            &format!("naming: {pattern:?}"),
        );
        assert_refused(
            &f,
            "spec/platform.yaml",
            "naming:",
            "project naming pattern",
        );
    }
}

#[test]
fn a_project_repo_name_too_long_for_its_plan_is_refused_at_the_plan() {
    let long = format!("p{}", "x".repeat(60));
    let f = Fixture::valid().edit(
        "spec/plans/permits.yaml",
        "name: permits",
        &format!("name: {long}"),
    );
    let run = assert_refused(
        &f,
        "spec/plans/permits.yaml",
        "name: p",
        "project repo name",
    );
    assert!(
        run.stderr.contains("component `db` is declared here"),
        "{}",
        run.stderr
    );
}

#[test]
fn two_target_repos_with_one_name_are_refused() {
    // The pattern ignores the component: the app's and the database's
    // project repos would be one repo.
    let f = with_platform(
        "naming: \"{{ plan }}-{{ component }}\"",
        "naming: \"{{ plan }}\"",
    )
    .with("templates/webapp-python/project/README.md", "app\n")
    .with("templates/postgresql/project/README.md", "db\n");
    assert_refused(
        &f,
        "spec/plans/permits.yaml",
        "name: permits",
        "is also the project repo of plan `permits`",
    );
    // A project repo named like the infra repo, in another case.
    let f = with_platform("repo: infra", "repo: Permits-App")
        .with("templates/webapp-python/project/README.md", "app\n");
    assert_refused(
        &f,
        "spec/plans/permits.yaml",
        "name: permits",
        "is also the infra repo",
    );
}

#[test]
fn hostile_environment_paths_are_refused_at_validate() {
    for path in [
        "/srv/apps",
        "../x",
        "apps/../../x",
        "apps/./dev",
        ".git/hooks",
        "apps/.GIT",
        "apps/git~1",
        "apps/.git.",
        "apps//dev",
        "apps\\dev",
        "apps/con",
        "apps/.gitmodules",
        "c:/apps",
        "",
    ] {
        let f = with_platform("path: apps/dev", &format!("path: {path:?}"));
        assert_refused(
            &f,
            "spec/platform.yaml",
            &format!("path: {path:?}"),
            "infra path",
        );
    }
}

#[test]
fn an_environment_path_inside_another_is_refused() {
    for (dev, prod, relation) in [
        ("apps", "apps/p", "lies inside"),
        ("apps/prod/x", "apps/prod", "holds"),
        ("apps/dev", "apps/dev", "is the same as"),
        ("apps/dev", "Apps/Dev/", "is the same as"),
        // Prod would land in plan `permits`'s directory of dev.
        ("apps/dev", "apps/dev/permits", "lies inside"),
    ] {
        let f = with_platform("path: apps/prod", &format!("path: {prod}")).edit(
            "spec/platform.yaml",
            "path: apps/dev",
            &format!("path: {dev}"),
        );
        let run = assert_refused(
            &f,
            "spec/platform.yaml",
            &format!("path: {prod}"),
            &format!("of environment `prod` {relation}"),
        );
        assert!(
            run.stderr.contains("environment `dev` renders here"),
            "{}",
            run.stderr
        );
    }
    // Siblings that only share a prefix are fine.
    let f = with_platform("path: apps/dev", "path: apps").edit(
        "spec/platform.yaml",
        "path: apps/prod",
        "path: apps2",
    );
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn hostile_block_ids_are_refused_at_validate() {
    for id in ["a..b", "x.", "con", "a/b", "../x", "_x", "X"] {
        let f = Fixture::valid().with(
            "bouwblokken/evil.md",
            format!(
                "---\nid: {id:?}\nname: Evil\ntype: service\nversion: 1.0.0\ndescription: d\n---\n"
            ),
        );
        let run = f.run(&["validate"]);
        assert_eq!(run.code, 1, "{id}: {}", run.transcript());
        assert!(run.stderr.contains("block id"), "{id}: {}", run.stderr);
        assert!(
            run.stderr.contains("--> bouwblokken/evil.md:2:"),
            "{id}: {}",
            run.stderr
        );
    }
}

#[test]
fn hostile_plan_component_environment_and_stack_names_are_refused() {
    let cases = [
        (
            "spec/plans/permits.yaml",
            "name: permits",
            "name: \"../x\"",
            "plan name",
        ),
        (
            "spec/stacks/webapp-db.yaml",
            "  db:\n",
            "  \"../db\":\n",
            "component name",
        ),
        (
            "spec/stacks/webapp-db.yaml",
            "name: webapp-db",
            "name: \"x/y\"",
            "stack name",
        ),
        (
            "spec/platform.yaml",
            "  dev:\n",
            "  \"Dev/..\":\n",
            "environment name",
        ),
    ];
    for (file, from, to, message) in cases {
        let f = Fixture::valid().edit(file, from, to);
        let run = f.run(&["validate"]);
        assert_eq!(run.code, 1, "{to}: {}", run.transcript());
        assert!(run.stderr.contains(message), "{to}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("--> {file}:")),
            "{to}: {}",
            run.stderr
        );
    }
}

/// Every entry under `dir`, recursively (relative paths).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .expect("read_dir")
            .filter_map(Result::ok)
        {
            let p = e.path();
            out.push(p.strip_prefix(dir).expect("under").display().to_string());
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn an_escaping_infra_repo_name_writes_nothing_in_render_diff_or_apply() {
    let s = crate::apply::setup("platform-team");
    let spec = s.f.path();
    std::fs::write(
        spec.join("spec/platform.yaml"),
        PLATFORM.replace("repo: infra", "repo: \"../../../X\""),
    )
    .expect("write");
    git(spec, &["commit", "-qam", "hostile infra name"]);
    let before = listing(s.tmp.path());
    let config = s.config.to_str().expect("utf-8");

    let out = s.tmp.path().join("out");
    let run = s.f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("infra repo name `../../../X`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--> spec/platform.yaml:2:"),
        "{}",
        run.stderr
    );
    let run = s.f.run(&["--config", config, "diff"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let run = s.f.run(&["--config", config, "apply", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("infra repo name `../../../X`"),
        "{}",
        run.stderr
    );

    assert_eq!(listing(s.tmp.path()), before, "nothing written");
    for dir in [s.tmp.path(), s.tmp.path().parent().expect("parent")] {
        assert!(!dir.join("X").exists() && !dir.join("X.git").exists());
    }
    assert_eq!(
        git(
            &s.forge().join("infra.git"),
            &["for-each-ref", "--format=%(refname)"]
        ),
        "refs/heads/main\n"
    );
}

#[test]
fn a_hostile_branch_writes_no_ref_on_apply() {
    let s = crate::apply::setup("platform-team");
    let spec = s.f.path();
    std::fs::write(
        spec.join("spec/platform.yaml"),
        PLATFORM.replace("branch: main", "branch: \"--upload-pack=touch${IFS}pwned\""),
    )
    .expect("write");
    git(spec, &["commit", "-qam", "hostile branch"]);
    let config = s.config.to_str().expect("utf-8");
    let run = s.f.run(&["--config", config, "apply", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("`infra.branch`"), "{}", run.stderr);
    assert!(!spec.join("pwned").exists() && !s.tmp.path().join("pwned").exists());
    assert_eq!(
        git(
            &s.forge().join("infra.git"),
            &["for-each-ref", "--format=%(refname)"]
        ),
        "refs/heads/main\n"
    );
    assert_eq!(
        listing(&s.forge())
            .iter()
            .filter(|p| !p.starts_with("infra.git"))
            .count(),
        0
    );
}

/// What `git check-ref-format --branch` says of `name`, asked outside
/// any repository (so `@{-1}` is not resolved against one).
fn git_accepts_branch(name: &str) -> bool {
    let dir = tempfile::tempdir().expect("tmp");
    Command::new("git")
        .args(["check-ref-format", "--branch", name])
        .current_dir(dir.path())
        .env("GIT_CEILING_DIRECTORIES", dir.path())
        .output()
        .expect("git check-ref-format")
        .status
        .success()
}

#[test]
fn branch_rules_agree_with_git_check_ref_format() {
    // druppie refuses two names git accepts: `@` (git's HEAD in revisions)
    // and druppie's own proposal branches.
    let stricter = ["@", "druppie/x", "druppie/prod/permits"];
    let cases = [
        "main",
        "master",
        "feature/x",
        "release/1.2.x",
        "a.b",
        "a-b_c",
        "é",
        "x@",
        "@x",
        "a/HEAD",
        "HEAD/x",
        "a./b",
        "refs/heads/x",
        "a/-b",
        "-x",
        "-",
        "--upload-pack=x",
        "../x",
        "a..b",
        "x.lock",
        "a.lock/b",
        "@{-1}",
        "a@{b",
        "@",
        "HEAD",
        ".x",
        "a/.x",
        "x.",
        "a/b.",
        "a/",
        "/a",
        "a//b",
        "a b",
        "a\tb",
        "a~b",
        "a^b",
        "a:b",
        "a?b",
        "a*b",
        "a[b",
        "a\\b",
        "a\u{7f}b",
        "a\u{1}b",
        "",
        "druppie/x",
        "druppie/prod/permits",
        "druppie",
        "x/druppie/y",
    ];
    for name in cases {
        let ours = druppie::spec::names::branch(name).is_ok();
        let git = git_accepts_branch(name);
        if stricter.contains(&name) {
            assert!(git && !ours, "{name:?}: git {git}, druppie {ours}");
        } else {
            assert_eq!(ours, git, "{name:?}: git says {git}, druppie says {ours}");
        }
    }
}

#[test]
fn an_escaping_project_repo_pattern_creates_no_repo_outside_the_forge() {
    let s = crate::apply::setup("platform-team");
    let spec = s.f.path();
    std::fs::write(
        spec.join("spec/platform.yaml"),
        format!("projects:\n  naming: \"../../{{{{ plan }}}}-{{{{ component }}}}\"\n{PLATFORM}"),
    )
    .expect("write");
    git(spec, &["commit", "-qam", "hostile naming pattern"]);
    let before = listing(s.tmp.path());
    let run = s.f.run(&[
        "--config",
        s.config.to_str().expect("utf-8"),
        "apply",
        "--yes",
    ]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("project naming pattern makes repo names such as `../../x-x`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--> spec/platform.yaml:2:"),
        "{}",
        run.stderr
    );
    assert_eq!(listing(s.tmp.path()), before, "nothing written");
    let parent = s.tmp.path().parent().expect("parent");
    assert!(!parent.join("permits-app.git").exists() && !parent.join("permits-db.git").exists());
}
