//! `druppie mcp`: the MCP server over stdio, on the spec checkout the
//! global flags name.

use std::sync::Arc;

use super::{CommandError, CommandResult, Context, command_error::ok};

/// Serve the Model Context Protocol over stdin and stdout, for an
/// assistant (Claude Desktop, an IDE, the MCP Inspector) to start:
/// tools to search blocks, read a block with its documentation, list
/// plans and stacks, show where a plan stands, dry-run the spec's diff
/// read the audit timeline, preview what the planner would propose and,
/// with `[mcp] allow_propose`, propose it (a spec pull request, never
/// more). Every tool reads the checkout afresh. Logs go to stderr.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub live: super::diff::LiveArgs,
}

pub fn run(ctx: &Context, args: &Args) -> CommandResult {
    // It stays up as long as the assistant that started it, as the
    // daemon does.
    crate::daemon::memory::no_huge_pages();
    let source = crate::mcp::Checkout {
        spec_root: ctx.spec_root.clone(),
        sources: args.live.sources(ctx),
        own_key: super::diff::own_key(ctx),
        limits: ctx.config.render.limits(),
        config: ctx.config.clone(),
        forge_token: ctx.secrets.forge_token.secret().cloned(),
        llm_key: ctx.secrets.llm_key.secret().cloned(),
        scrubber: ctx.scrubber.clone(),
    };
    crate::mcp::serve_stdio(
        Arc::new(source),
        ctx.scrubber.clone(),
        (&ctx.config.mcp).into(),
    )
    .map_err(CommandError::failed)?;
    ok()
}
