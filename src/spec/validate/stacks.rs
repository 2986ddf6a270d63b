//! Rules for stacks and plans: references resolve, input values fit the
//! block's declarations, and required inputs are set after merging.

use std::collections::BTreeMap;

use super::{Check, FastMap, FastSet};
use crate::spec::Kind;
use crate::spec::diag::Location;
use crate::spec::model::{Block, InputValues, Plan, Stack};
use crate::spec::names;
use crate::spec::source::FileId;
use crate::spec::yaml::{Spanned, SpannedMap, Str};

pub(super) fn check(c: &mut Check) {
    let spec = c.spec;
    c.unique("stack", spec.stacks.iter().map(|s| (s.file, &s.name)));
    c.unique("plan", spec.plans.iter().map(|p| (p.file, &p.name)));
    for stack in &spec.stacks {
        check_stack(c, stack);
    }
    check_repo_collisions(c);
    check_flux_name_collisions(c);
}

/// No two plan × environment pairs share a Flux Kustomization name
/// (`<plan>-<env>`, all in `flux-system`): plan `a-b` in `c` and plan
/// `a` in `b-c` would overwrite each other where two environments share
/// a cluster, and `dependsOn` would name the wrong one.
fn check_flux_name_collisions(c: &mut Check) {
    let spec = c.spec;
    // Each name's first plan and environment; where they are is worked
    // out only for a collision (10,000 plans, one line each).
    let mut seen: FastMap<String, (&Plan, &Str)> =
        FastMap::with_capacity_and_hasher(spec.plans.len(), Default::default());
    for plan in &spec.plans {
        for env in &plan.environments {
            let name = names::flux_name(&plan.name.value, &env.value);
            let Some(&(first, first_env)) = seen.get(&name) else {
                seen.insert(name, (plan, env));
                continue;
            };
            let who = |p: &Plan, e: &Str| format!("plan `{}` in `{}`", p.name.value, e.value);
            let other = who(first, first_env);
            let at = c.at(first.file, first_env);
            c.error(
                plan.file,
                env,
                format!(
                    "Flux Kustomization name `{name}` of {} is also that of {other}",
                    who(plan, env)
                ),
            )
            .note(format!("{other} is here"), at)
            .help("every plan and environment needs a Kustomization of its own: rename the plan or the environment");
        }
    }
}

fn env_names<'s>(c: &Check<'s>) -> Vec<&'s str> {
    c.spec
        .platform
        .iter()
        .flat_map(|p| p.environments.keys())
        .collect()
}

/// The block behind each component of `stack` that resolves to one.
fn blocks_of<'s>(c: &Check<'s>, stack: &Stack) -> BTreeMap<String, &'s Block> {
    stack
        .components
        .iter()
        .filter_map(|(name, comp)| Some((name.value.clone(), c.spec.block(&comp.block.value)?)))
        .collect()
}

fn check_stack(c: &mut Check, stack: &Stack) {
    let spec = c.spec;
    let f = stack.file;
    if let Err(p) = names::dns_label(&stack.name.value) {
        c.error(
            f,
            &stack.name,
            format!("stack name `{}` {p}", stack.name.value),
        );
    }
    if stack.components.is_empty() {
        c.error(
            f,
            &stack.name,
            format!("stack `{}` has no components", stack.name.value),
        );
    }
    for (name, comp) in stack.components.iter() {
        if let Err(p) = names::dns_label(&name.value) {
            c.error(f, name, format!("component name `{}` {p}", name.value))
                .help("component names become repo and Kubernetes names (DNS-1123 labels)");
        }
        match spec.block(&comp.block.value) {
            None => c.unknown_kind(
                Some(Kind::Block),
                f,
                &comp.block,
                "block",
                spec.blocks.iter().map(Block::id),
            ),
            Some(block) if !block.instantiable() => {
                c.error(
                    f,
                    &comp.block,
                    format!(
                        "block `{}` is catalog-only and cannot be instantiated",
                        block.id()
                    ),
                )
                .help(format!(
                    "add templates under templates/{}/ to make it instantiable",
                    block.id()
                ));
            }
            Some(block) => check_inputs(c, f, block, &comp.inputs),
        }
    }
    let blocks = blocks_of(c, stack);
    let envs = env_names(c);
    for (env, per_component) in stack.environments.iter() {
        if spec.platform.is_some() && !envs.contains(&env.value.as_str()) {
            c.unknown(f, env, "environment", envs.iter().copied());
        }
        check_component_inputs(c, f, stack, &blocks, per_component);
    }
    check_requires(c, stack, &blocks);
}

