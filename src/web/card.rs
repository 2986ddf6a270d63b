//! Approval cards: each open proposal of a plan, from the dry run the
//! last reconcile kept (`/api/v1/diff`'s document, read here as its
//! client reads it), with the approvals the trail records for it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::board::Pull;
use crate::audit::{Kind, Recorded};
use crate::daemon::state::View;

/// What a card shows.
#[derive(Debug, Serialize)]
pub(super) struct Card {
    /// Its position on the page, for the ids of its parts.
    pub index: usize,
    /// The plans its change holds.
    #[serde(skip)]
    pub plans: Vec<String>,
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

/// A change set of the dry run, read only when a card shows it.
#[derive(Debug, Deserialize)]
struct Set {
    files: Vec<File>,
}

#[derive(Debug, Deserialize)]
struct File {
    path: String,
    action: String,
    #[serde(default)]
    diff: String,
}

/// A step's `{action, params, status}`.
#[derive(Debug, Deserialize)]
struct Step {
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
/// merge, and proposals a person took over), read from `dry`, the last
/// dry run's JSON, with `trail` for who approved them.
pub(super) fn cards(view: &View, dry: Option<&Value>, plan: &str, trail: &[Recorded]) -> Vec<Card> {
    // The dry run can hold every file of a first apply: only the steps
    // and change sets of this plan's proposals are read out of it.
    let Some(dry) = dry else {
        return Vec::new();
    };
    let list = |key: &str| {
        dry.get(key)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
    };
    let steps = dry
        .pointer("/execution_plan/steps")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    steps
        .iter()
        .filter(|s| s["action"] == "pull_request" || s["action"] == "comment")
        .filter(|s| mentions(&s["params"], plan))
        .filter_map(|s| {
            Some((
                Step::deserialize(s).ok()?,
                Proposal::deserialize(&s["params"]).ok()?,
            ))
        })
        .enumerate()
        .map(|(index, (step, p))| {
            let same =
                |v: &Value| v["repo"] == p.repo.as_str() && v["env"].as_str() == p.env.as_deref();
            let files = list("changes")
                .iter()
                .find(|c| same(c) && c["plans"] == serde_json::json!(p.plans))
                .and_then(|c| Set::deserialize(c).ok())
                .map(|s| s.files.iter().map(FileChange::of).collect())
                .unwrap_or_default();
            Card {
                index: index + 1,
                title: if p.title.is_empty() {
                    format!("{} on {}", p.plans.join(", "), p.branch)
                } else {
                    p.title.clone()
                },
                status: status(&step, &p, view, plan),
                pull: super::plan::pull(view, plan, p.env.as_deref()),
                summary: summary(&p),
                approvers: p
                    .env
                    .as_ref()
                    .and_then(|e| view.environments.iter().find(|x| &x.name == e))
                    .map(|e| e.approvers.clone())
                    .unwrap_or_default(),
                approved_by: approved_by(trail, &p),
                findings: list("findings")
                    .iter()
                    .filter(|f| same(f))
                    .filter_map(|f| Finding::deserialize(f).ok())
                    .collect(),
                files,
                env: p.env.clone(),
                repo: p.repo.clone(),
                branch: p.branch.clone(),
                into: p.into.clone(),
                plans: p.plans.clone(),
            }
        })
        .collect()
}

/// Whether a step's params name `plan` among its plans.
fn mentions(params: &Value, plan: &str) -> bool {
    params["plans"]
        .as_array()
        .is_some_and(|plans| plans.iter().any(|p| p == plan))
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
    use crate::daemon::dry_run::DryRun;
    use crate::daemon::state::{EnvInfo, PlanInfo, PlanState, PlanStatus};
    use serde_json::json;

    fn cards(view: &View, plan: &str, trail: &[Recorded]) -> Vec<Card> {
        let dry = view.diff.as_deref().map(DryRun::json);
        super::cards(view, dry, plan, trail)
    }

    /// A dry run with a proposal for each of two plans in prod, and a
    /// commit in dev.
    fn view() -> View {
        let proposal = |plan: &str| {
            json!({"step_id": 1, "action": "pull_request", "status": "pending", "params": {
                "repo": "infra", "kind": "infra", "env": "prod", "plans": [plan],
                "branch": format!("druppie/prod/{plan}"), "base": null, "files": 1, "conflicts": 0,
                "id": "p1", "into": "main", "title": format!("druppie: {plan} in prod"),
                "draft": false, "already": false, "conflicted": []}})
        };
        let set = |plan: &str, env: &str| {
            json!({"repo": "infra", "kind": "infra", "env": env, "plans": [plan], "base": null,
                "render_digest": "d", "notes": [], "files": [{"path": format!("apps/{env}/{plan}/app.yaml"),
                "action": "modify", "diff": "--- a\n+++ b\n@@ -1 +1 @@\n-replicas: 1\n+replicas: 2\n"}]})
        };
        View {
            plans: vec![PlanInfo {
                name: "permits".into(),
                stack: "webapp-db".into(),
                owner: "team-permits".into(),
                intent: None,
                environments: vec!["dev".into(), "prod".into()],
            }],
            environments: vec![EnvInfo {
                name: "prod".into(),
                trust: crate::spec::model::Trust::Propose,
                approvers: vec!["platform-team".into()],
            }],
            statuses: vec![PlanStatus {
                plan: "permits".into(),
                env: "prod".into(),
                state: PlanState::PendingApproval,
                spec_commit: None,
                pull: Some("https://forge.example.org/platform/infra/pulls/3".into()),
                message: None,
                cluster: None,
            }],
            diff: Some(std::sync::Arc::new(DryRun::shown(json!({
                "changes": [set("meters", "prod"), set("permits", "dev"), set("permits", "prod")],
                "findings": [
                    {"policy": "replicas", "severity": "warning", "repo": "infra", "env": "prod",
                     "path": "apps/prod/permits/app.yaml", "document": 1, "line": null, "object": null,
                     "message": "two replicas"},
                    {"policy": "replicas", "severity": "error", "repo": "infra", "env": "dev",
                     "path": "apps/dev/permits/app.yaml", "document": 1, "line": null, "object": null,
                     "message": "not this card's"}],
                "summary": {},
                "execution_plan": {"plan_id": "x", "intent": "i", "status": "pending",
                    "steps": [proposal("meters"), proposal("permits")]},
            })))),
            ..View::default()
        }
    }

    #[test]
    fn a_plans_card_holds_its_own_proposal_files_and_findings() {
        let shown = cards(&view(), "permits", &[]);
        assert_eq!(shown.len(), 1);
        let c = &shown[0];
        assert_eq!(c.branch, "druppie/prod/permits");
        assert_eq!(c.approvers, ["platform-team"]);
        assert!(c.status.starts_with("waiting for approval"), "{}", c.status);
        assert_eq!(
            c.pull.as_ref().and_then(|p| p.href.as_deref()),
            Some("https://forge.example.org/platform/infra/pulls/3")
        );
        assert_eq!(c.files.len(), 1);
        assert_eq!(c.files[0].path, "apps/prod/permits/app.yaml");
        assert_eq!((c.files[0].added, c.files[0].removed), (1, 1));
        assert_eq!(c.findings.len(), 1);
        assert_eq!(c.findings[0].message, "two replicas");
        // A plan with no proposal has no card.
        assert!(cards(&view(), "ledger", &[]).is_empty());
    }

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
