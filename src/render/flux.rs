//! druppie's Flux objects in the infra repo: one Flux `Kustomization`
//! (`kustomize.toolkit.fluxcd.io/v1`) per plan and environment, and per
//! environment the list of them.
//!
//! ```text
//! clusters/<env>/druppie/
//!   kustomization.yaml        the list: every <plan>/ here with a lock
//!   <plan>/sync.yaml          Kustomization <plan>-<env> over <env path>/<plan>
//!   <plan>/kustomization.yaml resources: [sync.yaml]
//!   <plan>/.druppie-lock.yaml
//! ```
//!
//! A plan's Flux directory is one more location of the plan, rendered and
//! sealed like its plan directory, so drift, pruning and the three-way
//! logic treat it the same. The list belongs to no plan: it follows from
//! which plan directories exist, and [`listed`], [`after`] and [`list`]
//! compute it, for `diff` from the live tree and for `apply` from the
//! tree each commit builds on. The cluster's own Flux configuration
//! includes `clusters/<env>/druppie` with one line; druppie never writes
//! Flux's bootstrap files (`flux-system/`).
//!
//! Every text is a struct with a fixed key order, written by a YAML
//! serializer (a plan's `sync.yaml` directly, where that gives the
//! serializer's bytes: [`sync_text`]), so the same plan gives the same
//! bytes.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::compose::Instance;
use crate::lock::LOCK_FILE;
use crate::spec::names;

/// The file holding a plan's Flux `Kustomization`.
pub const SYNC_FILE: &str = "sync.yaml";

/// The kustomize file of a plan's Flux directory and of the list.
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

/// Where Flux's own objects live, druppie's Kustomizations among them.
pub const FLUX_NAMESPACE: &str = "flux-system";

/// Label on every object druppie writes for Flux.
const MANAGED_BY: &str = "druppie";

/// How often Flux reconciles a plan, and retries after a failure.
const INTERVAL: &str = "10m";
const RETRY_INTERVAL: &str = "2m";
/// How long Flux waits for the plan's objects to be Ready.
const TIMEOUT: &str = "5m";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FluxKustomization<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    spec: Spec<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: String,
    namespace: &'static str,
    labels: Labels<'a>,
}

#[derive(Serialize)]
struct Labels<'a> {
    #[serde(rename = "app.kubernetes.io/managed-by")]
    managed_by: &'static str,
    #[serde(rename = "druppie.io/plan")]
    plan: &'a str,
    #[serde(rename = "druppie.io/environment")]
    environment: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Spec<'a> {
    interval: &'static str,
    retry_interval: &'static str,
    timeout: &'static str,
    path: String,
    prune: bool,
    wait: bool,
    target_namespace: &'a str,
    source_ref: SourceRef,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<Dependency>,
}

#[derive(Serialize)]
struct SourceRef {
    kind: &'static str,
    name: &'static str,
}

#[derive(Serialize)]
struct Dependency {
    name: String,
}

/// A kustomize `Kustomization` listing resources.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Resources<'a> {
    api_version: &'static str,
    kind: &'static str,
    resources: Vec<&'a str>,
}

/// `header` (comment lines) and `value` as YAML, list items indented
/// under their key as in the rest of the infra repo.
fn yaml(header: &str, value: &impl Serialize) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.compact_list_indent = false;
    let body = serde_saphyr::to_string_with_options(value, options)
        .expect("plain structs of strings and booleans serialize");
    format!("{header}{body}")
}

/// The comment lines opening a plan's `sync.yaml`.
const SYNC_HEADER: &str = "# Written by druppie: Flux applies this plan's directory in this environment.\n\
                           # Edits are reported as drift.\n";

/// A plan's `Kustomization` as text: written directly when every string
/// in it is one the serializer writes as it is ([`bare`]), as names
/// almost always are; by the serializer otherwise. Where both apply
/// they give the same bytes (a property test holds them to it).
fn sync_text(k: &FluxKustomization<'_>) -> String {
    direct(k).unwrap_or_else(|| yaml(SYNC_HEADER, k))
}

