//! `compose`: merged inputs, wiring in dependency order, outputs.

use druppie::compose::{ComposeOptions, Resolved, compose};
use druppie::spec::{LoadOptions, load, select, validate};

use crate::support::{Fixture, repo_root};

fn resolve(root: &std::path::Path, options: &ComposeOptions) -> Resolved {
    let spec = load(root, &LoadOptions::default()).expect("loads");
    let valid = validate(spec).expect("valid");
    let selection = select(&valid, options).expect("selects");
    compose(&valid, &selection, &Default::default()).expect("composes")
}

#[test]
fn layers_merge_in_order_and_wiring_resolves() {
    let r = resolve(&repo_root(), &ComposeOptions::default());
    let names: Vec<String> = r
        .instances
        .iter()
        .map(|i| format!("{}/{}", i.plan, i.env))
        .collect();
    assert_eq!(
        names,
        [
            "docs-portal/dev",
            "docs-portal/prod",
            "druppie/prod",
            "permits/dev",
            "permits/test",
            "permits/prod"
        ]
    );
    let instance = |plan: &str, env: &str| {
        r.instances
            .iter()
            .find(|i| i.plan == plan && i.env == env)
            .expect("instance")
    };
    let prod = instance("permits", "prod");
    assert_eq!(prod.namespace, "permits");
    let order: Vec<&str> = prod.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(order, ["db", "cache", "app"], "dependencies come first");
    let db = &prod.components[0];
    // Stack env override (3) beats the block default (1).
    assert_eq!(db.inputs["instances"], 3);
    // Plan override (20Gi) beats the stack env override (10Gi).
    assert_eq!(db.inputs["storage"], "20Gi");
    assert_eq!(db.outputs["secret"], "permits-db-app");
    let app = &prod.components[2];
    assert_eq!(app.repo, "permits-app");
    assert_eq!(app.inputs["database_secret"], "permits-db-app");
    assert_eq!(
        app.inputs["redis_url"],
        "redis://permits-cache.permits.svc:6379"
    );
    assert_eq!(app.inputs["replicas"], 3);
    let dev = instance("permits", "dev");
    assert_eq!(
        dev.components[2].inputs["redis_url"],
        "redis://permits-cache.permits-dev.svc:6379"
    );
}

#[test]
fn selection_filters_and_unknown_names_are_errors() {
    let r = resolve(
        &repo_root(),
        &ComposeOptions {
            plan: Some("permits".into()),
            env: Some("dev".into()),
            shards: None,
        },
    );
    assert_eq!(r.instances.len(), 1);
    let valid =
        validate(load(&repo_root(), &LoadOptions::default()).expect("loads")).expect("valid");
    let err = select(
        &valid,
        &ComposeOptions {
            plan: Some("permit".into()),
            env: None,
            shards: None,
        },
    )
    .expect_err("unknown");
    let text = err.iter().map(|d| d.render(false)).collect::<String>();
    assert!(text.contains("unknown plan `permit`"), "{text}");
    assert!(text.contains("did you mean `permits`?"), "{text}");
}

#[test]
fn a_single_expression_keeps_its_type_and_is_checked() {
    // The database's instance count is wired from the app's replicas.
    let f = Fixture::valid()
        .edit("bouwblokken/webapp-python.md", "outputs:\n", "outputs:\n  replicas: \"{{ replicas }}\"\n  name: \"{{ plan }}\"\n")
        .edit("spec/stacks/webapp-db.yaml", "    block: postgresql\n", "    block: postgresql\n    inputs:\n      instances: \"{{ components.app.outputs.replicas }}\"\n")
        .edit("spec/stacks/webapp-db.yaml", "      database_secret: \"{{ components.db.outputs.secret }}\"\n", "");
    let r = resolve(f.path(), &ComposeOptions::default());
    let prod = r.instances.iter().find(|i| i.env == "prod").expect("prod");
    assert_eq!(prod.components[0].name, "app");
    // The prod stack override sets instances to 3 outright.
    assert_eq!(prod.components[1].inputs["instances"], 3);
    let dev = r.instances.iter().find(|i| i.env == "dev").expect("dev");
    assert_eq!(dev.components[1].inputs["instances"], serde_json::json!(1));

    // Wiring a string into the integer input is an error at the wiring.
    let f = f.edit(
        "spec/stacks/webapp-db.yaml",
        "outputs.replicas",
        "outputs.name",
    );
    let valid = validate(load(f.path(), &LoadOptions::default()).expect("loads")).expect("valid");
    let all = select(&valid, &ComposeOptions::default()).expect("selects");
    let err = compose(&valid, &all, &Default::default()).expect_err("type");
    let text = err.iter().map(|d| d.render(false)).collect::<String>();
    assert!(text.contains("input `instances` of component `db` in permits/dev resolved to a value that is the string \"permits\", expected integer"), "{text}");
    assert!(
        text.contains("--> spec/stacks/webapp-db.yaml:7:18"),
        "{text}"
    );
}

#[test]
fn an_undefined_variable_in_an_output_is_located() {
    let f = Fixture::valid().edit(
        "bouwblokken/postgresql.md",
        "{{ plan }}-{{ component }}-app",
        "{{ plan }}-{{ cluster }}-app",
    );
    let valid = validate(load(f.path(), &LoadOptions::default()).expect("loads")).expect("valid");
    let all = select(&valid, &ComposeOptions::default()).expect("selects");
    let err = compose(&valid, &all, &Default::default()).expect_err("undefined");
    let text = err.iter().map(|d| d.render(false)).collect::<String>();
    assert!(
        text.contains("cannot compute output `secret` of block `postgresql`"),
        "{text}"
    );
    assert!(text.contains("undefined value"), "{text}");
    // The inputs wired from that output are not reported a second time.
    assert_eq!(err.error_count(), 1, "{text}");
    assert!(
        text.contains("--> bouwblokken/postgresql.md:12:11"),
        "{text}"
    );
}
