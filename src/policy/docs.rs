//! Rendered YAML files as CEL values, one per document.
//!
//! Most rendered manifests are plain block YAML without anchors. Those in
//! the [`crate::yaml_subset`] are read by it, their scalars resolved as
//! yaml-rust2 resolves them; the rest of them are read with yaml-rust2,
//! about three times faster than the spec parser. A file with anchors
//! (which could expand without bound), deep nesting or anything yaml-rust2
//! rejects is read by the spec parser, with its depth and node budgets;
//! its error is the one reported.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::types::{CelBool, CelInt, CelList, CelMap, CelMapKey, CelString};
use cel::common::value::Val;
use yaml_rust2::Yaml;

use crate::yaml_subset::{self, Node, Style};

/// One YAML document of a rendered file; its value may borrow the text.
#[derive(Debug)]
pub struct Doc<'t> {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub value: Box<dyn Val + 't>,
}

/// The documents of a file; `None` for a document that is not a mapping.
///
/// # Errors
/// The file is not valid YAML (the message carries line and column).
pub fn parse(text: &str) -> Result<Vec<Option<Doc<'_>>>, String> {
    if fast_path(text) {
        if let Some(docs) = yaml_subset::parse_stream(text) {
            return Ok(docs.into_iter().map(from_node).collect());
        }
        if let Ok(docs) = yaml_rust2::YamlLoader::load_from_str(text) {
            return Ok(docs.iter().map(from_yaml).collect());
        }
    }
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple_with_options(text, crate::spec::yaml::options())
            .map_err(|e| e.to_string())?;
    Ok(docs.iter().map(from_json).collect())
}

/// No anchors, no indentation past 256 columns, flow nesting under 64.
fn fast_path(text: &str) -> bool {
    if text.contains('&') {
        return false;
    }
    let mut flow = 0usize;
    for line in super::lines(text) {
        if line.len() - line.trim_start().len() > 256 {
            return false;
        }
        for b in line.bytes() {
            match b {
                b'[' | b'{' => flow += 1,
                b']' | b'}' => flow = flow.saturating_sub(1),
                _ => {}
            }
            if flow >= 64 {
                return false;
            }
        }
    }
    true
}

fn from_yaml(doc: &Yaml) -> Option<Doc<'static>> {
    let Yaml::Hash(map) = doc else {
        return None;
    };
    let field = |k: &str| match map.get(&Yaml::String(k.to_owned())) {
        Some(Yaml::String(s)) => s.clone(),
        _ => String::new(),
    };
    let name = match &doc["metadata"]["name"] {
        Yaml::String(s) => s.clone(),
        _ => String::new(),
    };
    Some(Doc {
        api_version: field("apiVersion"),
        kind: field("kind"),
        name,
        value: boxed(yaml_value(doc)),
    })
}

/// A CEL value as the CEL context holds it.
fn boxed(value: cel::Value) -> Box<dyn Val> {
    value
        .try_into()
        .expect("YAML gives only nulls, scalars, lists and maps")
}

fn yaml_value(y: &Yaml) -> cel::Value {
    match y {
        Yaml::Real(r) => r.parse::<f64>().map_or_else(
            |_| cel::Value::String(Arc::new(r.clone())),
            cel::Value::Float,
        ),
        Yaml::Integer(i) => cel::Value::Int(*i),
        Yaml::String(s) => cel::Value::String(Arc::new(s.clone())),
        Yaml::Boolean(b) => cel::Value::Bool(*b),
        Yaml::Array(items) => cel::Value::List(Arc::new(items.iter().map(yaml_value).collect())),
        Yaml::Hash(map) => {
            let entries: HashMap<cel::objects::Key, cel::Value> = map
                .iter()
                .filter_map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => cel::objects::Key::from(s.clone()),
                        Yaml::Integer(i) => cel::objects::Key::from(*i),
                        Yaml::Boolean(b) => cel::objects::Key::from(*b),
                        _ => return None,
                    };
                    Some((key, yaml_value(v)))
                })
                .collect();
            cel::Value::Map(entries.into())
        }
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => cel::Value::Null,
    }
}

/// A document of the subset, as [`from_yaml`] reads the same document
/// loaded by yaml-rust2; its strings borrow the text where they can.
fn from_node(doc: Node<'_>) -> Option<Doc<'_>> {
    let Node::Map(entries, _) = &doc else {
        return None;
    };
    let string = |node: Option<&Node<'_>>| match node.map(scalar) {
        Some(Yaml::String(s)) => s,
        _ => String::new(),
    };
    let name = match get(entries, "metadata") {
        Some(Node::Map(meta, _)) => string(get(meta, "name")),
        _ => String::new(),
    };
    Some(Doc {
        api_version: string(get(entries, "apiVersion")),
        kind: string(get(entries, "kind")),
        name,
        value: node_value(doc),
    })
}

