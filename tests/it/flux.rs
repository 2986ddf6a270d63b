//! Flux plan by plan: the layout `apply` writes into an infra repo
//! (`apps/<env>/<plan>/` and `clusters/<env>/druppie/`), built by the
//! real `kubectl kustomize` (kustomize v5), the Flux Kustomizations
//! checked against Flux's CRD schema (`@kubernetes-models/flux-cd`, which
//! `.ci/run` installs next to Prism, through `tests/flux-validate.mjs`),
//! and what Flux applies of each plan against `kubernetes-validate
//! --strict`. Then the list of Flux directories through one push of
//! several commits, proposals merged one after the other, a removed plan,
//! and the spec rules: `depends_on` and the Flux directory's path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::apply::{Setup, setup};
use crate::promotion::merge;
use crate::support::{Fixture, copy_dir, example_spec, git, on_an_empty_forge, repo_root};

/// Runs `kubectl kustomize dir`; panics with its message when it fails.
fn kustomize(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl (with kustomize v5) is needed on the PATH");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where `.ci/run` installs the npm packages the tests use.
fn node_modules() -> PathBuf {
    let root = match std::env::var("DRUPPIE_CONTRACTS") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(std::env::var("HOME").expect("HOME is set"))
            .join(".cache/druppie-contracts"),
    };
    root.join("node_modules")
}

/// `tests/flux-validate.mjs` on `files`: (passed, what it said).
fn flux_validate(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("node")
        .arg(repo_root().join("tests/flux-validate.mjs"))
        .arg(node_modules())
        .args(files)
        .output()
        .expect("node is needed (and `.ci/run`'s npm packages)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The commit `rev` of the repo at `repo`, as files in a new directory.
fn export(repo: &Path, rev: &str, into: &Path) {
    std::fs::create_dir_all(into).expect("mkdir");
    let archive = into.with_extension("tar");
    git(
        repo,
        &[
            "archive",
            "--format=tar",
            "-o",
            archive.to_str().expect("utf-8"),
            rev,
        ],
    );
    let out = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(into)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `resources` of a kustomization file.
fn resources(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_saphyr::from_str(&text).expect("a kustomization");
    doc["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a path").to_owned())
        .collect()
}

/// `metadata.name` of every document of kind `kind` in a YAML stream.
fn names_of(stream: &str, kind: &str) -> BTreeSet<String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(stream).expect("YAML documents");
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| d["metadata"]["name"].as_str().expect("name").to_owned())
        .collect()
}

/// The example spec of this repository, in a git repo; an empty
/// plain-git forge (no repo at all yet), a signing key and a config.
/// Every environment deploys and every plan goes to all its environments
/// at once, so one run writes the whole layout on `main`.
fn example_on_an_empty_forge() -> (Setup, Vec<(String, Vec<String>)>) {
    let tmp = tempfile::tempdir().expect("tmp");
    let f = example_spec()
        .edit(
            "spec/platform.yaml",
            "  test:\n    trust: propose",
            "  test:\n    trust: deploy",
        )
        .edit(
            "spec/platform.yaml",
            "  prod:\n    trust: propose",
            "  prod:\n    trust: deploy",
        )
        .edit(
            "spec/plans/permits.yaml",
            "environments: [dev, test, prod]",
            "environments: [dev, test, prod]\npromote: {test: parallel, prod: parallel}",
        )
        .edit(
            "spec/plans/docs-portal.yaml",
            "environments: [dev, prod]",
            "environments: [dev, prod]\npromote: {prod: parallel}",
        );
    let plans = vec![
        ("docs-portal".to_owned(), vec!["dev".into(), "prod".into()]),
        ("druppie".to_owned(), vec!["prod".into()]),
        (
            "permits".to_owned(),
            vec!["dev".into(), "test".into(), "prod".into()],
        ),
    ];
    let config = on_an_empty_forge(tmp.path(), &f);
    (Setup { tmp, f, config }, plans)
}

