//! The policy gate cannot be stepped around by how a manifest is spelled:
//! every way of writing a Deployment that Kubernetes reads as one is
//! checked by the policies for Deployments, a rendered manifest that does
//! not parse is a located error, and a value means the same whatever else
//! the file holds.

use crate::apply::setup;
use crate::support::{Fixture, Run, git};

/// At most 3 replicas for every `apps/v1` Deployment.
const POLICY: &str = "name: replicas\nmatch:\n  apiVersions: [apps/v1]\n  kinds: [Deployment]\nrule: object.spec.replicas <= 3\nseverity: error\nmessage: at most 3 replicas\n";

const TEMPLATE: &str = "templates/webapp-python/infra/deployment.yaml.j2";
const RENDERED: &str = "infra (dev):apps/dev/permits/app/deployment.yaml";

/// Ways of writing a Deployment with `@R` replicas, each one Kubernetes
/// reads as `apps/v1` `Deployment` (named so a failure says which).
const SPELLINGS: &[(&str, &str)] = &[
    (
        "plain",
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "space before the colon",
        "apiVersion : apps/v1\nkind : Deployment\nspec :\n  replicas : @R\n",
    ),
    (
        "single-quoted keys",
        "'apiVersion': apps/v1\n'kind': Deployment\n'spec':\n  'replicas': @R\n",
    ),
    (
        "double-quoted keys and values",
        "\"apiVersion\": \"apps/v1\"\n\"kind\": \"Deployment\"\n\"spec\": {\"replicas\": @R}\n",
    ),
    (
        "a flow mapping",
        "{apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {replicas: @R}}\n",
    ),
    (
        "JSON",
        "{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"spec\": {\"replicas\": @R}}\n",
    ),
    (
        "a flow mapping over lines",
        "{\n  apiVersion: apps/v1,\n  kind: Deployment,\n  spec: {replicas: @R}\n}\n",
    ),
    (
        "kind last",
        "spec:\n  replicas: @R\napiVersion: apps/v1\nkind: Deployment\n",
    ),
    (
        "an anchor on the kind",
        "apiVersion: apps/v1\nkind: &k Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "the kind through an alias",
        "metadata:\n  labels: {app: &k Deployment}\napiVersion: apps/v1\nkind: *k\nspec:\n  replicas: @R\n",
    ),
    (
        "replicas through an alias",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {annotations: {n: &n @R}}\nspec:\n  replicas: *n\n",
    ),
    (
        "a merge key",
        "base: &b {apiVersion: apps/v1, kind: Deployment}\n<<: *b\nspec:\n  replicas: @R\n",
    ),
    (
        "the second document",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "after an empty document",
        "---\n---\n# nothing above\napiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "after a document end",
        "apiVersion: v1\nkind: ConfigMap\n...\n---\napiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "a marker with a comment",
        "--- # the deployment\napiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "a directive",
        "%YAML 1.2\n---\napiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "comments around",
        "# head\napiVersion: apps/v1 # v\n# between\nkind: Deployment # the kind\nspec: # s\n  replicas: @R # r\n",
    ),
    (
        "the value on the next line",
        "apiVersion:\n  apps/v1\nkind:\n  Deployment\nspec:\n  replicas:\n    @R\n",
    ),
    (
        "a comment before the value",
        "apiVersion: apps/v1\nkind: # the kind\n  Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "a byte order mark",
        "\u{feff}apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "CRLF line ends",
        "apiVersion: apps/v1\r\nkind: Deployment\r\nspec:\r\n  replicas: @R\r\n",
    ),
    (
        "a tab after the colon",
        "apiVersion:\tapps/v1\nkind:\tDeployment\nspec:\n  replicas:\t@R\n",
    ),
    (
        "a string tag",
        "apiVersion: !!str apps/v1\nkind: !!str Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "escapes in double quotes",
        "apiVersion: \"apps\\/v1\"\nkind: \"Deploym\\x65nt\"\nspec:\n  replicas: @R\n",
    ),
    (
        "a unicode escape",
        "apiVersion: apps/v1\nkind: \"Deploy\\u006dent\"\nspec:\n  replicas: @R\n",
    ),
    (
        "a folded block scalar",
        "apiVersion: apps/v1\nkind: >-\n  Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "a literal block scalar",
        "apiVersion: apps/v1\nkind: |-\n  Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "an explicit key",
        "apiVersion: apps/v1\n? kind\n: Deployment\nspec:\n  replicas: @R\n",
    ),
    (
        "an indented document",
        "  apiVersion: apps/v1\n  kind: Deployment\n  spec:\n    replicas: @R\n",
    ),
    (
        "replicas in hex",
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 0x@R\n",
    ),
    (
        "replicas with a sign",
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: +@R\n",
    ),
];

