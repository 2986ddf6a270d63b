//! What later stages need of a valid spec, resolved once: the platform
//! whenever there is something to deploy, and per plan its stack, its
//! components in dependency order with their blocks and project repos,
//! and per environment its settings and namespace. Compose, render, diff
//! and apply read these instead of looking names up again.

use std::sync::Arc;

use super::{FastMap, wiring};
use crate::spec::diag::{Diagnostic, Diagnostics, Location};
use crate::spec::load::Spec;
use crate::spec::model::{Block, Environment, Plan, Platform, Stack};
use crate::spec::names;

/// The platform and every plan, ready to compose.
#[derive(Debug)]
pub struct Deployment {
    pub platform: Platform,
    /// Sorted by plan name.
    pub plans: Vec<PlanModel>,
}

/// One plan with every reference followed.
#[derive(Debug)]
pub struct PlanModel {
    pub name: String,
    /// Index of the plan in [`Spec::plans`].
    plan: usize,
    /// Index of its stack in [`Spec::stacks`].
    stack: usize,
    /// In dependency order: a component after every component it reads.
    pub components: Vec<ComponentModel>,
    /// In the plan's order.
    pub envs: Vec<EnvModel>,
}

/// A component of a plan: its block and its project repo.
#[derive(Debug)]
pub struct ComponentModel {
    pub name: String,
    /// Its block: as it is now, or as the plan pins it.
    block: BlockAt,
    /// The project repo, from the platform's naming pattern.
    pub repo: String,
}

/// Where a component's block is.
#[derive(Debug, Clone, Copy)]
enum BlockAt {
    /// Index in [`Spec::blocks`].
    Current(usize),
    /// Index in [`Spec::pinned`].
    Pinned(usize),
}

/// One environment of a plan.
#[derive(Debug)]
pub struct EnvModel {
    pub name: String,
    /// Shared by every plan of the environment.
    pub settings: Arc<Environment>,
    /// The environment's namespace pattern, expanded for the plan.
    pub namespace: String,
    /// The plans this plan depends on (`depends_on`) that deploy to this
    /// environment too, in the plan's order: its Flux `Kustomization`
    /// waits for theirs.
    pub depends_on: Vec<String>,
}

impl PlanModel {
    pub fn plan<'s>(&self, spec: &'s Spec) -> &'s Plan {
        &spec.plans[self.plan]
    }

    pub fn stack<'s>(&self, spec: &'s Spec) -> &'s Stack {
        &spec.stacks[self.stack]
    }

    pub fn env(&self, name: &str) -> Option<&EnvModel> {
        self.envs.iter().find(|e| e.name == name)
    }
}

impl ComponentModel {
    pub fn block<'s>(&self, spec: &'s Spec) -> &'s Block {
        match self.block {
            BlockAt::Current(i) => &spec.blocks[i],
            BlockAt::Pinned(i) => &spec.pinned[i],
        }
    }
}

/// Builds the deployment of a spec that passed every rule (`None`: no
/// platform, so nothing to deploy).
///
/// # Errors
/// A reference that does not resolve or a name pattern that does not
/// expand: the rules report these first, so this is a second line of
/// defence, never a panic.
pub(super) fn build(spec: &Spec) -> Result<Option<Deployment>, Diagnostics> {
    let Some(platform) = &spec.platform else {
        if let Some(plan) = spec.plans.first() {
            let f = spec.file(plan.file);
            return Err(Diagnostics(vec![Diagnostic::error(
                "spec/platform.yaml is missing",
                Location::new(f, f.pos(&plan.name.referenced)),
            )]));
        }
        return Ok(None);
    };
    Ok(Some(Deployment {
        plans: plans(spec, platform)?,
        platform: platform.clone(),
    }))
}

