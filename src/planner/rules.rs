//! The rule-based planner: deterministic and offline. It reads the
//! request's words for capabilities, covers them with the fewest
//! building blocks of the catalog, reuses a stack that composes those
//! blocks (or writes a new one, wired where an input's name says which
//! output it takes), and fills inputs from the request, the platform's
//! conventions and the blocks' defaults. What nobody can know becomes a
//! question.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::draft::{ComponentDraft, Draft, File, Inputs, PlanDraft, StackDraft};
use super::words::{self, asks_for, is_stop};
use super::{Choice, Outline, Request};
use crate::registry::Registry;
use crate::spec::Validated;
use crate::spec::model::{Block, Stack};

/// Drafts a new plan for `request`.
pub fn create(v: &Validated, registry: &Registry, request: &Request) -> Outline {
    let spec = &v.spec;
    let mut out = Outline::default();
    let chosen = cover(v, registry, request, &mut out);
    if chosen.is_empty() {
        if out.questions.is_empty() {
            let asked: Vec<String> = words::words(&request.text)
                .into_iter()
                .filter(|w| !is_stop(w))
                .map(|w| format!("\"{w}\""))
                .collect();
            out.questions.push(format!(
                "No building block of the catalog gives {}: which capability do you need (`druppie blocks` lists them)?",
                if asked.is_empty() { "anything asked".to_owned() } else { asked.join(", ") }
            ));
        }
        return out;
    }
    let name = plan_name(v, request, &mut out);
    let owner = owner(request, &mut out);
    let envs = environments(v, request, &mut out);
    // A stack that composes every chosen block, with the fewest others.
    let reuse = spec
        .stacks
        .iter()
        .filter(|s| chosen.iter().all(|b| stack_blocks(s).contains(b.id())))
        .min_by_key(|s| (s.components.len(), s.name.value.clone()));
    let (stack_name, components, new_stack) = match reuse {
        Some(stack) => {
            let components: Vec<(String, &Block)> = stack
                .components
                .iter()
                .filter_map(|(c, comp)| Some((c.value.clone(), spec.block(&comp.block.value)?)))
                .collect();
            let extra: Vec<String> = components
                .iter()
                .filter(|(_, b)| !chosen.iter().any(|c| c.id() == b.id()))
                .map(|(c, b)| format!("`{c}` ({})", b.id()))
                .collect();
            let mut note = format!("Reuses stack `{}`", stack.name.value);
            if !extra.is_empty() {
                note.push_str(&format!(", which also brings {}", extra.join(", ")));
            }
            out.notes.push(format!("{note}."));
            (stack.name.value.clone(), components, None)
        }
        None => {
            let stack_name = name.clone().unwrap_or_default();
            if spec.stack(&stack_name).is_some() {
                out.questions.push(format!(
                    "A stack `{stack_name}` exists already and does not compose what was asked: name the plan otherwise (--name)."
                ));
            }
            let components = component_names(&chosen);
            let stack = compose(spec, &stack_name, request, &components);
            for (c, block) in &components {
                let wired = components.iter().any(|(o, other)| {
                    o != c && !(wiring(block, other).is_empty() && wiring(other, block).is_empty())
                });
                if components.len() > 1 && !wired {
                    out.notes.push(format!(
                        "`{c}` ({}) is not wired to the other components: no input of one takes an output of the other. Connect them in the application's configuration if they should talk.",
                        block.id()
                    ));
                }
            }
            out.notes.push(format!(
                "No stack composes {}: a new stack `{stack_name}` does, wired as its inputs and outputs allow.",
                chosen.iter().map(|b| format!("`{}`", b.id())).collect::<Vec<_>>().join(" and ")
            ));
            (stack_name, components, Some(stack))
        }
    };
    for (component, block) in &components {
        if let Some(c) = out.choices.iter_mut().find(|c| c.block == block.id()) {
            c.component = component.clone();
        }
    }
    let inputs = fill_inputs(
        v,
        request,
        &components,
        new_stack.as_ref(),
        reuse,
        name.as_deref(),
        owner.as_deref(),
        &mut out,
    );
    let (Some(name), Some(owner)) = (name, owner) else {
        return out;
    };
    let draft = Draft {
        plan: PlanDraft {
            name: name.clone(),
            stack: stack_name,
            owner,
            intent: one_line(&request.text),
            environments: envs,
            inputs,
            overrides: BTreeMap::new(),
        },
        stack: new_stack,
    };
    out.plan = Some(name);
    match draft.files() {
        Ok(files) => out.files = files,
        Err(e) => out
            .questions
            .push(format!("{e}: give another with --name.")),
    }
    out.draft = Some(draft);
    out
}

