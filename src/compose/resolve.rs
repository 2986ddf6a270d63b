//! Resolving one plan in one environment: merge, wire, compute outputs.

use minijinja::Environment;
use serde_json::{Map, Value, json};

use super::{BlockRef, ComponentInstance, Instance};
use crate::spec::diag::{Diagnostic, Location};
use crate::spec::model::{Block, InputValues, Plan, Stack};
use crate::spec::names;
use crate::spec::source::FileId;
use crate::spec::validate::{check_value, full_match, wiring};
use crate::spec::{Pick, Spec};
use crate::template::{self, Limits, size};

/// Where a merged value was written: its file and position.
type Origin = (FileId, crate::spec::yaml::Location);

pub(super) fn instance(
    spec: &Spec,
    engine: &Environment<'_>,
    pick: &Pick<'_>,
    limits: &Limits,
) -> Result<Instance, Vec<Diagnostic>> {
    let (plan, stack, env) = (pick.plan, pick.stack, pick.env.name.as_str());
    let plan_name = pick.model.name.as_str();
    let namespace = pick.env.namespace.clone();
    let mut diags = Vec::new();
    let mut components: Vec<ComponentInstance> = Vec::with_capacity(pick.model.components.len());
    let mut wired = Map::new();
    let mut failed: Vec<String> = Vec::new();
    // Bytes of the values the expressions of this instance gave.
    let mut held = 0usize;
    for component in &pick.model.components {
        let (name, block) = (&component.name, component.block(spec));
        let repo = component.repo.clone();
        let block_ref = BlockRef {
            id: block.id().to_owned(),
            name: block.meta.name.value.clone(),
            version: block.meta.version.value.clone(),
            pin: block.pin.as_ref().map(|p| p.commit.clone()),
        };
        // The wiring and output contexts are built only when an input holds
        // a template or the block has outputs: most components need neither.
        let context = |inputs: &Map<String, Value>| {
            let mut ctx = json!({
                "plan": plan_name,
                "component": name,
                "env": env,
                "namespace": namespace,
                "repo": repo,
                "block": block_ref,
                "components": wired,
                "druppie": {"version": env!("CARGO_PKG_VERSION")},
            });
            for (key, value) in inputs {
                ctx[key.as_str()] = value.clone();
            }
            minijinja::Value::from(minijinja::value::Serde(&ctx))
        };
        let mut wiring_ctx = None;
        let mut inputs = Map::new();
        for (key, (value, origin)) in merge(stack, plan, env, name, block) {
            if !template::is_template_value(&value) {
                inputs.insert(key, value);
                continue;
            }
            let ctx = wiring_ctx.get_or_insert_with(|| context(&Map::new()));
            let at = position(spec, origin);
            let what = format!(
                "the input `{key}` of component `{name}` for plan `{plan_name}` in environment `{env}`"
            );
            let result = crate::budget::within(limits.template_memory, &what, &at, || {
                resolve_value(engine, &value, ctx)
            });
            match result.and_then(|v| too_large(v, limits, &mut held)) {
                Ok(resolved) => {
                    if let Some(decl) = block.meta.inputs.get(&key) {
                        let re = decl.pattern.as_ref().and_then(|p| full_match(&p.value));
                        if let Err(why) = check_value(decl, &resolved, re.as_ref()) {
                            diags.push(located(spec, origin, format!("input `{key}` of component `{name}` in {plan_name}/{env} resolved to a value that {why}")));
                        }
                    }
                    inputs.insert(key, resolved);
                }
                // A component whose outputs failed is reported once, there.
                Err(_) if reads_failed(&value, &failed) => {}
                Err(e) => {
                    let d = located(
                        spec,
                        origin,
                        format!(
                            "cannot resolve input `{key}` of component `{name}` in {plan_name}/{env}: {}",
                            template::message(&e)
                        ),
                    );
                    diags.push(match template::undefined_help(&e, ctx) {
                        Some((_, help)) => d.with_help(help),
                        None => d,
                    });
                }
            }
        }
        let mut outputs = Map::new();
        let output_ctx = (!block.meta.outputs.is_empty()).then(|| context(&inputs));
        for (out, expr) in block.meta.outputs.iter() {
            let ctx = output_ctx.as_ref().expect("built when there are outputs");
            let at = position(spec, (block.file, expr.referenced));
            let what = format!(
                "the output `{}` of block `{}` for component `{name}` of plan `{plan_name}` in environment `{env}`",
                out.value,
                block.id()
            );
            let result = crate::budget::within(limits.template_memory, &what, &at, || {
                template::evaluate(engine, &expr.value, ctx)
            });
            match result.and_then(|v| too_large(v, limits, &mut held)) {
                Ok(v) => {
                    outputs.insert(out.value.clone(), v);
                }
                Err(e) => {
                    failed.push(name.clone());
                    let d = located(
                        spec,
                        (block.file, expr.referenced),
                        format!(
                            "cannot compute output `{}` of block `{}` for component `{name}`: {}",
                            out.value,
                            block.id(),
                            template::message(&e)
                        ),
                    );
                    diags.push(match template::undefined_help(&e, ctx) {
                        Some((_, help)) => d.with_help(help),
                        None => d,
                    });
                }
            }
        }
        wired.insert(
            name.clone(),
            json!({"block": block.id(), "repo": repo, "outputs": outputs}),
        );
        let secret_inputs = block
            .meta
            .inputs
            .iter()
            .filter(|(_, d)| d.secret)
            .map(|(k, _)| k.value.clone())
            .collect();
        components.push(ComponentInstance {
            name: name.clone(),
            block: block_ref,
            repo,
            inputs,
            secret_inputs,
            outputs,
        });
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(Instance {
        plan: plan_name.to_owned(),
        env: env.to_owned(),
        trust: pick.env.settings.trust,
        owner: plan.owner.value.clone(),
        intent: plan.intent.clone(),
        namespace,
        infra_path: names::infra_dir(&pick.env.settings.path.value).to_owned(),
        components,
        depends_on: pick.env.depends_on.clone(),
    })
}

/// Inputs of component `name`, lowest layer first, each with its origin.
fn merge(
    stack: &Stack,
    plan: &Plan,
    env: &str,
    name: &str,
    block: &Block,
) -> Vec<(String, (Value, Origin))> {
    let mut merged: Vec<(String, (Value, Origin))> = Vec::new();
    let mut set =
        |key: &str, value: Value, origin: Origin| match merged.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = (value, origin),
            None => merged.push((key.to_owned(), (value, origin))),
        };
    for (key, decl) in block.meta.inputs.iter() {
        if let Some(default) = &decl.default {
            set(
                &key.value,
                default.value.clone(),
                (block.file, default.referenced),
            );
        }
    }
    let layers: [(FileId, Option<&InputValues>); 4] = [
        (stack.file, stack.components.get(name).map(|c| &c.inputs)),
        (
            stack.file,
            stack.environments.get(env).and_then(|m| m.get(name)),
        ),
        (plan.file, plan.inputs.get(name)),
        (plan.file, plan.overrides.get(env).and_then(|m| m.get(name))),
    ];
    for (file, layer) in layers {
        for (key, value) in layer.into_iter().flat_map(InputValues::iter) {
            set(&key.value, value.value.clone(), (file, value.referenced));
        }
    }
    merged
}