/// [`sync_text`] without the serializer: `None` when a string in it is
/// not [`bare`].
fn direct(k: &FluxKustomization<'_>) -> Option<String> {
    use std::fmt::Write as _;
    let (m, s) = (&k.metadata, &k.spec);
    let values = [
        m.name.as_str(),
        m.labels.plan,
        m.labels.environment,
        s.path.as_str(),
        s.target_namespace,
    ];
    if !values.into_iter().all(bare) || !s.depends_on.iter().all(|d| bare(&d.name)) {
        return None;
    }
    let mut t = String::with_capacity(768);
    t.push_str(SYNC_HEADER);
    let _ = write!(
        t,
        "apiVersion: {}\nkind: {}\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n    \
         app.kubernetes.io/managed-by: {}\n    druppie.io/plan: {}\n    \
         druppie.io/environment: {}\nspec:\n  interval: {}\n  retryInterval: {}\n  \
         timeout: {}\n  path: {}\n  prune: {}\n  wait: {}\n  targetNamespace: {}\n  \
         sourceRef:\n    kind: {}\n    name: {}\n",
        k.api_version,
        k.kind,
        m.name,
        m.namespace,
        m.labels.managed_by,
        m.labels.plan,
        m.labels.environment,
        s.interval,
        s.retry_interval,
        s.timeout,
        s.path,
        s.prune,
        s.wait,
        s.target_namespace,
        s.source_ref.kind,
        s.source_ref.name,
    );
    if !s.depends_on.is_empty() {
        t.push_str("  dependsOn:\n");
        for d in &s.depends_on {
            let _ = writeln!(t, "    - name: {}", d.name);
        }
    }
    Some(t)
}

/// Whether the serializer writes `s` bare (plain, on its line), by a rule
/// narrower than its own: at most 80 characters (it folds longer ones
/// with `>-`), lowercase letters, digits and `-` `_` `.` `/`, starting
/// with a letter or `./`, and not a word YAML 1.1 or 1.2 reads as a
/// boolean, null or number.
fn bare(s: &str) -> bool {
    const WORDS: [&str; 14] = [
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "infinity",
        "ok", "none",
    ];
    let starts_well = s.starts_with(|c: char| c.is_ascii_lowercase()) || s.starts_with("./");
    starts_well
        && s.len() <= 80
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_./".contains(&b))
        && !WORDS.contains(&s)
}

/// The files of one plan's Flux directory in one environment, as (path
/// in the repo, text): its `Kustomization` and the kustomize file
/// listing it.
pub fn plan_files(instance: &Instance) -> [(String, String); 2] {
    let dir = names::flux_plan_dir(&instance.env, &instance.plan);
    let sync = sync_text(&sync_object(instance));
    // The same for every plan: written once.
    static KUSTOMIZATION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let kustomization = KUSTOMIZATION.get_or_init(|| {
        yaml(
            "# Written by druppie for this plan and environment; edits are reported as drift.\n",
            &Resources {
                api_version: "kustomize.config.k8s.io/v1beta1",
                kind: "Kustomization",
                resources: vec![SYNC_FILE],
            },
        )
    });
    [
        (format!("{dir}/{SYNC_FILE}"), sync),
        (format!("{dir}/{KUSTOMIZATION_FILE}"), kustomization.clone()),
    ]
}

/// A plan's Flux `Kustomization` in its environment.
fn sync_object(instance: &Instance) -> FluxKustomization<'_> {
    FluxKustomization {
        api_version: "kustomize.toolkit.fluxcd.io/v1",
        kind: "Kustomization",
        metadata: Metadata {
            name: names::flux_name(&instance.plan, &instance.env),
            namespace: FLUX_NAMESPACE,
            labels: Labels {
                managed_by: MANAGED_BY,
                plan: &instance.plan,
                environment: &instance.env,
            },
        },
        spec: Spec {
            interval: INTERVAL,
            retry_interval: RETRY_INTERVAL,
            timeout: TIMEOUT,
            path: format!(
                "./{}",
                names::plan_dir(&instance.infra_path, &instance.plan)
            ),
            prune: true,
            wait: true,
            target_namespace: &instance.namespace,
            source_ref: SourceRef {
                kind: "GitRepository",
                name: "flux-system",
            },
            depends_on: instance
                .depends_on
                .iter()
                .map(|other| Dependency {
                    name: names::flux_name(other, &instance.env),
                })
                .collect(),
        },
    }
}

/// The path of an environment's list: `clusters/<env>/druppie/kustomization.yaml`.
pub fn list_path(env: &str) -> String {
    format!("{}/{KUSTOMIZATION_FILE}", names::flux_dir(env))
}

/// The plan directories of `env` that `paths` (full paths in the infra
/// repo) hold a lock in: `clusters/<env>/druppie/<plan>/.druppie-lock.yaml`.
pub fn listed<'p>(env: &str, paths: impl IntoIterator<Item = &'p str>) -> BTreeSet<String> {
    paths
        .into_iter()
        .filter_map(|path| plan_of_lock(env, path))
        .map(str::to_owned)
        .collect()
}

