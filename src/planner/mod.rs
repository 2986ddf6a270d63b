//! The planner: a sentence becomes a proposed spec change, never more.
//! It reads the catalog and the spec, drafts a plan (and a stack when no
//! stack fits), and hands the files to [`check`], which runs the spec's
//! own validation, the policies and the preview on them. A proposal is
//! opened only as a branch (a pull request) of the spec repo
//! ([`submit`]); the planner never writes to project or infra repos.
//!
//! ```text
//! route   sentence + spec         -> Route     (create, change, catalog, status)
//! draft   Route + catalog         -> Outline   rules::create, rules::change, or llm::LlmPlanner
//! check   Outline files + base    -> Checked   spec validation, policies, preview
//! submit  Checked                 -> Opened    a signed commit on a branch, a pull request
//! ```

pub mod card;
pub mod check;
pub mod draft;
pub mod llm;
pub mod propose;
pub mod route;
pub mod rules;
pub mod session;
pub mod submit;
mod words;

use serde::Serialize;

pub use check::{Checked, check};
pub use draft::{Draft, File};
pub use route::{Route, route};
pub use session::Session;

/// What a person asked for, and what they said about it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Request {
    /// The sentence, verbatim.
    pub text: String,
    /// The owning team (`--owner`).
    pub owner: Option<String>,
    /// The environments asked for (`--env`); empty: all of them.
    pub envs: Vec<String>,
    /// The plan's name (`--name`).
    pub name: Option<String>,
}

/// A building block the planner chose, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// The component of the stack that instantiates it.
    pub component: String,
    pub block: String,
    pub why: String,
}

/// What a planner made of a request, before it is checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outline {
    /// Which planner drafted it (`rules`, or the language model's name).
    pub planner: String,
    /// The plan created or changed.
    pub plan: Option<String>,
    /// The spec files written, relative to the spec root.
    pub files: Vec<File>,
    /// The draft the files were made from (a new plan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft: Option<Draft>,
    pub choices: Vec<Choice>,
    /// What must be answered before anything is proposed.
    pub questions: Vec<String>,
    /// What the reviewer should know: the stack reused, a shared service
    /// to request, a value taken from a convention.
    pub notes: Vec<String>,
}

impl Outline {
    /// Whether there is something to propose: files, and no question.
    pub fn proposable(&self) -> bool {
        !self.files.is_empty() && self.questions.is_empty()
    }
}

/// The rule-based planner's outline for `request` on `route`.
pub fn outline(
    v: &crate::spec::Validated,
    registry: &crate::registry::Registry,
    request: &Request,
    route: &Route,
) -> Outline {
    let mut outline = match route {
        Route::Change { plan } => rules::change(v, registry, request, plan),
        _ => rules::create(v, registry, request),
    };
    outline.planner = "rules".to_owned();
    outline
}
