//! Rendered YAML files as CEL values, one per document.
//!
//! Most rendered manifests are plain block YAML without anchors; those are
//! read with yaml-rust2, about three times faster than the spec parser. A
//! file with anchors (which could expand without bound), deep nesting or
//! anything the fast reader rejects is read by the spec parser, with its
//! depth and node budgets; its error is the one reported.

use std::collections::HashMap;
use std::sync::Arc;

use yaml_rust2::Yaml;

/// One YAML document of a rendered file.
#[derive(Debug)]
pub struct Doc {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub value: cel::Value,
}

/// The documents of a file; `None` for a document that is not a mapping.
///
/// # Errors
/// The file is not valid YAML (the message carries line and column).
pub fn parse(text: &str) -> Result<Vec<Option<Doc>>, String> {
    if fast_path(text)
        && let Ok(docs) = yaml_rust2::YamlLoader::load_from_str(text)
    {
        return Ok(docs.iter().map(from_yaml).collect());
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
    for line in text.lines() {
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

fn from_yaml(doc: &Yaml) -> Option<Doc> {
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
        value: yaml_value(doc),
    })
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

fn from_json(doc: &serde_json::Value) -> Option<Doc> {
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
        value: cel::to_value(doc).unwrap_or(cel::Value::Null),
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
        assert_eq!(
            fast[0].as_ref().unwrap().value,
            slow[0].as_ref().unwrap().value
        );
    }

    #[test]
    fn invalid_yaml_is_an_error_with_a_position() {
        let err = parse("kind: [Cluster\n").unwrap_err();
        assert!(err.contains("line"), "{err}");
    }
}
