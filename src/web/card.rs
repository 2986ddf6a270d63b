//! Approval cards: each open proposal of a plan, from the dry run the
//! last reconcile kept (`/api/v1/diff`'s document, read here as its
//! client reads it), with the approvals the trail records for it.

use serde::{Deserialize, Serialize};

use super::board::Pull;
use crate::audit::{Kind, Recorded};
use crate::daemon::state::View;

/// What a card shows.
#[derive(Debug, Serialize)]
pub(super) struct Card {
    /// Its position on the page, for the ids of its parts.
    pub index: usize,
    pub title: String,
    pub env: Option<String>,
    pub repo: String,
    pub branch: String,
    pub into: String,
    /// Where it stands, in words.
    pub status: String,
    pub pull: Option<Pull>,
    pub summary: String,
    /// Who must approve (the environment's `approvers`).
    pub approvers: Vec<String>,
    /// Who approved it, from the trail.
    pub approved_by: Vec<String>,
    pub findings: Vec<Finding>,
    pub files: Vec<FileChange>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Finding {
    policy: String,
    severity: String,
    repo: String,
    #[serde(default)]
    env: Option<String>,
    path: String,
    message: String,
}

#[derive(Debug, Serialize)]
pub(super) struct FileChange {
    path: String,
    action: String,
    added: usize,
    removed: usize,
    /// The unified diff, secrets masked as the dry run masks them.
    diff: String,
}

/// The parts of the dry-run document the cards read.
#[derive(Debug, Deserialize)]
struct DryRun {
    #[serde(default)]
    changes: Vec<Set>,
    #[serde(default)]
    findings: Vec<Finding>,
    execution_plan: Plan,
}

#[derive(Debug, Deserialize)]
struct Set {
    repo: String,
    env: Option<String>,
    plans: Vec<String>,
    files: Vec<File>,
}

#[derive(Debug, Deserialize)]
struct File {
    path: String,
    action: String,
    #[serde(default)]
    diff: String,
}

#[derive(Debug, Deserialize)]
struct Plan {
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
struct Step {
    action: String,
    params: serde_json::Value,
    status: String,
}

#[derive(Debug, Deserialize)]
struct Proposal {
    repo: String,
    env: Option<String>,
    plans: Vec<String>,
    branch: String,
    #[serde(default)]
    into: String,
    #[serde(default)]
    title: String,
    files: usize,
    conflicts: usize,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    promoted_from: Option<String>,
    /// A held proposal: who wrote its tip.
    #[serde(default)]
    edited_by: Option<String>,
}

/// The open proposals of `plan` (pull requests to open or waiting for a
/// merge, and proposals a person took over), with `trail` for who
/// approved them.
pub(super) fn cards(view: &View, plan: &str, trail: &[Recorded]) -> Vec<Card> {
    let Some(dry) = view.diff.as_ref().and_then(|d| DryRun::deserialize(d).ok()) else {
        return Vec::new();
    };
    dry.execution_plan
        .steps
        .iter()
        .filter(|s| s.action == "pull_request" || s.action == "comment")
        .filter_map(|s| Some((s, Proposal::deserialize(&s.params).ok()?)))
        .filter(|(_, p)| p.plans.iter().any(|n| n == plan))
        .enumerate()
        .map(|(index, (step, p))| {
            let set = dry
                .changes
                .iter()
                .find(|c| c.repo == p.repo && c.env == p.env && c.plans == p.plans);
            let files = set
                .map(|s| s.files.iter().map(FileChange::of).collect())
                .unwrap_or_default();
            Card {
                index: index + 1,
                title: if p.title.is_empty() {
                    format!("{} on {}", p.plans.join(", "), p.branch)
                } else {
                    p.title.clone()
                },
                status: status(step, &p, view, plan),
                pull: super::plan::pull(view, plan, p.env.as_deref()),
                summary: summary(&p),
                approvers: p
                    .env
                    .as_ref()
                    .and_then(|e| view.environments.iter().find(|x| &x.name == e))
                    .map(|e| e.approvers.clone())
                    .unwrap_or_default(),
                approved_by: approved_by(trail, &p),
                findings: dry
                    .findings
                    .iter()
                    .filter(|f| f.repo == p.repo && f.env == p.env)
                    .map(|f| Finding {
                        policy: f.policy.clone(),
                        severity: f.severity.clone(),
                        repo: f.repo.clone(),
                        env: f.env.clone(),
                        path: f.path.clone(),
                        message: f.message.clone(),
                    })
                    .collect(),
                files,
                env: p.env.clone(),
                repo: p.repo.clone(),
                branch: p.branch.clone(),
                into: p.into.clone(),
            }
        })
        .collect()
}

/// Where the proposal stands: the dry run was computed before the
/// reconcile wrote, so a proposal the reconcile opened is open now when
/// the plan's status names it.
fn status(step: &Step, p: &Proposal, view: &View, plan: &str) -> String {
    let opened = super::plan::pull(view, plan, p.env.as_deref()).is_some();
    match (
        &p.edited_by,
        step.status.as_str() == "proposed" || opened,
        p.draft,
    ) {
        (Some(by), _, _) => format!("taken over: {by} pushed to it, so druppie leaves it"),
        (None, true, true) => "a draft waiting for its conflicts to be resolved".to_owned(),
        (None, true, false) => "waiting for approval: merging it approves".to_owned(),
        (None, false, true) => {
            "opened as a draft by the next apply: it carries conflicts".to_owned()
        }
        (None, false, false) => "opened or updated by the next apply".to_owned(),
    }
}

fn summary(p: &Proposal) -> String {
    let mut text = format!("{} file(s) change", p.files);
    if p.conflicts > 0 {
        text.push_str(&format!(", {} with conflicts to resolve", p.conflicts));
    }
    if let Some(from) = &p.promoted_from {
        text.push_str(&format!("; merging it promotes what is live in {from}"));
    }
    text
}

/// Who approved the proposal on `p.branch`: the approvals the trail
/// records for that branch after it was last proposed.
fn approved_by(trail: &[Recorded], p: &Proposal) -> Vec<String> {
    let mut actors = Vec::new();
    for r in trail {
        let e = &r.event;
        if e.repo != p.repo || e.env != p.env || e.branch.as_deref() != Some(p.branch.as_str()) {
            continue;
        }
        match e.kind {
            Kind::Proposed => actors.clear(),
            Kind::Approved if !actors.contains(&e.actor) => actors.push(e.actor.clone()),
            _ => {}
        }
    }
    actors
}

impl FileChange {
    fn of(f: &File) -> FileChange {
        let (mut added, mut removed) = (0, 0);
        // The `---`/`+++` header comes before the first hunk; inside
        // one, a removed `---` line is `----`.
        for line in f.diff.lines().skip_while(|l| !l.starts_with("@@")) {
            if line.starts_with('+') {
                added += 1;
            } else if line.starts_with('-') {
                removed += 1;
            }
        }
        FileChange {
            path: f.path.clone(),
            action: f.action.clone(),
            added,
            removed,
            diff: f.diff.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diffstat_counts_changed_lines_not_headers() {
        let f = File {
            path: "a.yaml".into(),
            action: "modify".into(),
            diff: "--- a/a.yaml\n+++ b/a.yaml\n@@ -1,2 +1,2 @@\n-replicas: 1\n+replicas: 3\n+image: x\n keep\n-----\n".into(),
        };
        let c = FileChange::of(&f);
        assert_eq!((c.added, c.removed), (2, 2));
    }
}
