//! The MCP server (Model Context Protocol, through the official SDK
//! `rmcp`): the catalog, plans, stacks, where each plan stands, a
//! dry-run diff and the audit timeline as tools for an assistant.
//! `druppie mcp` serves it over stdio on a spec checkout
//! ([`Checkout`]); `druppie serve` serves it as Streamable HTTP at
//! `/mcp` from its last reconcile ([`Served`]). The planner's dry run is
//! `preview_draft`; the one writing tool, `propose`, may only open a
//! spec pull request, and only with `[mcp] allow_propose` (over HTTP,
//! with the API's bearer token too). Every other tool reads.

mod audit;
mod checkout;
mod served;
mod source;
mod tools;

use std::sync::Arc;

use rmcp::ServiceExt as _;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use checkout::Checkout;
pub use served::Served;
pub use source::{Catalog, ComponentEntry, PlanEntry, Source, SourceError, StackEntry, stacks};
pub use tools::{MAX_EVENTS, MAX_QUERY, Server};

use crate::secret::Scrubber;

/// What the server offers beyond reading; `[mcp]` in druppie.toml.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// Offer the `propose` tool.
    pub allow_propose: bool,
    /// Over HTTP, `propose` needs this bearer token (`[server]
    /// api_token_env`), as every write request of the daemon's API does;
    /// without one it is refused there. Over stdio the person who
    /// started the process proposes.
    pub api_token: Option<crate::secret::Secret>,
}

impl From<&crate::config::Mcp> for Options {
    fn from(c: &crate::config::Mcp) -> Self {
        Options {
            allow_propose: c.allow_propose,
            api_token: None,
        }
    }
}

/// The largest request body `/mcp` reads.
pub const BODY_LIMIT: usize = 1 << 20;

/// Why `druppie mcp` stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    #[error("the MCP session did not start")]
    Initialize(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the MCP session ended abnormally")]
    Ended(#[source] tokio::task::JoinError),
}

/// Serves `source` over stdin and stdout until the client closes them.
///
/// # Errors
/// The runtime cannot start, or the session does not start or ends
/// abnormally.
pub fn serve_stdio(
    source: Arc<dyn Source>,
    scrubber: Scrubber,
    options: Options,
) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let server = Server::new(source, scrubber, options);
        let running = server
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| Error::Initialize(Box::new(e)))?;
        running.waiting().await.map_err(Error::Ended)?;
        Ok(())
    })
}

/// The Streamable HTTP service for `/mcp`: stateless (no session to
/// lose on a restart), answering JSON. Any `Host` is served, as the
/// daemon's other routes are; a request carrying an `Origin` (a
/// browser's) is refused, so a web page cannot reach it by DNS
/// rebinding.
pub fn http_service(
    source: Arc<dyn Source>,
    scrubber: Scrubber,
    options: Options,
) -> StreamableHttpService<Server, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(BODY_LIMIT)
        .disable_allowed_hosts()
        .enforce_origin_validation();
    let server = Server::new(source, scrubber, options);
    StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}