/// The plan whose Flux lock `path` is, in `env`.
pub fn plan_of_lock<'p>(env: &str, path: &'p str) -> Option<&'p str> {
    let root = names::flux_dir(env);
    let rest = path.strip_prefix(root.as_str())?.strip_prefix('/')?;
    let plan = rest.strip_suffix(LOCK_FILE)?.strip_suffix('/')?;
    (!plan.is_empty() && !plan.contains('/')).then_some(plan)
}

/// `plans` after a change set's changes to files of `env`: a created
/// (or rewritten) Flux lock lists its plan, a deleted one removes it.
/// `changes` are (full path, whether the file is there afterwards).
pub fn after<'c>(
    env: &str,
    mut plans: BTreeSet<String>,
    changes: impl IntoIterator<Item = (&'c str, bool)>,
) -> BTreeSet<String> {
    for (path, present) in changes {
        let Some(plan) = plan_of_lock(env, path) else {
            continue;
        };
        if present {
            plans.insert(plan.to_owned());
        } else {
            plans.remove(plan);
        }
    }
    plans
}

/// Whether a change set's changes (as for [`after`]) touch the lock of
/// a Flux location of `env`: only then can the list change with them
/// (whether it does, [`moves_list_on`] says from the tree).
pub fn moves_list<'c>(env: &str, changes: impl IntoIterator<Item = (&'c str, bool)>) -> bool {
    changes
        .into_iter()
        .any(|(path, _)| plan_of_lock(env, path).is_some())
}

/// Whether a change set's changes (as for [`after`]) create or delete a
/// Flux location of `env` on a tree that holds the paths `holds` says:
/// only then does the list change with them. A lock written again in
/// place (a plan's render changed) leaves the list as it is, so such a
/// change set costs no walk over every plan's Flux directory.
pub fn moves_list_on<'c>(
    env: &str,
    changes: impl IntoIterator<Item = (&'c str, bool)>,
    holds: impl Fn(&str) -> bool,
) -> bool {
    changes
        .into_iter()
        .any(|(path, present)| plan_of_lock(env, path).is_some() && holds(path) != present)
}

/// The list's text: a kustomize `Kustomization` whose resources are the
/// plan directories, sorted (`resources: []` when there are none).
pub fn list(plans: &BTreeSet<String>) -> String {
    yaml(
        "# Written by druppie: one directory per plan deployed to this environment.\n\
         # The cluster's Flux configuration includes this directory with one line.\n",
        &Resources {
            api_version: "kustomize.config.k8s.io/v1beta1",
            kind: "Kustomization",
            resources: plans.iter().map(String::as_str).collect(),
        },
    )
}

