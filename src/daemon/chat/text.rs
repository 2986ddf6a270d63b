//! The planner's answers as a chat message (Markdown a person reads) and
//! as data (druppie's own `druppie` field of the answer).

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::wire::QUESTIONS;
use crate::audit::Recorded;
use crate::planner::Checked;
use crate::planner::submit::Opened;
use crate::registry::BlockEntry;
use crate::status::{EnvStatus, Freight, Next, PlanStatus};

/// An answer: the message, and what it says as data.
pub struct Reply {
    pub content: String,
    pub facts: Value,
}

/// How many events of the trail a status answer shows.
const EVENTS: usize = 5;

/// The blocks that answer a question about the catalog, and why each.
pub fn catalog(query: &str, blocks: &[BlockEntry]) -> Reply {
    let mut out = String::new();
    if blocks.is_empty() {
        let _ = writeln!(
            out,
            "No building block of the catalog answers \"{query}\". `GET /api/v1/blocks` lists them all."
        );
    } else {
        let _ = writeln!(out, "Blocks for \"{query}\", best first:\n");
        for b in blocks {
            let _ = write!(out, "- `{}` ({}): {}", b.id, b.name, b.description.trim());
            if !b.capabilities.is_empty() {
                let _ = write!(out, " Gives: {}.", b.capabilities.join(", "));
            }
            if !b.instantiable {
                out.push_str(" A shared platform service: it is requested, not instantiated.");
            }
            out.push('\n');
        }
    }
    Reply {
        content: out,
        facts: json!({
            "answer": "catalog",
            "query": query,
            "blocks": blocks.iter().map(|b| &b.id).collect::<Vec<_>>(),
        }),
    }
}

/// A drafted and checked spec change, opened or not.
pub fn proposal(checked: &Checked, opened: Option<&Opened>, refused: Option<&str>) -> Reply {
    let o = &checked.outline;
    let plan = o.plan.as_deref().unwrap_or("(unnamed)");
    let mut out = String::new();
    match (opened, refused) {
        (Some(opened), _) => {
            let _ = writeln!(
                out,
                "Proposed plan `{plan}` ({} planner) on branch `{}` of the spec repo, commit {}.",
                o.planner,
                opened.branch,
                short(&opened.commit)
            );
            if let Some(url) = &opened.url {
                let _ = writeln!(out, "Pull request: {url}");
            }
            let _ = writeln!(
                out,
                "Merging it is the approval; nothing is deployed before that."
            );
        }
        (None, Some(why)) => {
            let _ = writeln!(out, "Not proposed: {why}.");
        }
        (None, None) => {
            let _ = writeln!(out, "Not proposed.");
        }
    }
    list(
        &mut out,
        "Building blocks:",
        o.choices
            .iter()
            .map(|c| format!("`{}`: **{}**, {}", c.component, c.block, c.why)),
    );
    list(&mut out, "Notes:", o.notes.iter().cloned());
    if !o.questions.is_empty() {
        list(&mut out, QUESTIONS, o.questions.iter().cloned());
        let _ = writeln!(
            out,
            "\nAnswer them in your next message, or give `owner`, `environments` and `name` as the request's metadata."
        );
    }
    if !o.files.is_empty() {
        let validation = if checked.valid { "passes" } else { "fails" };
        let _ = write!(
            out,
            "\nChecks: spec validation on {} {validation}",
            short(&checked.base)
        );
        if let Some(s) = &checked.summary {
            let _ = write!(out, "; preview: {}", s.line());
        }
        out.push_str(".\n");
    }
    if !checked.diagnostics.is_empty() {
        out.push_str("\n```text\n");
        for d in &checked.diagnostics {
            out.push_str(d.trim_end());
            out.push('\n');
        }
        out.push_str("```\n");
    }
    list(
        &mut out,
        "Files:",
        o.files.iter().map(|f| format!("`{}`", f.path)),
    );
    Reply {
        content: out,
        facts: json!({
            "answer": "proposal",
            "plan": o.plan,
            "planner": o.planner,
            "opened": opened,
            "refused": refused,
            "choices": o.choices,
            "questions": o.questions,
            "valid": checked.valid,
            "summary": checked.summary,
            "files": o.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
        }),
    }
}

/// A proposal the spec repo already has for the plan.
pub fn exists(plan: &str, branch: &str) -> Reply {
    Reply {
        content: format!(
            "Not proposed: a proposal for plan `{plan}` is open already on branch `{branch}` of the spec repo. Merge or delete it first, or name the plan otherwise (`name` in the request's metadata).\n"
        ),
        facts: json!({"answer": "proposal", "plan": plan, "opened": null, "refused": "exists", "branch": branch}),
    }
}