/// Drafts a change to the existing plan `plan` for `request`: blocks it
/// already has are reported as there; blocks it lacks are added through
/// a new stack (its stack's components and the new ones), which the plan
/// switches to by a one-value edit of its file.
pub fn change(v: &Validated, registry: &Registry, request: &Request, plan: &str) -> Outline {
    let spec = &v.spec;
    let mut out = Outline {
        plan: Some(plan.to_owned()),
        ..Outline::default()
    };
    let Some(existing) = spec.plans.iter().find(|p| p.name.value == plan) else {
        return out;
    };
    let Some(stack) = spec.stack(&existing.stack.value) else {
        return out;
    };
    let chosen = cover(v, registry, request, &mut out);
    let have = stack_blocks(stack);
    let mut missing = Vec::new();
    for block in &chosen {
        if have.contains(block.id()) {
            let component = stack
                .components
                .iter()
                .find(|(_, c)| c.block.value == block.id())
                .map_or_else(String::new, |(c, _)| c.value.clone());
            out.notes.push(format!(
                "Plan `{plan}` already has `{}`: component `{component}` of stack `{}`. Nothing to add; change its inputs in {} if it should differ.",
                block.id(),
                stack.name.value,
                spec.file(existing.file).path
            ));
            if let Some(c) = out.choices.iter_mut().find(|c| c.block == block.id()) {
                c.component = component;
            }
        } else {
            missing.push(*block);
        }
    }
    if missing.is_empty() {
        return out;
    }
    let new_name = format!(
        "{plan}-{}",
        missing.iter().map(|b| b.id()).collect::<Vec<_>>().join("-")
    );
    if let Err(e) = crate::spec::names::dns_label(&new_name) {
        out.questions
            .push(format!("The new stack's name {new_name:?} {e}."));
        return out;
    }
    if spec.stack(&new_name).is_some() {
        out.questions.push(format!(
            "A stack `{new_name}` exists already: should plan `{plan}` use it?"
        ));
        return out;
    }
    let mut components: Vec<(String, &Block)> = stack
        .components
        .iter()
        .filter_map(|(c, comp)| Some((c.value.clone(), spec.block(&comp.block.value)?)))
        .collect();
    let taken: BTreeSet<String> = components.iter().map(|(c, _)| c.clone()).collect();
    for (c, b) in component_names(&missing) {
        let mut name = c.clone();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{c}{n}");
            n += 1;
        }
        if let Some(choice) = out.choices.iter_mut().find(|x| x.block == b.id()) {
            choice.component = name.clone();
        }
        components.push((name, b));
    }
    let mut new_stack = StackDraft {
        name: new_name.clone(),
        description: format!(
            "Stack `{}` with {} added for plan `{plan}`.",
            stack.name.value,
            missing
                .iter()
                .map(|b| format!("`{}`", b.id()))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        components: BTreeMap::new(),
        environments: BTreeMap::new(),
    };
    for (c, comp) in stack.components.iter() {
        new_stack.components.insert(
            c.value.clone(),
            ComponentDraft {
                block: comp.block.value.clone(),
                inputs: comp
                    .inputs
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.clone()))
                    .collect(),
            },
        );
    }
    for (env, values) in stack.environments.iter() {
        let e = new_stack.environments.entry(env.value.clone()).or_default();
        for (c, inputs) in values.iter() {
            e.insert(
                c.value.clone(),
                inputs
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.value.clone()))
                    .collect(),
            );
        }
    }
    let wired = compose(spec, &new_name, request, &components);
    for (env, values) in wired.environments {
        let e = new_stack.environments.entry(env).or_default();
        for (c, inputs) in values {
            e.entry(c).or_insert(inputs);
        }
    }
    for (c, comp) in wired.components {
        let entry = new_stack
            .components
            .entry(c)
            .or_insert_with(|| ComponentDraft {
                block: comp.block.clone(),
                inputs: BTreeMap::new(),
            });
        for (k, v) in comp.inputs {
            entry.inputs.entry(k).or_insert(v);
        }
    }
    // The plan file, with only its `stack:` value changed.
    let file = spec.file(existing.file);
    let at = &existing.stack.defined;
    let line = at.line() + u64::from(file.yaml_line_offset);
    let Some(text) = replace_at(
        &file.text,
        line,
        at.column(),
        &existing.stack.value,
        &new_name,
    ) else {
        out.questions.push(format!(
            "Cannot find `stack:` in {}: change it to `{new_name}` by hand.",
            file.path
        ));
        return out;
    };
    out.notes.push(format!(
        "Plan `{plan}` moves from stack `{}` to a new stack `{new_name}`: the same components, and {} added.",
        stack.name.value,
        missing.iter().map(|b| format!("`{}`", b.id())).collect::<Vec<_>>().join(" and ")
    ));
    out.files = vec![
        File {
            path: file.path.clone(),
            text,
        },
        File {
            path: format!("spec/stacks/{new_name}.yaml"),
            text: new_stack.to_yaml(),
        },
    ];
    out
}

