//! Rendered kustomizations may only list rendered files, and change them
//! only in the ways kustomize's own fields name.
//!
//! Policies check the files druppie renders. Flux builds each directory
//! with kustomize before it applies it, and a kustomization can rewrite
//! any field of any object after the policy check (`patches`,
//! `replacements`, components, transformer and generator plugins, Helm
//! charts) or pull in objects druppie never rendered (a remote resource,
//! a path outside the repo). druppie does not run kustomize, so it
//! refuses those: a rendered `kustomization.yaml` (`.yml`,
//! `Kustomization`) may hold only the fields of [`ALLOWED`], and each
//! resource must be a file or directory rendered into the same repo. The
//! fields allowed change what their names say and nothing else (a
//! namespace, names, labels and annotations, image references, replica
//! counts, generated ConfigMaps and Secrets); they are applied after the
//! policy check, which the README states.

use crate::render::Target;

/// The file names kustomize reads as a kustomization.
const NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The fields that add no object from elsewhere and change only what
/// their names say.
const ALLOWED: [&str; 17] = [
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "labels",
    "commonLabels",
    "commonAnnotations",
    "images",
    "replicas",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "buildMetadata",
    "sortOptions",
];

/// Whether kustomize reads the file at `path` as a kustomization.
pub(super) fn is_kustomization(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// What in the kustomization at `path` would change or add objects after
/// the policy check, as one message; `None` when nothing would (or when
/// the file does not parse, which the YAML check reports).
pub(super) fn check(target: &Target, path: &str, text: &str) -> Option<String> {
    // The fast reader reads what it reads as the full parser does.
    let read = crate::yaml_subset::de::from_stream::<serde_json::Value>(text).map(Ok);
    let docs = match read.unwrap_or_else(|| {
        serde_saphyr::from_multiple_with_options(text, crate::spec::yaml::options())
    }) {
        Ok(docs) => docs,
        Err(_) if super::docs::parse(text).is_err() => return None,
        Err(e) => {
            let why = crate::spec::yaml::bare_message(&e.without_snippet().to_string());
            return Some(format!("cannot be read as a kustomization: {why}"));
        }
    };
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut keys = Vec::new();
    let mut outside = Vec::new();
    for doc in &docs {
        let Some(map) = doc.as_object() else {
            return Some("is not a mapping, so kustomize cannot read it".to_owned());
        };
        for (key, value) in map {
            if !ALLOWED.contains(&key.as_str()) {
                keys.push(format!("`{key}`"));
            } else if key == "resources" {
                match value.as_array() {
                    Some(list) => outside.extend(
                        list.iter()
                            .filter(|r| !r.as_str().is_some_and(|r| rendered(target, dir, r)))
                            .map(|r| match r.as_str() {
                                Some(s) => format!("`{}`", s.escape_debug()),
                                None => format!("`{r}`"),
                            }),
                    ),
                    None if value.is_null() => {}
                    None => outside.push("`resources` (not a list)".to_owned()),
                }
            }
        }
    }
    let mut parts = Vec::new();
    if !keys.is_empty() {
        parts.push(format!(
            "{} could rewrite objects after the policy check",
            keys.join(", ")
        ));
    }
    if !outside.is_empty() {
        parts.push(format!(
            "the resources {} are not files or directories rendered into this repo",
            outside.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "{}; policies check the rendered files, not kustomize's output, so a rendered kustomization may list only rendered files and use only kustomize's namespace, name, label, annotation, image, replica and generator fields (render the final manifests in the templates instead)",
            parts.join("; ")
        )
    })
}

/// Whether `resource`, relative to `dir`, names a file or directory of
/// the rendered repo (without leaving it).
fn rendered(target: &Target, dir: &str, resource: &str) -> bool {
    if resource.starts_with('/') || resource.contains('\\') || resource.contains("://") {
        return false;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for seg in resource.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return false;
                }
            }
            seg => parts.push(seg),
        }
    }
    if parts.is_empty() {
        return false;
    }
    let joined = parts.join("/");
    let under = format!("{joined}/");
    target.files.contains_key(&joined)
        || target
            .files
            .range(under.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&under))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::render::File;
    use crate::spec::model::OwnershipMode;

    fn target(paths: &[&str]) -> Target {
        let file = || File {
            bytes: Vec::new(),
            mode: OwnershipMode::Managed,
        };
        Target {
            repo: "infra".into(),
            kind: crate::render::RepoKind::Infra,
            env: Some("dev".into()),
            plans: Vec::new(),
            files: paths.iter().map(|p| ((*p).to_owned(), file())).collect(),
            locks: BTreeMap::new(),
        }
    }

    const HEAD: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n";

    #[test]
    fn a_kustomization_listing_rendered_files_passes() {
        let t = target(&[
            "a/p/namespace.yaml",
            "a/p/app/deployment.yaml",
            "a/q/x.yaml",
        ]);
        let text = format!(
            "{HEAD}metadata: {{name: k}}\nresources:\n  - namespace.yaml\n  - app\n  - ./app/\n  - ../q/x.yaml\n"
        );
        assert_eq!(check(&t, "a/p/kustomization.yaml", &text), None);
    }

    #[test]
    fn fields_that_change_only_what_they_name_pass() {
        let t = target(&["a/p/app/deployment.yaml", "a/p/app/kustomization.yaml"]);
        let text = format!(
            "{HEAD}resources: [deployment.yaml]\nnamespace: shop\nnamePrefix: x-\nlabels: [{{pairs: {{a: b}}}}]\ncommonAnnotations: {{a: b}}\nimages: [{{name: nginx, newTag: '1.27'}}]\nreplicas: [{{name: web, count: 2}}]\nconfigMapGenerator: [{{name: c, literals: [a=b]}}]\nsecretGenerator: [{{name: s, literals: [a=b]}}]\ngeneratorOptions: {{disableNameSuffixHash: true}}\n"
        );
        assert_eq!(check(&t, "a/p/app/kustomization.yaml", &text), None);
    }

    #[test]
    fn transforms_and_resources_from_elsewhere_are_refused() {
        let t = target(&["a/p/app/deployment.yaml", "a/p/app/kustomization.yaml"]);
        for (body, named) in [
            ("patches:\n  - path: p.yaml\n", "`patches`"),
            (
                "replacements:\n  - source: {kind: ConfigMap}\n",
                "`replacements`",
            ),
            ("helmCharts: [{name: x}]\n", "`helmCharts`"),
            ("bases: [../q]\n", "`bases`"),
            (
                "resources: [https://example.org/x.yaml]\n",
                "https://example.org/x.yaml",
            ),
            (
                "resources: [github.com/o/r//x?ref=main]\n",
                "github.com/o/r",
            ),
            ("resources: [missing.yaml]\n", "missing.yaml"),
            ("resources: [../../../../etc]\n", "../../../../etc"),
            ("resources: [/etc/passwd]\n", "/etc/passwd"),
            ("resources: [deployment.yaml, {a: b}]\n", "{\"a\":\"b\"}"),
        ] {
            let text = format!("{HEAD}{body}");
            let msg = check(&t, "a/p/app/kustomization.yaml", &text)
                .unwrap_or_else(|| panic!("{body} must be refused"));
            assert!(msg.contains(named), "{body}: {msg}");
        }
        assert!(check(&t, "a/p/app/kustomization.yaml", "- a\n").is_some());
        // A file that does not parse is the YAML check's to report.
        assert_eq!(check(&t, "a/p/app/kustomization.yaml", "a: [\n"), None);
    }

    #[test]
    fn kustomize_file_names_are_recognised() {
        for yes in [
            "a/kustomization.yaml",
            "kustomization.yml",
            "x/Kustomization",
            "K/KUSTOMIZATION.YAML",
        ] {
            assert!(is_kustomization(yes), "{yes}");
        }
        for no in [
            "a/kustomization.yaml.bak",
            "a/my-kustomization.yaml",
            "a/deployment.yaml",
        ] {
            assert!(!is_kustomization(no), "{no}");
        }
    }
}