#[test]
fn first_run_on_an_empty_forge_writes_a_layout_flux_builds() {
    let (s, plans) = example_on_an_empty_forge();
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    let infra = s.forge().join("infra.git");
    let tree = s.tmp.path().join("main");
    export(&infra, "main", &tree);

    // The layout: per plan and environment, its directory and its Flux
    // directory; per environment, the list; nothing of Flux's own.
    let envs = ["dev", "test", "prod"];
    for env in envs {
        let here: Vec<&str> = plans
            .iter()
            .filter(|(_, e)| e.iter().any(|x| x == env))
            .map(|(p, _)| p.as_str())
            .collect();
        let druppie = tree.join(format!("clusters/{env}/druppie"));
        assert_eq!(
            resources(&druppie.join("kustomization.yaml")),
            here,
            "{env}"
        );
        for plan in &here {
            assert!(
                tree.join(format!("apps/{env}/{plan}/kustomization.yaml"))
                    .is_file()
            );
            for file in ["sync.yaml", "kustomization.yaml", ".druppie-lock.yaml"] {
                assert!(
                    druppie.join(plan).join(file).is_file(),
                    "{env} {plan} {file}"
                );
            }
        }
        let entries: Vec<String> = std::fs::read_dir(tree.join(format!("clusters/{env}")))
            .expect("clusters/<env>")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            entries,
            ["druppie"],
            "druppie writes only its own directory"
        );
    }

    // kustomize builds every plan directory and every list; an
    // infra-example-style cluster directory that adds the one line
    // `- druppie` builds too, with every plan's Kustomization in it.
    let started = Instant::now();
    let mut builds = 0;
    let mut flux_streams = Vec::new();
    for env in envs {
        for (plan, in_envs) in &plans {
            if in_envs.iter().any(|e| e == env) {
                kustomize(&tree.join(format!("apps/{env}/{plan}")));
                builds += 1;
            }
        }
        let listed = kustomize(&tree.join(format!("clusters/{env}/druppie")));
        builds += 1;
        let expected: BTreeSet<String> = plans
            .iter()
            .filter(|(_, e)| e.iter().any(|x| x == env))
            .map(|(p, _)| format!("{p}-{env}"))
            .collect();
        assert_eq!(names_of(&listed, "Kustomization"), expected, "{env}");
        let stream = s.tmp.path().join(format!("flux-{env}.yaml"));
        std::fs::write(&stream, &listed).expect("write");
        flux_streams.push(stream);

        let example = repo_root().join(format!("infra-example/clusters/{env}"));
        let cluster = tree.join(format!("clusters/{env}"));
        for entry in std::fs::read_dir(&example).expect("infra-example cluster") {
            let entry = entry.expect("entry");
            let to = cluster.join(entry.file_name());
            if entry.file_name() == "druppie" {
                continue;
            }
            if entry.file_type().expect("type").is_dir() {
                copy_dir(&entry.path(), &to);
            } else {
                std::fs::copy(entry.path(), &to).expect("copy");
            }
        }
        let kustomization =
            std::fs::read_to_string(cluster.join("kustomization.yaml")).expect("read");
        assert!(kustomization.contains("\n  - druppie\n"), "{kustomization}");
        let built = kustomize(&cluster);
        builds += 1;
        let all = names_of(&built, "Kustomization");
        assert!(all.is_superset(&expected), "{env}: {all:?}");
        assert!(
            all.contains("flux-system") && all.contains("infra-configs"),
            "{all:?}"
        );
    }
    let kustomize_took = started.elapsed();

    // Every Flux Kustomization druppie wrote passes Flux's CRD schema.
    let started = Instant::now();
    let (ok, said) = flux_validate(&flux_streams);
    let crd_took = started.elapsed();
    assert!(ok, "{said}");
    assert_eq!(
        said.lines().filter(|l| l.starts_with("ok ")).count(),
        6,
        "{said}"
    );

    // What Flux applies of each plan (its directory, with the plan's
    // namespace as `targetNamespace`) passes `kubernetes-validate
    // --strict`, and keeps every namespaced object in that namespace.
    let started = Instant::now();
    let mut files = Vec::new();
    for env in envs {
        let listed =
            std::fs::read_to_string(s.tmp.path().join(format!("flux-{env}.yaml"))).expect("read");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&listed).expect("YAML");
        for doc in docs {
            let spec = &doc["spec"];
            let path = spec["path"]
                .as_str()
                .expect("path")
                .trim_start_matches("./");
            let namespace = spec["targetNamespace"].as_str().expect("targetNamespace");
            let name = doc["metadata"]["name"].as_str().expect("name");
            let overlay = tree.join("flux-applies").join(name);
            std::fs::create_dir_all(&overlay).expect("mkdir");
            std::fs::write(
                overlay.join("kustomization.yaml"),
                format!(
                    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {namespace}\nresources:\n  - ../../{path}\n"
                ),
            )
            .expect("overlay");
            // The target namespace is the one the plan's directory makes.
            assert_eq!(
                names_of(&kustomize(&tree.join(path)), "Namespace")
                    .into_iter()
                    .collect::<Vec<_>>(),
                [namespace],
                "{name}"
            );
            let built = kustomize(&overlay);
            let objects: Vec<Value> = serde_saphyr::from_multiple(&built).expect("YAML");
            for o in &objects {
                if let Some(ns) = o["metadata"]["namespace"].as_str() {
                    assert_eq!(ns, namespace, "{name}: {o}");
                }
            }
            assert_eq!(
                names_of(&built, "Namespace")
                    .into_iter()
                    .collect::<Vec<_>>(),
                [namespace]
            );
            let file = s.tmp.path().join(format!("{name}.yaml"));
            std::fs::write(&file, built).expect("write");
            files.push(file.to_string_lossy().into_owned());
        }
    }
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(&files)
        .output()
        .expect("kubernetes-validate is needed: pip install kubernetes-validate");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let validate_took = started.elapsed();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in text.lines() {
        assert!(
            line.contains(" passed for resource ")
                || line.contains("Couldn't find schema for kind Cluster"),
            "{line}"
        );
    }
    eprintln!(
        "flux layout: {builds} kustomize builds in {kustomize_took:?}, CRD check in {crd_took:?}, {} plan builds + kubernetes-validate in {validate_took:?}",
        files.len()
    );
}