/// Each environment's list of the Flux directories rendered into it, so
/// a whole render is a tree Flux (and `kubectl kustomize`) can build.
pub(super) fn add_lists(desired: &mut crate::render::Desired) {
    for target in desired.targets.values_mut() {
        let Some(env) = target.env.clone() else {
            continue;
        };
        let plans = listed(&env, target.files.keys().map(String::as_str));
        target.files.insert(
            list_path(&env),
            crate::render::File {
                bytes: list(&plans).into_bytes(),
                mode: crate::spec::model::OwnershipMode::Managed,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::model::Trust;

    fn instance(depends_on: &[&str]) -> Instance {
        Instance {
            plan: "permits".into(),
            env: "dev".into(),
            trust: Trust::Deploy,
            owner: "team".into(),
            intent: None,
            namespace: "permits-dev".into(),
            infra_path: "apps/dev".into(),
            components: Vec::new(),
            depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn a_plans_kustomization_points_flux_at_its_directory() {
        let [(sync_path, sync), (k_path, k)] = plan_files(&instance(&["auth", "db"]));
        assert_eq!(sync_path, "clusters/dev/druppie/permits/sync.yaml");
        assert_eq!(k_path, "clusters/dev/druppie/permits/kustomization.yaml");
        let body: String =
            sync.lines()
                .filter(|l| !l.starts_with('#'))
                .fold(String::new(), |mut s, l| {
                    s.push_str(l);
                    s.push('\n');
                    s
                });
        assert_eq!(
            body,
            "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: permits-dev
  namespace: flux-system
  labels:
    app.kubernetes.io/managed-by: druppie
    druppie.io/plan: permits
    druppie.io/environment: dev
spec:
  interval: 10m
  retryInterval: 2m
  timeout: 5m
  path: ./apps/dev/permits
  prune: true
  wait: true
  targetNamespace: permits-dev
  sourceRef:
    kind: GitRepository
    name: flux-system
  dependsOn:
    - name: auth-dev
    - name: db-dev
"
        );
        assert!(k.ends_with("resources:\n  - sync.yaml\n"), "{k}");
        let [(_, alone), _] = plan_files(&instance(&[]));
        assert!(!alone.contains("dependsOn"), "{alone}");
    }

    #[test]
    fn the_direct_text_is_the_serializers() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        // Names as a spec could hold them, words YAML reads as something
        // else among them.
        let word = prop_oneof![
            12 => "[a-z][a-z0-9-]{0,20}",
            2 => "[a-z][a-z0-9/_.-]{50,90}",
            1 => "[a-z0-9._/-]{1,12}",
            1 => prop::sample::select(vec![
                "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf", "e3",
                "0x1f", "1e3", "12", "0o7", "-a", ".", "./", "_x", "a.b", "x-", "a/b", "~",
            ])
            .prop_map(str::to_owned),
        ];
        let names = (
            word.clone(),
            word.clone(),
            word.clone(),
            word.clone(),
            prop::collection::vec(word, 0..3),
        );
        let written = std::cell::Cell::new(0);
        TestRunner::new(Config::with_cases(1024))
            .run(&names, |(plan, env, namespace, path, others)| {
                let mut instance = instance(&[]);
                instance.plan = plan;
                instance.env = env;
                instance.namespace = namespace;
                instance.infra_path = path;
                instance.depends_on = others;
                let k = sync_object(&instance);
                if let Some(direct) = direct(&k) {
                    written.set(written.get() + 1);
                    prop_assert_eq!(direct, yaml(SYNC_HEADER, &k));
                }
                Ok(())
            })
            .expect("the direct text is the serializer's");
        assert!(written.get() > 200, "{} written directly", written.get());
        // The benchmark's and the tests' names are written directly.
        assert!(bare("svc-00001-billing") && bare("./apps/dev/permits"));
        assert!(!bare("true") && !bare("1e3") && !bare("-a") && !bare("A"));
    }

    #[test]
    fn the_list_follows_the_plan_directories_with_a_lock() {
        let live = [
            "clusters/dev/druppie/kustomization.yaml",
            "clusters/dev/druppie/b/.druppie-lock.yaml",
            "clusters/dev/druppie/b/sync.yaml",
            "clusters/dev/druppie/a/.druppie-lock.yaml",
            "clusters/dev/druppie/x/y/.druppie-lock.yaml",
            "clusters/dev/druppie/c/sync.yaml",
            "clusters/prod/druppie/p/.druppie-lock.yaml",
            "clusters/dev/druppie2/q/.druppie-lock.yaml",
        ];
        let now = listed("dev", live);
        assert_eq!(now.iter().collect::<Vec<_>>(), ["a", "b"]);
        let changes = [
            ("clusters/dev/druppie/c/.druppie-lock.yaml", true),
            ("clusters/dev/druppie/a/.druppie-lock.yaml", false),
            ("clusters/dev/druppie/a/sync.yaml", false),
            ("apps/dev/a/.druppie-lock.yaml", false),
        ];
        assert!(moves_list("dev", changes));
        // On a tree with `a` and `b`: `c` is created and `a` deleted; `b`
        // written again alone moves nothing.
        let on = |p: &str| {
            [
                "clusters/dev/druppie/a/.druppie-lock.yaml",
                "clusters/dev/druppie/b/.druppie-lock.yaml",
            ]
            .contains(&p)
        };
        assert!(moves_list_on("dev", changes, on));
        let rewritten = [("clusters/dev/druppie/b/.druppie-lock.yaml", true)];
        assert!(moves_list("dev", rewritten) && !moves_list_on("dev", rewritten, on));
        assert!(moves_list_on(
            "dev",
            [("clusters/dev/druppie/b/.druppie-lock.yaml", false)],
            on
        ));
        assert!(!moves_list(
            "dev",
            [("apps/dev/a/.druppie-lock.yaml", false)]
        ));
        let next = after("dev", now, changes);
        assert_eq!(next.iter().collect::<Vec<_>>(), ["b", "c"]);
        assert!(list(&next).ends_with("resources:\n  - b\n  - c\n"));
        assert!(
            list(&BTreeSet::new()).ends_with("resources: []\n"),
            "{}",
            list(&BTreeSet::new())
        );
    }

    #[test]
    fn the_example_infra_repo_starts_with_druppies_own_empty_list() {
        for example in [
            include_str!("../../infra-example/clusters/dev/druppie/kustomization.yaml"),
            include_str!("../../infra-example/clusters/test/druppie/kustomization.yaml"),
            include_str!("../../infra-example/clusters/prod/druppie/kustomization.yaml"),
        ] {
            assert_eq!(example, list(&BTreeSet::new()));
        }
    }
}
