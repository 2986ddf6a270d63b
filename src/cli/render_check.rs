//! `druppie render-check` (hidden): the daemon's render check
//! ([`crate::daemon::RenderCheck`]), a child kept between reconciles.
//!
//! It reads requests from standard input, one JSON object a line, two
//! per check: [`Open`] (load and validate the spec: read again only the
//! files that changed since the commit it holds, when the daemon names
//! them, else all of it), then [`Render`] (compose and render those
//! plans in memory within the `[render]` limits). It answers [`Passed`]
//! on standard output and waits for the next check. A spec that is
//! invalid or does not render is reported as `validate --render`
//! reports it, on standard error, and ends the child with status 1; a
//! template over its memory budget ends it likewise
//! ([`crate::budget`]). A request it cannot read, or a spec it cannot
//! read for the moment, ends it with status 3 (the daemon tries again).
//! The end of its input ends it with status 0.

use std::io::{BufRead as _, Read as _, Write as _};

use super::validate::{render_plans, validated};
use super::{CommandError, CommandResult, Context, Ui, command_error::ok};
use crate::daemon::{CheckOpen as Open, CheckPassed as Passed, CheckRender as Render};
use crate::spec::{self, LoadOptions};

/// Runs the daemon's render check (not for people: the daemon starts it).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// The most bytes one request may hold.
const LINE_LIMIT: u64 = 16 << 20;

pub fn run(ctx: &Context, ui: &Ui, _args: &Args) -> CommandResult {
    checks(ctx, ui).or_else(|failed| match failed {
        // Not the spec's doing: the daemon tries again with a new child.
        Failed::Here(e) => {
            ui.error(&*e);
            Ok(std::process::ExitCode::from(BROKEN))
        }
        Failed::Spec(e) => Err(e),
    })
}

/// The exit status of a child that failed for a reason of its own (a
/// request it cannot read, a spec it cannot read for the moment), not
/// because of the spec ([`crate::daemon::CheckError::is_transient`]).
const BROKEN: u8 = 3;

enum Failed {
    /// The spec is invalid or does not render: exit status 1.
    Spec(CommandError),
    Here(Box<dyn std::error::Error + Send + Sync>),
}

impl From<CommandError> for Failed {
    fn from(e: CommandError) -> Self {
        Failed::Spec(e)
    }
}

fn checks(ctx: &Context, ui: &Ui) -> Result<std::process::ExitCode, Failed> {
    let mut input = std::io::stdin().lock();
    let options = LoadOptions::default();
    // The spec as the last check read it, and its commit (what is
    // resolved from it is made again by each check's validation).
    let mut held: Option<(String, spec::Spec)> = None;
    loop {
        let Some(open) = request::<Open>(&mut input)? else {
            return Ok(ok()?);
        };
        // The spec held is read again only if it is the one at `from`.
        let prev = (held.as_mut())
            .filter(|(at, _)| open.from.as_ref() == Some(at))
            .map(|(_, spec)| spec);
        let changed = open.changed.as_deref();
        let (loaded, reread) = spec::reload_or_load(&ctx.spec_root, prev, changed, &options)
            .map_err(|e| {
                if e.is_transient() {
                    Failed::Here(Box::new(e))
                } else {
                    Failed::Spec(CommandError::failed(e))
                }
            })?;
        let files_read_again = reread.then(|| changed.map_or(0, <[String]>::len));
        let v = validated(ui, loaded)?;
        let Some(render) = request::<Render>(&mut input)? else {
            return Ok(ok()?);
        };
        match render.plans {
            Some(plans) if plans.is_empty() => {}
            plans => {
                render_plans(ctx, ui, &v, &plans.unwrap_or_default())?;
            }
        }
        let answer = serde_json::to_string(&Passed {
            passed: true,
            files_read_again,
        })
        .expect("a struct of numbers serializes");
        let mut out = std::io::stdout().lock();
        writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .map_err(|e| Failed::Here(Box::new(e)))?;
        held = open.to.map(|to| (to, v.spec));
        // It waits for the next check holding only the spec.
        crate::daemon::memory::give_back();
    }
}

/// The next request; `None` at the end of the input.
fn request<T: serde::de::DeserializeOwned>(
    input: &mut impl std::io::BufRead,
) -> Result<Option<T>, Failed> {
    let mut line = String::new();
    input
        .take(LINE_LIMIT)
        .read_line(&mut line)
        .map_err(|e| Failed::Here(Box::new(e)))?;
    if line.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| Failed::Here(Box::new(e)))
}
