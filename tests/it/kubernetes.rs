//! Rendered example manifests are valid Kubernetes: checked with
//! `kubernetes-validate --strict` (PyPI; the official OpenAPI schemas).
//! `.ci/run` installs it; without it these tests fail and say so.

use std::path::Path;
use std::process::Command;

use crate::support::Fixture;

fn validate(dir: &Path, files: &[String]) -> (bool, String) {
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(files)
        .current_dir(dir)
        .output()
        .expect("kubernetes-validate is needed: pip install kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn rendered_example_manifests_pass_strict_schema_validation() {
    let f = Fixture::example();
    let out = f.path().join("out");
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let infra = out.join("infra");
    let mut files: Vec<String> = walkdir::WalkDir::new(&infra)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(&infra)
                .expect("under infra")
                .to_string_lossy()
                .into_owned()
        })
        // Kustomize's own config and druppie's lock are not API objects.
        .filter(|p| p.ends_with(".yaml") && !p.ends_with("kustomization.yaml"))
        .filter(|p| !p.ends_with(".druppie-lock.yaml"))
        .collect();
    files.sort();
    let (ok, text) = validate(&infra, &files);
    assert!(ok, "{text}");
    for kind in [
        "deployment",
        "service",
        "ingress",
        "networkpolicy",
        "namespace",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}/")),
            "no {kind} validated:\n{text}"
        );
    }
    // Every document either passed or is a custom resource without a
    // built-in schema (CloudNativePG's Cluster).
    for line in text.lines() {
        assert!(
            line.contains(" passed for resource ")
                || line.contains("Couldn't find schema for kind Cluster"),
            "{line}"
        );
    }
}

#[test]
fn the_validator_rejects_an_unknown_field() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(
        tmp.path().join("bad.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  portz: []\n",
    )
    .expect("write");
    let (ok, text) = validate(tmp.path(), &["bad.yaml".to_owned()]);
    assert!(!ok, "{text}");
}
