//! `druppie status`: per plan, what is live in each environment (its
//! freight) and what waits where.

use super::{CommandError, CommandResult, Context, Ui, command_error::ok, exit};
use crate::status::{self, EnvStatus, Freight, Next, ProjectStatus, short};

/// Show, per plan, each environment's live freight (the spec commit and
/// the digest of what is live, when it went live and who applied or
/// approved it, the cluster's verification) in promotion order, then
/// its project repos, each with what waits there: up to date, a commit
/// pending, a proposal (and whether it already holds the change), held
/// by a person, waiting for an earlier environment, rejected, blocked.
/// Reads the live repos as `druppie diff` does, and the spec repo's
/// audit trail (the events druppie's `[signing] key` signed). Exit
/// code: 0, or 1 when something could not be read.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this plan
    #[arg(long)]
    pub plan: Option<String>,
    /// Print JSON: `{plans: [{plan, environments: [{env, trust, repo,
    /// live, next}], projects: [{repo, live, next}]}], errors}`
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub live: super::diff::LiveArgs,
}

pub fn run(ctx: &Context, ui: &Ui, args: &Args) -> CommandResult {
    let select = super::SelectArgs {
        plan: args.plan.clone(),
        ..super::SelectArgs::default()
    };
    let (opened, mut changes) = super::diff::changes(ctx, ui, &select, &args.live)?;
    let (events, unread) = trail(ctx, ui)?;
    let sources = args.live.sources(ctx);
    let (report, errors) = status::gated(
        &opened.valid,
        &opened.selection,
        &mut changes,
        &sources,
        &events,
    );
    if args.json {
        let json = serde_json::json!({ "plans": report.plans, "errors": errors });
        let text = serde_json::to_string_pretty(&json).expect("the status serializes");
        ui.out(&format!("{text}\n"));
    } else {
        ui.out(&super::output::printable(&text(&report.plans)));
    }
    let live = report.plans.iter().any(|p| {
        p.environments.iter().any(|e| e.live.is_some())
            || p.projects.iter().any(|r| r.live.is_some())
    });
    if let Some(why) = unread.filter(|_| live) {
        ui.note(&why);
    }
    for e in &changes.errors {
        ui.error(e);
    }
    for e in &report.errors {
        ui.error(e);
    }
    if errors.is_empty() {
        ok()
    } else {
        Ok(std::process::ExitCode::from(exit::ERROR))
    }
}

/// The events druppie signed on the spec repo's trail; without its key
/// (or outside a git repository) none, and why.
fn trail(
    ctx: &Context,
    ui: &Ui,
) -> Result<(Vec<crate::audit::Recorded>, Option<String>), CommandError> {
    let Some(spec) = crate::git::Repo::discover(&ctx.spec_root) else {
        return Ok((
            Vec::new(),
            Some(format!(
                "{} is not in a git repository: it has no audit trail to say who made what is live live, and when",
                ctx.spec_root.display()
            )),
        ));
    };
    let Some(key) = super::diff::own_key(ctx) else {
        return Ok((
            Vec::new(),
            Some("who made what is live live, and when, is read from the audit trail's events druppie signed: set `[signing] key` in druppie.toml to read them".to_owned()),
        ));
    };
    let trail = crate::audit::trusted(&spec, &key).map_err(CommandError::failed)?;
    for ignored in &trail.ignored {
        ui.warning(&ignored.to_string());
    }
    Ok((trail.events, None))
}