#[test]
fn the_flux_schema_check_rejects_a_wrong_kustomization() {
    let tmp = tempfile::tempdir().expect("tmp");
    let good = "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: p-dev\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./apps/dev/p\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n";
    let cases = [
        ("good.yaml", good.to_owned(), None),
        (
            "prune.yaml",
            good.replace("prune: true", "prune: \"yes\""),
            Some("spec/prune must be boolean"),
        ),
        (
            "source.yaml",
            good.replace(
                "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
                "",
            ),
            Some("must have required property sourceRef"),
        ),
        (
            "kind.yaml",
            good.replace("kind: Kustomization", "kind: Kustomisation"),
            Some("is not a Flux Kustomization"),
        ),
    ];
    for (name, text, refused) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).expect("write");
        let (ok, said) = flux_validate(&[path]);
        match refused {
            None => assert!(ok, "{said}"),
            Some(why) => assert!(!ok && said.contains(why), "{name}: {said}"),
        }
    }
}

/// The second plan of the small fixture: the same stack, named `other`.
fn other_plan(extra: &str) -> String {
    crate::support::PLAN
        .replace("name: permits", "name: other")
        .replace(
            "environments: [dev, prod]",
            &format!("environments: [dev, prod]\npromote: {{prod: parallel}}{extra}"),
        )
}

/// The small fixture plan's override for prod.
const PROD_OVERRIDE: &str = "overrides:\n  prod:\n    app: {replicas: 2}\n";

/// `clusters/<env>/druppie` of `rev`, built; returns the list's resources.
fn builds_at(s: &Setup, rev: &str, env: &str) -> Vec<String> {
    let infra = s.forge().join("infra.git");
    let tree = s.tmp.path().join(format!("at-{}", rev.replace('/', "-")));
    export(&infra, rev, &tree);
    let dir = tree.join(format!("clusters/{env}/druppie"));
    let built = kustomize(&dir);
    let listed = resources(&dir.join("kustomization.yaml"));
    let names: BTreeSet<String> = listed.iter().map(|p| format!("{p}-{env}")).collect();
    assert_eq!(names_of(&built, "Kustomization"), names, "{rev}");
    std::fs::remove_dir_all(&tree).expect("clean up");
    listed
}

/// A spec commit with `path` written.
fn commit_spec(s: &Setup, path: &str, text: &str) {
    std::fs::write(s.f.path().join(path), text).expect("write");
    git(s.f.path(), &["add", "-A"]);
    git(s.f.path(), &["commit", "-qm", "spec change"]);
}

#[test]
fn two_new_plans_committed_in_one_push_each_list_the_plans_before_them() {
    let s = setup("platform-team");
    commit_spec(&s, "spec/plans/other.yaml", &other_plan(""));
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    let infra = s.forge().join("infra.git");
    let log = git(&infra, &["log", "--format=%H %s", "main"]);
    let dev: Vec<&str> = log
        .lines()
        .filter(|l| l.ends_with(" in dev"))
        .map(|l| l.split(' ').next().expect("id"))
        .collect();
    assert_eq!(dev.len(), 2, "one commit per plan: {log}");
    // Oldest first: the first lists its own plan, the second both.
    let first = builds_at(&s, dev[1], "dev");
    let second = builds_at(&s, dev[0], "dev");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(second, ["other", "permits"]);
    assert_eq!(git(&infra, &["rev-parse", "main"]).trim(), dev[0]);
}