fn with_template(content: &str, replicas: u32) -> Fixture {
    Fixture::valid()
        .with("spec/policies/replicas.yaml", POLICY)
        .with(TEMPLATE, content.replace("@R", &replicas.to_string()))
}

fn diff(f: &Fixture) -> Run {
    f.run(&["diff", "--env", "dev"])
}

#[test]
fn every_spelling_of_a_deployment_is_checked_by_the_deployment_policy() {
    let mut missed = Vec::new();
    for (name, content) in SPELLINGS {
        let run = diff(&with_template(content, 5));
        let expected = format!("error[replicas]: {RENDERED} Deployment");
        let found = run
            .stdout
            .lines()
            .any(|l| l.starts_with(&expected) && l.ends_with(": at most 3 replicas"));
        if run.code != 1 || !found {
            missed.push(format!("{name}:\n{}", run.transcript()));
        }
    }
    assert!(missed.is_empty(), "not checked:\n{}", missed.join("\n"));
}

#[test]
fn the_same_manifests_within_the_policy_pass_it() {
    // The gate reads the values, not only the kind: 2 replicas pass.
    for (name, content) in SPELLINGS {
        let run = diff(&with_template(content, 2));
        assert_eq!(run.code, 2, "{name}: {}", run.transcript());
        assert!(!run.stdout.contains("error["), "{name}: {}", run.stdout);
    }
}

#[test]
fn a_failing_rule_blocks_apply_and_nothing_is_written() {
    let s = setup("platform-team");
    std::fs::create_dir_all(s.f.path().join("spec/policies")).unwrap();
    std::fs::write(s.f.path().join("spec/policies/replicas.yaml"), POLICY).unwrap();
    std::fs::write(
        s.f.path().join(TEMPLATE),
        "'apiVersion': apps/v1\n'kind': Deployment\nspec : {replicas: 5}\n",
    )
    .unwrap();
    git(s.f.path(), &["add", "-A"]);
    git(s.f.path(), &["commit", "-qm", "a policy"]);
    let run =
        s.f.run(&["--config", s.config.to_str().unwrap(), "apply", "--yes"]);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stdout.contains("error[replicas]: ") || run.stderr.contains("error[replicas]: "),
        "{}",
        run.transcript()
    );
    let refs = git(
        &s.forge().join("infra.git"),
        &["for-each-ref", "--format=%(refname)"],
    );
    assert_eq!(refs, "refs/heads/main\n", "nothing written");
    let repos: Vec<_> = std::fs::read_dir(s.forge())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(repos, ["infra.git"], "no project repo created");
    git(&s.forge().join("infra.git"), &["fsck", "--strict"]);
}

#[test]
fn a_rendered_manifest_that_does_not_parse_is_a_located_error_whatever_its_kind() {
    // No policy matches a Cluster; the file is parsed all the same.
    let cases = [
        ("kind: Cluster\nspec: {replicas: 5\n", ":2"),
        ("kind: Cluster\nmetadata:\n  name: a\n  name: b\n", ":4"),
        ("kind: Cluster\nspec:\n  size: .inf\n", ":3"),
        ("kind: Cluster\n? [a, b]\n: c\n", ""),
    ];
    for (content, line) in cases {
        let f = with_template(content, 0);
        let run = diff(&f);
        assert_eq!(run.code, 1, "{content:?}: {}", run.transcript());
        let located = format!("error[yaml]: {RENDERED}{line}");
        assert!(run.stdout.contains(&located), "{content:?}: {}", run.stdout);
        assert!(run.stdout.contains("does not parse"), "{}", run.stdout);
    }
}