/// One block per plan, one aligned line per environment and project
/// repo.
fn text(plans: &[status::PlanStatus]) -> String {
    let mut rows: Vec<Option<Vec<String>>> = Vec::new();
    for p in plans {
        rows.push(None);
        for e in &p.environments {
            rows.push(Some(env_row(e)));
        }
        for project in &p.projects {
            rows.push(Some(project_row(project)));
        }
    }
    let mut widths: Vec<usize> = Vec::new();
    for row in rows.iter().flatten() {
        widths.resize(widths.len().max(row.len()), 0);
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // A column empty in every row (no verification anywhere) is left out.
    for row in rows.iter_mut().flatten() {
        let mut i = 0;
        row.retain(|_| {
            i += 1;
            widths[i - 1] > 0
        });
    }
    widths.retain(|w| *w > 0);
    let mut out = String::new();
    let mut names = plans.iter();
    for row in &rows {
        let Some(row) = row else {
            if !out.is_empty() {
                out.push('\n');
            }
            if let Some(p) = names.next() {
                out.push_str(&format!("{}\n", p.plan));
            }
            continue;
        };
        let mut line = String::from("  ");
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if plans.is_empty() {
        out.push_str("no plans\n");
    }
    out
}

fn env_row(e: &EnvStatus) -> Vec<String> {
    let trust = serde_json::to_value(e.trust)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut row = vec![e.env.clone(), trust];
    row.extend(freight_cells(e.live.as_ref()));
    row.push(next(&e.next));
    row
}

fn project_row(p: &ProjectStatus) -> Vec<String> {
    let mut row = vec![p.repo.clone(), "project".to_owned()];
    row.extend(freight_cells(p.live.as_ref()));
    row.push(next(&p.next));
    row
}

/// live, spec, went live, verification.
fn freight_cells(live: Option<&Freight>) -> [String; 4] {
    let Some(f) = live else {
        return [
            "nothing live".to_owned(),
            String::new(),
            String::new(),
            String::new(),
        ];
    };
    let spec = f
        .spec_commit
        .as_deref()
        .map_or_else(|| "spec ?".to_owned(), |c| format!("spec {}", short(c)));
    let promoted = f
        .promoted_from
        .as_deref()
        .map(|from| format!(", promoted from {from}"))
        .unwrap_or_default();
    let went_live = match (&f.went_live, &f.commit) {
        (Some(l), _) => format!("{} {} by {}{promoted}", l.event.name(), time(&l.time), l.by),
        (None, Some(c)) => format!("in {} (no event on the trail)", short(c)),
        (None, None) => String::new(),
    };
    let verified = f
        .verification
        .as_ref()
        .map(|v| format!("{} {}", v.event.name(), time(&v.time)))
        .unwrap_or_default();
    [
        format!("live {}", short(&f.digest)),
        spec,
        went_live,
        verified,
    ]
}

/// A recorded time, UTC written `Z`.
fn time(t: &str) -> String {
    t.strip_suffix("+00:00")
        .map_or_else(|| t.to_owned(), |t| format!("{t}Z"))
}

fn next(n: &Next) -> String {
    let files = |n: usize| {
        if n == 1 {
            "1 file".to_owned()
        } else {
            format!("{n} files")
        }
    };
    match n {
        Next::UpToDate => "up to date".to_owned(),
        Next::Commit { files: n } => format!("→ commit pending ({})", files(*n)),
        Next::Proposed {
            branch,
            already: false,
            files: n,
        } => format!("→ proposal {branch} ({})", files(*n)),
        Next::Proposed { branch, .. } => format!("proposed on {branch}, waiting for a merge"),
        Next::Held { branch, by } => format!("held: {by} pushed to {branch}"),
        Next::Waiting { on, open: None } => format!("waiting: {on}"),
        Next::Waiting {
            on,
            open: Some(branch),
        } => format!("waiting: {on} ({branch} holds an earlier change)"),
        Next::Rejected { branch } => format!("rejected: {branch} was closed without merging"),
        Next::Nothing { reason } => reason.split(':').next().unwrap_or_default().to_owned(),
        Next::Observe { files: n } => format!("observe: {} differ", files(*n)),
        Next::Blocked { findings } => format!("blocked: {findings} policy errors here"),
        Next::Unknown => "unknown: the repo could not be read".to_owned(),
    }
}
