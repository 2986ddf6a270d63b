//! Symbolic links in a spec repo: druppie reads nothing outside the spec,
//! so a link anywhere in `bouwblokken/`, `skills/`, `templates/` or
//! `spec/` (or one of those directories being a link) is an error that
//! names it, whether the spec is a checkout on disk or a clone the daemon
//! made of a remote spec repo.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::support::{Fixture, git};

const SECRET: &str = "TOPSECRET-do-not-leak";

/// A directory outside the spec with what a link could point at: a
/// block's template tree, a catalog, spec files, and a secret.
fn outside() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    let put = |rel: &str, text: &str| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    put("secret.txt", SECRET);
    put("infra/cluster.yaml.j2", &format!("leak: {SECRET}\n"));
    put(
        "postgresql/infra/cluster.yaml.j2",
        &format!("leak: {SECRET}\n"),
    );
    put("ok.j2", &format!("{SECRET}\n"));
    put("plans/permits.yaml", crate::support::PLAN);
    put("platform.yaml", crate::support::PLATFORM);
    put("webapp-python.md", crate::support::WEBAPP);
    put(
        "planner.md",
        "---\nid: planner\nname: P\ndescription: d\n---\nbody\n",
    );
    dir
}

/// Replaces `rel` in the spec (a file or directory) by a link to `target`.
fn link(f: &Fixture, rel: &str, target: &Path) {
    let p = f.path().join(rel);
    if p.is_dir() {
        std::fs::remove_dir_all(&p).expect("remove dir");
    } else if p.exists() {
        std::fs::remove_file(&p).expect("remove file");
    }
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    symlink(target, p).expect("symlink");
}

/// The cases: (link in the spec, where it points, relative to `outside`).
fn cases(out: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("templates", out.to_owned()),
        ("templates/postgresql", out.to_owned()),
        ("templates/postgresql/infra", out.join("infra")),
        ("templates/postgresql/infra/nested", out.join("infra")),
        (
            "templates/postgresql/infra/cluster.yaml.j2",
            out.join("secret.txt"),
        ),
        ("templates/_partials", out.to_owned()),
        ("templates/unused-block/infra", out.join("infra")),
        ("bouwblokken", out.to_owned()),
        ("bouwblokken/webapp-python.md", out.join("webapp-python.md")),
        ("skills", out.to_owned()),
        ("spec", out.to_owned()),
        ("spec/plans", out.join("plans")),
        ("spec/plans/permits.yaml", out.join("plans/permits.yaml")),
        ("spec/platform.yaml", out.join("platform.yaml")),
        ("spec/stacks/notes", out.to_owned()),
    ]
}

#[test]
fn a_symbolic_link_anywhere_in_the_spec_is_refused_by_validate_render_and_diff() {
    let out = outside();
    for (rel, target) in cases(out.path()) {
        let f = Fixture::valid().with(
            "skills/planner.md",
            "---\nid: planner\nname: P\ndescription: d\n---\nbody\n",
        );
        link(&f, rel, &target);
        let run = f.run(&["validate"]);
        assert_eq!(run.code, 1, "{rel}: {}", run.transcript());
        let message =
            format!("error: `{rel}` is a symbolic link: a spec repo may hold no symbolic links");
        assert!(run.stderr.contains(&message), "{rel}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("--> {rel}\n")),
            "{rel}: {}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains("= help: druppie reads nothing outside the spec repo"),
            "{rel}: {}",
            run.stderr
        );

        let dest = f.path().join("out");
        for run in [
            f.run(&["render", "--out", dest.to_str().expect("utf-8")]),
            f.run(&["diff"]),
        ] {
            assert_eq!(run.code, 1, "{rel}: {}", run.transcript());
            assert!(run.stderr.contains(&message), "{rel}: {}", run.stderr);
            assert!(
                !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
                "{rel}: leaked"
            );
        }
        assert!(!dest.exists(), "{rel}: nothing rendered");
    }
}