#[test]
fn a_value_has_the_same_type_with_or_without_an_anchor_in_the_file() {
    let policy = "name: types\nmatch:\n  kinds: [Deployment]\nrule: >-\n  type(object.spec.nul) == null_type && object.spec.thousand == 1000 &&\n  type(object.spec.thousand) == int && object.spec.word == 'no' &&\n  type(object.spec.hex) == int && object.spec.hex == 31 &&\n  type(object.spec.ratio) == double && object.spec.yes == true\nseverity: error\nmessage: types differ\n";
    let body = "kind: Deployment\nspec:\n  nul: Null\n  thousand: 1_000\n  word: no\n  hex: 0x1F\n  ratio: 007\n  yes: TRUE\n";
    for content in [
        body.to_owned(),
        format!("{body}metadata:\n  labels: {{a: &x y, b: *x}}\n"),
    ] {
        let f = Fixture::valid()
            .with("spec/policies/types.yaml", policy)
            .with(TEMPLATE, &content);
        let run = diff(&f);
        assert_eq!(run.code, 2, "{content:?}: {}", run.transcript());
        assert!(!run.stdout.contains("types differ"), "{}", run.stdout);
    }
    // The rule can fail: a quoted number is a string.
    let f = Fixture::valid()
        .with("spec/policies/types.yaml", policy)
        .with(TEMPLATE, body.replace("0x1F", "'0x1F'"));
    let run = diff(&f);
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(run.stdout.contains("types differ"), "{}", run.stdout);
}

const JSON_TEMPLATE: &str = "templates/webapp-python/infra/extra.json";
const JSON_RENDERED: &str = "infra (dev):apps/dev/permits/app/extra.json";

#[test]
fn a_deployment_in_a_rendered_json_file_is_checked_like_yaml() {
    let deployment = |replicas: u32| {
        format!(
            "{{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {{\"name\": \"in-json\"}},\n \"spec\": {{\"replicas\": {replicas}}}}}\n"
        )
    };
    let f = Fixture::valid()
        .with("spec/policies/replicas.yaml", POLICY)
        .with(JSON_TEMPLATE, deployment(5));
    let run = diff(&f);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let expected =
        format!("error[replicas]: {JSON_RENDERED} Deployment/in-json: at most 3 replicas");
    assert!(run.stdout.contains(&expected), "{}", run.stdout);

    let f = Fixture::valid()
        .with("spec/policies/replicas.yaml", POLICY)
        .with(&JSON_TEMPLATE.replace(".json", ".JSON"), deployment(5));
    let run = diff(&f);
    assert_eq!(
        run.code,
        1,
        "any case of the extension: {}",
        run.transcript()
    );

    let f = Fixture::valid()
        .with("spec/policies/replicas.yaml", POLICY)
        .with(JSON_TEMPLATE, deployment(2));
    let run = diff(&f);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(!run.stdout.contains("error["), "{}", run.stdout);
}

#[test]
fn a_rendered_json_file_that_does_not_parse_is_a_located_error() {
    let f = Fixture::valid().with(
        JSON_TEMPLATE,
        "{\"kind\": \"Deployment\",\n \"spec\": {\"replicas\": 5}\n",
    );
    let run = diff(&f);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let located = format!("error[yaml]: {JSON_RENDERED}:");
    assert!(run.stdout.contains(&located), "{}", run.stdout);
    assert!(
        run.stdout.contains("rendered JSON does not parse"),
        "{}",
        run.stdout
    );
}

const LIST_TEMPLATE: &str = "templates/webapp-python/infra/list.yaml";
const LIST_RENDERED: &str = "infra (dev):apps/dev/permits/app/list.yaml";

