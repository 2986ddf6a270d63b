//! `druppie render`: desired trees on disk, byte-identical for the same
//! inputs, and nothing written when a template fails.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::Fixture;

/// Every file under `dir`: relative path -> content.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir(dir)
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read(&p).expect("read"))
        })
        .collect()
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn render_example(out: &Path) -> crate::support::Run {
    let example = Fixture::example();
    example.run(&["render", "--out", out.to_str().expect("utf-8")])
}

#[test]
fn the_example_renders_into_project_and_infra_trees() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = render_example(&out);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let files = tree(&out);
    let listing: String = files
        .iter()
        .map(|(p, b)| format!("{p} ({} bytes)\n", b.len()))
        .collect();
    insta::assert_snapshot!("example_tree", listing);
    let deployment =
        String::from_utf8(files["infra/apps/prod/permits/app/deployment.yaml"].clone())
            .expect("utf-8");
    insta::assert_snapshot!("permits_prod_app_deployment", deployment);
    insta::assert_snapshot!(
        "permits_prod_kustomization",
        String::from_utf8_lossy(&files["infra/apps/prod/permits/kustomization.yaml"])
    );
}

#[test]
fn same_inputs_give_byte_identical_output() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert_eq!(render_example(&a).code, 0);
    assert_eq!(render_example(&b).code, 0);
    assert_eq!(tree(&a), tree(&b));
}

/// Renders a broken fixture: exit 1, the message, nothing written.
fn fails(f: &Fixture, needle: &str) -> String {
    let out = f.path().join("out");
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains(needle),
        "missing {needle:?} in:\n{}",
        run.stderr
    );
    assert!(!out.exists(), "nothing may be written");
    let leftovers: Vec<_> = std::fs::read_dir(f.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "no staging directory left behind");
    run.stderr
}

#[test]
fn an_unknown_variable_names_template_and_line() {
    let f = Fixture::valid().with(
        "templates/webapp-python/infra/deployment.yaml.j2",
        "kind: Deployment\nmetadata:\n  name: {{ plan }}-{{ component }}\n  replicas: {{ replica_count }}\n",
    );
    let err = fails(&f, "undefined value");
    assert!(
        err.contains("--> templates/webapp-python/infra/deployment.yaml.j2:4:"),
        "{err}"
    );
    assert!(err.contains("replicas: {{ replica_count }}"), "{err}");
}

#[test]
fn a_syntax_error_is_located() {
    let f = Fixture::valid().with(
        "templates/postgresql/infra/cluster.yaml.j2",
        "kind: Cluster\n{% if instances %}\n",
    );
    let err = fails(&f, "template syntax error");
    assert!(
        err.contains("templates/postgresql/infra/cluster.yaml.j2:"),
        "{err}"
    );
}

#[test]
fn includes_cannot_leave_the_block_or_partials() {
    let f = Fixture::valid()
        .with("templates/_partials/ok.j2", "ok\n")
        .with("templates/postgresql/infra/cluster.yaml.j2", "{% include \"_partials/ok.j2\" %}{% include \"webapp-python/infra/deployment.yaml.j2\" %}");
    fails(&f, "template not found");
    let f = Fixture::valid().with(
        "templates/postgresql/infra/cluster.yaml.j2",
        "{% include \"../../bouwblokken/postgresql.md\" %}",
    );
    fails(&f, "template not found");
}

#[test]
fn output_paths_may_not_escape() {
    let f = Fixture::valid().with("templates/postgresql/project/{{ '..' }}/evil.txt", "x");
    fails(&f, "may not hold `.` or `..` segments");
    let f = Fixture::valid().with("templates/postgresql/project/{{ '.GIT' }}/config", "x");
    fails(&f, "which is `.git`");
}

#[test]
fn a_runaway_loop_is_stopped() {
    let f = Fixture::valid().with(
        "templates/postgresql/infra/cluster.yaml.j2",
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\n",
    );
    fails(&f, "out of fuel");
}

#[test]
fn a_non_empty_output_directory_is_not_overwritten() {
    let f = Fixture::valid().with("out/keep.txt", "mine");
    let run = f.run(&[
        "render",
        "--out",
        f.path().join("out").to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stderr.contains("not empty"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(f.path().join("out/keep.txt")).expect("kept"),
        "mine"
    );
}