/// `component -> inputs` maps: the component exists and the inputs fit.
fn check_component_inputs(
    c: &mut Check,
    f: FileId,
    stack: &Stack,
    blocks: &BTreeMap<String, &Block>,
    per_component: &SpannedMap<InputValues>,
) {
    for (comp, inputs) in per_component.iter() {
        if stack.components.get(&comp.value).is_none() {
            c.unknown(
                f,
                comp,
                &format!("unknown component {{}} in stack `{}`", stack.name.value),
                stack.components.keys(),
            );
        } else if let Some(block) = blocks.get(&comp.value) {
            check_inputs(c, f, block, inputs);
        }
    }
}

/// Every input is declared by the block and its value fits.
fn check_inputs(c: &mut Check, f: FileId, block: &Block, inputs: &InputValues) {
    for (name, value) in inputs.iter() {
        let Some(decl) = block.meta.inputs.get(&name.value) else {
            c.unknown(
                f,
                name,
                &format!("unknown input {{}} for block `{}`", block.id()),
                block.meta.inputs.keys(),
            );
            continue;
        };
        let re = decl
            .pattern
            .as_ref()
            .and_then(|p| c.regex(&p.value))
            .cloned();
        if let Err(why) = super::check_value(decl, &value.value, re.as_ref()) {
            let declared = c_at(c, block, &name.value);
            c.error(f, value, format!("input `{}` {why}", name.value))
                .note(format!("declared by block `{}`", block.id()), declared);
        }
    }
}

fn c_at(c: &Check, block: &Block, input: &str) -> crate::spec::diag::Location {
    match block.meta.inputs.get_entry(input) {
        Some((key, _)) => c.at(block.file, key),
        None => c.at(block.file, &block.meta.id),
    }
}