fn plans(spec: &Spec, platform: &Platform) -> Result<Vec<PlanModel>, Diagnostics> {
    let stacks: FastMap<&str, usize> = spec
        .stacks
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.value.as_str(), i))
        .collect();
    let blocks: FastMap<&str, BlockAt> = spec
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| (b.id(), BlockAt::Current(i)))
        .collect();
    let pinned: FastMap<(&str, &str), BlockAt> = spec
        .pinned
        .iter()
        .enumerate()
        .map(|(i, b)| ((b.id(), b.meta.version.value.as_str()), BlockAt::Pinned(i)))
        .collect();
    let by_name = super::depends::plan_index(&spec.plans);
    // Each environment's settings once, shared by its plans; found as
    // `SpannedMap::get` finds them (the first of a name).
    let settings: Vec<(&str, Arc<Environment>)> = platform
        .environments
        .iter()
        .map(|(name, env)| (name.value.as_str(), Arc::new(env.clone())))
        .collect();
    let mut diags = Diagnostics::default();
    let mut out = Vec::with_capacity(spec.plans.len());
    for (index, plan) in spec.plans.iter().enumerate() {
        let mut fail = |message: String| {
            let f = spec.file(plan.file);
            diags.push(Diagnostic::error(
                message,
                Location::new(f, f.pos(&plan.name.referenced)),
            ));
        };
        let name = &plan.name.value;
        let Some(&stack_index) = stacks.get(plan.stack.value.as_str()) else {
            fail(format!(
                "plan `{name}`: unknown stack `{}`",
                plan.stack.value
            ));
            continue;
        };
        let stack = &spec.stacks[stack_index];
        // A single component needs no ordering (the rules refuse one that
        // reads itself); reading every value for wiring would only cost time.
        let order = if stack.components.len() == 1 {
            stack.components.keys().map(str::to_owned).collect()
        } else {
            match wiring::component_order(stack, Some(plan)) {
                Ok(order) => order,
                Err(cycle) => {
                    fail(format!(
                        "plan `{name}`: wiring cycle {}",
                        cycle.join(" -> ")
                    ));
                    continue;
                }
            }
        };
        let mut components = Vec::with_capacity(order.len());
        for component in order {
            let block = stack.components.get(&component).and_then(|c| {
                let id = c.block.value.as_str();
                match plan.blocks.get(id) {
                    Some(version) => pinned.get(&(id, version.value.as_str())),
                    None => blocks.get(id),
                }
            });
            let repo = names::project_repo(&platform.projects.naming.value, name, &component);
            match (block, repo) {
                (Some(&block), Ok(repo)) => components.push(ComponentModel {
                    name: component,
                    block,
                    repo,
                }),
                (None, _) => fail(format!(
                    "plan `{name}`: component `{component}` has no block"
                )),
                (_, Err(why)) => fail(format!("plan `{name}`: project repo name: {why}")),
            }
        }
        let mut envs = Vec::with_capacity(plan.environments.len());
        for env in &plan.environments {
            let settings = (settings.iter())
                .find(|(name, _)| *name == env.value)
                .map(|(_, settings)| settings);
            let namespace =
                settings.map(|s| names::namespace(&s.namespace.value, name, &env.value));
            match (settings, namespace) {
                (Some(settings), Some(Ok(namespace))) => envs.push(EnvModel {
                    name: env.value.clone(),
                    settings: Arc::clone(settings),
                    namespace,
                    depends_on: depends_on(spec, plan, &env.value, &by_name),
                }),
                (None, _) | (_, None) => {
                    fail(format!(
                        "plan `{name}`: unknown environment `{}`",
                        env.value
                    ));
                }
                (_, Some(Err(why))) => fail(format!("plan `{name}`: namespace: {why}")),
            }
        }
        out.push(PlanModel {
            name: name.clone(),
            plan: index,
            stack: stack_index,
            components,
            envs,
        });
    }
    if diags.has_errors() {
        return Err(diags);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The plans `plan` depends on that deploy to `env` as well (`by_name`:
/// [`super::depends::plan_index`]).
fn depends_on(
    spec: &Spec,
    plan: &Plan,
    env: &str,
    by_name: &super::depends::PlanIndex<'_>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for other in &plan.depends_on {
        let deploys_here = by_name
            .get(other.value.as_str())
            .is_some_and(|&i| spec.plans[i].environments.iter().any(|e| e.value == env));
        if deploys_here && !out.contains(&other.value) {
            out.push(other.value.clone());
        }
    }
    out
}
