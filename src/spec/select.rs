//! Which plans and environments a run covers, and [`open`]: load →
//! validate → select, the one way every entry point (the CLI, the daemon)
//! gets a spec to work on.

use std::path::Path;

use super::diag::{Diagnostic, Diagnostics, Location};
use super::load::{LoadError, LoadOptions, Spec, load};
use super::model::{Block, Plan, Platform, Stack};
use super::suggest;
use super::validate::{ComponentModel, EnvModel, PlanModel, Validated, validate};
use crate::compose::ComposeOptions;

/// The plan × environment pairs a run covers, as positions in
/// [`Validated::plans`]; [`Validated::picks`] follows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection(Vec<(usize, usize)>);

impl Selection {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs of `self` whose plan is one of `plans`.
    pub fn only_plans(
        &self,
        v: &Validated,
        plans: &std::collections::BTreeSet<String>,
    ) -> Selection {
        let named = |p: usize| v.plans().get(p).is_some_and(|m| plans.contains(&m.name));
        Selection(self.0.iter().copied().filter(|&(p, _)| named(p)).collect())
    }

    /// `self` and, for each pair, the plan's environments before it in
    /// the promotion order ([`Validated::env_names`]: platform.yaml's
    /// order): promotion reads whether a change is live there.
    pub fn with_earlier(&self, v: &Validated) -> Selection {
        let Some(deployment) = &v.deployment else {
            return self.clone();
        };
        let order = v.env_names();
        let rank = |name: &str| order.iter().position(|e| *e == name);
        let mut out = self.0.clone();
        for &(p, e) in &self.0 {
            let Some(model) = deployment.plans.get(p) else {
                continue;
            };
            let Some(at) = model.envs.get(e).and_then(|env| rank(&env.name)) else {
                continue;
            };
            for (i, env) in model.envs.iter().enumerate() {
                if rank(&env.name).is_some_and(|r| r < at) && !out.contains(&(p, i)) {
                    out.push((p, i));
                }
            }
        }
        // In each plan's own order, so a plan's project repos render
        // with its first environment whatever the filter.
        out.sort_unstable();
        Selection(out)
    }
}

/// One plan in one environment, with everything composing it needs.
#[derive(Debug, Clone, Copy)]
pub struct Pick<'v> {
    pub spec: &'v Spec,
    pub platform: &'v Platform,
    pub model: &'v PlanModel,
    pub plan: &'v Plan,
    pub stack: &'v Stack,
    pub env: &'v EnvModel,
}

impl<'v> Pick<'v> {
    pub fn plan_name(&self) -> &'v str {
        &self.model.name
    }

    pub fn env_name(&self) -> &'v str {
        &self.env.name
    }

    /// The block of one of the plan's components.
    pub fn block(&self, component: &ComponentModel) -> &'v Block {
        component.block(self.spec)
    }
}

impl Validated {
    /// The pairs of `selection`, plans by name and environments in each
    /// plan's order.
    pub fn picks(&self, selection: &Selection) -> Vec<Pick<'_>> {
        let Some(deployment) = &self.deployment else {
            return Vec::new();
        };
        selection
            .0
            .iter()
            .filter_map(|&(p, e)| {
                let model = deployment.plans.get(p)?;
                Some(Pick {
                    spec: &self.spec,
                    platform: &deployment.platform,
                    model,
                    plan: model.plan(&self.spec),
                    stack: model.stack(&self.spec),
                    env: model.envs.get(e)?,
                })
            })
            .collect()
    }
}

