//! One request, answered: the spec at the base commit is opened, the
//! sentence routed, and a create or change request drafted, checked and,
//! when asked, opened as a proposal. The CLI (`druppie propose`), the
//! daemon's chat API and the MCP server all answer through [`answer`].

use std::path::Path;

use serde::Serialize;

use super::check::{Base, CheckError};
use super::submit::{Opened, SubmitError};
use super::{Checked, Request, Route};
use crate::live::Sources;
use crate::registry::{BlockEntry, Registry};
use crate::spec::OpenError;

/// What a request got.
#[derive(Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// A drafted and checked spec change, and the proposal opened for it.
    Proposal {
        #[serde(flatten)]
        checked: Box<Checked>,
        opened: Option<Opened>,
        /// Why it was not opened, when it was asked to be.
        #[serde(skip_serializing_if = "Option::is_none")]
        refused: Option<String>,
    },
    /// The blocks that answer a question about the catalog, best first.
    Catalog {
        query: String,
        blocks: Vec<BlockEntry>,
    },
    /// A question about where a plan stands: the caller answers it from
    /// `status` and the audit trail.
    Status { plan: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("cannot export spec commit {commit}")]
    Export {
        commit: crate::git::ObjectId,
        #[source]
        source: crate::git::Error,
    },
    /// The spec as it is at the base does not open: nothing can be
    /// planned on it.
    #[error("the spec at {commit} does not open")]
    Open {
        commit: crate::git::ObjectId,
        #[source]
        source: OpenError,
    },
    /// A request longer than [`MAX_REQUEST`] bytes: a plan's intent is a
    /// sentence or two.
    #[error("the request is {len} bytes; at most {MAX_REQUEST} are read (a sentence or two)")]
    TooLong { len: usize },
    #[error("cannot read branch `{branch}` of the spec repo")]
    Base {
        branch: String,
        #[source]
        source: crate::git::Error,
    },
    #[error("cannot make a scratch directory")]
    Scratch(#[source] std::io::Error),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl ProposeError {
    pub fn is_transient(&self) -> bool {
        match self {
            ProposeError::Export { source, .. } => source.is_transient(),
            ProposeError::Open { source, .. } => source.is_transient(),
            ProposeError::Check(e) => e.is_transient(),
            ProposeError::Base { source, .. } => source.is_transient(),
            ProposeError::Scratch(_) => true,
            ProposeError::Submit(_) | ProposeError::TooLong { .. } => false,
        }
    }
}

/// The longest request read, in bytes.
pub const MAX_REQUEST: usize = 4096;

/// How many catalog hits a question gets.
const HITS: usize = 5;

/// Opens a checked proposal (a branch, a pull request).
pub type Opener<'a> = &'a dyn Fn(&Checked) -> Result<Opened, SubmitError>;

/// How a request is answered, apart from the request itself.
pub struct How<'a> {
    /// The live repos the preview diffs against.
    pub sources: &'a Sources,
    /// What composing and rendering may hold and produce (`[render]`).
    pub limits: crate::template::Limits,
    /// Opens the proposal when it checks out; not called otherwise.
    /// `None`: a dry run.
    pub open: Option<Opener<'a>>,
    /// The language model that drafts create and change requests
    /// instead of the rules (`[llm]`); `None`: the rules draft.
    pub llm: Option<&'a super::llm::LlmPlanner>,
}

