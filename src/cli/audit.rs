//! `druppie audit`: the timeline of what druppie proposed and applied,
//! read from the spec repo's `druppie-audit` branch.

use super::output::errln;
use super::output::{print_error, print_out, table};
use super::{Context, exit};
use crate::audit;
use crate::git::Repo;
use crate::git::sign::AllowedSigners;

/// Show who proposed, approved and applied what, where and when, from the
/// signed event commits on the spec repo's `druppie-audit` branch.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only events of this plan
    #[arg(long)]
    pub plan: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. 2026-11-21T00:00:00+00:00)
    #[arg(long)]
    pub since: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Check every event's signature against `[signing] allowed_signers`
    /// and its committer; exit 1 when one does not verify
    #[arg(long)]
    pub verify: bool,
}

pub fn run(ctx: &Context, args: &Args) -> u8 {
    let fail = |message: String| {
        errln!("error: {message}");
        exit::ERROR
    };
    let Some(spec) = Repo::discover(&ctx.spec_root) else {
        return fail(format!(
            "{} is not in a git repository, so it has no audit trail",
            ctx.spec_root.display()
        ));
    };
    let allowed = if args.verify {
        let Some(path) = &ctx.config.signing.allowed_signers else {
            return fail("--verify needs `[signing] allowed_signers` in druppie.toml".to_owned());
        };
        let path = ctx.config.resolve(path);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => return fail(format!("{}: {e}", path.display())),
        };
        match AllowedSigners::parse(&text, &path.display().to_string()) {
            Ok(a) => Some(a),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    let events = match audit::read(&spec, allowed.as_ref()) {
        Ok(e) => e,
        Err(e) => {
            print_error(&e, ctx.color_err);
            return exit::ERROR;
        }
    };
    let shown: Vec<&audit::Recorded> = events
        .iter()
        .filter(|r| args.plan.as_ref().is_none_or(|p| r.event.plans.contains(p)))
        .filter(|r| {
            args.since
                .as_ref()
                .is_none_or(|t| r.event.time.as_str() >= t.as_str())
        })
        .collect();
    if args.json {
        let json = serde_json::to_string_pretty(&shown).expect("events serialize");
        print_out(&format!("{json}\n"));
    } else if shown.is_empty() {
        print_out("no events\n");
    } else {
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|r| {
                let e = &r.event;
                vec![
                    e.time.clone(),
                    e.kind.name().to_owned(),
                    e.plans.join(", "),
                    e.env.clone().unwrap_or_default(),
                    e.repo.clone(),
                    e.branch
                        .clone()
                        .or_else(|| e.commit.as_ref().map(|c| c[..12.min(c.len())].to_owned()))
                        .unwrap_or_default(),
                    e.actor.clone(),
                    r.signature.clone(),
                ]
            })
            .collect();
        print_out(&table(
            &[
                "time",
                "event",
                "plans",
                "env",
                "repo",
                "commit/branch",
                "actor",
                "signature",
            ],
            &rows,
        ));
    }
    let bad = shown.iter().filter(|r| r.signature != "verified").count();
    if args.verify && bad > 0 {
        return fail(format!("{bad} of {} events do not verify", shown.len()));
    }
    exit::OK
}
