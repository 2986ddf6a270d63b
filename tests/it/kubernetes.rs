//! Rendered example manifests are valid Kubernetes: checked with
//! `kubernetes-validate --strict` (PyPI; the official OpenAPI schemas).
//! `.ci/run` installs it; without it these tests fail and say so.
//! The druppie block's manifests are also read the way an operator relies
//! on them: security context, probes, secrets by reference, the config.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{Fixture, druppie};

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
        // The druppie block's own objects.
        "serviceaccount",
        "clusterrole",
        "clusterrolebinding",
        "role",
        "rolebinding",
        "configmap",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind}/")),
            "no {kind} validated:\n{text}"
        );
    }
    // Every document either passed or is a custom resource without a
    // built-in schema: CloudNativePG's Cluster, and Flux's Kustomization
    // (checked against Flux's own CRD schema in `flux`).
    for line in text.lines() {
        assert!(
            line.contains(" passed for resource ")
                || line.contains("Couldn't find schema for kind Cluster")
                || line.contains(
                    "Couldn't find schema for kind Kustomization with api version kustomize.toolkit.fluxcd.io/v1"
                ),
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

/// Renders the example's `druppie` plan; returns the fixture (kept alive)
/// and its component directory in the infra repo.
fn render_druppie_block() -> (Fixture, PathBuf) {
    render_druppie_block_of(Fixture::example())
}

/// [`render_druppie_block`] of the example `f` made.
fn render_druppie_block_of(f: Fixture) -> (Fixture, PathBuf) {
    let out = f.path().join("out");
    let run = f.run(&[
        "render",
        "--out",
        out.to_str().expect("utf-8"),
        "--plan",
        "druppie",
    ]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let dir = out.join("infra/apps/prod/druppie/daemon");
    (f, dir)
}

/// The YAML documents of a rendered file.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("rendered file");
    serde_saphyr::from_multiple(&text).expect("rendered YAML parses")
}

fn str_at<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value:#}"))
}

/// A container's setting, else the pod's, as Kubernetes resolves it.
fn effective<'v>(pod: &'v Value, container: &'v Value, key: &str) -> &'v Value {
    let own = &container["securityContext"][key];
    if own.is_null() {
        &pod["securityContext"][key]
    } else {
        own
    }
}

#[test]
fn the_druppie_deployment_is_unprivileged_probed_and_takes_secrets_by_reference() {
    let (_f, dir) = render_druppie_block();
    let deployment = documents(&dir.join("deployment.yaml")).remove(0);
    assert_eq!(deployment["kind"], "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    let inits = pod["initContainers"].as_array().expect("initContainers");

    // Every container, init containers included, runs as 10001 and cannot
    // gain privileges or write its root filesystem.
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    for c in containers.iter().chain(inits) {
        let name = &c["name"];
        assert_eq!(effective(pod, c, "runAsNonRoot"), true, "{name}");
        assert_eq!(effective(pod, c, "runAsUser"), 10001, "{name}");
        assert_eq!(effective(pod, c, "runAsGroup"), 10001, "{name}");
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{name}"
        );
    }

    let main = containers
        .iter()
        .find(|c| c["name"] == "druppie")
        .expect("a container named druppie");
    assert_eq!(
        main["args"],
        serde_json::json!(["serve", "--config", "/etc/druppie/druppie.toml"])
    );
    let image = str_at(main, "/image");
    assert!(
        image
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
            && !image.ends_with(":latest"),
        "image without an explicit tag: {image}"
    );

    // Probes: liveness on /healthz, readiness on /readyz, on port 8080.
    assert_eq!(str_at(main, "/livenessProbe/httpGet/path"), "/healthz");
    assert_eq!(str_at(main, "/readinessProbe/httpGet/path"), "/readyz");
    let ports = main["ports"].as_array().expect("ports");
    for probe in ["livenessProbe", "readinessProbe"] {
        let port = &main[probe]["httpGet"]["port"];
        let number = match port {
            Value::String(name) => &ports
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("{probe} names an undeclared port {name}"))["containerPort"],
            other => other,
        };
        assert_eq!(*number, 8080, "{probe}");
    }

    // Secrets come from Secrets, never as literal values; only the LLM key
    // (the planner is optional) may be missing.
    let env = main["env"].as_array().expect("env");
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no env var {name}"))
    };
    for (name, secret, optional) in [
        ("DRUPPIE_FORGE_TOKEN", "druppie-forge", false),
        ("DRUPPIE_WEBHOOK_SECRET", "druppie-webhook", false),
        ("DRUPPIE_LLM_API_KEY", "druppie-llm", true),
    ] {
        let e = var(name);
        assert!(e.get("value").is_none(), "{name} has a literal value");
        let reference = &e["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], secret, "{name}");
        assert!(reference["key"].is_string(), "{name}");
        assert_eq!(reference["optional"], optional, "{name}");
    }
    for e in env {
        let name = str_at(e, "/name");
        if ["TOKEN", "SECRET", "KEY"].iter().any(|w| name.contains(w)) {
            assert!(e.get("value").is_none(), "{name} has a literal value");
        }
    }
    // Leader election identifies the pod through the downward API.
    assert_eq!(
        str_at(var("POD_NAME"), "/valueFrom/fieldRef/fieldPath"),
        "metadata.name"
    );
    assert_eq!(
        str_at(var("POD_NAMESPACE"), "/valueFrom/fieldRef/fieldPath"),
        "metadata.namespace"
    );

    // The ConfigMap mounted at /etc/druppie holds a druppie.toml that
    // listens on all interfaces, port 8080.
    let mounts = main["volumeMounts"].as_array().expect("volumeMounts");
    let volumes = pod["volumes"].as_array().expect("volumes");
    let mount_at = |path: &str| {
        mounts
            .iter()
            .filter(|m| path.starts_with(str_at(m, "/mountPath")))
            .max_by_key(|m| str_at(m, "/mountPath").len())
            .unwrap_or_else(|| panic!("nothing mounted at {path}"))
    };
    let volume = |mount: &Value| {
        volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("the mount's volume")
            .clone()
    };
    let config_volume = volume(mount_at("/etc/druppie/druppie.toml"));
    let configmap = documents(&dir.join("configmap.yaml")).remove(0);
    assert_eq!(configmap["kind"], "ConfigMap");
    assert_eq!(
        config_volume["configMap"]["name"],
        configmap["metadata"]["name"]
    );
    let text = str_at(&configmap, "/data/druppie.toml");
    let config: toml::Table = toml::from_str(text).expect("druppie.toml is TOML");
    assert_eq!(config["server"]["listen"].as_str(), Some("0.0.0.0:8080"));
    assert_eq!(
        config["server"]["webhook_secret_env"].as_str(),
        Some("DRUPPIE_WEBHOOK_SECRET")
    );
    assert_eq!(
        config["forge"]["token_env"].as_str(),
        Some("DRUPPIE_FORGE_TOKEN")
    );
    // The cache is on a writable volume; the signing key on a mounted one.
    let cache = config["repos"]["cache_dir"].as_str().expect("cache_dir");
    assert_ne!(
        mount_at(cache)["readOnly"],
        true,
        "cache_dir {cache} is read-only"
    );
    assert!(volume(mount_at(cache)).get("emptyDir").is_some(), "{cache}");
    let key = config["signing"]["key"].as_str().expect("signing key");
    assert!(volume(mount_at(key)).get("emptyDir").is_some(), "{key}");
    // A config change changes the pod template, so it rolls the pods.
    assert_eq!(
        str_at(
            &deployment,
            "/spec/template/metadata/annotations/druppie.io~1config"
        ),
        text
    );

    // druppie itself accepts the file: unknown keys would be errors.
    let config_file = dir.join("druppie.toml.check");
    std::fs::write(&config_file, text).expect("write");
    let spec = dir.join("empty-spec");
    std::fs::create_dir_all(spec.join("spec")).expect("mkdir");
    std::fs::write(spec.join("spec/platform.yaml"), crate::support::PLATFORM).expect("write");
    let run = druppie(
        &spec,
        &[
            "--config",
            config_file.to_str().expect("utf-8"),
            "--spec",
            spec.to_str().expect("utf-8"),
            "validate",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
}

#[test]
fn the_druppie_block_may_only_read_the_cluster_and_hold_its_lease() {
    let (_f, dir) = render_druppie_block();
    let docs = documents(&dir.join("rbac.yaml"));
    let of_kind = |kind: &str| {
        docs.iter()
            .filter(|d| d["kind"] == kind)
            .collect::<Vec<_>>()
    };
    let account = documents(&dir.join("serviceaccount.yaml")).remove(0);
    let deployment = documents(&dir.join("deployment.yaml")).remove(0);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        account["metadata"]["name"]
    );

    let [cluster_role] = of_kind("ClusterRole")[..] else {
        panic!("one ClusterRole");
    };
    let mut granted = Vec::new();
    for rule in cluster_role["rules"].as_array().expect("rules") {
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .expect("verbs")
            .iter()
            .map(|v| v.as_str().expect("verb"))
            .collect();
        assert!(
            verbs.iter().all(|v| ["get", "list", "watch"].contains(v)),
            "a ClusterRole verb beyond reading: {rule}"
        );
        for group in rule["apiGroups"].as_array().expect("apiGroups") {
            for resource in rule["resources"].as_array().expect("resources") {
                granted.push(format!(
                    "{}/{} {}",
                    group.as_str().expect("group"),
                    resource.as_str().expect("resource"),
                    verbs.join(",")
                ));
            }
        }
    }
    granted.sort();
    assert_eq!(
        granted,
        [
            "/pods get,list,watch",
            "apps/deployments get,list,watch",
            "kustomize.toolkit.fluxcd.io/kustomizations get,list,watch",
        ]
    );

    let [role] = of_kind("Role")[..] else {
        panic!("one Role");
    };
    assert_eq!(
        role["metadata"]["namespace"],
        account["metadata"]["namespace"]
    );
    let rules = role["rules"].as_array().expect("rules");
    assert!(rules.iter().all(
        |r| r["apiGroups"] == serde_json::json!(["coordination.k8s.io"])
            && r["resources"] == serde_json::json!(["leases"])
    ));
    let by_name = rules
        .iter()
        .find(|r| r["resourceNames"] == serde_json::json!(["druppie"]))
        .expect("a rule for the Lease named druppie");
    assert_eq!(by_name["verbs"], serde_json::json!(["get", "update"]));
    assert!(
        rules
            .iter()
            .any(|r| r["verbs"] == serde_json::json!(["create"]))
    );

    // Both bindings give their role to the Deployment's ServiceAccount.
    for (binding, role) in [("ClusterRoleBinding", cluster_role), ("RoleBinding", role)] {
        let [b] = of_kind(binding)[..] else {
            panic!("one {binding}");
        };
        assert_eq!(b["roleRef"]["name"], role["metadata"]["name"], "{binding}");
        assert_eq!(b["roleRef"]["kind"], role["kind"], "{binding}");
        assert_eq!(
            b["subjects"],
            serde_json::json!([{
                "kind": "ServiceAccount",
                "name": account["metadata"]["name"],
                "namespace": account["metadata"]["namespace"],
            }]),
            "{binding}"
        );
    }
}

#[test]
fn the_druppie_block_with_shards_may_hold_each_shards_lease_and_says_how_many() {
    let f = Fixture::example().edit(
        "spec/plans/druppie.yaml",
        "    host: druppie.example.org\n",
        "    host: druppie.example.org\n    shards: 3\n",
    );
    let (_f, dir) = render_druppie_block_of(f);
    let role = documents(&dir.join("rbac.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "Role")
        .expect("a Role");
    let names: Vec<&Value> = role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r.get("resourceNames"))
        .collect();
    assert_eq!(
        names,
        [&serde_json::json!([
            "druppie",
            "druppie-heard",
            "druppie-shard-0",
            "druppie-shard-1",
            "druppie-shard-2"
        ])]
    );
    let configmap = documents(&dir.join("configmap.yaml")).remove(0);
    let text = str_at(&configmap, "/data/druppie.toml");
    let config: toml::Table = toml::from_str(text).expect("druppie.toml is TOML");
    assert_eq!(config["server"]["shards"].as_integer(), Some(3));
    let (ok, text) = validate(&dir, &["rbac.yaml".to_owned()]);
    assert!(ok, "{text}");
}
