//! Composing a new stack: component names, wiring by input names, and
//! the platform's conventions per environment.

use std::collections::BTreeMap;

use serde_json::Value;

use super::one_line;
use crate::planner::Request;
use crate::planner::draft::{ComponentDraft, StackDraft};
use crate::spec::model::{Block, Stack};

/// Inputs of `consumer` that take an output of `provider`, by name:
/// `<id, type or capability>_<output>` (`database_secret` takes a
/// database's `secret`, `redis_url` a redis's `url`). Only inputs whose
/// default is empty are wired.
pub(super) fn wiring(consumer: &Block, provider: &Block) -> Vec<(String, String)> {
    let mut names: Vec<String> = vec![
        provider.id().replace('-', "_"),
        provider.meta.kind.value.clone(),
    ];
    names.extend(
        provider
            .meta
            .capabilities
            .iter()
            .map(|c| c.value.replace('-', "_")),
    );
    let outputs: Vec<&str> = provider.meta.outputs.names().collect();
    consumer
        .meta
        .inputs
        .iter()
        .filter(|(_, decl)| {
            decl.default
                .as_ref()
                .is_none_or(|d| d.value.as_str().is_some_and(str::is_empty))
        })
        .filter_map(|(input, _)| {
            let (prefix, output) = input.value.rsplit_once('_')?;
            (names.iter().any(|n| n == prefix) && outputs.contains(&output))
                .then(|| (input.value.clone(), output.to_owned()))
        })
        .collect()
}

/// Component names for blocks in a new stack: by the block's type
/// (`service` → `app`, `database` → `db`), numbered when two share one.
pub(super) fn component_names<'b>(blocks: &[&'b Block]) -> Vec<(String, &'b Block)> {
    let mut out: Vec<(String, &Block)> = Vec::new();
    for b in blocks {
        let base = match b.meta.kind.value.as_str() {
            "service" => "app".to_owned(),
            "database" => "db".to_owned(),
            other => other.to_owned(),
        };
        let mut name = base.clone();
        let mut n = 2;
        while out.iter().any(|(c, _)| *c == name) {
            name = format!("{base}{n}");
            n += 1;
        }
        out.push((name, b));
    }
    out
}

/// A new stack of `components`, each input that can take another
/// component's output wired to it, and each component given the
/// environment overrides the platform's stacks give the same block (the
/// first stack by name that has one: `static-site`'s `replicas: 2` in
/// prod), so a new stack follows the conventions the policies check.
pub(super) fn compose(
    spec: &crate::spec::Spec,
    name: &str,
    request: &Request,
    components: &[(String, &Block)],
) -> StackDraft {
    let mut stack = StackDraft {
        name: name.to_owned(),
        description: format!("Composed for: {}", one_line(&request.text)),
        components: BTreeMap::new(),
        environments: BTreeMap::new(),
    };
    for (c, block) in components {
        let mut inputs = BTreeMap::new();
        for (other, provider) in components {
            if other == c {
                continue;
            }
            for (input, output) in wiring(block, provider) {
                inputs.entry(input).or_insert_with(|| {
                    Value::String(format!("{{{{ components.{other}.outputs.{output} }}}}"))
                });
            }
        }
        stack.components.insert(
            c.clone(),
            ComponentDraft {
                block: block.id().to_owned(),
                inputs,
            },
        );
        for (env, values) in conventions(spec, block.id()) {
            stack
                .environments
                .entry(env)
                .or_default()
                .insert(c.clone(), values);
        }
    }
    stack
}

/// The environment overrides the first stack (by name) that uses
/// `block` gives its component: environment -> input -> value, without
/// values that refer to other components.
pub(super) fn conventions(
    spec: &crate::spec::Spec,
    block: &str,
) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut stacks: Vec<&Stack> = spec.stacks.iter().collect();
    stacks.sort_by(|a, b| a.name.value.cmp(&b.name.value));
    let Some((stack, component)) = stacks.iter().find_map(|s| {
        s.components
            .iter()
            .find(|(_, c)| c.block.value == block)
            .map(|(name, _)| (s, name.value.as_str()))
    }) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (env, values) in stack.environments.iter() {
        let Some(inputs) = values.get(component) else {
            continue;
        };
        let plain: BTreeMap<String, Value> = inputs
            .iter()
            .filter(|(_, v)| !crate::spec::validate::values::is_template(&v.value))
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect();
        if !plain.is_empty() {
            out.insert(env.value.clone(), plain);
        }
    }
    out
}