/// The plan × environment pairs `options` selects.
///
/// # Errors
/// A plan or environment the spec does not have (with the nearest names
/// and the valid ones), or a plan not deployed to the environment named.
pub fn select(v: &Validated, options: &ComposeOptions) -> Result<Selection, Diagnostics> {
    let mut diags = Diagnostics::default();
    let plans = v.plans();
    if let Some(plan) = &options.plan
        && plans.iter().all(|p| p.name != *plan)
    {
        let known: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        diags.push(unknown("plan", plan, "--plan", &known));
    }
    let envs = v.env_names();
    if let Some(env) = &options.env
        && !envs.contains(&env.as_str())
    {
        diags.push(unknown("environment", env, "--env", &envs));
    }
    if diags.has_errors() {
        return Err(diags);
    }
    let mut picks = Vec::new();
    for (p, model) in plans.iter().enumerate() {
        if options
            .plan
            .as_ref()
            .is_some_and(|name| *name != model.name)
            || options
                .shards
                .as_ref()
                .is_some_and(|s| !s.owns(&model.name))
        {
            continue;
        }
        for (e, env) in model.envs.iter().enumerate() {
            if options.env.as_ref().is_none_or(|name| *name == env.name) {
                picks.push((p, e));
            }
        }
    }
    if let (Some(plan), Some(env)) = (&options.plan, &options.env)
        && picks.is_empty()
    {
        let listed: Vec<&str> = plans
            .iter()
            .filter(|p| p.name == *plan)
            .flat_map(|p| p.envs.iter().map(|e| e.name.as_str()))
            .collect();
        return Err(Diagnostics(vec![
            Diagnostic::error(
                format!("plan `{plan}` is not deployed to environment `{env}`"),
                Location::file("--env"),
            )
            .with_help(format!("plan `{plan}` lists {}", list(&listed))),
        ]));
    }
    Ok(Selection(picks))
}

fn unknown(what: &str, name: &str, flag: &str, known: &[&str]) -> Diagnostic {
    Diagnostic::error(format!("unknown {what} `{name}`"), Location::file(flag))
        .with_candidates(&suggest::candidates(name, known.iter().copied()))
        .with_help(format!("the spec has {}", list(known)))
}

/// "`a`, `b`", or "none".
fn list(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// A spec loaded, validated, and the part a run covers selected.
#[derive(Debug)]
pub struct Opened {
    pub valid: Validated,
    pub selection: Selection,
}

impl Opened {
    pub fn picks(&self) -> Vec<Pick<'_>> {
        self.valid.picks(&self.selection)
    }

    /// The names of the plans selected.
    pub fn plan_names(&self) -> std::collections::BTreeSet<String> {
        self.picks()
            .iter()
            .map(|p| p.plan_name().to_owned())
            .collect()
    }
}

/// Why a spec could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The spec is invalid: every diagnostic, warnings included.
    #[error("the spec is invalid ({} errors)", .0.error_count())]
    Invalid(Diagnostics),
    /// `--plan` or `--env` name nothing the spec has.
    #[error("the selection names nothing in the spec")]
    Selection(Diagnostics),
}

impl OpenError {
    /// Whether trying again on the same spec may succeed: an I/O failure
    /// while reading may pass; an invalid spec or selection will not.
    pub fn is_transient(&self) -> bool {
        match self {
            OpenError::Load(e) => e.is_transient(),
            OpenError::Invalid(_) | OpenError::Selection(_) => false,
        }
    }

    /// The diagnostics to show, when the error carries them.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            OpenError::Invalid(d) | OpenError::Selection(d) => Some(d),
            OpenError::Load(_) => None,
        }
    }
}

/// Loads the spec at `root`, validates it and selects what `scope`
/// covers.
///
/// # Errors
/// [`OpenError`]: the spec cannot be read, is invalid, or the selection
/// names nothing it has.
pub fn open(
    root: &Path,
    load_options: &LoadOptions,
    scope: &ComposeOptions,
) -> Result<Opened, OpenError> {
    let started = std::time::Instant::now();
    let spec: Spec = load(root, load_options)?;
    tracing::debug!(elapsed = ?started.elapsed(), "load");
    open_loaded(spec, scope)
}

/// Validates `spec`, loaded already, and selects what `scope` covers.
///
/// # Errors
/// [`OpenError`]: the spec is invalid, or the selection names nothing it
/// has.
pub fn open_loaded(spec: Spec, scope: &ComposeOptions) -> Result<Opened, OpenError> {
    let started = std::time::Instant::now();
    let valid = validate(spec).map_err(OpenError::Invalid)?;
    tracing::debug!(elapsed = ?started.elapsed(), "validate");
    let selection = select(&valid, scope).map_err(OpenError::Selection)?;
    Ok(Opened { valid, selection })
}
