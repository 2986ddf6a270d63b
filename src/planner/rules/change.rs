//! A change to an existing plan: blocks it lacks are added through a
//! new stack, which the plan switches to by a one-value edit of its file.

use std::collections::{BTreeMap, BTreeSet};

use super::{component_names, compose, cover, stack_blocks};
use crate::planner::draft::{ComponentDraft, File, StackDraft};
use crate::planner::{Outline, Request};
use crate::registry::Registry;
use crate::spec::Validated;
use crate::spec::model::Block;

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

/// `text` with the scalar `old` written at `line` and `col` of the file
/// replaced by `new`; `None` when it is not there.
pub(super) fn replace_at(text: &str, line: u64, col: u64, old: &str, new: &str) -> Option<String> {
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
