//! `compose`: [`Validated`] + plan/env -> [`Resolved`].
//!
//! For each plan and each of its environments: the component instances,
//! their inputs merged (block defaults < stack < stack environment override
//! < plan < plan environment override; each layer replaces an input's
//! value as a whole), wiring expressions evaluated in dependency order, and
//! outputs computed. Ordering is deterministic: plans by name, environments
//! in the plan's order, components in dependency order.

mod resolve;

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::spec::diag::Diagnostic;
use crate::spec::model::Trust;
use crate::spec::validate::Validated;
use crate::spec::{Diagnostics, Pick, Selection};
use crate::template::Limits;

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
    /// The plans this one depends on that deploy to this environment too:
    /// its Flux `Kustomization` waits for theirs.
    pub depends_on: Vec<String>,
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
    /// The spec commit a pinned block was read from; `None`: the block
    /// as it is now. Not part of the template context.
    #[serde(skip)]
    pub pin: Option<String>,
}

/// Every instance the selection covers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resolved {
    pub instances: Vec<Instance>,
}

impl Instance {
    /// About the bytes its components' inputs and outputs hold.
    pub fn bytes(&self) -> usize {
        self.components
            .iter()
            .flat_map(|c| c.inputs.values().chain(c.outputs.values()))
            .map(resolve::json_bytes)
            .sum()
    }
}

impl Resolved {
    /// About the bytes every instance's inputs and outputs hold.
    pub fn bytes(&self) -> usize {
        self.instances.iter().map(Instance::bytes).sum()
    }
}

/// Which plans and environments to compose.
#[derive(Debug, Clone, Default)]
pub struct ComposeOptions {
    pub plan: Option<String>,
    pub env: Option<String>,
    /// Only the plans of these shards; a removed plan is pruned only by
    /// the run that holds its shard.
    pub shards: Option<crate::spec::Shards>,
}

/// Composes every plan × environment of `selection`; each expression is
/// evaluated within `limits.template_memory`, each value it gives may
/// hold `limits.file_bytes`, and the values of one instance together
/// `limits.instance_bytes`.
///
/// # Errors
/// A wiring expression that fails to evaluate or yields a value its input
/// does not accept, or too large a value: each a located diagnostic. All
/// instances are tried, so all errors are found.
pub fn compose(
    v: &Validated,
    selection: &Selection,
    limits: &Limits,
) -> Result<Resolved, Diagnostics> {
    let picks = v.picks(selection);
    // What the composed instances hold together, kept until rendering.
    let held = AtomicUsize::new(0);
    let results = crate::par::map_init(
        &picks,
        None,
        crate::template::environment,
        |engine, pick| {
            if held.load(Ordering::Relaxed) > limits.run_bytes {
                return Err(Vec::new());
            }
            let instance = instance(v, engine, pick, limits)?;
            let before = held.fetch_add(instance.bytes(), Ordering::Relaxed);
            if before <= limits.run_bytes && before + instance.bytes() > limits.run_bytes {
                return Err(vec![Diagnostic::error(
                    format!(
                        "the values composed for this run pass {} at plan `{}` in environment `{}` (`[render] max_run_bytes`)",
                        crate::template::size(limits.run_bytes),
                        instance.plan,
                        instance.env
                    ),
                    crate::spec::diag::Location::file(v.spec.file(pick.plan.file).path.clone()),
                ).with_help("inputs and outputs that are very large; if that is intended, raise `max_run_bytes` in the `[render]` section of druppie.toml")]);
            }
            Ok(instance)
        },
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

/// Composes one plan in one environment, with a template engine from
/// [`crate::template::environment`] (one per thread), within `limits` (as
/// for [`compose`]).
///
/// # Errors
/// Located diagnostics for wiring that fails or gives a value its input
/// does not accept, or too large a value.
pub fn instance(
    v: &Validated,
    engine: &minijinja::Environment<'_>,
    pick: &Pick<'_>,
    limits: &Limits,
) -> Result<Instance, Vec<Diagnostic>> {
    resolve::instance(&v.spec, engine, pick, limits)
}
