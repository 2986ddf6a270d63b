//! The approval card: what a reviewer reads before merging a proposal —
//! the request, the blocks chosen and why, the notes and open questions,
//! validation and policy findings, what merging does, and the files.

use std::fmt::Write as _;

use super::Checked;
use crate::diff::report::{self, Mask};

/// The card as Markdown, at most about `limit` bytes (the preview is
/// cut first).
pub fn markdown(checked: &Checked, limit: usize) -> String {
    let o = &checked.outline;
    let mut out = String::new();
    let plan = o.plan.as_deref().unwrap_or("(unnamed)");
    let _ = writeln!(
        out,
        "**druppie planner** ({}) proposes plan `{plan}`\n",
        o.planner
    );
    let _ = writeln!(out, "Request:\n");
    for line in o
        .draft
        .as_ref()
        .map(|d| d.plan.intent.as_str())
        .unwrap_or_default()
        .lines()
    {
        let _ = writeln!(out, "> {line}");
    }
    if !o.choices.is_empty() {
        let _ = writeln!(out, "\n### Building blocks\n");
        for c in &o.choices {
            let _ = writeln!(out, "- `{}`: **{}**, {}", c.component, c.block, c.why);
        }
    }
    list(&mut out, "Notes", &o.notes);
    list(&mut out, "Open questions", &o.questions);
    let _ = writeln!(out, "\n### Checks\n");
    let _ = writeln!(
        out,
        "- spec validation on {}: {}",
        short(&checked.base),
        if checked.valid { "passes" } else { "fails" }
    );
    if let Some(s) = &checked.summary {
        let _ = writeln!(out, "- preview: {}", s.line());
    }
    if let Some(changes) = &checked.changes {
        for cs in changes.shown() {
            for f in &cs.findings {
                let _ = writeln!(
                    out,
                    "- {:?} `{}` on {}:{}: {}",
                    f.severity, f.policy, f.repo, f.path, f.message
                );
            }
        }
    }
    if !checked.diagnostics.is_empty() {
        let _ = writeln!(out, "\n```text");
        for d in &checked.diagnostics {
            out.push_str(d);
        }
        let _ = writeln!(out, "```");
    }
    if let Some(plan) = &checked.execution_plan {
        let _ = writeln!(out, "\n### What merging does\n");
        for step in &plan.steps {
            let _ = writeln!(out, "- {}", step_line(step));
        }
    }
    let _ = writeln!(out, "\n### Files\n");
    for f in &o.files {
        let _ = writeln!(out, "`{}`:\n\n```yaml\n{}```\n", f.path, f.text);
    }
    if let Some(changes) = &checked.changes {
        let mask = Mask::new(changes.secrets.iter().cloned());
        let room = limit.saturating_sub(out.len());
        if room > 400 {
            out.push('\n');
            out.push_str(&report::comment("### Preview", changes, &mask, room));
        }
    }
    out
}

fn list(out: &mut String, heading: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### {heading}\n");
    for i in items {
        let _ = writeln!(out, "- {i}");
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// One step of the ExecutionPlan, as a line.
fn step_line(step: &crate::execution::Step) -> String {
    let json = serde_json::to_value(step).unwrap_or_default();
    let action = json["action"].as_str().unwrap_or("?").replace('_', " ");
    let params = &json["params"];
    let repo = params["repo"].as_str().unwrap_or("");
    let env = params["env"]
        .as_str()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    let files = params["files"]
        .as_u64()
        .map(|n| format!(", {n} files"))
        .unwrap_or_default();
    let reason = params["reason"]
        .as_str()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    format!("{action} `{repo}`{env}{files}{reason}")
}
