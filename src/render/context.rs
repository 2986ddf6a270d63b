//! The template context of a component.

use serde_json::{Map, Value, json};

use crate::compose::{ComponentInstance, Instance};

/// Every merged input at top level, plus the reserved names `plan`,
/// `component`, `env`, `namespace`, `repo`, `block`, `components` (every
/// component of the plan: `block`, `repo`, `outputs`) and `druppie`.
pub fn for_component(instance: &Instance, component: &ComponentInstance) -> minijinja::Value {
    let mut ctx: Map<String, Value> = component.inputs.clone();
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
    ctx.insert("plan".into(), json!(instance.plan));
    ctx.insert("component".into(), json!(component.name));
    ctx.insert("env".into(), json!(instance.env));
    ctx.insert("namespace".into(), json!(instance.namespace));
    ctx.insert("repo".into(), json!(component.repo));
    ctx.insert("block".into(), json!(component.block));
    ctx.insert("components".into(), Value::Object(components));
    ctx.insert(
        "druppie".into(),
        json!({"version": env!("CARGO_PKG_VERSION")}),
    );
    minijinja::Value::from(minijinja::value::Serde(Value::Object(ctx)))
}