/// Answers `request` on `base`, in `scratch` (an empty private
/// directory).
///
/// # Errors
/// The base cannot be opened, the outline cannot be checked, or opening
/// the proposal fails.
pub fn answer(
    base: &Base<'_>,
    request: &Request,
    how: &How<'_>,
    scratch: &Path,
) -> Result<Answer, ProposeError> {
    if request.text.len() > MAX_REQUEST {
        return Err(ProposeError::TooLong {
            len: request.text.len(),
        });
    }
    let opened = open_base(base, scratch)?;
    let v = &opened.valid;
    let registry = Registry::new(&v.spec);
    let plans: Vec<&str> = v.spec.plans.iter().map(|p| p.name.value.as_str()).collect();
    let route = super::route(&request.text, &plans);
    let outline = match &route {
        Route::Catalog { query } => {
            // Blocks that give what is asked for exactly, in the
            // search's order; the search's best when none does.
            let giving: Vec<&str> = super::rules::giving(v, query)
                .iter()
                .map(|b| b.id())
                .collect();
            let mut blocks: Vec<BlockEntry> = registry
                .search_blocks(query)
                .into_iter()
                .filter(|b| giving.is_empty() || giving.contains(&b.id.as_str()))
                .cloned()
                .collect();
            blocks.truncate(HITS);
            return Ok(Answer::Catalog {
                query: query.clone(),
                blocks,
            });
        }
        Route::Status { plan } => return Ok(Answer::Status { plan: plan.clone() }),
        Route::Create | Route::Change { .. } => match how.llm {
            Some(llm) => llm.outline(&super::llm::At {
                v,
                registry: &registry,
                request,
                route: &route,
                base,
                sources: how.sources,
                limits: how.limits,
                scratch: &scratch.join("llm"),
            }),
            None => super::outline(v, &registry, request, &route),
        },
    };
    drop(opened);
    checked_answer(base, outline, how, scratch)
}

/// The spec at the base, exported into `scratch/base` and opened.
fn open_base(base: &Base<'_>, scratch: &Path) -> Result<crate::spec::Opened, ProposeError> {
    let dir = scratch.join("base");
    base.repo
        .export(base.commit, base.prefix, &dir)
        .map_err(|source| ProposeError::Export {
            commit: base.commit,
            source,
        })?;
    let options = crate::spec::revision::load_options(base.repo, base.prefix, base.commit);
    crate::spec::open(&dir, &options, &Default::default()).map_err(|source| ProposeError::Open {
        commit: base.commit,
        source,
    })
}

/// Checks a draft someone else made (an assistant over MCP, naming
/// itself `by`) exactly as the planner's own drafts are checked, and
/// opens it through `how` when it checks out. Such a draft creates a
/// plan: one that names an existing plan is a question, not a rewrite of
/// that plan (its owner, environments and inputs are not a client's to
/// replace; a change is asked for in a sentence), and its owner must be
/// a team name as `--owner` must.
///
/// # Errors
/// As [`answer`].
pub fn answer_draft(
    base: &Base<'_>,
    draft: super::Draft,
    by: &str,
    how: &How<'_>,
    scratch: &Path,
) -> Result<Answer, ProposeError> {
    if draft.plan.intent.len() > MAX_REQUEST {
        return Err(ProposeError::TooLong {
            len: draft.plan.intent.len(),
        });
    }
    let mut outline = super::Outline {
        planner: by.to_owned(),
        plan: Some(draft.plan.name.clone()),
        ..super::Outline::default()
    };
    let existing = open_base(base, scratch)?
        .valid
        .spec
        .plans
        .iter()
        .any(|p| p.name.value == draft.plan.name);
    if existing {
        outline.questions.push(format!(
            "A plan `{}` exists already: a draft creates a new plan (ask for a change of it in a sentence, or name the draft otherwise).",
            draft.plan.name
        ));
    } else if crate::spec::names::dns_label(&draft.plan.owner).is_err() {
        outline.questions.push(format!(
            "The owner {:?} is not a team name (a DNS label such as `team-permits`).",
            draft.plan.owner
        ));
    } else {
        match draft.files() {
            Ok(files) => outline.files = files,
            Err(e) => outline.questions.push(format!("{e}.")),
        }
    }
    outline.draft = Some(draft);
    checked_answer(base, outline, how, scratch)
}

/// Checks `outline` and opens it through `how` when it checks out.
fn checked_answer(
    base: &Base<'_>,
    outline: super::Outline,
    how: &How<'_>,
    scratch: &Path,
) -> Result<Answer, ProposeError> {
    // The base's export (by `open_base`) is checked with the files over it.
    let checked = super::check::check_exported(
        base,
        outline,
        how.sources,
        how.limits,
        &scratch.join("base"),
    )?;
    let (opened, refused) = match how.open {
        Some(open) => match checked.refusal() {
            Some(why) => (None, Some(why)),
            None => (Some(open(&checked)?), None),
        },
        None => (None, None),
    };
    Ok(Answer::Proposal {
        checked: Box::new(checked),
        opened,
        refused,
    })
}
