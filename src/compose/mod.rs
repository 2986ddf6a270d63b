//! `compose`: [`Validated`] + plan/env -> [`Resolved`].
//!
//! For each plan and each of its environments: the component instances,
//! their inputs merged (block defaults < stack < stack environment override
//! < plan < plan environment override; each layer replaces an input's
//! value as a whole), wiring expressions evaluated in dependency order, and
//! outputs computed. Ordering is deterministic: plans by name, environments
//! in the plan's order, components in dependency order.

mod resolve;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::spec::Diagnostics;
use crate::spec::diag::{Diagnostic, Location};
use crate::spec::model::{Plan, Trust};
use crate::spec::suggest;
use crate::spec::validate::Validated;

/// One plan in one environment, ready to render.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub plan: String,
    pub env: String,
    pub trust: Trust,
    pub owner: String,
    pub intent: Option<String>,
    /// Rendered namespace pattern.
    pub namespace: String,
    /// Infra path prefix of the environment (`apps/dev`).
    pub infra_path: String,
    /// In dependency order: a component after every component it reads.
    pub components: Vec<ComponentInstance>,
}

/// A building block instantiated as a component of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInstance {
    pub name: String,
    pub block: BlockRef,
    /// The component's project repo.
    pub repo: String,
    /// Merged and resolved inputs.
    pub inputs: Map<String, Value>,
    /// Names of inputs declared `secret`: masked wherever values are shown.
    pub secret_inputs: Vec<String>,
    pub outputs: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockRef {
    pub id: String,
    pub name: String,
    pub version: String,
}

/// Every instance the selection covers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resolved {
    pub instances: Vec<Instance>,
}

/// Which plans and environments to compose.
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    pub plan: Option<String>,
    pub env: Option<String>,
}

/// Composes every selected plan × environment.
///
/// # Errors
/// An unknown plan or environment in the selection, or a wiring expression
/// that fails to evaluate or yields a value its input does not accept: each
/// a located diagnostic. All instances are tried, so all errors are found.
pub fn compose(v: &Validated, options: &ComposeOptions) -> Result<Resolved, Diagnostics> {
    let selected = select(v, options)?;
    let results = crate::par::map_init(
        &selected,
        None,
        crate::template::environment,
        |engine, (plan, env)| instance(v, engine, plan, env),
    );
    let mut diags = Diagnostics::default();
    let mut instances = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(instance) => instances.push(instance),
            Err(found) => diags.extend(found),
        }
    }
    if diags.has_errors() {
        diags.sort();
        return Err(diags);
    }
    Ok(Resolved { instances })
}

/// The plan × environment pairs `options` selects: plans by name,
/// environments in each plan's order.
///
/// # Errors
/// An unknown plan or environment in the selection.
pub fn select<'v>(
    v: &'v Validated,
    options: &ComposeOptions,
) -> Result<Vec<(&'v Plan, &'v str)>, Diagnostics> {
    let mut diags = Diagnostics::default();
    check_selection(v, options, &mut diags);
    if diags.has_errors() {
        return Err(diags);
    }
    let mut plans: Vec<&Plan> = v.spec.plans.iter().collect();
    plans.sort_by(|a, b| a.name.value.cmp(&b.name.value));
    Ok(plans
        .into_iter()
        .filter(|plan| options.plan.as_ref().is_none_or(|p| *p == plan.name.value))
        .flat_map(|plan| {
            plan.environments
                .iter()
                .filter(|env| options.env.as_ref().is_none_or(|e| *e == env.value))
                .map(move |env| (plan, env.value.as_str()))
        })
        .collect())
}

/// Composes one plan in one environment, with a template engine from
/// [`crate::template::environment`] (one per thread).
///
/// # Errors
/// Located diagnostics for wiring that fails or gives a value its input
/// does not accept.
pub fn instance(
    v: &Validated,
    engine: &minijinja::Environment<'_>,
    plan: &Plan,
    env: &str,
) -> Result<Instance, Vec<Diagnostic>> {
    resolve::instance(&v.spec, engine, plan, env)
}

fn check_selection(v: &Validated, options: &ComposeOptions, diags: &mut Diagnostics) {
    let spec = &v.spec;
    if let Some(plan) = &options.plan
        && spec.plans.iter().all(|p| p.name.value != *plan)
    {
        let known = spec.plans.iter().map(|p| p.name.value.as_str());
        diags.push(
            Diagnostic::error(format!("unknown plan `{plan}`"), Location::file("--plan"))
                .with_candidates(&suggest::candidates(plan, known)),
        );
    }
    if let Some(env) = &options.env {
        let known: Vec<&str> = spec
            .platform
            .iter()
            .flat_map(|p| p.environments.keys())
            .collect();
        if !known.contains(&env.as_str()) {
            diags.push(
                Diagnostic::error(
                    format!("unknown environment `{env}`"),
                    Location::file("--env"),
                )
                .with_candidates(&suggest::candidates(env, known)),
            );
        }
    }
}
