//! One conversation with the model about one request: the system prompt
//! (the planner skill and the answer's format), the request, the tools'
//! answers, and the repair rounds, within the request and token limits.
//! It ends with an outline whose draft checks out (or which only asks
//! questions), or with the [`Failure`] that makes the rules draft.

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestSystemMessageContent,
    ChatCompletionRequestToolMessage, ChatCompletionRequestToolMessageContent,
    ChatCompletionRequestUserMessage, ChatCompletionRequestUserMessageContent,
    ChatCompletionResponseMessage, CreateChatCompletionRequest, FinishReason, ResponseFormat,
    ResponseFormatJsonSchema,
};
use serde_json::{Value, json};

use super::endpoint::{Model, one_line};
use super::schema::{self, ModelAnswer};
use super::{At, Failure, LlmPlanner, tools};
use crate::planner::{Choice, Draft, Outline, Route};

/// The most questions, notes and choices taken from an answer, and the
/// most characters of each.
const MAX_ITEMS: usize = 8;
const MAX_TEXT: usize = 300;

/// What the model is told about answering, after the planner skill.
const FORMAT: &str = "\
## How to answer here

You talk to druppie, not to a person. Use the tools to read the catalog \
and the spec (search_blocks, read_block, list_stacks_and_plans) and to \
check your draft (validate_draft) before you answer. Never invent blocks, \
stacks or inputs: use only what the tools show.

Your final answer is one JSON object and nothing else (no Markdown, no \
code fence), following the `druppie_plan_draft` schema: \
{\"draft\": {\"plan\": {...}, \"stack\": null or a new stack} or null, \
\"choices\": [{\"component\", \"block\", \"why\"}], \"questions\": [...], \
\"notes\": [...]}. `draft.plan` is the plan file (name, stack, owner, \
intent, environments, inputs, overrides); set `draft.stack` only when no \
existing stack fits, and then the plan's `stack` is its name. When \
something only the requester can know is missing, set `draft` to null \
and ask in `questions`. druppie checks the draft as a hand-written \
change is checked; when it does not check out you get the diagnostics \
and may answer again.";

/// What a rejected answer is rejected for.
enum Problem {
    /// Not the JSON asked for.
    Nonsense(String),
    /// A draft that does not check out.
    Invalid {
        why: String,
        diagnostics: Vec<String>,
    },
}

impl Problem {
    fn text(&self) -> String {
        match self {
            Problem::Nonsense(why) => format!("Your answer was rejected: {why}."),
            Problem::Invalid { why, diagnostics } => {
                let mut s = format!("Your draft does not check out: {why}.");
                for d in diagnostics {
                    s.push('\n');
                    s.push_str(d);
                }
                s
            }
        }
    }
}

pub(super) struct Session<'s, 'a, 'b> {
    planner: &'s LlmPlanner,
    at: &'s At<'a, 'b>,
    model: &'s dyn Model,
    messages: Vec<ChatCompletionRequestMessage>,
    /// Tokens spent, as the endpoint reports them (estimated where it
    /// does not).
    used: u64,
    requests: u32,
    rounds: u32,
    checks: u32,
}