/// Evaluates template strings anywhere inside `value`.
fn resolve_value(
    engine: &Environment<'_>,
    value: &Value,
    ctx: &minijinja::Value,
) -> Result<Value, minijinja::Error> {
    match value {
        Value::String(s) if template::is_template(s) => template::evaluate(engine, s, ctx),
        Value::Array(items) => items
            .iter()
            .map(|v| resolve_value(engine, v, ctx))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), resolve_value(engine, v, ctx)?)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

/// Whether `value` wires in a component listed in `failed`.
fn reads_failed(value: &Value, failed: &[String]) -> bool {
    match value {
        Value::String(s) => wiring::references(s)
            .iter()
            .any(|r| failed.contains(&r.component)),
        Value::Array(items) => items.iter().any(|v| reads_failed(v, failed)),
        Value::Object(map) => map.values().any(|v| reads_failed(v, failed)),
        _ => false,
    }
}

/// `value` when it is at most `limits.file_bytes` and, with `held` (what
/// the instance's values hold so far, counted here), at most
/// `limits.instance_bytes`: every component's context holds them all.
fn too_large(value: Value, limits: &Limits, held: &mut usize) -> Result<Value, minijinja::Error> {
    let bytes = json_bytes(&value);
    *held = held.saturating_add(bytes);
    let (limit, key) = if bytes > limits.file_bytes {
        (limits.file_bytes, "max_file_bytes")
    } else if *held > limits.instance_bytes {
        (limits.instance_bytes, "max_instance_bytes")
    } else {
        return Ok(value);
    };
    Err(minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!(
            "the values it gives pass {} (`[render] {key}`); if that is intended, raise `{key}` in the `[render]` section of druppie.toml",
            size(limit)
        ),
    ))
}

/// About the bytes `value` holds: its strings and keys, 8 per other value.
pub(super) fn json_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(json_bytes).sum::<usize>() + 8,
        Value::Object(map) => {
            map.iter()
                .map(|(k, v)| k.len() + json_bytes(v))
                .sum::<usize>()
                + 8
        }
        _ => 8,
    }
}

/// `file:line:col` of a merged value, for the memory budget's error.
fn position(spec: &Spec, (file, loc): Origin) -> String {
    let f = spec.file(file);
    let pos = f.pos(&loc);
    format!("{}:{}:{}", f.path, pos.line, pos.col)
}

fn located(spec: &Spec, (file, loc): Origin, message: String) -> Diagnostic {
    let f = spec.file(file);
    Diagnostic::error(message, Location::new(f, f.pos(&loc)))
}
