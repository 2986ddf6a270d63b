//! The rule-based planner: deterministic and offline. It reads the
//! request's words for capabilities, covers them with the fewest
//! building blocks of the catalog, reuses a stack that composes those
//! blocks (or writes a new one, wired where an input's name says which
//! output it takes), and fills inputs from the request, the platform's
//! conventions and the blocks' defaults. What nobody can know becomes a
//! question.

use std::collections::{BTreeMap, BTreeSet};

use super::draft::{Draft, PlanDraft};
use super::words::{self, asks_for, is_stop};
use super::{Choice, Outline, Request};
use crate::registry::Registry;
use crate::spec::Validated;
use crate::spec::model::{Block, Stack};

mod change;
mod inputs;
mod stack;

pub use change::change;
use inputs::fill_inputs;
use stack::{component_names, compose, wiring};

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
