//! The tools: input checked here, answers read from a [`Source`], output
//! as JSON (text content, and structured content). A refused input or a
//! failed read is a tool error (`isError: true`) whose text is the
//! diagnostic, as MCP asks for input errors so that a model can correct
//! itself; an argument of the wrong type is the protocol's own
//! invalid-params error.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Options;
use super::source::{Source, SourceError};
use crate::secret::Scrubber;

/// The longest search query taken, in characters.
pub const MAX_QUERY: usize = 1000;
/// The most audit events one call returns.
pub const MAX_EVENTS: usize = 1000;
/// Events returned when `limit` is not given.
const DEFAULT_EVENTS: usize = 100;

/// The MCP server: the tools over one [`Source`].
#[derive(Clone)]
pub struct Server {
    source: Arc<dyn Source>,
    scrubber: Scrubber,
    options: Options,
    tool_router: ToolRouter<Server>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBlocks {
    /// Words to search for, e.g. "database" or "a permit portal with a
    /// database"; empty lists every block
    #[serde(default)]
    pub query: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetBlock {
    /// The block's id, e.g. "postgresql"
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanStatus {
    /// Only this plan (every plan when left out)
    pub plan: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Diff {
    /// Only this plan
    pub plan: Option<String>,
    /// Only this environment
    pub env: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Only events of this plan
    pub plan: Option<String>,
    /// Only events in this environment
    pub env: Option<String>,
    /// Only events at or after this time: RFC 3339 with its offset
    /// (2026-11-21T00:00:00Z) or a span back from now (90s, 30m, 1h, 7d, 2w)
    pub since: Option<String>,
    /// At most this many events, the latest (default 100, at most 1000)
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// What is needed, in a sentence ("a permit portal with a database
    /// for team-permits"); or give `draft` instead
    pub request: Option<String>,
    /// The owning team, e.g. "team-permits"
    pub owner: Option<String>,
    /// The environments to plan (all of the platform's when left out)
    #[serde(default)]
    pub environments: Vec<String>,
    /// The plan's name, a DNS label (from the request when left out)
    pub name: Option<String>,
    /// A draft made by the assistant instead of a request: `{plan: {name,
    /// stack, owner, intent, environments, inputs?, overrides?}, stack?:
    /// {name, description, components: {<name>: {block, inputs?}},
    /// environments?}}`
    pub draft: Option<Value>,
}

impl Plan {
    fn input(self) -> Result<super::source::PlanInput, String> {
        use super::source::PlanInput;
        match (self.request, self.draft) {
            (Some(text), None) => {
                if self.environments.len() > 16 {
                    return Err("environments: at most 16".into());
                }
                for e in &self.environments {
                    check_name("env", Some(e))?;
                }
                Ok(PlanInput::Request(crate::planner::Request {
                    text,
                    owner: self.owner,
                    envs: self.environments,
                    name: self.name,
                }))
            }
            (None, Some(draft)) => {
                let draft: crate::planner::Draft = serde_json::from_value(draft)
                    .map_err(|e| format!("draft: {}", shown(&e.to_string())))?;
                Ok(PlanInput::Draft(Box::new(draft)))
            }
            _ => Err("give either `request` (a sentence) or `draft`, not both".into()),
        }
    }
}

// The tools: reading ones, `preview_draft` (the planner's dry run) and
// `propose` (which opens a spec pull request, only with `[mcp]
// allow_propose = true`).
#[tool_router]
impl Server {
    pub fn new(source: Arc<dyn Source>, scrubber: Scrubber, options: Options) -> Server {
        Server {
            source,
            scrubber,
            options,
            tool_router: Self::tool_router() + Self::planner_router(),
        }
    }

    /// Search the building block catalog: blocks ranked best first (an
    /// exact capability or id match first), as `druppie blocks QUERY
    /// --json`.
    #[tool(annotations(read_only_hint = true))]
    async fn search_blocks(
        &self,
        Parameters(p): Parameters<SearchBlocks>,
    ) -> Result<CallToolResult, String> {
        let count = p.query.chars().count();
        if count > MAX_QUERY {
            return Err(format!(
                "the query is {count} characters long; at most {MAX_QUERY} are searched"
            ));
        }
        self.read(move |source| {
            let catalog = source.catalog()?;
            let blocks = catalog.registry.search_blocks(&p.query);
            Ok(json!({ "query": p.query, "blocks": blocks }))
        })
        .await
    }

    /// One building block: its catalog entry (type, version,
    /// capabilities, inputs, outputs, whether it can be instantiated)
    /// and its documentation (the Markdown body of its file).
    #[tool(annotations(read_only_hint = true))]
    async fn get_block(
        &self,
        Parameters(p): Parameters<GetBlock>,
    ) -> Result<CallToolResult, String> {
        if let Err(e) = crate::spec::names::id(&p.id) {
            return Err(format!("`{}` is not a block id: it {e}", shown(&p.id)));
        }
        self.read(move |source| {
            let catalog = source.catalog()?;
            let blocks = &catalog.registry.blocks;
            let Some(block) = blocks.iter().find(|b| b.id == p.id) else {
                return Err(unknown(
                    "block",
                    &p.id,
                    blocks.iter().map(|b| b.id.as_str()),
                ));
            };
            let mut value = serde_json::to_value(block).expect("a block entry serializes");
            value["documentation"] = json!(block.docs);
            Ok(value)
        })
        .await
    }

    /// The plans: name, stack, owner, intent and environments.
    #[tool(annotations(read_only_hint = true))]
    async fn list_plans(&self) -> Result<CallToolResult, String> {
        self.read(|source| Ok(json!({ "plans": source.catalog()?.plans })))
            .await
    }

    /// The stacks: their components (each a block and the inputs the
    /// stack sets, wiring included) and the environments they override.
    #[tool(annotations(read_only_hint = true))]
    async fn list_stacks(&self) -> Result<CallToolResult, String> {
        self.read(|source| Ok(json!({ "stacks": source.catalog()?.stacks })))
            .await
    }

    /// Where a plan stands: per environment and project repo, what is
    /// live (its freight: spec commit, digest, who applied or approved
    /// it and when) and what waits there, as `druppie status --plan P
    /// --json`.
    #[tool(annotations(read_only_hint = true))]
    async fn plan_status(
        &self,
        Parameters(p): Parameters<PlanStatus>,
    ) -> Result<CallToolResult, String> {
        check_name("plan", p.plan.as_deref())?;
        self.read(move |source| source.status(p.plan.as_deref()))
            .await
    }

    /// A dry run of the current spec: what would change in every project
    /// and infra repo (files, diffs, policy findings, the execution
    /// plan), as `druppie diff --json`. Nothing is written.
    #[tool(annotations(read_only_hint = true))]
    async fn diff(&self, Parameters(p): Parameters<Diff>) -> Result<CallToolResult, String> {
        check_name("plan", p.plan.as_deref())?;
        check_name("env", p.env.as_deref())?;
        self.read(move |source| source.diff(p.plan.as_deref(), p.env.as_deref()))
            .await
    }

    /// The audit timeline from the spec repo's `druppie-audit` branch:
    /// who proposed, approved, applied and verified what, where and
    /// when, as `druppie audit --json` (signatures are not checked).
    #[tool(annotations(read_only_hint = true))]
    async fn audit_timeline(
        &self,
        Parameters(p): Parameters<Audit>,
    ) -> Result<CallToolResult, String> {
        check_name("plan", p.plan.as_deref())?;
        check_name("env", p.env.as_deref())?;
        if p.since.as_ref().is_some_and(|t| t.len() > 64) {
            return Err(
                "since: at most 64 characters (an RFC 3339 time or a span such as 7d)".into(),
            );
        }
        let since = match &p.since {
            Some(text) => Some(
                crate::when::since(text, crate::when::Timestamp::now())
                    .map_err(|e| format!("since: {e}"))?,
            ),
            None => None,
        };
        let limit = p.limit.unwrap_or(DEFAULT_EVENTS);
        if limit == 0 || limit > MAX_EVENTS {
            return Err(format!("limit: {limit} is not between 1 and {MAX_EVENTS}"));
        }
        self.read(move |source| {
            super::audit::timeline(source, p.plan.as_deref(), p.env.as_deref(), since, limit)
        })
        .await
    }
}

#[tool_router(router = planner_router)]
impl Server {
    /// What druppie would propose for a request (a sentence) or a draft
    /// plan: the blocks chosen and why, open questions, the plan and
    /// stack files, whether the spec with them validates and passes the
    /// policies, and what merging would change in every repo. Nothing is
    /// written. A catalog question answers with blocks; a status question
    /// names the plan to ask `plan_status` about.
    #[tool(annotations(read_only_hint = true))]
    async fn preview_draft(
        &self,
        Parameters(p): Parameters<Plan>,
    ) -> Result<CallToolResult, String> {
        let input = p.input()?;
        self.read(move |source| source.plan(input, false)).await
    }

    /// Propose a request (a sentence) or a draft plan as a pull request
    /// on the spec repo, once it checks out as `preview_draft` shows: the
    /// branch `druppie/propose/<plan>` with one signed commit whose card
    /// names the blocks and why. A person approves it by merging; this
    /// never writes to project or infra repos. Offered only when the
    /// configuration allows it (`[mcp] allow_propose`).
    #[tool(annotations(read_only_hint = false, destructive_hint = false))]
    async fn propose(
        &self,
        Parameters(p): Parameters<Plan>,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<CallToolResult, String> {
        // Over HTTP, a write needs the daemon's bearer token.
        if let Some(parts) = context.extensions.get::<axum::http::request::Parts>()
            && crate::daemon::api::bearer_of(self.options.api_token.as_ref(), &parts.headers)
                .is_err()
        {
            return Err(
                "propose over HTTP needs the daemon's API token as a bearer token (`[server] api_token_env`)".into(),
            );
        }
        if !self.options.allow_propose {
            return Err(
                "propose is off: this server only reads (`[mcp] allow_propose = true` in druppie.toml turns it on); preview_draft shows what it would propose".into(),
            );
        }
        let input = p.input()?;
        self.read(move |source| source.plan(input, true)).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        let writes = if self.options.allow_propose {
            "`[mcp] allow_propose` is on: a propose tool may open spec pull requests"
        } else {
            "read-only: no tool writes anything; propose is off"
        };
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("druppie", env!("CARGO_PKG_VERSION"))
                    .with_title("druppie"),
            )
            .with_instructions(format!(
                "druppie's building block catalog, plans, stacks, where each plan stands, a dry-run diff of the spec, the audit timeline and the planner ({writes})."
            ))
    }
}

impl Server {
    /// Runs `read` on a blocking thread (it reads git and renders) and
    /// shapes its answer; every text is scrubbed of configured secrets.
    async fn read(
        &self,
        read: impl FnOnce(&dyn Source) -> Result<Value, SourceError> + Send + 'static,
    ) -> Result<CallToolResult, String> {
        let source = self.source.clone();
        let answer = tokio::task::spawn_blocking(move || read(source.as_ref()))
            .await
            .map_err(|e| format!("the tool stopped: {e}"))?;
        match answer {
            Ok(value) => Ok(self.answer(&value)),
            Err(e) => Err(self.scrubber.scrub(&crate::error::chain(&e)).into_owned()),
        }
    }

    /// `value` as structured content and as its JSON text.
    fn answer(&self, value: &Value) -> CallToolResult {
        let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
        let scrubbed = self.scrubber.scrub(&text);
        let structured = match &scrubbed {
            std::borrow::Cow::Borrowed(_) => value.clone(),
            std::borrow::Cow::Owned(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        };
        let mut result = CallToolResult::structured(structured);
        result.content = vec![ContentBlock::text(scrubbed.into_owned())];
        result
    }
}

/// A plan or environment name must be a DNS label before it is looked
/// up anywhere.
fn check_name(what: &str, name: Option<&str>) -> Result<(), String> {
    match name.map(|n| (n, crate::spec::names::dns_label(n))) {
        Some((n, Err(e))) => Err(format!(
            "{what}: `{}` is not a {what} name: it {e}",
            shown(n)
        )),
        _ => Ok(()),
    }
}

/// At most 80 characters of untrusted input, control characters
/// escaped, for an error message.
fn shown(text: &str) -> String {
    let cut: String = text
        .chars()
        .take(80)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().count() > 80 {
        format!("{cut}…")
    } else {
        cut
    }
}

/// "unknown plan `x`; did you mean `y`? known: …".
pub(super) fn unknown<'a>(
    what: &str,
    name: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> SourceError {
    let known: Vec<&str> = known.into_iter().collect();
    let near = crate::spec::suggest::candidates(name, known.iter().copied());
    let hint = match near.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        many => format!(
            "; did you mean one of {}?",
            many.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let all = if known.is_empty() {
        format!(" (there is no {what})")
    } else {
        let more = if known.len() > 20 { ", …" } else { "" };
        format!(
            " (known: {}{more})",
            known
                .iter()
                .take(20)
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    SourceError::Input(format!("unknown {what} `{}`{hint}{all}", shown(name)))
}
