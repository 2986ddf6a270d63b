//! `druppie validate` on valid and broken spec repos: every problem is
//! reported with file:line:col, the source line and a caret, exit 1.

use druppie::spec::{LoadOptions, load};

use crate::support::{Fixture, repo_root};

fn invalid(fixture: &Fixture) -> String {
    let run = fixture.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
    run.stderr
}

#[test]
fn the_example_repo_is_valid() {
    let run = crate::support::druppie(&repo_root(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.starts_with("spec is valid:"), "{}", run.stdout);
    assert_eq!(run.stderr, "", "no warnings on the example repo");
}

#[test]
fn a_valid_fixture_passes() {
    let run = Fixture::valid().run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    insta::assert_snapshot!(run.transcript());
}

#[test]
fn broken_yaml_is_located() {
    let f = Fixture::valid().with(
        "spec/stacks/webapp-db.yaml",
        "name: webapp-db\ncomponents:\n  db: {block: postgresql\n",
    );
    insta::assert_snapshot!(invalid(&f));
}

#[test]
fn unclosed_frontmatter_points_at_the_opening_fence() {
    let f = Fixture::valid().with(
        "bouwblokken/redis.md",
        "---\nid: redis\nname: Redis\n\n# Redis\n",
    );
    let err = invalid(&f);
    assert!(err.contains("--> bouwblokken/redis.md:1:1"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn wrong_types_and_constraints() {
    let f = Fixture::valid()
        .edit(
            "spec/plans/permits.yaml",
            "app: {replicas: 2}",
            "app: {replicas: \"two\"}",
        )
        .edit(
            "spec/stacks/webapp-db.yaml",
            "db: {instances: 3}",
            "db: {instances: 12}",
        )
        .edit(
            "bouwblokken/postgresql.md",
            "version: 1.0.0",
            "version: \"1.0\"",
        )
        .edit("bouwblokken/postgresql.md", "default: 1Gi", "default: 1GB");
    let err = invalid(&f);
    assert!(err.contains("spec/plans/permits.yaml:9:21"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_names_suggest_the_nearest() {
    let f = Fixture::valid()
        .edit(
            "spec/stacks/webapp-db.yaml",
            "block: webapp-python",
            "block: webap-python",
        )
        .edit(
            "spec/plans/permits.yaml",
            "environments: [dev, prod]",
            "environments: [dev, prd]",
        )
        .with(
            "spec/plans/other.yaml",
            "name: other\nstack: webap-db\nowner: x\nenvironments: [dev]\n",
        );
    let err = invalid(&f);
    assert!(err.contains("unknown block `webap-python`"), "{err}");
    assert!(err.contains("did you mean `webapp-python`?"), "{err}");
    assert!(err.contains("did you mean `prod`?"), "{err}");
    assert!(err.contains("did you mean `webapp-db`?"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_inputs_suggest_declared_ones() {
    let f = Fixture::valid().edit(
        "spec/plans/permits.yaml",
        "app: {replicas: 2}",
        "app: {replica: 2}",
    );
    let err = invalid(&f);
    assert!(
        err.contains("unknown input `replica` for block `webapp-python`"),
        "{err}"
    );
    assert!(err.contains("did you mean `replicas`?"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn unknown_fields_are_typos_and_do_not_cascade() {
    let f = Fixture::valid().edit(
        "spec/stacks/webapp-db.yaml",
        "    block: postgresql",
        "    blok: postgresql",
    );
    let err = invalid(&f);
    assert!(
        err.contains("unknown field `blok`, expected one of block, inputs"),
        "{err}"
    );
    // The plan names this stack; the stack's own error is the only one.
    assert!(!err.contains("unknown stack"), "{err}");
    assert!(err.contains("1 error"), "{err}");
}

/// The valid fixture with `postgresql` taking an `app_url` input, which
/// can read the app's outputs (the app reads db's in the stack).
fn db_can_read_the_app() -> Fixture {
    Fixture::valid().edit(
        "bouwblokken/postgresql.md",
        "  storage:",
        "  app_url: {type: string, default: \"\"}\n  storage:",
    )
}

#[test]
fn a_cycle_is_named_in_full() {
    let f = db_can_read_the_app().edit(
        "spec/stacks/webapp-db.yaml",
        "    block: postgresql\n",
        "    block: postgresql\n    inputs:\n      app_url: \"{{ components.app.outputs.url }}\"\n",
    );
    let err = invalid(&f);
    assert!(
        err.contains("dependency cycle between components: db -> app -> db"),
        "{err}"
    );
    insta::assert_snapshot!(err);
}

#[test]
fn a_cycle_only_a_plan_closes_is_named_at_the_plan() {
    // The stack's app reads db; the plan has db read app: the stack has
    // no cycle of its own, the plan does.
    let f = db_can_read_the_app().edit(
        "spec/plans/permits.yaml",
        "  app: {image: registry.example.org/permits:1.0.0}\n",
        "  app: {image: registry.example.org/permits:1.0.0}\n  db: {app_url: \"{{ components.app.outputs.url }}\"}\n",
    );
    let err = invalid(&f);
    assert!(
        err.contains("dependency cycle between components: db -> app -> db"),
        "{err}"
    );
    // At the plan's reference, the edge only it writes.
    assert!(err.contains("--> spec/plans/permits.yaml:7:17"), "{err}");
    assert!(err.contains("1 error"), "{err}");
}

#[test]
fn duplicate_ids_point_at_both() {
    let f = Fixture::valid().with(
        "bouwblokken/postgresql-copy.md",
        crate::support::POSTGRES.replace("name: PostgreSQL", "name: PostgreSQL again"),
    );
    let err = invalid(&f);
    assert!(err.contains("duplicate block id `postgresql`"), "{err}");
    assert!(err.contains("first defined here"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn oversized_file_is_rejected_unread() {
    let big = format!("name: big\n# {}\n", "x".repeat(1024 * 1024));
    let f = Fixture::valid().with("spec/stacks/big.yaml", big);
    insta::assert_snapshot!(invalid(&f));
}

#[test]
fn alias_bomb_is_stopped() {
    // Ten levels of ten aliases each, inside an input value (which takes any YAML).
    let mut doc = String::from(
        "name: bomb\nstack: webapp-db\nowner: x\nenvironments: [dev]\ninputs:\n  app:\n    image:\n      l0: &l0 [x,x,x,x,x,x,x,x,x,x]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 10].join(",");
        doc.push_str(&format!("      l{i}: &l{i} [{refs}]\n"));
    }
    let f = Fixture::valid().with("spec/plans/bomb.yaml", doc);
    let err = invalid(&f);
    assert!(err.contains("budget breached"), "{err}");
    assert!(err.contains("spec/plans/bomb.yaml:"), "{err}");
}

#[test]
fn deep_nesting_is_stopped() {
    let doc = format!(
        "name: deep\nstack: webapp-db\nowner: x\nenvironments: [dev]\ninputs:\n  app: {{image: {}{}}}\n",
        "[".repeat(400),
        "]".repeat(400)
    );
    let f = Fixture::valid().with("spec/plans/deep.yaml", doc);
    let err = invalid(&f);
    assert!(err.contains("spec/plans/deep.yaml:6:"), "{err}");
    assert!(err.contains("nesting is limited to 256 levels"), "{err}");
}

#[test]
fn every_error_is_reported_in_one_run() {
    let f = Fixture::valid()
        .edit(
            "spec/stacks/webapp-db.yaml",
            "block: webapp-python",
            "block: webap-python",
        )
        .edit(
            "spec/plans/permits.yaml",
            "name: permits",
            "name: Permits_Portal",
        )
        .with("bouwblokken/broken.md", "---\nid: [\n---\n")
        .with(
            "spec/policies/limits.yaml",
            "name: limits\nrule: \"\"\nseverity: fatal\nmessage: m\n",
        );
    let err = invalid(&f);
    for needle in [
        "unknown block `webap-python`",
        "plan name `Permits_Portal`",
        "bouwblokken/broken.md:2:",
        "spec/policies/limits.yaml:3:11",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(
        err.trim_end()
            .ends_with("spec is invalid: 4 errors, 0 warnings"),
        "{err}"
    );
}

#[test]
fn required_inputs_are_checked_after_merging() {
    let f = Fixture::valid().edit(
        "spec/plans/permits.yaml",
        "inputs:\n  app: {image: registry.example.org/permits:1.0.0}\n",
        "",
    );
    let err = invalid(&f);
    assert!(err.contains("needs input `image`"), "{err}");
    assert!(err.contains("not set for dev, prod"), "{err}");
    // Setting it for one environment only still leaves the other missing.
    let f = f.edit(
        "spec/plans/permits.yaml",
        "app: {replicas: 2}",
        "app: {replicas: 2, image: r/x:1}",
    );
    let err = invalid(&f);
    assert!(err.contains("not set for dev"), "{err}");
    assert!(!err.contains("dev, prod"), "{err}");
}

#[test]
fn requires_needs_a_provider_in_the_stack() {
    let f = Fixture::valid().with(
        "spec/stacks/webapp-db.yaml",
        "name: webapp-db\ncomponents:\n  app:\n    block: webapp-python\n",
    );
    let err = invalid(&f);
    assert!(err.contains("needs capability `database`"), "{err}");
    assert!(err.contains("add a component using `postgresql`"), "{err}");
}

#[test]
fn wiring_must_name_a_declared_output() {
    let f = Fixture::valid().edit(
        "spec/stacks/webapp-db.yaml",
        "components.db.outputs.secret",
        "components.db.outputs.secrets",
    );
    let err = invalid(&f);
    assert!(err.contains("has no output `secrets`"), "{err}");
    assert!(err.contains("did you mean `secret`?"), "{err}");
}

#[test]
fn reserved_input_names_are_refused() {
    let f = Fixture::valid().edit(
        "bouwblokken/postgresql.md",
        "  instances:",
        "  namespace: {type: string}\n  instances:",
    );
    let err = invalid(&f);
    assert!(
        err.contains("input `namespace` uses a reserved name"),
        "{err}"
    );
}

#[test]
fn catalog_only_blocks_cannot_be_instantiated() {
    let f = Fixture::valid()
        .with(
            "bouwblokken/iam.md",
            "---\nid: iam-keycloak\nname: IAM\ntype: platform\nversion: 1.0.0\nauth_group: []\ndescription: SSO.\ncapabilities: [\"iam\"]\n---\n# IAM\n",
        )
        .edit("spec/stacks/webapp-db.yaml", "  db:\n", "  sso:\n    block: iam-keycloak\n  db:\n");
    let err = invalid(&f);
    assert!(
        err.contains("block `iam-keycloak` is catalog-only"),
        "{err}"
    );
}

#[test]
fn names_must_be_dns_labels() {
    let f = Fixture::valid()
        .edit("spec/platform.yaml", "  dev:", "  Dev_1:")
        .edit(
            "spec/plans/permits.yaml",
            "environments: [dev, prod]",
            "environments: [prod]",
        )
        .edit("spec/stacks/webapp-db.yaml", "  app:", "  App:")
        .edit(
            "spec/stacks/webapp-db.yaml",
            "components.db",
            "components.db",
        );
    let err = invalid(&f);
    assert!(err.contains("environment name `Dev_1`"), "{err}");
    assert!(err.contains("component name `App`"), "{err}");
}

#[test]
fn unknown_key_in_druppie_toml_is_located() {
    let f = Fixture::valid().with(
        "druppie.toml",
        "[forge]\nkind = \"git\"\ntokn_env = \"X\"\n",
    );
    let run = crate::support::druppie(f.path(), &["validate"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains("--> druppie.toml:3:1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("tokn_env"), "{}", run.stderr);
}

#[test]
fn too_many_files_stop_the_load() {
    let mut f = Fixture::valid();
    for i in 0..5 {
        f = f.with(&format!("spec/plans/p{i}.yaml"), "name: x\n");
    }
    let options = LoadOptions {
        max_files: 5,
        ..LoadOptions::default()
    };
    let err = load(f.path(), &options).expect_err("over the limit");
    assert!(err.to_string().contains("more than 5 spec files"), "{err}");
}

#[test]
fn too_many_bytes_of_spec_files_stop_the_load_whatever_their_number() {
    let f = Fixture::valid().with(
        "spec/plans/big.yaml",
        format!("name: big\n#{}\n", "x".repeat(4000)),
    );
    let options = LoadOptions {
        max_total_bytes: 4000,
        ..LoadOptions::default()
    };
    let err = load(f.path(), &options).expect_err("over the limit");
    assert!(
        err.to_string()
            .contains("more than 4000 bytes of spec files"),
        "{err}"
    );
    assert!(!err.is_transient());
    load(f.path(), &LoadOptions::default()).expect("within the default");
}

/// Every regular file under the directories the load lists: what the
/// byte limit counts, read or not.
fn listed_bytes(root: &std::path::Path) -> u64 {
    fn under(dir: &std::path::Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .map(|e| e.expect("entry"))
            .map(|e| match e.file_type().expect("type") {
                t if t.is_dir() => under(&e.path()),
                _ => e.metadata().expect("size").len(),
            })
            .sum()
    }
    ["templates", "bouwblokken", "skills", "spec"]
        .iter()
        .map(|d| under(&root.join(d)))
        .sum()
}

#[test]
fn the_byte_limit_counts_every_listed_file_once_read_or_not() {
    // Files the load reads (plans, blocks), and files it only lists: a
    // template, a Markdown page beside the plans, a file of another
    // extension under `bouwblokken/`.
    let f = Fixture::example()
        .with("templates/_partials/big.j2", "x".repeat(3000))
        .with("spec/plans/NOTES.md", "y".repeat(2000))
        .with("bouwblokken/logo.svg", "<svg/>");
    let spec = load(f.path(), &LoadOptions::default()).expect("loads");
    let counted = LoadOptions::default().max_total_bytes - spec.bytes_left;
    assert_eq!(counted, listed_bytes(f.path()));

    // One byte short, a file that is never read stops the load as well.
    let options = LoadOptions {
        max_total_bytes: counted - 1,
        ..LoadOptions::default()
    };
    let err = load(f.path(), &options).expect_err("over the limit");
    assert!(err.to_string().contains("bytes of spec files"), "{err}");
    let options = LoadOptions {
        max_total_bytes: counted,
        ..LoadOptions::default()
    };
    assert_eq!(load(f.path(), &options).expect("fits").bytes_left, 0);
}

#[test]
fn missing_spec_dir_is_one_clear_error() {
    let f = Fixture::empty();
    let run = crate::support::druppie(f.path(), &["--spec", "does-not-exist", "validate"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: spec directory `does-not-exist` does not exist or is not a directory\n"
    );
}

#[test]
fn colour_follows_the_flag() {
    let f = Fixture::valid().edit("spec/plans/permits.yaml", "stack: webapp-db", "stack: nope");
    let plain = f.run(&["validate"]);
    assert!(!plain.stderr.contains('\x1b'));
    let coloured = f.run(&["--color", "always", "validate"]);
    assert!(
        coloured.stderr.contains("\x1b[1;31merror"),
        "{}",
        coloured.stderr
    );
}

#[test]
fn a_platform_file_that_does_not_parse_is_reported_once_by_its_parse_error() {
    let f = Fixture::valid().edit(
        "spec/platform.yaml",
        "  repo: infra\n",
        "  repo: infra\n  repo: infra2\n",
    );
    let err = invalid(&f);
    assert!(!err.contains("is missing"), "{err}");
    assert!(
        err.contains("error: invalid YAML: the key `repo` appears twice in one mapping"),
        "{err}"
    );
    assert!(err.contains("--> spec/platform.yaml:"), "{err}");
    assert!(!err.contains("Options"), "no advice to programs: {err}");
    assert!(err.contains("1 error, 0 warnings"), "{err}");
}

#[test]
fn render_checks_only_the_plans_named_and_refuses_a_name_it_does_not_know() {
    // `shop` does not render; `permits` does.
    let f = Fixture::valid()
        .with(
            "templates/webapp-python/infra/deployment.yaml.j2",
            "kind: Deployment\n{% if image == 'boom' %}{{ no_such_function() }}{% endif %}\n",
        )
        .with(
            "spec/plans/shop.yaml",
            crate::support::PLAN
                .replace("name: permits", "name: shop")
                .replace("registry.example.org/permits:1.0.0", "boom"),
        );
    let all = f.run(&["validate", "--render"]);
    assert_eq!(all.code, 1, "{}", all.transcript());
    assert!(all.stderr.contains("shop"), "{}", all.stderr);
    let permits = f.run(&["validate", "--render", "--plan", "permits"]);
    assert_eq!(permits.code, 0, "{}", permits.transcript());
    assert!(
        permits.stdout.contains("for 2 plan environments"),
        "{}",
        permits.stdout
    );
    let shop = f.run(&["validate", "--render", "--plan=permits", "--plan=shop"]);
    assert_eq!(shop.code, 1, "{}", shop.transcript());
    let unknown = f.run(&["validate", "--render", "--plan", "permitz"]);
    assert_eq!(unknown.code, 1, "{}", unknown.transcript());
    assert!(
        unknown.stderr.contains("unknown plan `permitz`"),
        "{}",
        unknown.stderr
    );
    assert!(unknown.stderr.contains("`permits`"), "{}", unknown.stderr);
    // Without `--render` there is nothing to narrow.
    let alone = f.run(&["validate", "--plan", "permits"]);
    assert_eq!(alone.code, 1, "{}", alone.transcript());
    assert!(alone.stderr.contains("--render"), "{}", alone.stderr);
}
