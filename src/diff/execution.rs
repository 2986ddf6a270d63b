//! The ExecutionPlan view of change sets: what `apply` would do, step by
//! step, per target repo and the environment's trust level.

use std::fmt::Write as _;

use serde::Serialize;

use super::report::Summary;
use super::{Action, ChangeSets};
use crate::git::blob_id;
use crate::render::RepoKind;
use crate::spec::model::Trust;

/// What apply would do, step by step.
#[derive(Debug, Serialize)]
pub struct ExecutionPlan {
    /// Stable for the same changes: a digest of every file change.
    pub plan_id: String,
    pub intent: String,
    /// `noop` (nothing to do), `pending`, or `blocked` (policy or read
    /// errors).
    pub status: &'static str,
    pub steps: Vec<Step>,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub step_id: usize,
    /// `create_repo`, `commit` (straight to the default branch),
    /// `pull_request`, or `report` (observe-only environments).
    pub action: &'static str,
    pub params: serde_json::Value,
    pub status: &'static str,
}

impl ExecutionPlan {
    /// What apply would do with `changes`.
    pub fn of(changes: &ChangeSets, summary: &Summary, intent: String) -> ExecutionPlan {
        let blocked = summary.errors > 0;
        let status = if blocked { "blocked" } else { "pending" };
        let mut steps = Vec::new();
        let mut digest = String::new();
        for cs in changes.sets.iter().filter(|cs| !cs.files.is_empty()) {
            for f in &cs.files {
                let new = f.new.as_deref().map(blob_id);
                let _ = writeln!(
                    digest,
                    "{} {:?} {} {:?} {:?}",
                    cs.repo, cs.env, f.path, f.action, new
                );
            }
            let files = cs.files.len();
            let conflicts = cs.count(Action::Conflict);
            let mut params = serde_json::json!({
                "repo": cs.repo,
                "kind": cs.kind,
                "env": cs.env,
                "plans": cs.plans,
                "base": cs.base,
                "files": files,
                "conflicts": conflicts,
            });
            let created = steps.iter().any(|(a, p): &(&str, serde_json::Value)| {
                *a == "create_repo" && p["repo"] == cs.repo
            });
            if !cs.exists && !created {
                steps.push(("create_repo", serde_json::json!({"repo": cs.repo})));
            }
            let action = match (cs.kind, cs.trust) {
                (RepoKind::Infra, Some(Trust::Observe)) => "report",
                (RepoKind::Infra, Some(Trust::Deploy)) if conflicts == 0 => "commit",
                (RepoKind::Project, _) if !cs.exists => "commit",
                _ => "pull_request",
            };
            let head = match (&cs.env, cs.plans.as_slice()) {
                (Some(env), _) => format!("druppie/{env}"),
                (None, [plan, ..]) => format!("druppie/{plan}"),
                (None, []) => "druppie/update".to_owned(),
            };
            params["branch"] = serde_json::json!(if action == "pull_request" {
                head
            } else {
                cs.branch.clone()
            });
            steps.push((action, params));
        }
        let status = if steps.is_empty() && !blocked {
            "noop"
        } else {
            status
        };
        ExecutionPlan {
            plan_id: blob_id(digest.as_bytes()).to_string()[..16].to_owned(),
            intent,
            status,
            steps: steps
                .into_iter()
                .enumerate()
                .map(|(i, (action, params))| Step {
                    step_id: i + 1,
                    action,
                    params,
                    status: if blocked { "blocked" } else { "pending" },
                })
                .collect(),
        }
    }
}
