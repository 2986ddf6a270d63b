//! Rendered file names a hostile template could use to plant a `.git`
//! directory, a `.gitmodules` or a name a checkout reads differently:
//! each is refused at render time, naming the template and what was
//! rendered, before anything is written anywhere.

use std::path::Path;

use crate::support::{Fixture, git};

/// `render` refuses the template at `templates/postgresql/infra/<name>`:
/// exit 1, the template and the plan, component and environment named,
/// no output directory; `diff` refuses it too.
fn assert_render_refuses(name: &str, message: &str) {
    let f = Fixture::valid().with(&format!("templates/postgresql/infra/{name}"), "x: 1\n");
    let out = f.path().join("out");
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{name:?}: {}", run.transcript());
    assert!(run.stderr.contains(message), "{name:?}: {}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("--> templates/postgresql/infra/{name}")),
        "{name:?}: the template is not named:\n{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("plan `permits`, component `db`, environment `dev`"),
        "{name:?}: {}",
        run.stderr
    );
    assert!(!out.exists(), "{name:?}: nothing may be written");
    let run = f.run(&["diff"]);
    assert_eq!(run.code, 1, "{name:?}: {}", run.transcript());
}

#[test]
fn a_rendered_git_directory_in_any_spelling_is_refused() {
    for name in [
        ".git/config",
        ".GIT/hooks/post-checkout",
        ".Git/config",
        "{{ '.git' }}/config",
        "{{ '.G' ~ 'it' }}/config",
        "sub/.git/config",
        ".git./config",
        ".git /config",
        "git~1/config",
        "GIT~1/config",
        ".g\u{200c}it/config",
        ".\u{200e}git/config",
        ".gi\u{feff}t/config",
    ] {
        assert_render_refuses(
            name,
            "which is `.git` or a name a filesystem reads as `.git`",
        );
    }
}

#[test]
fn a_rendered_gitmodules_in_any_spelling_is_refused() {
    for name in [
        ".gitmodules",
        ".GITMODULES",
        "sub/.gitmodules",
        "gitmod~1",
        "GI7EBA~1",
        ".gitmodules.",
        ".gitm\u{200c}odules",
        "{{ '.gitmodules' }}",
    ] {
        assert_render_refuses(name, "`.gitmodules` (or a name a filesystem reads as it)");
    }
}

#[test]
fn rendered_names_a_checkout_reads_differently_are_refused() {
    for (name, message) in [
        ("con.yaml", "Windows device name"),
        ("NUL", "Windows device name"),
        ("a:b.yaml", "looks like a Windows drive"),
        ("ab:c.yaml", "control character or one of"),
        ("a|b.yaml", "control character or one of"),
        ("x.yaml.", "ends with a space or `.`"),
        ("x.yaml ", "ends with a space or `.`"),
        ("a\u{1}b.yaml", "control character"),
        ("a\\b.yaml", "holds a backslash"),
        ("{{ '..' }}/evil.yaml", "may not hold `.` or `..` segments"),
        ("{{ '' }}/x.yaml", "empty segment"),
        ("{{ 'a' * 300 }}.yaml", "longer than 255 bytes"),
        (".druppie-lock.yaml", "lock file druppie writes itself"),
    ] {
        assert_render_refuses(name, message);
    }
}

#[test]
fn a_template_name_that_is_not_utf8_is_refused_not_mangled() {
    use std::os::unix::ffi::OsStrExt as _;
    let f = Fixture::valid();
    let name = std::ffi::OsStr::from_bytes(b"f\xff.txt");
    std::fs::write(f.path().join("templates/postgresql/infra").join(name), "x").expect("write");
    let out = f.path().join("out");
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains(
            "`templates/postgresql/infra/f\u{fffd}.txt` has a name that is not valid UTF-8"
        ),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
    // `validate` sees it too: every walk over the spec is the same walk.
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
}

/// Every bare repo in the forge directory passes `git fsck --strict`.
fn fsck_all(forge: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(forge)
        .expect("forge")
        .filter_map(Result::ok)
    {
        git(&e.path(), &["fsck", "--strict"]);
        n += 1;
    }
    n
}

#[test]
fn a_refused_name_in_one_repo_stops_apply_before_any_repo_is_written() {
    let s = crate::apply::setup("platform-team");
    // The infra repo's dev change is fine; the app's project repo gets a
    // `.git` directory: nothing at all may be written.
    let s_f =
        s.f.path()
            .join("templates/webapp-python/project/{{ '.git' }}/hooks");
    std::fs::create_dir_all(&s_f).expect("mkdir");
    std::fs::write(s_f.join("post-checkout"), "#!/bin/sh\necho pwned\n").expect("write");
    git(s.f.path(), &["add", "-A"]);
    git(s.f.path(), &["commit", "-qm", "hostile template"]);
    let run = s.f.run(&[
        "--config",
        s.config.to_str().expect("utf-8"),
        "apply",
        "--yes",
    ]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("output path `.git/hooks/post-checkout`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("--> templates/webapp-python/project/{{ '.git' }}/hooks/post-checkout"),
        "{}",
        run.stderr
    );
    let repos: Vec<String> = std::fs::read_dir(s.forge())
        .expect("forge")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(repos, ["infra.git"], "no project repo created");
    assert_eq!(
        git(
            &s.forge().join("infra.git"),
            &["for-each-ref", "--format=%(refname) %(objectname)"]
        )
        .lines()
        .count(),
        1,
        "no commit or branch on the infra repo"
    );
    assert_eq!(fsck_all(&s.forge()), 1);
}

#[test]
fn unusual_but_valid_names_apply_and_every_repo_passes_fsck_strict() {
    let s = crate::apply::setup("platform-team");
    for (name, text) in [
        (".gitignore", "/target\n"),
        (".gitattributes", "*.sh text eol=lf\n"),
        (".github/workflows/ci.yaml", "on: push\n"),
        ("café.md", "☕\n"),
        ("a b.txt", "space\n"),
        ("{{ repo }}.txt", "named after the repo\n"),
    ] {
        let path =
            s.f.path()
                .join("templates/webapp-python/project")
                .join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    git(s.f.path(), &["add", "-A"]);
    git(s.f.path(), &["commit", "-qm", "unusual names"]);
    let run = s.f.run(&[
        "--config",
        s.config.to_str().expect("utf-8"),
        "apply",
        "--yes",
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let app = s.forge().join("permits-app.git");
    let files = git(&app, &["ls-tree", "-r", "--name-only", "-z", "main"]);
    for name in [
        ".gitignore",
        ".github/workflows/ci.yaml",
        "café.md",
        "a b.txt",
        "permits-app.txt",
    ] {
        assert!(
            files.split('\0').any(|f| f == name),
            "{name} missing: {files:?}"
        );
    }
    assert_eq!(fsck_all(&s.forge()), 2);
    for repo in ["infra.git", "permits-app.git"] {
        assert!(s.verify_all(&s.forge().join(repo)) > 0);
    }
}

#[test]
fn a_template_file_over_one_mib_is_refused_by_name_and_one_at_the_limit_renders() {
    let big = format!("# {}\n", "x".repeat(1024 * 1024 - 2));
    assert_eq!(big.len(), 1024 * 1024 + 1);
    let f = Fixture::valid().with("templates/postgresql/infra/big.yaml", &big);
    let out = f.path().join("out");
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("template file is larger than 1 MiB"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("--> templates/postgresql/infra/big.yaml"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "nothing may be written");

    let fits = &big[1..];
    let f = Fixture::valid().with("templates/postgresql/infra/big.yaml", fits);
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
}