/// The fewest instantiable blocks that give every capability the request
/// asks for. Each chosen block is explained in `out.choices`; a
/// capability only a shared platform service gives becomes a note, and
/// one nothing gives a question.
fn cover<'v>(
    v: &'v Validated,
    registry: &Registry,
    request: &Request,
    out: &mut Outline,
) -> Vec<&'v Block> {
    let spec = &v.spec;
    let plans: BTreeSet<&str> = spec.plans.iter().map(|p| p.name.value.as_str()).collect();
    let gives =
        |b: &Block, cap: &str| b.id() == cap || b.meta.capabilities.iter().any(|c| c.value == cap);
    // Needs, in the order asked, each with the word that asked for it.
    let mut needs: Vec<(String, String)> = Vec::new();
    for word in words::words(&request.text) {
        if is_stop(&word) || plans.contains(word.as_str()) {
            continue;
        }
        for cap in asks_for(&word) {
            let known = spec.blocks.iter().any(|b| gives(b, cap));
            if known && !needs.iter().any(|(n, _)| n == cap) {
                needs.push((cap.to_owned(), word.clone()));
            }
        }
    }
    // A word that asked for two capabilities through the table (postgres
    // → postgresql, database) needs both covered only once.
    let rank: Vec<&str> = registry
        .search_blocks(&request.text)
        .iter()
        .map(|b| b.id.as_str())
        .collect();
    let position = |id: &str| rank.iter().position(|r| *r == id).unwrap_or(usize::MAX);
    let mut uncovered: Vec<(String, String)> = needs.clone();
    let mut chosen: Vec<&Block> = Vec::new();
    loop {
        let candidates: Vec<&Block> = spec
            .blocks
            .iter()
            .filter(|b| b.instantiable() && !chosen.iter().any(|c| c.id() == b.id()))
            .collect();
        let covers = |b: &Block| uncovered.iter().filter(|(n, _)| gives(b, n)).count();
        let best = candidates
            .iter()
            .filter(|b| covers(b) > 0)
            .max_by(|a, b| {
                let wires = |x: &Block| {
                    candidates
                        .iter()
                        .chain(chosen.iter())
                        .filter(|o| {
                            o.id() != x.id()
                                && (covers(o) > 0 || chosen.iter().any(|c| c.id() == o.id()))
                        })
                        .map(|o| wiring(x, o).len() + wiring(o, x).len())
                        .sum::<usize>()
                };
                (covers(a), wires(a), std::cmp::Reverse(position(a.id())))
                    .cmp(&(covers(b), wires(b), std::cmp::Reverse(position(b.id()))))
                    .then_with(|| b.id().cmp(a.id()))
            })
            .copied();
        let Some(block) = best else { break };
        let asked: Vec<String> = uncovered
            .iter()
            .filter(|(n, _)| gives(block, n))
            .map(|(n, w)| {
                if n == w {
                    format!("`{n}`")
                } else {
                    format!("`{n}` (\"{w}\")")
                }
            })
            .collect();
        uncovered.retain(|(n, _)| !gives(block, n));
        out.choices.push(Choice {
            component: String::new(),
            block: block.id().to_owned(),
            why: format!(
                "gives {}: {}",
                asked.join(", "),
                block.meta.description.value
            ),
        });
        chosen.push(block);
        // What a chosen block requires is needed too.
        for req in &block.meta.requires {
            if !chosen.iter().any(|c| gives(c, &req.value))
                && !uncovered.iter().any(|(n, _)| *n == req.value)
            {
                uncovered.push((req.value.clone(), format!("required by {}", block.id())));
            }
        }
    }
    for (need, word) in uncovered {
        let shared: Vec<&Block> = spec
            .blocks
            .iter()
            .filter(|b| !b.instantiable() && gives(b, &need))
            .collect();
        match shared.first() {
            Some(b) => out.notes.push(format!(
                "`{need}` (\"{word}\") is a shared platform service, `{}` ({}): request it as its documentation ({}) says; it is not part of the plan.",
                b.id(),
                b.meta.name.value,
                spec.file(b.file).path
            )),
            None => out.questions.push(format!(
                "No building block gives `{need}` (\"{word}\"). Should the plan go ahead without it?"
            )),
        }
    }
    chosen
}

