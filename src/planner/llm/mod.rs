//! The language-model planner (optional, `[llm]`): an OpenAI-compatible
//! chat model drafts the plan instead of [`super::rules`], with the
//! planner skill as its system prompt, the catalog and the spec as tools
//! (search blocks, read a block, list stacks and plans, validate a
//! draft), and a JSON schema its answer must follow.
//!
//! Nothing the model says is trusted. Its answer is parsed into a
//! [`Draft`](super::Draft) (unknown fields refused), its names are
//! checked before they become paths ([`Draft::files`](super::Draft::files)),
//! it may only add a plan (or change the plan the request names) and add
//! a stack, and the files go through [`super::check`] (the spec's
//! validation, the policies, the preview) as a hand-written change does.
//! A draft that does not check out goes back to the model with its
//! diagnostics for `repair_rounds` rounds; one that never checks out is
//! reported, never proposed. When the endpoint cannot be reached, times
//! out, refuses, runs past its budget or answers nonsense, the rule-based
//! planner drafts instead, and its outline says so (its `planner` and a
//! note). The API key goes into the request's `Authorization` header and
//! nowhere else: every text taken from the endpoint is scrubbed of it.

mod endpoint;
pub mod schema;
mod session;
pub mod tools;

use std::path::Path;
use std::time::Duration;

use super::check::Base;
use super::{Outline, Request, Route};
use crate::config::Llm;
use crate::live::Sources;
use crate::registry::Registry;
use crate::secret::{Scrubber, Secret};
use crate::spec::Validated;

/// The language-model planner: its settings, the key, and the scrubber
/// that keeps the key out of everything it says.
pub struct LlmPlanner {
    settings: Llm,
    key: Option<Secret>,
    scrubber: Scrubber,
}

/// What a draft is made on: the spec at the base commit, the request,
/// and what checking a draft needs.
pub struct At<'a, 'b> {
    pub v: &'a Validated,
    pub registry: &'a Registry,
    pub request: &'a Request,
    pub route: &'a Route,
    pub base: &'a Base<'b>,
    pub sources: &'a Sources,
    pub limits: crate::template::Limits,
    /// An empty private directory for the drafts' checks.
    pub scratch: &'a Path,
}

/// Why the model's outline was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The endpoint could not be reached (or the request not be made).
    Unreachable(String),
    TimedOut(Duration),
    /// The endpoint answered with an error.
    Http {
        status: u16,
        said: String,
    },
    /// The model refused to answer (`refusal`, a content filter).
    Refused(String),
    /// The answer is not a chat completion, or not the JSON asked for,
    /// after every repair round.
    Nonsense(String),
    /// The model's draft did not check out after every repair round.
    Invalid {
        rounds: u32,
        why: String,
        diagnostics: Vec<String>,
    },
    /// The proposal's token budget is spent.
    Budget {
        used: u64,
        budget: u64,
    },
    /// `max_requests` were sent without a final answer.
    Unfinished(u32),
}

impl Failure {
    /// Why, in a few words, for the outline's `planner`.
    fn short(&self) -> String {
        match self {
            Failure::Unreachable(_) => "language model unreachable".to_owned(),
            Failure::TimedOut(_) => "language model timed out".to_owned(),
            Failure::Http { status, .. } => format!("language model answered HTTP {status}"),
            Failure::Refused(_) => "language model refused".to_owned(),
            Failure::Nonsense(_) => "language model's answer rejected".to_owned(),
            Failure::Invalid { .. } => "language model's draft rejected".to_owned(),
            Failure::Budget { .. } => "language model over its token budget".to_owned(),
            Failure::Unfinished(_) => "language model did not finish".to_owned(),
        }
    }

    /// Why, in a sentence, for the reviewer.
    fn sentence(&self) -> String {
        match self {
            Failure::Unreachable(why) => {
                format!("The language model could not be reached ({why}).")
            }
            Failure::TimedOut(t) => format!(
                "The language model did not answer within {} s.",
                t.as_secs_f64()
            ),
            Failure::Http { status, said } => {
                format!("The language model's endpoint answered HTTP {status} ({said}).")
            }
            Failure::Refused(why) => format!("The language model refused ({why})."),
            Failure::Nonsense(why) => {
                format!("The language model's answer was rejected: {why}.")
            }
            Failure::Invalid {
                rounds,
                why,
                diagnostics,
            } => {
                let mut s = format!(
                    "The language model's draft was rejected: it did not check out after {} ({why})",
                    count(*rounds, "repair round")
                );
                for d in diagnostics.iter().take(3) {
                    s.push_str("; ");
                    s.push_str(&endpoint::one_line(d, 200));
                }
                s.push('.');
                s
            }
            Failure::Budget { used, budget } => format!(
                "The language model used {used} tokens, past the budget of {budget} (`[llm] token_budget`)."
            ),
            Failure::Unfinished(n) => format!(
                "The language model sent {} without a final answer (`[llm] max_requests`).",
                count(*n, "request")
            ),
        }
    }
}

fn count(n: u32, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

impl LlmPlanner {
    /// A planner for the endpoint `settings` names, authenticating with
    /// `key` when there is one. The key (and any password in the base
    /// URL) is added to `scrubber`.
    pub fn new(settings: Llm, key: Option<Secret>, scrubber: Scrubber) -> LlmPlanner {
        if let Some(key) = &key {
            scrubber.add(key);
        }
        scrubber.add_url(&settings.base_url);
        LlmPlanner {
            settings,
            key,
            scrubber,
        }
    }

    /// The model's name, as outlines name their planner.
    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// The model's outline for the request at `at`; when the model
    /// cannot give one that checks out, the rule-based planner's, saying
    /// why. Never fails: the planner that drafted is in `planner`.
    pub fn outline(&self, at: &At<'_, '_>) -> Outline {
        let drafted = endpoint::Endpoint::new(
            &self.settings.base_url,
            self.key.as_ref(),
            self.settings.timeout.0,
            self.scrubber.clone(),
        )
        .and_then(|model| session::Session::new(self, at, &model).run());
        match drafted {
            Ok(outline) => outline,
            Err(failure) => self.fallback(at, &failure),
        }
    }

    /// The rule-based planner's outline, saying why the model's was not
    /// used.
    fn fallback(&self, at: &At<'_, '_>, failure: &Failure) -> Outline {
        let mut outline = super::outline(at.v, at.registry, at.request, at.route);
        outline.planner = format!("rules ({})", failure.short());
        let said = self.scrubber.scrub(&failure.sentence()).into_owned();
        tracing::warn!(model = %self.settings.model, "the rule-based planner drafts: {said}");
        outline.notes.insert(
            0,
            format!("{said} The rule-based planner drafted this instead; nothing the model answered is in it."),
        );
        outline
    }
}