impl<'s, 'a, 'b> Session<'s, 'a, 'b> {
    pub(super) fn new(
        planner: &'s LlmPlanner,
        at: &'s At<'a, 'b>,
        model: &'s dyn Model,
    ) -> Session<'s, 'a, 'b> {
        let skill = at
            .registry
            .skills
            .iter()
            .find(|s| s.id == "planner")
            .map(|s| s.body.trim().to_owned())
            .unwrap_or_else(|| {
                "You are the planner of a druppie platform: you turn a request into a plan of the spec repo.".to_owned()
            });
        let system = format!("{skill}\n\n{FORMAT}");
        let messages = vec![
            ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                content: ChatCompletionRequestSystemMessageContent::Text(system),
                name: None,
            }),
            user(request_text(at)),
        ];
        Session {
            planner,
            at,
            model,
            messages,
            used: 0,
            requests: 0,
            rounds: 0,
            checks: 0,
        }
    }

    /// Talks until the model's answer checks out or a limit is reached.
    pub(super) fn run(mut self) -> Result<Outline, Failure> {
        loop {
            let message = self.ask()?;
            if let Some(refusal) = message.refusal.as_deref().filter(|r| !r.trim().is_empty()) {
                return Err(Failure::Refused(self.said(refusal)));
            }
            let calls = message.tool_calls.clone().unwrap_or_default();
            if !calls.is_empty() {
                self.messages.push(ChatCompletionRequestMessage::Assistant(
                    ChatCompletionRequestAssistantMessage {
                        content: message
                            .content
                            .clone()
                            .map(ChatCompletionRequestAssistantMessageContent::Text),
                        tool_calls: Some(calls.clone()),
                        ..Default::default()
                    },
                ));
                for call in &calls {
                    let (id, answer) = self.call(call);
                    self.messages.push(ChatCompletionRequestMessage::Tool(
                        ChatCompletionRequestToolMessage {
                            content: ChatCompletionRequestToolMessageContent::Text(answer),
                            tool_call_id: id,
                        },
                    ));
                }
                continue;
            }
            let content = message.content.unwrap_or_default();
            self.messages.push(ChatCompletionRequestMessage::Assistant(
                ChatCompletionRequestAssistantMessage {
                    content: Some(ChatCompletionRequestAssistantMessageContent::Text(
                        content.clone(),
                    )),
                    ..Default::default()
                },
            ));
            let problem = match self.judge(&content) {
                Ok(outline) => return Ok(outline),
                Err(problem) => problem,
            };
            if self.rounds >= self.planner.settings.repair_rounds {
                return Err(match problem {
                    Problem::Nonsense(why) => Failure::Nonsense(self.said(&why)),
                    Problem::Invalid { why, diagnostics } => Failure::Invalid {
                        rounds: self.rounds,
                        why: self.said(&why),
                        diagnostics: diagnostics.iter().map(|d| self.said(d)).collect(),
                    },
                });
            }
            self.rounds += 1;
            self.messages.push(user(format!(
                "{}\nAnswer again with the whole JSON object.",
                problem.text()
            )));
        }
    }

    /// Sends the conversation; the answer's first choice.
    fn ask(&mut self) -> Result<ChatCompletionResponseMessage, Failure> {
        let settings = &self.planner.settings;
        if self.requests >= settings.max_requests {
            return Err(Failure::Unfinished(self.requests));
        }
        if self.used >= settings.token_budget {
            return Err(Failure::Budget {
                used: self.used,
                budget: settings.token_budget,
            });
        }
        self.requests += 1;
        let request = CreateChatCompletionRequest {
            model: settings.model.clone(),
            messages: self.messages.clone(),
            tools: Some(tools::definitions()),
            response_format: Some(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    description: Some(
                        "A druppie plan draft, or the questions to ask first.".to_owned(),
                    ),
                    name: schema::NAME.to_owned(),
                    schema: schema::answer(),
                    strict: Some(false),
                },
            }),
            max_completion_tokens: Some(settings.max_tokens),
            ..Default::default()
        };
        let response = self.model.complete(&request)?;
        let choice = response.choices.into_iter().next();
        let spent = match &response.usage {
            Some(usage) => u64::from(usage.total_tokens),
            // About four bytes a token, for what was sent and answered.
            None => {
                let sent = serde_json::to_string(&request).map_or(0, |s| s.len());
                let answered = choice
                    .as_ref()
                    .and_then(|c| c.message.content.as_ref())
                    .map_or(0, String::len);
                ((sent + answered) / 4) as u64
            }
        };
        self.used = self.used.saturating_add(spent);
        tracing::debug!(
            request = self.requests,
            tokens = self.used,
            "the language model answered"
        );
        let Some(choice) = choice else {
            return Err(Failure::Nonsense(
                "the endpoint answered with no choice".to_owned(),
            ));
        };
        if choice.finish_reason == Some(FinishReason::ContentFilter) {
            return Err(Failure::Refused(
                "its answer was stopped by a content filter".to_owned(),
            ));
        }
        Ok(choice.message)
    }

    /// Answers one tool call: its id, and the answer's text.
    fn call(&mut self, call: &ChatCompletionMessageToolCalls) -> (String, String) {
        let (id, name, arguments) = match call {
            ChatCompletionMessageToolCalls::Function(f) => (
                f.id.clone(),
                f.function.name.as_str(),
                f.function.arguments.as_str(),
            ),
            ChatCompletionMessageToolCalls::Custom(c) => (
                c.id.clone(),
                c.custom_tool.name.as_str(),
                c.custom_tool.input.as_str(),
            ),
        };
        tracing::debug!(tool = %one_line(name, 64), "the language model calls a tool");
        let answer = match serde_json::from_str::<Value>(arguments) {
            Err(e) => Err(format!("the arguments are not JSON: {e}")),
            Ok(args) => match name {
                tools::SEARCH_BLOCKS => tools::search_blocks(self.at.registry, &args),
                tools::READ_BLOCK => tools::read_block(self.at.v, self.at.registry, &args),
                tools::LIST_STACKS_AND_PLANS => Ok(tools::list_stacks_and_plans(self.at.v)),
                tools::VALIDATE_DRAFT => Ok(self.validate(&args)),
                _ => Err(format!(
                    "there is no tool `{}`; the tools are {}, {}, {} and {}",
                    one_line(name, 64),
                    tools::SEARCH_BLOCKS,
                    tools::READ_BLOCK,
                    tools::LIST_STACKS_AND_PLANS,
                    tools::VALIDATE_DRAFT
                )),
            },
        };
        let text = match answer {
            Ok(value) => value.to_string(),
            Err(why) => json!({ "error": why }).to_string(),
        };
        (id, tools::cut(&text, tools::MAX_ANSWER))
    }

    /// `validate_draft`.
    fn validate(&mut self, args: &Value) -> Value {
        let draft = match args
            .get("draft")
            .cloned()
            .map(serde_json::from_value::<Draft>)
        {
            None => return json!({"valid": false, "error": "the arguments need a `draft`"}),
            Some(Err(e)) => {
                return json!({"valid": false, "error": format!("the draft does not follow the schema: {e}")});
            }
            Some(Ok(d)) => d,
        };
        match self.check(draft) {
            Ok(_) => {
                json!({"valid": true, "message": "the draft checks out: validation, policies and preview pass"})
            }
            Err(Problem::Invalid { why, diagnostics }) => {
                json!({"valid": false, "error": why, "diagnostics": diagnostics})
            }
            Err(Problem::Nonsense(why)) => json!({"valid": false, "error": why}),
        }
    }

    /// Parses the final answer and checks its draft.
    fn judge(&mut self, content: &str) -> Result<Outline, Problem> {
        let answer: ModelAnswer = serde_json::from_str(content).map_err(|e| {
            Problem::Nonsense(format!(
                "it is not the JSON object the `{}` schema asks for ({e})",
                schema::NAME
            ))
        })?;
        let questions = self.texts(&answer.questions);
        let notes = self.texts(&answer.notes);
        let mut outline = match answer.draft {
            Some(draft) => self.check(draft)?,
            None if !questions.is_empty() => Outline {
                planner: self.planner.model().to_owned(),
                ..Outline::default()
            },
            None => {
                return Err(Problem::Nonsense(
                    "it has neither a draft nor a question".to_owned(),
                ));
            }
        };
        outline.questions = questions;
        outline.notes = notes;
        outline.choices = self.choices(&answer.choices, outline.draft.as_ref());
        Ok(outline)
    }

    /// The model's draft as an outline that checks out, or why not.
    fn check(&mut self, mut draft: Draft) -> Result<Outline, Problem> {
        let at = self.at;
        let spec = &at.v.spec;
        let invalid = |why: String| Problem::Invalid {
            why,
            diagnostics: Vec::new(),
        };
        // Provenance and ownership are the request's (or the changed
        // plan's), not the model's.
        draft.plan.intent = one_line(&at.request.text, 200);
        let changed = match at.route {
            Route::Change { plan } => spec.plans.iter().find(|p| &p.name.value == plan),
            _ => None,
        };
        if let Some(owner) = at
            .request
            .owner
            .clone()
            .or_else(|| changed.map(|p| p.owner.value.clone()))
        {
            draft.plan.owner = owner;
        }
        let name = draft.plan.name.clone();
        match at.route {
            Route::Change { plan } if &name != plan => {
                return Err(invalid(format!(
                    "the request changes plan `{plan}`: the draft's plan must be named `{plan}`, not {name:?}"
                )));
            }
            Route::Change { .. } => {}
            _ => {
                if let Some(asked) = &at.request.name
                    && asked != &name
                {
                    return Err(invalid(format!(
                        "the plan must be named `{asked}` (asked for), not {name:?}"
                    )));
                }
                if spec.plans.iter().any(|p| p.name.value == name) {
                    return Err(invalid(format!(
                        "a plan `{name}` exists already: name the new plan otherwise"
                    )));
                }
            }
        }
        // The environments are those asked for; else a change keeps the
        // plan's own and a new plan has every environment, as the rules
        // plan it: a model does not drop one unasked.
        let (wanted, whose): (Vec<String>, &str) = if !at.request.envs.is_empty() {
            (at.request.envs.clone(), "asked for")
        } else if let Some(plan) = changed {
            let own = plan.environments.iter().map(|e| e.value.clone()).collect();
            (own, "of the plan now")
        } else {
            let all = at.v.env_names().iter().map(|e| (*e).to_owned()).collect();
            (all, "of the platform, none being asked for")
        };
        let set = |envs: &[String]| {
            envs.iter()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
        };
        if set(&wanted) != set(&draft.plan.environments) {
            return Err(invalid(format!(
                "the environments {whose} are {}: the plan's `environments` must be those",
                wanted.join(", ")
            )));
        }
        if let Some(stack) = &draft.stack
            && spec.stack(&stack.name).is_some()
        {
            return Err(invalid(format!(
                "a stack `{}` exists already: use it (set `stack` to null) or name the new stack otherwise",
                stack.name
            )));
        }
        let files = draft.files().map_err(|e| invalid(e.to_string()))?;
        let outline = Outline {
            planner: self.planner.model().to_owned(),
            plan: Some(name),
            files,
            draft: Some(draft),
            ..Outline::default()
        };
        self.checks += 1;
        let scratch = at.scratch.join(format!("llm-{}", self.checks));
        let checked = crate::planner::check(at.base, outline, at.sources, at.limits, &scratch)
            .map_err(|e| invalid(crate::error::chain(&e)))?;
        let _ = std::fs::remove_dir_all(&scratch);
        let Some(why) = checked.refusal() else {
            return Ok(checked.outline);
        };
        let mut diagnostics: Vec<String> = checked.diagnostics.clone();
        if let Some(changes) = &checked.changes {
            for cs in changes.shown() {
                for f in &cs.findings {
                    diagnostics.push(format!(
                        "policy {} ({:?}) on {}:{}: {}",
                        f.policy, f.severity, f.repo, f.path, f.message
                    ));
                }
            }
        }
        Err(Problem::Invalid { why, diagnostics })
    }

    /// The model's choices that name a block of the catalog, one line each.
    fn choices(
        &self,
        choices: &[super::schema::ModelChoice],
        draft: Option<&Draft>,
    ) -> Vec<Choice> {
        let known = |id: &str| self.at.registry.blocks.iter().any(|b| b.id == id);
        let in_draft = |component: &str| {
            draft.is_none_or(|d| {
                d.stack
                    .as_ref()
                    .is_none_or(|s| s.components.contains_key(component))
            })
        };
        choices
            .iter()
            .filter(|c| known(&c.block) && in_draft(&c.component))
            .take(MAX_ITEMS)
            .map(|c| Choice {
                component: self.said(&one_line(&c.component, 63)),
                block: c.block.clone(),
                why: self.said(&one_line(&c.why, MAX_TEXT)),
            })
            .collect()
    }

    /// The model's texts, at most [`MAX_ITEMS`], one line each.
    fn texts(&self, texts: &[String]) -> Vec<String> {
        texts
            .iter()
            .map(|t| self.said(&one_line(t, MAX_TEXT)))
            .filter(|t| !t.is_empty())
            .take(MAX_ITEMS)
            .collect()
    }

    /// Text from the endpoint, scrubbed of every secret.
    fn said(&self, text: &str) -> String {
        self.planner.scrubber.scrub(text).into_owned()
    }
}

fn user(text: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
        content: ChatCompletionRequestUserMessageContent::Text(text),
        name: None,
    })
}

/// The request, as the model reads it.
fn request_text(at: &At<'_, '_>) -> String {
    let r = at.request;
    let task = match at.route {
        Route::Change { plan } => format!(
            "change the existing plan `{plan}` (the draft's plan keeps the name `{plan}`; a new stack may add what it lacks)"
        ),
        _ => "create a new plan".to_owned(),
    };
    format!(
        "Request: {}\nTask: {task}\nOwner: {}\nEnvironments: {}\nPlan name: {}",
        one_line(&r.text, 2000),
        r.owner.as_deref().unwrap_or("not given"),
        if r.envs.is_empty() {
            "not given (all of the platform's)".to_owned()
        } else {
            r.envs.join(", ")
        },
        r.name.as_deref().unwrap_or("not given (choose one)"),
    )
}
