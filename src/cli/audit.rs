//! `druppie audit`: the timeline of what druppie proposed and applied,
//! read from the spec repo's `druppie-audit` branch.

use std::collections::BTreeSet;

use super::output::table;
use super::{CommandError, CommandResult, Context, Ui, command_error::ok};
use crate::audit;
use crate::git::Repo;
use crate::git::sign::AllowedSigners;
use crate::when::{self, Timestamp};

/// Show who proposed, approved and applied what, where and when, from the
/// signed event commits on the spec repo's `druppie-audit` branch.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only events of this plan
    #[arg(long)]
    pub plan: Option<String>,
    /// Only events in this environment
    #[arg(long)]
    pub env: Option<String>,
    /// Only events at or after this time: RFC 3339 with its offset
    /// (2026-11-21T00:00:00Z, 2026-11-21T00:00:00+02:00) or a span back
    /// from now (90s, 30m, 1h, 7d, 2w)
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

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let since = match &args.since {
        Some(text) => Some(
            when::since(text, Timestamp::now())
                .map_err(|e| CommandError::user(format!("--since: {e}")))?,
        ),
        None => None,
    };
    let spec = Repo::discover(&ctx.spec_root).ok_or_else(|| {
        CommandError::user(format!(
            "{} is not in a git repository, so it has no audit trail",
            ctx.spec_root.display()
        ))
    })?;
    let allowed = if args.verify {
        let path = ctx.config.signing.allowed_signers.as_ref().ok_or_else(|| {
            CommandError::hinted(
                "--verify needs the keys druppie signs with",
                "set `[signing] allowed_signers` in druppie.toml",
            )
        })?;
        Some(AllowedSigners::from_file(&ctx.config.resolve(path)).map_err(CommandError::failed)?)
    } else {
        None
    };
    let events = audit::read(&spec, allowed.as_ref()).map_err(CommandError::failed)?;
    known_names(ctx, &events, args)?;
    let filter = audit::Filter {
        plan: args.plan.clone(),
        env: args.env.clone(),
        kind: None,
        since,
    };
    let shown: Vec<&audit::Recorded> = events.iter().filter(|r| filter.keeps(r)).collect();
    for r in shown.iter().filter(|r| filter.unplaced(r)) {
        ui.warning(&format!(
            "event {}: its time `{}` is not RFC 3339; shown whatever --since says",
            &r.commit[..12.min(r.commit.len())],
            r.event.time
        ));
    }
    if args.json {
        let json = serde_json::to_string_pretty(&shown).expect("events serialize");
        ui.out(&format!("{json}\n"));
    } else if shown.is_empty() {
        ui.out("no events\n");
    } else {
        let rows: Vec<Vec<String>> = shown
            .iter()
            .map(|r| {
                let e = &r.event;
                vec![
                    e.time.clone(),
                    e.kind.name().to_owned(),
                    e.plans.join(", "),
                    match (&e.from, &e.env) {
                        (Some(from), Some(env)) => format!("{from} → {env}"),
                        (_, env) => env.clone().unwrap_or_default(),
                    },
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
        ui.out(&super::output::printable(&table(
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
        )));
    }
    if !args.verify {
        return ok();
    }
    let bad = shown.iter().filter(|r| r.signature != "verified").count();
    let missing = missing_events(ctx, ui, &spec)?;
    for m in &missing {
        ui.err(&format!(
            "missing event: {m}: druppie signed this commit and the trail does not record it\n"
        ));
    }
    match (bad, missing.len()) {
        (0, 0) => ok(),
        (bad, 0) => Err(CommandError::user(format!(
            "{bad} of {} events do not verify",
            shown.len()
        ))),
        (0, n) => Err(CommandError::user(format!(
            "the trail lacks the events of {n} commit(s) druppie signed (cut short or edited?)"
        ))),
        (bad, n) => Err(CommandError::user(format!(
            "{bad} of {} events do not verify, and the trail lacks the events of {n} commit(s) druppie signed",
            shown.len()
        ))),
    }
}

/// `--plan` and `--env` must name a plan or environment that the trail
/// or the spec knows; a known one with no events shows "no events".
fn known_names(ctx: &Context, events: &[audit::Recorded], args: &Args) -> Result<(), CommandError> {
    if args.plan.is_none() && args.env.is_none() {
        return Ok(());
    }
    let mut plans: BTreeSet<String> = BTreeSet::new();
    let mut envs: BTreeSet<String> = BTreeSet::new();
    for r in events {
        plans.extend(r.event.plans.iter().cloned());
        envs.extend(r.event.env.iter().cloned());
    }
    // The spec as it loads, even with errors in it: its names count too.
    if let Ok(spec) = crate::spec::load(&ctx.spec_root, &crate::spec::LoadOptions::default()) {
        for plan in &spec.plans {
            plans.insert(plan.name.value.clone());
            envs.extend(plan.environments.iter().map(|e| e.value.clone()));
        }
        if let Some(platform) = &spec.platform {
            envs.extend(platform.environments.0.iter().map(|(k, _)| k.value.clone()));
        }
    }
    for (what, flag, name, known) in [
        ("plan", "--plan", &args.plan, &plans),
        ("environment", "--env", &args.env, &envs),
    ] {
        if let Some(name) = name
            && !known.contains(name)
        {
            return Err(unknown(what, flag, name, known));
        }
    }
    Ok(())
}

/// "unknown plan `x`", with the nearest names and every known one.
fn unknown(what: &str, flag: &str, name: &str, known: &BTreeSet<String>) -> CommandError {
    let quoted = |names: &mut dyn Iterator<Item = &str>| {
        names
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let near = crate::spec::suggest::candidates(name, known.iter().map(String::as_str));
    let all = if known.is_empty() {
        format!("neither the audit trail nor the spec names any {what}")
    } else {
        format!(
            "the audit trail and the spec know {}",
            quoted(&mut known.iter().map(String::as_str))
        )
    };
    let hint = match near.as_slice() {
        [] => all,
        [one] => format!("did you mean `{one}`? {all}"),
        many => format!(
            "did you mean one of {}? {all}",
            quoted(&mut many.iter().map(String::as_str))
        ),
    };
    CommandError::hinted(format!("{flag}: unknown {what} `{name}`"), hint)
}

/// The commits druppie signed in the target repos that the trail (its
/// events druppie signed) does not record.
fn missing_events(
    ctx: &Context,
    ui: &Ui,
    spec: &Repo,
) -> Result<Vec<audit::Missing>, CommandError> {
    let signer = super::apply::signer(&ctx.config).map_err(|e| match e {
        CommandError::User { message, hint } => CommandError::User {
            message: format!(
                "--verify checks the trail against druppie's own commits and needs its key: {message}"
            ),
            hint,
        },
        other => other,
    })?;
    let key = signer.own_key();
    let trail = audit::trusted(spec, &key).map_err(CommandError::failed)?;
    let forge = super::apply::forge(ctx).map_err(CommandError::failed)?;
    let config = &ctx.config;
    let cache = crate::apply::Cache::new(&config.resolve(&config.repos.cache_dir), forge.git_env());
    let opened = super::open(
        ctx,
        ui,
        &crate::spec::LoadOptions::default(),
        &Default::default(),
    )?;
    crate::apply::coverage::missing(
        &opened.valid,
        &trail.events,
        forge.as_ref(),
        &cache,
        &key,
        &ctx.config.render.limits(),
    )
    .map_err(|e| match e {
        crate::apply::coverage::CoverageError::Diagnostics(d) => CommandError::Diagnostics(d),
        e => CommandError::failed(e),
    })
}