/// Where `plan` stands (every plan, without one): the daemon's status
/// per environment, what is live and what waits there and why, and the
/// last events of the audit trail.
pub fn status(
    plan: Option<&str>,
    statuses: &[crate::daemon::PlanStatus],
    freight: &[PlanStatus],
    trail: &[Recorded],
    last_error: Option<&str>,
) -> Reply {
    let mut out = String::new();
    let Some(plan) = plan.filter(|p| statuses.iter().any(|s| s.plan == *p)) else {
        if let Some(p) = plan {
            let _ = writeln!(out, "No plan `{p}` is reconciled here.");
        }
        let _ = writeln!(out, "Every plan, per environment:\n");
        for s in statuses {
            let _ = writeln!(out, "- {} in {}: {}", s.plan, s.env, state_line(s));
        }
        if statuses.is_empty() {
            out.push_str("- no plans\n");
        }
        if let Some(e) = last_error {
            let _ = writeln!(out, "\nThe last reconcile failed: {e}");
        }
        return Reply {
            content: out,
            facts: json!({"answer": "status", "plan": null, "statuses": statuses}),
        };
    };
    let found = freight.iter().find(|f| f.plan == plan);
    let _ = writeln!(out, "Plan `{plan}`, environment by environment:\n");
    for s in statuses.iter().filter(|s| s.plan == plan) {
        let _ = write!(out, "- **{}**: {}", s.env, state_line(s));
        if let Some(env) = found.and_then(|f| f.environments.iter().find(|e| e.env == s.env)) {
            let _ = write!(out, "; {}", env_line(env));
        }
        out.push('\n');
    }
    if let Some(f) = found {
        for p in &f.projects {
            let _ = writeln!(
                out,
                "- project repo `{}`: {}; next: {}",
                p.repo,
                live_line(p.live.as_ref()),
                next_line(&p.next)
            );
        }
    }
    let events: Vec<&Recorded> = trail
        .iter()
        .filter(|r| r.event.plans.iter().any(|p| p == plan))
        .collect();
    let recent = &events[events.len().saturating_sub(EVENTS)..];
    if !recent.is_empty() {
        let _ = writeln!(out, "\nThe audit trail's last events for `{plan}`:\n");
        for r in recent {
            let e = &r.event;
            let env = e
                .env
                .as_deref()
                .map(|e| format!(" in {e}"))
                .unwrap_or_default();
            let branch = e
                .branch
                .as_deref()
                .map(|b| format!(", {b}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {} {}{env} ({}{branch}) by {}",
                e.time,
                e.kind.name(),
                e.repo,
                e.actor
            );
        }
    }
    if let Some(e) = last_error {
        let _ = writeln!(out, "\nThe last reconcile failed: {e}");
    }
    Reply {
        content: out,
        facts: json!({
            "answer": "status",
            "plan": plan,
            "statuses": statuses.iter().filter(|s| s.plan == plan).collect::<Vec<_>>(),
            "freight": found,
            "events": recent.iter().map(|r| &r.event).collect::<Vec<_>>(),
        }),
    }
}

fn state_line(s: &crate::daemon::PlanStatus) -> String {
    let state = serde_json::to_value(s.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut line = state;
    if let Some(pull) = &s.pull {
        let _ = write!(line, " (proposal {pull})");
    }
    if let Some(m) = &s.message {
        let _ = write!(line, " — {m}");
    }
    line
}

fn env_line(e: &EnvStatus) -> String {
    format!(
        "{}; next: {}",
        live_line(e.live.as_ref()),
        next_line(&e.next)
    )
}

fn live_line(live: Option<&Freight>) -> String {
    let Some(f) = live else {
        return "nothing live yet".to_owned();
    };
    let mut line = format!("live: freight {}", short(&f.digest));
    if let Some(c) = &f.spec_commit {
        let _ = write!(line, " (spec {})", short(c));
    }
    if let Some(l) = &f.went_live {
        let _ = write!(line, ", {} {} by {}", l.event.name(), l.time, l.by);
    }
    if let Some(from) = &f.promoted_from {
        let _ = write!(line, ", promoted from {from}");
    }
    if let Some(v) = &f.verification {
        let _ = write!(line, ", {} {}", v.event.name(), v.time);
    }
    line
}

/// What waits in a target, and why.
fn next_line(n: &Next) -> String {
    match n {
        Next::UpToDate => "up to date: nothing waits".to_owned(),
        Next::Commit { files } => {
            format!("waiting: a commit of {files} file(s) at the next reconcile")
        }
        Next::Proposed {
            branch,
            already: true,
            ..
        } => format!("waiting for a merge of {branch}: merging it is the approval"),
        Next::Proposed { branch, files, .. } => {
            format!("waiting: the next reconcile proposes {files} file(s) on {branch}")
        }
        Next::Held { branch, by } => format!(
            "held: {by} pushed to {branch}, so druppie leaves it alone; close it to get a fresh proposal"
        ),
        Next::Waiting { on, open: None } => {
            format!("waiting: the change must be live in {on} first (promotion order)")
        }
        Next::Waiting {
            on,
            open: Some(branch),
        } => format!(
            "waiting: the change must be live in {on} first, where {branch} holds an earlier change"
        ),
        Next::Rejected { branch } => {
            format!("rejected: {branch} was closed without merging; not proposed again")
        }
        Next::Nothing { reason } => format!("nothing written: {reason}"),
        Next::Observe { files } => format!("observe only: {files} file(s) differ, never written"),
        Next::Blocked { findings } => {
            format!("blocked: {findings} policy error(s) on its files; nothing is written")
        }
        Next::Unknown => "unknown: the repo could not be read".to_owned(),
    }
}

fn list(out: &mut String, heading: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{heading}\n");
    for i in items {
        let _ = writeln!(out, "- {i}");
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