#[test]
fn proposals_merged_one_after_the_other_each_keep_the_list_whole() {
    let s = setup("platform-team");
    commit_spec(&s, "spec/plans/other.yaml", &other_plan(""));
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    let infra = s.forge().join("infra.git");
    for plan in ["other", "permits"] {
        assert_eq!(
            builds_at(&s, &format!("druppie/prod/{plan}"), "prod"),
            [plan],
            "each proposal lists its own plan on the main it builds on"
        );
    }
    // A person merges permits' proposal first.
    merge(&s, "druppie/prod/permits");
    let before = git(&infra, &["rev-parse", "druppie/prod/other"]);
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    // The other proposal is rebuilt on the new main, and lists both.
    let after = git(&infra, &["rev-parse", "druppie/prod/other"]);
    assert_ne!(before, after, "rebuilt: {}", run.stdout);
    assert_eq!(
        git(&infra, &["rev-parse", "druppie/prod/other^"]),
        git(&infra, &["rev-parse", "main"]),
        "built on the new main"
    );
    assert_eq!(
        builds_at(&s, "druppie/prod/other", "prod"),
        ["other", "permits"]
    );
    // It merges without a conflict, and main lists both.
    merge(&s, "druppie/prod/other");
    assert_eq!(builds_at(&s, "main", "prod"), ["other", "permits"]);
}

#[test]
fn a_removed_plans_directories_and_list_entry_go_in_one_change_set() {
    let s = setup("platform-team");
    commit_spec(&s, "spec/plans/other.yaml", &other_plan(""));
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(builds_at(&s, "main", "dev"), ["other", "permits"]);
    std::fs::remove_file(s.f.path().join("spec/plans/other.yaml")).expect("rm");
    git(s.f.path(), &["commit", "-qam", "other is gone"]);
    let forge = s.forge();
    let run = s.f.run(&[
        "--config",
        s.config.to_str().expect("utf-8"),
        "diff",
        "--json",
        "--env",
        "dev",
        "--repos",
        forge.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let report: Value = serde_json::from_str(&run.stdout).expect("json");
    let sets: Vec<&Value> = report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|cs| cs["repo"] == "infra" && cs["env"] == "dev")
        .collect();
    assert_eq!(sets.len(), 1, "{report:#}");
    assert_eq!(sets[0]["plans"], serde_json::json!(["other"]));
    let files: Vec<(&str, &str)> = sets[0]["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("path"),
                f["action"].as_str().expect("action"),
            )
        })
        .collect();
    for (path, action) in &files {
        let want = if *path == "clusters/dev/druppie/kustomization.yaml" {
            "modify"
        } else {
            assert!(
                path.starts_with("apps/dev/other/")
                    || path.starts_with("clusters/dev/druppie/other/"),
                "{path}"
            );
            "delete"
        };
        assert_eq!(*action, want, "{path}");
    }
    for path in [
        "apps/dev/other/.druppie-lock.yaml",
        "clusters/dev/druppie/other/sync.yaml",
        "clusters/dev/druppie/other/.druppie-lock.yaml",
        "clusters/dev/druppie/kustomization.yaml",
    ] {
        assert!(files.iter().any(|(p, _)| *p == path), "{path}: {files:?}");
    }
    let run = s.apply();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(builds_at(&s, "main", "dev"), ["permits"]);
    let left = git(
        &s.forge().join("infra.git"),
        &["ls-tree", "-r", "--name-only", "main"],
    );
    assert!(!left.contains("/other/"), "{left}");
}