/// The blocks that give a capability `query` asks for, in catalog
/// order; empty when it asks for none the catalog has.
pub fn giving<'v>(v: &'v Validated, query: &str) -> Vec<&'v Block> {
    let asked: Vec<String> = words::words(query)
        .into_iter()
        .filter(|w| !is_stop(w))
        .flat_map(|w| {
            asks_for(&w)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    v.spec
        .blocks
        .iter()
        .filter(|b| {
            asked
                .iter()
                .any(|a| b.id() == a || b.meta.capabilities.iter().any(|c| c.value == *a))
        })
        .collect()
}

/// Inputs of `consumer` that take an output of `provider`, by name:
/// `<id, type or capability>_<output>` (`database_secret` takes a
/// database's `secret`, `redis_url` a redis's `url`). Only inputs whose
/// default is empty are wired.
fn wiring(consumer: &Block, provider: &Block) -> Vec<(String, String)> {
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
fn component_names<'b>(blocks: &[&'b Block]) -> Vec<(String, &'b Block)> {
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
fn compose(
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
fn conventions(spec: &crate::spec::Spec, block: &str) -> BTreeMap<String, BTreeMap<String, Value>> {
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

/// Inputs the plan sets: what the request says (an image reference,
/// `3 replicas`, `storage 20Gi`), and a required input the platform's
/// project image convention answers. A required input still without a
/// value becomes a question.
#[allow(clippy::too_many_arguments)]
fn fill_inputs(
    v: &Validated,
    request: &Request,
    components: &[(String, &Block)],
    new_stack: Option<&StackDraft>,
    reused: Option<&Stack>,
    plan: Option<&str>,
    owner: Option<&str>,
    out: &mut Outline,
) -> Inputs {
    let mut inputs = Inputs::new();
    let tokens: Vec<&str> = request
        .text
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|t| t.trim_end_matches(['.', ';', ')']).trim_start_matches('('))
        .filter(|t| !t.is_empty())
        .collect();
    // An image reference: a path with a tag or a digest.
    let image = tokens
        .iter()
        .find(|t| t.contains('/') && (t.contains(':') || t.contains('@')) && !t.contains("://"));
    for (component, block) in components {
        let set_by_stack = |input: &str| {
            reused
                .and_then(|s| s.components.get(component))
                .is_some_and(|c| c.inputs.get(input).is_some())
                || new_stack
                    .and_then(|s| s.components.get(component))
                    .is_some_and(|c| c.inputs.contains_key(input))
        };
        for (input, decl) in block.meta.inputs.iter() {
            let input = input.value.as_str();
            if set_by_stack(input) {
                continue;
            }
            let pattern = decl
                .pattern
                .as_ref()
                .and_then(|p| crate::spec::validate::values::full_match(&p.value));
            // A value read from the request is a value, never a template
            // (which validation would only check once rendered).
            let fits = |value: &Value| {
                !crate::spec::validate::values::is_template(value)
                    && crate::spec::validate::values::check_value(decl, value, pattern.as_ref())
                        .is_ok()
            };
            let mut value = None;
            if input == "image"
                && let Some(img) = image
                && fits(&Value::String((*img).to_owned()))
                && !inputs.values().any(|m| m.get("image").is_some())
            {
                value = Some(Value::String((*img).to_owned()));
            }
            if value.is_none() {
                value = said(&tokens, input, |t| {
                    parse_as(decl.kind, t).filter(|v| fits(v))
                });
            }
            if value.is_none()
                && decl.required
                && decl.default.is_none()
                && input == "image"
                && let Some(v) = convention(v, plan, component, owner).filter(|x| fits(x))
            {
                out.notes.push(format!(
                    "`{component}.image` is the image its project repo's CI will publish, after `projects.image` in spec/platform.yaml: {}. Change it in the plan if the image lives elsewhere.",
                    v.as_str().unwrap_or_default()
                ));
                value = Some(v);
            }
            match value {
                Some(value) => {
                    inputs
                        .entry(component.clone())
                        .or_default()
                        .insert(input.to_owned(), value);
                }
                None if decl.required && decl.default.is_none() => {
                    out.questions.push(format!(
                        "What is `{component}.{input}` of {}{}?",
                        block.id(),
                        decl.description
                            .as_deref()
                            .map(|d| format!(" ({})", one_line(d)))
                            .unwrap_or_default()
                    ));
                }
                None => {}
            }
        }
    }
    inputs
}

/// A value the request gives `input` as `<value> <input>` or
/// `<input> <value>` (`3 replicas`, `storage 20Gi`).
fn said(tokens: &[&str], input: &str, parse: impl Fn(&str) -> Option<Value>) -> Option<Value> {
    let names = [
        input.to_owned(),
        input.replace('_', "-"),
        format!("{input}s"),
    ];
    let is_name = |t: &str| {
        names.iter().any(|n| n.eq_ignore_ascii_case(t))
            || t.eq_ignore_ascii_case(input.trim_end_matches('s'))
    };
    for (i, t) in tokens.iter().enumerate() {
        if !is_name(t) {
            continue;
        }
        let around = [i.checked_sub(1), Some(i + 1)];
        for j in around.into_iter().flatten() {
            if let Some(v) = tokens.get(j).and_then(|t| parse(t)) {
                return Some(v);
            }
        }
    }
    None
}

/// `token` as a value of `kind`. A string is read only when it holds a
/// digit (`20Gi`, `512Mi`): a word next to an input's name is a name of
/// something else far more often than the value ("with a database").
fn parse_as(kind: crate::spec::model::InputType, token: &str) -> Option<Value> {
    use crate::spec::model::InputType as T;
    if is_stop(&token.to_lowercase()) {
        return None;
    }
    match kind {
        T::Integer => token.parse::<i64>().ok().map(Value::from),
        T::Number => token
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        T::Boolean => token.parse::<bool>().ok().map(Value::Bool),
        T::String if token.chars().any(|c| c.is_ascii_digit()) => {
            Some(Value::String(token.to_owned()))
        }
        _ => None,
    }
}

/// The platform's `projects.image` for a component, when it declares one.
fn convention(
    v: &Validated,
    plan: Option<&str>,
    component: &str,
    owner: Option<&str>,
) -> Option<Value> {
    let projects = &v.spec.platform.as_ref()?.projects;
    let pattern = projects.image.as_ref()?;
    let (plan, owner) = (plan?, owner?);
    let repo = crate::spec::names::project_repo(&projects.naming.value, plan, component).ok()?;
    crate::spec::names::project_image(&pattern.value, owner, plan, component, &repo)
        .ok()
        .map(Value::String)
}

/// The plan's name: `--name`, else the words after "for" (`for team
/// docs` → `team-docs`), else the request's first words that are not a
/// capability (`a permit portal …` → `permit-portal`).
fn plan_name(v: &Validated, request: &Request, out: &mut Outline) -> Option<String> {
    let name = match &request.name {
        Some(n) => n.clone(),
        None => {
            let all = words::words(&request.text);
            let after_for: Vec<&String> = all
                .iter()
                .skip_while(|w| *w != "for")
                .skip(1)
                .take_while(|w| !is_stop(w) && !w.starts_with("team-"))
                .collect();
            let picked: Vec<&String> = if after_for.is_empty() {
                all.iter()
                    .skip_while(|w| is_stop(w))
                    .take_while(|w| !is_stop(w))
                    .take(3)
                    .collect()
            } else {
                after_for.into_iter().take(3).collect()
            };
            let joined: String = picked
                .iter()
                .map(|w| {
                    w.chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect::<String>()
                })
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("-");
            if joined.is_empty() {
                out.questions.push(
                    "What should the plan be called? Give --name (a DNS label, e.g. `permits`)."
                        .into(),
                );
                return None;
            }
            joined
        }
    };
    if let Err(e) = crate::spec::names::dns_label(&name) {
        out.questions.push(format!(
            "The plan name {name:?} {e}: give another with --name."
        ));
        return None;
    }
    if v.spec.plans.iter().any(|p| p.name.value == name) {
        out.questions.push(format!(
            "A plan `{name}` exists already: change it (name it in the request) or give another name with --name."
        ));
        return None;
    }
    Some(name)
}

/// The owning team: `--owner`, else a `team-…` word of the request.
fn owner(request: &Request, out: &mut Outline) -> Option<String> {
    let owner = request.owner.clone().or_else(|| {
        words::words(&request.text)
            .into_iter()
            .find(|w| w.starts_with("team-") && w.len() > 5)
    });
    match owner {
        Some(o) if crate::spec::names::dns_label(&o).is_ok() => Some(o),
        Some(o) => {
            out.questions.push(format!(
                "The owner {o:?} is not a team name (a DNS label such as `team-permits`)."
            ));
            None
        }
        None => {
            out.questions
                .push("Which team owns it? Give --owner (e.g. `team-permits`).".into());
            None
        }
    }
}

/// `--env`, in the platform's order, else every environment of the
/// platform.
fn environments(v: &Validated, request: &Request, out: &mut Outline) -> Vec<String> {
    let all = v.env_names();
    if request.envs.is_empty() {
        return all.iter().map(|e| (*e).to_owned()).collect();
    }
    for e in &request.envs {
        if !all.contains(&e.as_str()) {
            out.questions.push(format!(
                "The platform has no environment `{e}` (it has {}).",
                all.join(", ")
            ));
        }
    }
    all.iter()
        .filter(|e| request.envs.iter().any(|r| r == *e))
        .map(|e| (*e).to_owned())
        .collect()
}

fn stack_blocks(stack: &Stack) -> BTreeSet<&str> {
    stack
        .components
        .iter()
        .map(|(_, c)| c.block.value.as_str())
        .collect()
}

/// `text` on one line, at most 200 characters.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// `text` with the scalar `old` written at `line` and `col` of the file
/// replaced by `new`; `None` when it is not there.
fn replace_at(text: &str, line: u64, col: u64, old: &str, new: &str) -> Option<String> {
    let line = usize::try_from(line).ok()?;
    let col = usize::try_from(col).ok()?;
    let start = crate::spec::source::offset_of(text, line, col);
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let found = text[start..end].find(old)? + start;
    Some(format!(
        "{}{new}{}",
        &text[..found],
        &text[found + old.len()..]
    ))
}