#[test]
fn a_link_to_a_file_inside_the_spec_is_refused_too() {
    let f = Fixture::valid();
    symlink("permits.yaml", f.path().join("spec/plans/copy.yaml")).expect("symlink");
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("`spec/plans/copy.yaml` is a symbolic link"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_catalog_listing_reports_a_linked_catalog_and_shows_nothing_from_it() {
    let out = outside();
    let f = Fixture::valid();
    link(&f, "skills", out.path());
    let run = f.run(&["skills", "--json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(run.stdout.trim(), "[]", "nothing read through the link");
    assert!(
        run.stderr.contains("`skills` is a symbolic link"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("planner"));
}

#[test]
fn a_spec_reached_through_a_link_is_read() {
    // The operator's own path to the spec may be a link; only links inside
    // the spec are refused.
    let f = Fixture::valid();
    let tmp = tempfile::tempdir().expect("tmp");
    let alias = tmp.path().join("spec-alias");
    symlink(f.path(), &alias).expect("symlink");
    let run = crate::support::druppie(
        tmp.path(),
        &["--spec", alias.to_str().expect("utf-8"), "validate"],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn a_link_committed_to_a_remote_spec_repo_is_refused_on_the_daemons_clone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = outside();
    // A spec repo whose template directory is a committed link pointing
    // outside any checkout of it.
    let f = Fixture::valid();
    link(&f, "templates/postgresql/infra", &out.path().join("infra"));
    git(f.path(), &["init", "-q"]);
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-qm", "spec with a link"]);
    let tree = git(f.path(), &["ls-tree", "-r", "HEAD", "templates/postgresql"]);
    assert!(
        tree.starts_with("120000 blob"),
        "committed as a link: {tree}"
    );
    let remote = tmp.path().join("spec.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            f.path().to_str().expect("utf-8"),
            remote.to_str().expect("utf-8"),
        ],
    );

    // The daemon's way in: clone and check out the remote, then load.
    let key = crate::support::keygen(tmp.path());
    let source = crate::support::remote_spec(&remote, &tmp.path().join("cache"), &key);
    let cache = druppie::apply::Cache::new(&tmp.path().join("cache"), Vec::new());
    let revision = source.refresh(&cache).expect("clone and check out");
    assert!(revision.commit.is_some());
    let checkout = source.root();
    assert!(
        std::fs::symlink_metadata(checkout.join("templates/postgresql/infra"))
            .expect("checked out")
            .file_type()
            .is_symlink()
    );
    let spec =
        druppie::spec::load(checkout, &druppie::spec::LoadOptions::default()).expect("loads");
    let diags = druppie::spec::validate(spec).expect_err("a link makes the spec invalid");
    let refused: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == druppie::spec::Severity::Error)
        .map(|d| format!("{} at {}", d.message, d.location.path))
        .collect();
    assert!(
        refused.iter().any(|d| d
            == "`templates/postgresql/infra` is a symbolic link: a spec repo may hold no symbolic links at templates/postgresql/infra"),
        "{refused:?}"
    );
    // The binary says the same of that checkout.
    let run = crate::support::druppie(
        tmp.path(),
        &["--spec", checkout.to_str().expect("utf-8"), "validate"],
    );
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(!run.stderr.contains(SECRET));
}

#[test]
fn a_link_in_the_example_infra_directory_is_not_followed_by_diff() {
    // `diff` reads the spec checkout's `infra-example/` as the live infra
    // repo: a link there must not show an outside file in the diff.
    let out = outside();
    let deployed = out.path().join("deployed/dev/permits/db");
    std::fs::create_dir_all(&deployed).expect("mkdir");
    std::fs::write(deployed.join("cluster.yaml"), SECRET).expect("write");
    let f = Fixture::valid().with("infra-example/README.md", "# infra\n");
    symlink(
        out.path().join("deployed"),
        f.path().join("infra-example/apps"),
    )
    .expect("symlink");
    let run = f.run(&["diff"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
        "leaked:\n{}",
        run.transcript()
    );
    assert!(
        run.stderr
            .contains("infra:apps: is a symbolic link; druppie follows no links"),
        "{}",
        run.stderr
    );

    // The whole directory being a link: it is not used at all.
    let f = Fixture::valid();
    symlink(out.path(), f.path().join("infra-example")).expect("symlink");
    std::fs::create_dir_all(out.path().join("apps/dev/permits/db")).expect("mkdir");
    std::fs::write(out.path().join("apps/dev/permits/db/cluster.yaml"), SECRET).expect("write");
    let run = f.run(&["diff"]);
    assert!(
        !run.stdout.contains(SECRET) && !run.stderr.contains(SECRET),
        "leaked:\n{}",
        run.transcript()
    );
}

#[test]
fn a_link_committed_to_the_spec_is_refused_by_preview_at_either_revision() {
    // preview reads both revisions from git: a committed link is written
    // as a link and refused like one in a checkout, never read through.
    let out = outside();
    let f = Fixture::valid();
    git(f.path(), &["init", "-q"]);
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-qm", "base"]);
    link(
        &f,
        "templates/postgresql/infra/cluster.yaml.j2",
        &out.path().join("secret.txt"),
    );
    git(f.path(), &["add", "-A"]);
    git(f.path(), &["commit", "-qm", "a link"]);
    for args in [
        ["preview", "--base", "HEAD~1", "--head", "HEAD"],
        ["preview", "--base", "HEAD", "--head", "HEAD~1"],
    ] {
        let run = f.run(&args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.transcript());
        assert!(
            run.stderr
                .contains("`templates/postgresql/infra/cluster.yaml.j2` is a symbolic link"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
    }
}
