//! The template context of a component.

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

use crate::compose::{ComponentInstance, Instance};

/// Every merged input at top level, plus the reserved names `plan`,
/// `component`, `env`, `namespace`, `repo`, `block`, `components` (every
/// component of the plan: `block`, `repo`, `outputs`) and `druppie`.
pub fn for_component(instance: &Instance, component: &ComponentInstance) -> minijinja::Value {
    let components: Map<String, Value> = instance
        .components
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                json!({"block": c.block.id, "repo": c.repo, "outputs": c.outputs}),
            )
        })
        .collect();
    let reserved = BTreeMap::from([
        ("plan", json!(instance.plan)),
        ("component", json!(component.name)),
        ("env", json!(instance.env)),
        ("namespace", json!(instance.namespace)),
        ("repo", json!(component.repo)),
        ("block", json!(component.block)),
        ("components", Value::Object(components)),
        ("druppie", json!({"version": env!("CARGO_PKG_VERSION")})),
    ]);
    let ctx = Merged {
        inputs: &component.inputs,
        reserved: &reserved,
    };
    minijinja::Value::from(minijinja::value::Serde(&ctx))
}

/// The inputs with the reserved names over them, as one map in key order
/// (what the inputs map with the reserved names inserted would be),
/// without copying the inputs.
struct Merged<'a> {
    inputs: &'a Map<String, Value>,
    reserved: &'a BTreeMap<&'static str, Value>,
}

impl Serialize for Merged<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shadowed = self
            .reserved
            .keys()
            .filter(|k| self.inputs.contains_key(**k))
            .count();
        let mut map = s.serialize_map(Some(self.inputs.len() + self.reserved.len() - shadowed))?;
        let mut inputs = self.inputs.iter().peekable();
        let mut reserved = self.reserved.iter().peekable();
        loop {
            let take_input = match (inputs.peek(), reserved.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((i, _)), Some((r, _))) => i.as_str() < **r,
            };
            if take_input {
                let (k, v) = inputs.next().expect("peeked");
                map.serialize_entry(k, v)?;
            } else {
                let (k, v) = reserved.next().expect("peeked");
                if inputs.peek().is_some_and(|(i, _)| i.as_str() == *k) {
                    inputs.next();
                }
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_go_over_inputs_in_key_order() {
        let inputs: Map<String, Value> =
            serde_json::from_str(r#"{"a": 1, "plan": "mine", "env2": [1], "zzz": {"k": true}}"#)
                .expect("json");
        let reserved = BTreeMap::from([("env", json!("dev")), ("plan", json!("web"))]);
        let mut naive = inputs.clone();
        for (k, v) in &reserved {
            naive.insert((*k).to_owned(), v.clone());
        }
        let merged = Merged {
            inputs: &inputs,
            reserved: &reserved,
        };
        assert_eq!(
            serde_json::to_string(&merged).expect("serializes"),
            serde_json::to_string(&naive).expect("serializes")
        );
    }
}