/// Each capability a block requires is provided by another component.
fn check_requires(c: &mut Check, stack: &Stack, blocks: &BTreeMap<String, &Block>) {
    let spec = c.spec;
    for (name, comp) in stack.components.iter() {
        let Some(block) = blocks.get(&name.value) else {
            continue;
        };
        for cap in &block.meta.requires {
            let provided = blocks.iter().any(|(other, b)| {
                *other != name.value && b.meta.capabilities.iter().any(|x| x.value == cap.value)
            });
            if !provided {
                let providers: Vec<&str> = spec
                    .blocks
                    .iter()
                    .filter(|b| {
                        b.instantiable() && b.meta.capabilities.iter().any(|x| x.value == cap.value)
                    })
                    .map(Block::id)
                    .collect();
                let d = c.error(
                    stack.file,
                    &comp.block,
                    format!(
                        "component `{}` needs capability `{}`, which no other component of stack `{}` provides",
                        name.value, cap.value, stack.name.value
                    ),
                );
                if !providers.is_empty() {
                    d.help(format!("add a component using {}", quote_list(&providers)));
                }
            }
        }
    }
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// One plan's own rules (run with its wiring, one job per plan, so the
/// cores share them).
pub(super) fn check_plan(c: &mut Check, plan: &Plan) {
    let spec = c.spec;
    let f = plan.file;
    if let Err(p) = names::dns_label(&plan.name.value) {
        c.error(
            f,
            &plan.name,
            format!("plan name `{}` {p}", plan.name.value),
        )
        .help("plan names become repo and Kubernetes names (DNS-1123 labels)");
    }
    if plan.owner.value.trim().is_empty() {
        c.error(f, &plan.owner, "plan owner is empty");
    }
    let envs = env_names(c);
    if plan.environments.is_empty() {
        c.error(
            f,
            &plan.name,
            format!("plan `{}` lists no environments", plan.name.value),
        );
    }
    c.unique(
        "environment in this plan",
        plan.environments.iter().map(|e| (f, e)),
    );
    for env in &plan.environments {
        if spec.platform.is_some() && !envs.contains(&env.value.as_str()) {
            c.unknown(f, env, "environment", envs.iter().copied());
        }
    }
    let Some(stack) = spec.stack(&plan.stack.value) else {
        c.unknown_kind(
            Some(Kind::Stack),
            f,
            &plan.stack,
            "stack",
            spec.stacks.iter().map(|s| s.name.value.as_str()),
        );
        return;
    };
    let blocks = plan_blocks(c, stack, plan);
    check_pins(c, plan, stack, &blocks);
    check_component_inputs(c, f, stack, &blocks, &plan.inputs);
    for (env, per_component) in plan.overrides.iter() {
        if !plan.environments.iter().any(|e| e.value == env.value) {
            c.error(
                f,
                env,
                format!(
                    "override for environment `{}`, which plan `{}` does not deploy to",
                    env.value, plan.name.value
                ),
            )
            .help("add it to `environments`, or remove the override");
        }
        check_component_inputs(c, f, stack, &blocks, per_component);
    }
    for (env, _) in plan.promote.iter() {
        if !plan.environments.iter().any(|e| e.value == env.value) {
            c.error(
                f,
                env,
                format!(
                    "promotion for environment `{}`, which plan `{}` does not deploy to",
                    env.value, plan.name.value
                ),
            )
            .help("add it to `environments`, or remove it from `promote`");
        }
    }
    check_required(c, plan, stack, &blocks);
    check_generated_names(c, plan, stack);
}

/// The block behind each component of `stack` as `plan` uses it: the
/// version it pins, else the block as it is now.
fn plan_blocks<'s>(c: &Check<'s>, stack: &Stack, plan: &Plan) -> BTreeMap<String, &'s Block> {
    stack
        .components
        .iter()
        .filter_map(|(name, comp)| {
            let block = c.spec.block_for(plan, &comp.block.value)?;
            Some((name.value.clone(), block))
        })
        .collect()
}