#[test]
fn a_deployment_inside_a_list_is_checked_as_its_own_object() {
    // (content, expected finding after the path): kustomize inlines the
    // items of every `*List` kind, kubectl those of any object with an
    // `items` sequence, nested lists included.
    let cases = [
        (
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: in-list}\n  spec: {replicas: 5}\n",
            ":7 Deployment/in-list",
        ),
        (
            "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n  - apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: typed}\n    spec: {replicas: 5}\n",
            ":4 Deployment/typed",
        ),
        (
            "kind: List\nitems:\n- kind: List\n  items:\n  - {apiVersion: apps/v1, kind: Deployment, metadata: {name: nested}, spec: {replicas: 5}}\n",
            ":5 Deployment/nested",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n{\"kind\": \"List\", \"items\": [{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": \"second\"}, \"spec\": {\"replicas\": 5}}]}\n",
            ":5 Deployment/second",
        ),
        // Read by the full parser (an anchor): the item has no line.
        (
            "kind: List\nmetadata: {labels: {a: &a b}}\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: anchored, labels: {a: *a}}\n  spec: {replicas: 5}\n",
            " Deployment/anchored",
        ),
    ];
    for (content, at) in cases {
        let f = Fixture::valid()
            .with("spec/policies/replicas.yaml", POLICY)
            .with(LIST_TEMPLATE, content);
        let run = diff(&f);
        assert_eq!(run.code, 1, "{content}: {}", run.transcript());
        let expected = format!("error[replicas]: {LIST_RENDERED}{at}: at most 3 replicas");
        assert!(run.stdout.contains(&expected), "{content}: {}", run.stdout);
    }
    // Within the policy, the same list passes.
    let f = Fixture::valid()
        .with("spec/policies/replicas.yaml", POLICY)
        .with(
            LIST_TEMPLATE,
            cases[0].0.replace("replicas: 5", "replicas: 2"),
        );
    let run = diff(&f);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(!run.stdout.contains("error["), "{}", run.stdout);
}

const KUSTOMIZATION: &str = "templates/webapp-python/infra/kustomization.yaml.j2";
const KUSTOMIZATION_RENDERED: &str = "infra (dev):apps/dev/permits/app/kustomization.yaml";

#[test]
fn a_rendered_kustomization_that_would_change_objects_after_the_check_is_refused() {
    let head = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [deployment.yaml]\n";
    // A compliant Deployment made privileged by a patch, pulled from
    // elsewhere, or rewritten: kustomize would build it after the check.
    let cases = [
        (
            "patches:\n  - target: {kind: Deployment}\n    patch: |-\n      - {op: add, path: /spec/template/spec/containers/0/securityContext/privileged, value: true}\n",
            "`patches`",
        ),
        ("components: [../../other]\n", "`components`"),
        (
            "replacements:\n  - source: {kind: ConfigMap, name: c}\n    targets: []\n",
            "`replacements`",
        ),
    ];
    for (extra, named) in cases {
        let f = Fixture::valid().with(KUSTOMIZATION, format!("{head}{extra}"));
        let run = diff(&f);
        assert_eq!(run.code, 1, "{extra}: {}", run.transcript());
        let expected = format!("error[kustomize]: {KUSTOMIZATION_RENDERED}: {named}");
        assert!(run.stdout.contains(&expected), "{extra}: {}", run.stdout);
    }
    for resource in [
        "https://example.org/privileged.yaml",
        "github.com/o/r//deploy?ref=main",
        "../../../../../../etc",
        "missing.yaml",
    ] {
        let content = head.replace(
            "[deployment.yaml]",
            &format!("[deployment.yaml, \"{resource}\"]"),
        );
        let run = diff(&Fixture::valid().with(KUSTOMIZATION, content));
        assert_eq!(run.code, 1, "{resource}: {}", run.transcript());
        assert!(
            run.stdout.contains(&format!(
                "error[kustomize]: {KUSTOMIZATION_RENDERED}: the resources `{resource}` are not"
            )),
            "{resource}: {}",
            run.stdout
        );
    }
    // Listing rendered files only: what kustomize builds is what was checked.
    let run = diff(&Fixture::valid().with(KUSTOMIZATION, head));
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(!run.stdout.contains("error["), "{}", run.stdout);
}
