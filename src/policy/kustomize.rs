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
//! policy check, which the README states. A `labels` entry's `fields`
//! writes its pairs at any path of the objects, so it is refused.

use std::borrow::Cow;

use super::docs::{Doc, string};
use crate::render::Target;
use crate::yaml_subset::resolve::{self, Scalar};
use crate::yaml_subset::{Node, Style};

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

/// One document of a kustomization as the check reads it: `None` when it
/// is not a mapping, else its top-level keys, each with what the check
/// reads of its value.
type Fields<'a> = Option<Vec<(Cow<'a, str>, Listed<'a>)>>;

/// What the check reads of a key's value: for `resources`, null, a list
/// (each entry a string, or any other value as JSON text) or something
/// else; for `labels`, whether an entry names `fields`. Other keys' values
/// are not read.
enum Listed<'a> {
    Unread,
    Null,
    List(Vec<Result<Cow<'a, str>, String>>),
    NotList,
    /// `labels` whose entries write their pairs only where kustomize
    /// writes labels (`false`), or some entry's `fields` names other
    /// places in the objects (`true`).
    Labels(bool),
}

/// What in the kustomization at `path` would change or add objects after
/// the policy check, as one message; `None` when nothing would. `docs`
/// are its documents as the YAML check parsed them (a file that does not
/// parse is the YAML check's to report).
pub(super) fn check(target: &Target, path: &str, text: &str, docs: &[Doc<'_>]) -> Option<String> {
    // The documents the fast reader read are taken as they are; the rest,
    // and what they hold beyond names and strings, as JSON values.
    let read: Option<Vec<Fields<'_>>> =
        super::docs::documents(docs).and_then(|nodes| nodes.into_iter().map(node_fields).collect());
    let json;
    let read = match read {
        Some(read) => read,
        None => {
            let parsed = crate::yaml_subset::de::from_stream::<serde_json::Value>(text).map(Ok);
            json = match parsed.unwrap_or_else(|| {
                serde_saphyr::from_multiple_with_options(text, crate::spec::yaml::options())
            }) {
                Ok(json) => json,
                Err(e) => {
                    let why = crate::spec::yaml::bare_message(&e.without_snippet().to_string());
                    return Some(format!("cannot be read as a kustomization: {why}"));
                }
            };
            json.iter().map(json_fields).collect()
        }
    };
    verdict(target, path, read)
}

/// The message for what `read` holds, as [`check`] gives it.
fn verdict(target: &Target, path: &str, read: Vec<Fields<'_>>) -> Option<String> {
    let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let mut keys = Vec::new();
    let mut outside = Vec::new();
    for fields in read {
        let Some(fields) = fields else {
            return Some("is not a mapping, so kustomize cannot read it".to_owned());
        };
        for (key, listed) in fields {
            if !ALLOWED.contains(&&*key) {
                keys.push(format!("`{key}`"));
                continue;
            }
            match listed {
                Listed::Unread | Listed::Null | Listed::Labels(false) => {}
                Listed::Labels(true) => keys.push("`labels[].fields`".to_owned()),
                Listed::List(list) => outside.extend(list.into_iter().filter_map(|r| match r {
                    Ok(r) if rendered(target, dir, &r) => None,
                    Ok(r) => Some(format!("`{}`", r.escape_debug())),
                    Err(json) => Some(format!("`{json}`")),
                })),
                Listed::NotList => outside.push("`resources` (not a list)".to_owned()),
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

/// A document the fast reader read; `None` (read it as JSON) for a key
/// (of the document or of a `labels` entry) or an entry of `resources`
/// that is not a string, which only JSON text shows as kustomize reads
/// it, and for a value the full parser refuses.
fn node_fields<'a>(node: &Node<'a>) -> Option<Fields<'a>> {
    let Node::Map(entries, _) = node else {
        return Some(None);
    };
    let mut fields = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let key = string(key)?;
        let listed = match (&*key, value) {
            ("resources", Node::Seq(items, _)) => Listed::List(
                items
                    .iter()
                    .map(|i| string(i).map(Ok))
                    .collect::<Option<_>>()?,
            ),
            ("resources", Node::Scalar(text, Style::Plain, _)) => match resolve::plain(text) {
                Ok(Scalar::Null) => Listed::Null,
                Ok(_) => Listed::NotList,
                // Refused by the full parser: its message, not ours.
                Err(_) => return None,
            },
            ("resources", _) => Listed::NotList,
            ("labels", Node::Seq(entries, _)) => {
                let mut fields = false;
                for entry in entries {
                    if let Node::Map(pairs, _) = entry {
                        for (key, _) in pairs {
                            fields |= string(key)? == "fields";
                        }
                    }
                }
                Listed::Labels(fields)
            }
            _ => Listed::Unread,
        };
        fields.push((key, listed));
    }
    // In the order a JSON object keeps them, so the message names them
    // alike.
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Some(Some(fields))
}

/// A document read as a JSON value.
fn json_fields(doc: &serde_json::Value) -> Fields<'_> {
    let map = doc.as_object()?;
    let fields = map.iter().map(|(key, value)| {
        let listed = if key == "labels" {
            let entries = value.as_array().into_iter().flatten();
            Listed::Labels(
                entries
                    .filter_map(|e| e.as_object())
                    .any(|e| e.contains_key("fields")),
            )
        } else if key != "resources" {
            Listed::Unread
        } else if let Some(list) = value.as_array() {
            Listed::List(
                list.iter()
                    .map(|r| r.as_str().map(Cow::Borrowed).ok_or_else(|| r.to_string()))
                    .collect(),
            )
        } else if value.is_null() {
            Listed::Null
        } else {
            Listed::NotList
        };
        (Cow::Borrowed(key.as_str()), listed)
    });
    Some(fields.collect())
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

    /// The check on `text` as the YAML check parses it; `None` when it
    /// does not parse.
    fn read(t: &Target, path: &str, text: &str) -> Option<String> {
        let docs = crate::policy::docs::parse(text).ok()?;
        check(t, path, text, &docs)
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
        assert_eq!(read(&t, "a/p/kustomization.yaml", &text), None);
    }

    #[test]
    fn fields_that_change_only_what_they_name_pass() {
        let t = target(&["a/p/app/deployment.yaml", "a/p/app/kustomization.yaml"]);
        let text = format!(
            "{HEAD}resources: [deployment.yaml]\nnamespace: shop\nnamePrefix: x-\nlabels: [{{pairs: {{a: b}}}}]\ncommonAnnotations: {{a: b}}\nimages: [{{name: nginx, newTag: '1.27'}}]\nreplicas: [{{name: web, count: 2}}]\nconfigMapGenerator: [{{name: c, literals: [a=b]}}]\nsecretGenerator: [{{name: s, literals: [a=b]}}]\ngeneratorOptions: {{disableNameSuffixHash: true}}\n"
        );
        assert_eq!(read(&t, "a/p/app/kustomization.yaml", &text), None);
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
                "labels:\n  - pairs: {a: b}\n    fields: [{path: spec/template/spec/nodeSelector, create: true}]\n",
                "`labels[].fields`",
            ),
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
            let msg = read(&t, "a/p/app/kustomization.yaml", &text)
                .unwrap_or_else(|| panic!("{body} must be refused"));
            assert!(msg.contains(named), "{body}: {msg}");
        }
        assert!(read(&t, "a/p/app/kustomization.yaml", "- a\n").is_some());
        // A file that does not parse is the YAML check's to report.
        assert_eq!(read(&t, "a/p/app/kustomization.yaml", "a: [\n"), None);
    }

    #[test]
    fn the_fast_reader_and_the_full_parser_give_the_same_verdict() {
        let t = target(&["a/p/app/deployment.yaml"]);
        // An anchor is outside the fast reader's subset: the same file
        // with one is read by the full parser.
        for body in [
            "resources: [deployment.yaml]\n",
            "resources: [deployment.yaml, missing.yaml, 5, {a: b}, null]\n",
            "resources:\n  - \"deployment.yaml\"\n  - ../../x\n",
            "resources: ~\n",
            "resources: deployment.yaml\n",
            "resources: {a: b}\npatches: []\n'1': x\n",
        ] {
            let fast = format!("{HEAD}{body}");
            let full = format!("{HEAD}metadata: &m {{name: k}}\n{body}");
            assert!(crate::yaml_subset::parse_stream(&fast).is_some(), "{body}");
            assert!(crate::yaml_subset::parse_stream(&full).is_none(), "{body}");
            let path = "a/p/app/kustomization.yaml";
            assert_eq!(read(&t, path, &fast), read(&t, path, &full), "{body}");
        }
        assert!(
            read(
                &t,
                "a/p/app/kustomization.yaml",
                &format!("{HEAD}resources: [x, 5]\n")
            )
            .is_some_and(|m| m.contains("`5`"))
        );
    }

    #[test]
    fn documents_taken_as_read_and_as_json_values_give_the_same_verdict() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let t = target(&["a/p/app/deployment.yaml", "a/p/app/x/y.yaml"]);
        let item = prop::sample::select(vec![
            "deployment.yaml",
            "'x'",
            "\"../../etc\"",
            "x/",
            "./x",
            "5",
            "true",
            "null",
            "~",
            "{a: b}",
            "[c]",
            "'5'",
            ".inf",
            "''",
        ]);
        let value = prop_oneof![
            prop::collection::vec(item, 0..5).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::sample::select(vec![
                "null",
                "~",
                "",
                "x",
                "'y'",
                "{}",
                "[]",
                "{a: b}",
                "7",
                "[{pairs: {a: b}}]",
                "[{pairs: {a: b}, fields: []}]",
                "[x, {'fields': 1}]",
                "[{1: x}]",
            ])
            .prop_map(str::to_owned),
        ];
        let key = prop::sample::select(vec![
            "resources",
            "'resources'",
            "namespace",
            "patches",
            "images",
            "'1'",
            "1",
            "kind",
            "null",
            "\"bases\"",
            "labels",
        ]);
        let doc = prop::collection::btree_map(key, value, 0..5).prop_map(|entries| {
            let mut text = String::new();
            for (k, v) in entries {
                text.push_str(&format!("{k}: {v}\n"));
            }
            text
        });
        let stream = prop::collection::vec(doc, 1..3).prop_map(|docs| docs.join("---\n"));
        TestRunner::new(Config::with_cases(512))
            .run(&stream, |text| {
                let path = "a/p/app/kustomization.yaml";
                let Ok(docs) = crate::policy::docs::parse(&text) else {
                    return Ok(());
                };
                let read: Option<Vec<Fields<'_>>> = crate::policy::docs::documents(&docs)
                    .and_then(|nodes| nodes.into_iter().map(node_fields).collect());
                let json: Option<Vec<serde_json::Value>> =
                    crate::yaml_subset::de::from_stream(&text);
                if let (Some(read), Some(json)) = (read, json) {
                    let as_json = json.iter().map(json_fields).collect();
                    prop_assert_eq!(
                        verdict(&t, path, read),
                        verdict(&t, path, as_json),
                        "{}",
                        text
                    );
                }
                Ok(())
            })
            .expect("the verdicts agree");
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
