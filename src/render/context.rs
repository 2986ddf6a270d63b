//! The template context of a component.

use std::collections::BTreeMap;
use std::sync::Arc;

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
    let mut ctx: BTreeMap<Arc<str>, minijinja::Value> = component
        .inputs
        .iter()
        .map(|(k, v)| (Arc::from(k.as_str()), jinja(v)))
        .collect();
    let reserved = [
        ("plan", json!(instance.plan)),
        ("component", json!(component.name)),
        ("env", json!(instance.env)),
        ("namespace", json!(instance.namespace)),
        ("repo", json!(component.repo)),
        ("block", json!(component.block)),
        ("components", Value::Object(components)),
        ("druppie", json!({"version": env!("CARGO_PKG_VERSION")})),
    ];
    for (name, value) in reserved {
        ctx.insert(Arc::from(name), jinja(&value));
    }
    minijinja::Value::from_object(ctx)
}

/// A JSON value as minijinja's serde support gives it
/// (`Value::from(Serde(value))`: unsigned and signed integers, floats,
/// strings, lists and maps alike), without the serde round trip.
fn jinja(value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => minijinja::Value::from(u),
            (None, Some(i)) => minijinja::Value::from(i),
            (None, None) => minijinja::Value::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(items) => {
            minijinja::Value::from_object(items.iter().map(jinja).collect::<Vec<_>>())
        }
        Value::Object(map) => minijinja::Value::from_object(
            map.iter()
                .map(|(k, v)| (Arc::<str>::from(k.as_str()), jinja(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_convert_as_through_serde() {
        let value = json!({
            "n": null, "t": true, "u": 7, "i": -7, "big": u64::MAX, "f": 2.5,
            "s": "text", "l": [1, "two", [3.0], {}], "m": {"b": {"c": []}, "a": 1}
        });
        let direct = jinja(&value);
        let serde = minijinja::Value::from(minijinja::value::Serde(&value));
        assert_eq!(direct, serde);
        assert_eq!(format!("{direct:?}"), format!("{serde:?}"));
        for key in ["u", "i", "f", "n", "l", "m"] {
            assert_eq!(
                direct.get_attr(key).expect("attr").kind(),
                serde.get_attr(key).expect("attr").kind()
            );
        }
    }
}
