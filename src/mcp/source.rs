//! Where the tools read from: a spec checkout ([`super::Checkout`], for
//! `druppie mcp`) or the daemon's last reconcile ([`super::Served`], for
//! `/mcp`). Each answers with what its twin in the CLI or the HTTP API
//! answers; the tools only validate input and shape output.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::registry::Registry;
use crate::spec::{Diagnostics, Spec};

/// What the catalog tools read: the blocks (with their documentation),
/// the plans and the stacks.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub registry: Registry,
    pub plans: Vec<PlanEntry>,
    pub stacks: Vec<StackEntry>,
}

/// A plan, as `GET /api/v1/plans` lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanEntry {
    pub name: String,
    pub stack: String,
    pub owner: String,
    pub intent: Option<String>,
    pub environments: Vec<String>,
}

/// A stack: its components, each a block with the inputs the stack
/// sets (wiring included, as written).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StackEntry {
    pub name: String,
    pub description: Option<String>,
    pub components: Vec<ComponentEntry>,
    /// The environments the stack overrides inputs for.
    pub environments: Vec<String>,
    /// The stack's file, relative to the spec root.
    pub path: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ComponentEntry {
    pub name: String,
    pub block: String,
    pub inputs: serde_json::Map<String, Value>,
}

impl Catalog {
    /// The catalog of a loaded spec (valid or not: what loaded is
    /// listed, as `druppie blocks` lists it).
    pub fn of(spec: &Spec) -> Catalog {
        Catalog {
            registry: Registry::new(spec),
            plans: spec.plans.iter().map(PlanEntry::of).collect(),
            stacks: stacks(spec),
        }
    }
}

impl PlanEntry {
    pub fn of(p: &crate::spec::model::Plan) -> PlanEntry {
        PlanEntry {
            name: p.name.value.clone(),
            stack: p.stack.value.clone(),
            owner: p.owner.value.clone(),
            intent: p.intent.clone(),
            environments: p.environments.iter().map(|e| e.value.clone()).collect(),
        }
    }
}

/// Every stack of `spec`, by name.
pub fn stacks(spec: &Spec) -> Vec<StackEntry> {
    let mut stacks: Vec<StackEntry> = spec
        .stacks
        .iter()
        .map(|s| StackEntry {
            name: s.name.value.clone(),
            description: s.description.clone(),
            components: s
                .components
                .iter()
                .map(|(name, c)| ComponentEntry {
                    name: name.value.clone(),
                    block: c.block.value.clone(),
                    inputs: c
                        .inputs
                        .iter()
                        .map(|(k, v)| (k.value.clone(), v.value.clone()))
                        .collect(),
                })
                .collect(),
            environments: s.environments.keys().map(str::to_owned).collect(),
            path: spec.file(s.file).path.clone(),
        })
        .collect();
    stacks.sort_by(|a, b| a.name.cmp(&b.name));
    stacks
}

/// Why a tool could not answer; its text is what the client sees.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The spec does not load, validate or render, or the input names
    /// what the spec does not have: every diagnostic.
    #[error("{}", render(.0))]
    Spec(Diagnostics),
    /// The input is refused (an unknown name, a value out of bounds).
    #[error("{0}")]
    Input(String),
    /// Not known yet (the daemon before its first reconcile).
    #[error("{0}")]
    NotYet(String),
    /// Reading failed.
    #[error("{what}")]
    Failed {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The diagnostics as the CLI renders them, without the locations that
/// name a command-line flag (`--> --plan`): a tool has arguments.
fn render(diags: &Diagnostics) -> String {
    let text: Vec<String> = diags
        .iter()
        .map(|d| {
            d.render(false)
                .lines()
                .filter(|l| !l.trim_start().starts_with("--> --"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    text.join("\n").trim_end().to_owned()
}

impl From<crate::spec::OpenError> for SourceError {
    fn from(e: crate::spec::OpenError) -> Self {
        match e {
            crate::spec::OpenError::Invalid(d) | crate::spec::OpenError::Selection(d) => {
                SourceError::Spec(d)
            }
            e => SourceError::Failed {
                what: "the spec cannot be read".to_owned(),
                source: Box::new(e),
            },
        }
    }
}

/// What the tools read.
pub trait Source: Send + Sync + 'static {
    /// Blocks, plans and stacks.
    ///
    /// # Errors
    /// The spec cannot be read, or nothing is known yet.
    fn catalog(&self) -> Result<Catalog, SourceError>;

    /// `druppie status --json` for `plan` (every plan when `None`):
    /// `{plans: [...], errors: [...]}`.
    ///
    /// # Errors
    /// An unknown plan, a spec that does not open, or nothing known yet.
    fn status(&self, plan: Option<&str>) -> Result<Value, SourceError>;

    /// `druppie diff --json` for what `plan` and `env` select.
    ///
    /// # Errors
    /// An unknown plan or environment, a spec that does not open or
    /// render, or nothing known yet.
    fn diff(&self, plan: Option<&str>, env: Option<&str>) -> Result<Value, SourceError>;

    /// Where the spec repo (and its audit trail) is.
    fn spec_root(&self) -> &Path;

    /// The environments the spec names (the platform's and the plans'),
    /// for checking the audit tool's `env`.
    fn environments(&self) -> Vec<String>;

    /// The planner's answer to `input`, checked as a hand-written
    /// change is; with `open`, the proposal opened (a spec pull request,
    /// never more). `{answer: "proposal" | "catalog" | "status", …}`.
    ///
    /// # Errors
    /// The spec repo cannot be read, or the source has no planner.
    fn plan(&self, input: PlanInput, open: bool) -> Result<Value, SourceError>;
}

/// What the planner tools take: a sentence, or a draft an assistant made.
#[derive(Debug)]
pub enum PlanInput {
    Request(crate::planner::Request),
    Draft(Box<crate::planner::Draft>),
}

impl From<crate::planner::propose::ProposeError> for SourceError {
    fn from(e: crate::planner::propose::ProposeError) -> Self {
        match e {
            crate::planner::propose::ProposeError::TooLong { .. } => {
                SourceError::Input(e.to_string())
            }
            e => SourceError::Failed {
                what: crate::error::chain(&e),
                source: Box::new(e),
            },
        }
    }
}