/// Each pin names a block the plan's stack uses, and a pinned block can
/// be instantiated and takes the stack's inputs. (Whether the version is
/// in the history was settled when the spec was loaded.)
fn check_pins(c: &mut Check, plan: &Plan, stack: &Stack, blocks: &BTreeMap<String, &Block>) {
    let f = plan.file;
    let used: Vec<&str> = stack
        .components
        .iter()
        .map(|(_, comp)| comp.block.value.as_str())
        .collect();
    for (id, _) in plan.blocks.iter() {
        if !used.contains(&id.value.as_str()) {
            c.unknown(
                f,
                id,
                &format!(
                    "plan `{}` pins block {{}}, which its stack `{}` does not use",
                    plan.name.value, stack.name.value
                ),
                used.iter().copied(),
            );
            if let Some(d) = c.out.0.last_mut() {
                d.help.push(format!(
                    "a plan pins only blocks of its own components; stack `{}` uses {}",
                    stack.name.value,
                    used.iter()
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    for (name, comp) in stack.components.iter() {
        let Some(block) = blocks.get(&name.value).filter(|b| b.pin.is_some()) else {
            continue;
        };
        let Some((id, version)) = plan.blocks.get_entry(&comp.block.value) else {
            continue;
        };
        let commit = block.pin.as_ref().map_or("", |p| &p.commit[..12]);
        if !block.instantiable() {
            c.error(
                f,
                version,
                format!(
                    "block `{}` at version `{}` (commit {commit}) has no templates and cannot be instantiated",
                    id.value, version.value
                ),
            );
            continue;
        }
        // The stack's inputs for this component, against the pinned
        // declarations; each error says which plan's pin it is about.
        let before = c.out.0.len();
        check_inputs(c, stack.file, block, &comp.inputs);
        for (_, per_component) in stack.environments.iter() {
            if let Some(inputs) = per_component.get(&name.value) {
                check_inputs(c, stack.file, block, inputs);
            }
        }
        let note = format!(
            "plan `{}` pins block `{}` at version `{}`",
            plan.name.value, id.value, version.value
        );
        let at = c.at(f, version);
        for d in &mut c.out.0[before..] {
            d.note(note.clone(), at.clone());
        }
    }
}

/// Required inputs are set in some layer, for every environment.
fn check_required(c: &mut Check, plan: &Plan, stack: &Stack, blocks: &BTreeMap<String, &Block>) {
    for (comp, block) in blocks {
        for (input, decl) in block.meta.inputs.iter() {
            if !decl.required || decl.default.is_some() {
                continue;
            }
            let set_in =
                |layer: Option<&InputValues>| layer.is_some_and(|i| i.get(&input.value).is_some());
            let base = set_in(stack.components.get(comp).map(|c| &c.inputs))
                || set_in(plan.inputs.get(comp));
            let missing: Vec<&str> = plan
                .environments
                .iter()
                .map(|e| e.value.as_str())
                .filter(|env| {
                    !base
                        && !set_in(stack.environments.get(env).and_then(|m| m.get(comp)))
                        && !set_in(plan.overrides.get(env).and_then(|m| m.get(comp)))
                })
                .collect();
            if !missing.is_empty() {
                c.error(
                    plan.file,
                    &plan.name,
                    format!(
                        "plan `{}`: component `{comp}` needs input `{}` (required by block `{}`), not set for {}",
                        plan.name.value,
                        input.value,
                        block.id(),
                        missing.join(", ")
                    ),
                )
                .help(format!("set it under `inputs: {{{comp}: {{{}: ...}}}}` in this plan", input.value));
            }
        }
    }
}

/// Whether the platform's naming pattern makes valid repo names at all
/// (when it does not, `platform` reports it once, at the pattern).
fn naming_ok(naming: &str) -> bool {
    names::project_repo(naming, "x", "x")
        .is_ok_and(|n| names::repo(&n).and_then(|()| names::dns_label(&n)).is_ok())
}

/// Project repo names and namespaces made from the platform's patterns are
/// valid names.
fn check_generated_names(c: &mut Check, plan: &Plan, stack: &Stack) {
    let Some(platform) = &c.spec.platform else {
        return;
    };
    if names::dns_label(&plan.name.value).is_err() {
        return; // reported once, on the name itself
    }
    let naming = &platform.projects.naming;
    if naming_ok(&naming.value) {
        for (comp, _) in stack.components.iter() {
            if names::dns_label(&comp.value).is_err() {
                continue;
            }
            let Ok(name) = names::project_repo(&naming.value, &plan.name.value, &comp.value) else {
                continue;
            };
            if let Err(why) = names::repo(&name).and_then(|()| names::dns_label(&name)) {
                let declared = c.at(stack.file, comp);
                let pattern = c.at(platform.file, naming);
                c.error(
                    plan.file,
                    &plan.name,
                    format!(
                        "project repo name `{name}` of plan `{}`, component `{}` {why}",
                        plan.name.value, comp.value
                    ),
                )
                .note(format!("component `{}` is declared here", comp.value), declared)
                .note("the repo name comes from `projects.naming`", pattern)
                .help("shorten the plan or component name, or change `projects.naming` in spec/platform.yaml");
            }
        }
    }
    for env in &plan.environments {
        let Some(settings) = platform.environments.get(&env.value) else {
            continue;
        };
        if names::dns_label(&env.value).is_err() {
            continue;
        }
        let ns = names::namespace(&settings.namespace.value, &plan.name.value, &env.value);
        if let Ok(ns) = ns
            && let Err(why) = names::dns_label(&ns)
        {
            c.error(
                plan.file,
                env,
                format!("namespace `{ns}` for environment `{}` {why}", env.value),
            );
        }
        let flux = names::flux_name(&plan.name.value, &env.value);
        if let Err(why) = names::dns_label(&flux) {
            c.error(
                plan.file,
                env,
                format!(
                    "Flux Kustomization name `{flux}` for environment `{}` {why}",
                    env.value
                ),
            )
            .help("Flux labels every object it applies with this name, and a label value holds at most 63 characters: shorten the plan or environment name");
        }
    }
}

/// No two target repos share a name, in any case (forges and the
/// filesystems of clones compare names without case): every project repo
/// a component with `project/` templates gets, and the infra repo.
fn check_repo_collisions(c: &mut Check) {
    let spec = c.spec;
    let Some(platform) = &spec.platform else {
        return;
    };
    let naming = &platform.projects.naming.value;
    if !naming_ok(naming) {
        return;
    }
    // Each name's first holder; what it is called and where it is
    // written are worked out only for a collision (10,000 plans, one
    // line each).
    enum Holder<'s> {
        Infra,
        Project(&'s Plan, &'s Spanned<String>, FileId),
    }
    let mut seen: FastMap<String, Holder> =
        FastMap::with_capacity_and_hasher(spec.plans.len(), Default::default());
    if names::repo(&platform.infra.repo.value).is_ok() {
        seen.insert(platform.infra.repo.value.to_lowercase(), Holder::Infra);
    }
    let said = |c: &Check, holder: &Holder| -> (String, Location) {
        match *holder {
            Holder::Infra => (
                "the infra repo".to_owned(),
                c.at(platform.file, &platform.infra.repo),
            ),
            Holder::Project(plan, comp, file) => (
                format!(
                    "the project repo of plan `{}`, component `{}`",
                    plan.name.value, comp.value
                ),
                c.at(file, comp),
            ),
        }
    };
    let mut plans_seen = FastSet::with_capacity_and_hasher(spec.plans.len(), Default::default());
    for plan in &spec.plans {
        if names::dns_label(&plan.name.value).is_err() || !plans_seen.insert(&plan.name.value) {
            continue;
        }
        let Some(stack) = spec.stack(&plan.stack.value) else {
            continue;
        };
        for (comp, component) in stack.components.iter() {
            let id = component.block.value.as_str();
            let project = match spec.block_for(plan, id).and_then(|b| b.pin.as_ref()) {
                Some(pinned) => pinned.has_project(id),
                None => spec.project_templates.contains(id),
            };
            if names::dns_label(&comp.value).is_err() || !project {
                continue;
            }
            let Ok(name) = names::project_repo(naming, &plan.name.value, &comp.value) else {
                continue;
            };
            if names::repo(&name)
                .and_then(|()| names::dns_label(&name))
                .is_err()
            {
                continue;
            }
            let key = name.to_lowercase();
            match seen.get(&key) {
                Some(holder) => {
                    let (other, at) = said(c, holder);
                    c.error(
                        plan.file,
                        &plan.name,
                        format!("repo name `{name}` of plan `{}`, component `{}` is also {other}", plan.name.value, comp.value),
                    )
                    .note(format!("{other} is named here"), at)
                    .help("every target repo needs a name of its own: rename the plan or component, or change `projects.naming` (or `infra.repo`) in spec/platform.yaml");
                }
                None => {
                    seen.insert(key, Holder::Project(plan, comp, stack.file));
                }
            }
        }
    }
}