#[test]
fn depends_on_waits_for_the_other_plan_in_each_shared_environment() {
    let f = Fixture::valid()
        .with(
            "spec/plans/other.yaml",
            other_plan("\ndepends_on: [permits]"),
        )
        .edit(
            "spec/plans/permits.yaml",
            "environments: [dev, prod]",
            "environments: [dev]",
        )
        .edit("spec/plans/permits.yaml", PROD_OVERRIDE, "");
    let out = f.path().join("out");
    let run = f.run(&["render", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let read = |p: &str| std::fs::read_to_string(out.join("infra").join(p)).expect(p);
    assert!(
        read("clusters/dev/druppie/other/sync.yaml")
            .contains("  dependsOn:\n    - name: permits-dev\n"),
        "{}",
        read("clusters/dev/druppie/other/sync.yaml")
    );
    // permits is not in prod: there other waits for nothing.
    assert!(!read("clusters/prod/druppie/other/sync.yaml").contains("dependsOn"));
    assert!(!read("clusters/dev/druppie/permits/sync.yaml").contains("dependsOn"));
    let (ok, said) = flux_validate(&[out.join("infra/clusters/dev/druppie/other/sync.yaml")]);
    assert!(ok, "{said}");
}

#[test]
fn depends_on_errors_are_located() {
    let f = Fixture::valid()
        .with(
            "spec/plans/other.yaml",
            other_plan("\ndepends_on: [permit, other]"),
        )
        .with(
            "spec/plans/third.yaml",
            other_plan("\ndepends_on: [fourth]").replace("name: other", "name: third"),
        )
        .with(
            "spec/plans/fourth.yaml",
            other_plan("\ndepends_on: [third]").replace("name: other", "name: fourth"),
        )
        .with(
            "spec/plans/fifth.yaml",
            other_plan("\ndepends_on: [sixth]")
                .replace("name: other", "name: fifth")
                .replace(
                    "environments: [dev, prod]\npromote: {prod: parallel}",
                    "environments: [dev]",
                )
                .replace(PROD_OVERRIDE, ""),
        )
        .with(
            "spec/plans/sixth.yaml",
            other_plan("")
                .replace("name: other", "name: sixth")
                .replace(
                    "environments: [dev, prod]\npromote: {prod: parallel}",
                    "environments: [prod]",
                ),
        );
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let e = &run.stderr;
    for (message, at) in [
        ("error: unknown plan `permit`", "spec/plans/other.yaml:6:14"),
        (
            "error: plan `other` depends on itself",
            "spec/plans/other.yaml:6:22",
        ),
        (
            "error: `depends_on` cycle between plans: fourth -> third -> fourth",
            "spec/plans/fourth.yaml:6:14",
        ),
        (
            "error: plan `fifth` depends on plan `sixth`, which deploys to none of its environments (`dev`)",
            "spec/plans/fifth.yaml:5:14",
        ),
    ] {
        let found = e.find(message).unwrap_or_else(|| panic!("{message}\n{e}"));
        assert!(
            e[found..].lines().nth(1).is_some_and(|l| l.ends_with(at)),
            "{message} at {at}\n{e}"
        );
    }
    assert!(e.contains("did you mean `permits`?"), "{e}");
}

#[test]
fn an_environment_path_inside_a_flux_directory_is_refused() {
    for (path, relation) in [
        ("clusters/dev/druppie/apps", "lies inside"),
        ("Clusters/Prod/Druppie", "is the same as"),
        ("clusters", "holds"),
    ] {
        let f = Fixture::valid().edit(
            "spec/platform.yaml",
            "path: apps/prod",
            &format!("path: {path}"),
        );
        let run = f.run(&["validate"]);
        assert_eq!(run.code, 1, "{}", run.transcript());
        let e = &run.stderr;
        let message = format!("error: infra path `{path}` {relation} `clusters/");
        let found = e.find(&message).unwrap_or_else(|| panic!("{message}\n{e}"));
        assert!(
            e[found..]
                .lines()
                .nth(1)
                .is_some_and(|l| l.ends_with("spec/platform.yaml:11:11")),
            "{e}"
        );
    }
}

#[test]
fn two_plans_whose_kustomizations_would_share_a_name_are_refused() {
    // `other-b` in `prod` and `other` in `b-prod` are both `other-b-prod`.
    let in_envs = |name: &str, envs: &str| {
        other_plan("")
            .replace("name: other", &format!("name: {name}"))
            .replace(
                "environments: [dev, prod]\npromote: {prod: parallel}",
                &format!("environments: [{envs}]"),
            )
            .replace(PROD_OVERRIDE, "")
    };
    let f = Fixture::valid()
        .edit(
            "spec/platform.yaml",
            "  prod:\n",
            "  b-prod:\n    trust: propose\n    path: apps/b-prod\n  prod:\n",
        )
        .with("spec/plans/other.yaml", in_envs("other", "b-prod"))
        .with("spec/plans/other-b.yaml", in_envs("other-b", "prod"));
    let run = f.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains(
            "error: Flux Kustomization name `other-b-prod` of plan `other-b` in `prod` is also that of plan `other` in `b-prod`"
        ) || run.stderr.contains(
            "error: Flux Kustomization name `other-b-prod` of plan `other` in `b-prod` is also that of plan `other-b` in `prod`"
        ),
        "{}",
        run.transcript()
    );
}
