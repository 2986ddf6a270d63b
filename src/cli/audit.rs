//! `druppie audit`: the timeline of what druppie proposed and applied,
//! read from the spec repo's `druppie-audit` branch.

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
    /// (with ssh-keygen, as `git verify-commit` does) and its committer,
    /// and that every commit druppie signed in the target repos has its
    /// event; exit 1 when one does not verify or an event is missing
    #[arg(long)]
    pub verify: bool,
}

pub fn run(ctx: &Context, args: &Args) -> u8 {
    let fail = |message: String| {
        eprintln!("error: {message}");
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
        match AllowedSigners::from_file(&ctx.config.resolve(path)) {
            Ok(a) => Some(a),
            Err(e) => return fail(e.to_string()),
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
    if !args.verify {
        return exit::OK;
    }
    let bad = shown.iter().filter(|r| r.signature != "verified").count();
    let missing = match missing_events(ctx, &spec) {
        Ok(m) => m,
        Err(code) => return code,
    };
    for m in &missing {
        eprintln!(
            "missing event: {m}: druppie signed this commit and the trail does not record it"
        );
    }
    match (bad, missing.len()) {
        (0, 0) => exit::OK,
        (bad, 0) => fail(format!("{bad} of {} events do not verify", shown.len())),
        (0, n) => fail(format!(
            "the trail lacks the events of {n} commit(s) druppie signed (cut short or edited?)"
        )),
        (bad, n) => fail(format!(
            "{bad} of {} events do not verify, and the trail lacks the events of {n} commit(s) druppie signed",
            shown.len()
        )),
    }
}

/// The commits druppie signed in the target repos that the trail (its
/// events druppie signed) does not record; prints why it cannot tell.
fn missing_events(ctx: &Context, spec: &Repo) -> Result<Vec<audit::Missing>, u8> {
    let fail = |message: String| {
        eprintln!("error: {message}");
        exit::ERROR
    };
    let signer = super::apply::signer(&ctx.config).map_err(|e| {
        fail(format!(
            "--verify checks the trail against druppie's own commits and needs its key: {e}"
        ))
    })?;
    let key = signer.own_key();
    let trail = audit::trusted(spec, &key).map_err(|e| {
        print_error(&e, ctx.color_err);
        exit::ERROR
    })?;
    let forge = crate::forge::from_config(&ctx.config).map_err(fail)?;
    let config = &ctx.config;
    let cache = crate::apply::Cache::new(&config.resolve(&config.repos.cache_dir), forge.git_env());
    let valid =
        super::load_validated(ctx, &crate::spec::LoadOptions::default()).ok_or(exit::ERROR)?;
    crate::apply::coverage::missing(&valid, &trail.events, forge.as_ref(), &cache, &key).map_err(
        |e| match e {
            crate::apply::coverage::CoverageError::Diagnostics(d) => {
                super::output::print_diagnostics(&d, ctx.color_err);
                exit::ERROR
            }
            e => {
                print_error(&e, ctx.color_err);
                exit::ERROR
            }
        },
    )
}