/// The value of the string key `k`.
fn get<'n, 'a>(entries: &'n [(Node<'a>, Node<'a>)], k: &str) -> Option<&'n Node<'a>> {
    entries
        .iter()
        .find(|(key, _)| matches!(scalar(key), Yaml::String(s) if s == k))
        .map(|(_, v)| v)
}

/// A scalar as yaml-rust2 loads it (a collection is `BadValue`).
fn scalar(node: &Node<'_>) -> Yaml {
    match node {
        Node::Scalar(text, Style::Quoted, _) => Yaml::String(text.to_string()),
        Node::Scalar(text, Style::Plain, _) => Yaml::from_str(text),
        _ => Yaml::BadValue,
    }
}

/// A scalar that yaml-rust2 loads as a string: its text.
fn text_of<'t>(node: Node<'t>) -> Result<std::borrow::Cow<'t, str>, Yaml> {
    match node {
        Node::Scalar(text, Style::Quoted, _) => Ok(text),
        Node::Scalar(text, Style::Plain, _) if yaml_subset::plain_string(&text) => Ok(text),
        other => match scalar(&other) {
            Yaml::String(s) => Ok(s.into()),
            other => Err(other),
        },
    }
}

/// The CEL value [`yaml_value`] gives for the node's yaml-rust2 value,
/// built without the intermediate `cel::Value`.
fn node_value(node: Node<'_>) -> Box<dyn Val + '_> {
    match node {
        Node::Seq(items, _) => Box::new(CelList::from(
            items.into_iter().map(node_value).collect::<Vec<_>>(),
        )),
        Node::Map(entries, _) => {
            let mut map = HashMap::with_capacity(entries.len());
            map.extend(entries.into_iter().filter_map(|(k, v)| {
                let key = match text_of(k) {
                    Ok(s) => CelMapKey::String(CelString::from(s)),
                    Err(Yaml::Integer(i)) => CelMapKey::Int(CelInt::from(i)),
                    Err(Yaml::Boolean(b)) => CelMapKey::Bool(CelBool::from(b)),
                    Err(_) => return None,
                };
                Some((key, node_value(v)))
            }));
            Box::new(CelMap::<'_>::from(map))
        }
        scalar => match text_of(scalar) {
            Ok(s) => Box::new(CelString::from(s)),
            Err(other) => boxed(yaml_value(&other)),
        },
    }
}

fn from_json(doc: &serde_json::Value) -> Option<Doc<'static>> {
    let obj = doc.as_object()?;
    let field = |k: &str| obj.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    Some(Doc {
        api_version: field("apiVersion"),
        kind: field("kind"),
        name: doc
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned(),
        value: boxed(cel::to_value(doc).unwrap_or(cel::Value::Null)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_readers_give_the_same_documents() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  ratio: 0.5\n  on: true\n  tags: [a, b]\n---\n- not a mapping\n";
        let fast = parse(text).unwrap();
        let anchored = format!("{text}---\nx: &a 1\ny: *a\n");
        let slow = parse(&anchored).unwrap();
        assert_eq!(fast.len(), 2);
        assert_eq!(slow.len(), 3);
        for docs in [&fast, &slow] {
            let d = docs[0].as_ref().unwrap();
            assert_eq!(
                (d.api_version.as_str(), d.kind.as_str(), d.name.as_str()),
                ("apps/v1", "Deployment", "web")
            );
            assert!(docs[1].is_none());
        }
        assert!(*fast[0].as_ref().unwrap().value == *slow[0].as_ref().unwrap().value);
    }

    #[test]
    fn the_subset_reads_scalars_as_yaml_rust2_does() {
        let text = "apiVersion: v1\nkind: \"Pod\"\nmetadata: {name: p}\nspec:\n  \
                    a: [0x1F, 0o17, +5, 1.5, .inf, ~, null, '', True, yes, 1e3, 1_000, 007]\n  \
                    b:\n  - \"7\"\n  - {x: y}\n---\n- list\n";
        let subset = yaml_subset::parse_stream(text).expect("in the subset");
        let loaded = yaml_rust2::YamlLoader::load_from_str(text).expect("valid");
        assert_eq!(subset.len(), loaded.len());
        for (node, yaml) in subset.into_iter().zip(&loaded) {
            match (from_node(node), from_yaml(yaml)) {
                (Some(a), Some(b)) => {
                    assert_eq!(
                        (a.api_version, a.kind, a.name),
                        (b.api_version, b.kind, b.name)
                    );
                    assert!(*a.value == *b.value);
                }
                (a, b) => assert_eq!(a.is_none(), b.is_none()),
            }
        }
    }

    #[test]
    fn invalid_yaml_is_an_error_with_a_position() {
        let err = parse("kind: [Cluster\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
    }
}
