//! The audit tool: the trail of the spec repo, as `druppie audit --json`
//! and `GET /api/v1/audit` read it (every event, signatures unchecked),
//! filtered by plan, environment and time.

use serde_json::{Value, json};

use super::source::{Source, SourceError};
use crate::when::Timestamp;

/// The events of the trail that `plan`, `env` and `since` keep, the
/// latest `limit` of them. An event whose time cannot be read is kept:
/// a filter must not hide what it cannot judge.
///
/// # Errors
/// The spec root is not in a git repository, the trail cannot be read,
/// or `plan` or `env` names nothing the trail or the spec knows.
pub fn timeline(
    source: &dyn Source,
    plan: Option<&str>,
    env: Option<&str>,
    since: Option<Timestamp>,
    limit: usize,
) -> Result<Value, SourceError> {
    let root = source.spec_root();
    let repo = crate::git::Repo::discover(root).ok_or_else(|| {
        SourceError::Input(format!(
            "{} is not in a git repository, so it has no audit trail",
            root.display()
        ))
    })?;
    let events = crate::audit::read(&repo, None).map_err(|e| SourceError::Failed {
        what: "the audit trail cannot be read".to_owned(),
        source: Box::new(e),
    })?;
    if let Some(plan) = plan {
        let mut known: Vec<String> = events
            .iter()
            .flat_map(|r| r.event.plans.iter().cloned())
            .collect();
        if let Ok(catalog) = source.catalog() {
            known.extend(catalog.plans.into_iter().map(|p| p.name));
        }
        known.sort();
        known.dedup();
        if !known.iter().any(|k| k == plan) {
            return Err(super::tools::unknown(
                "plan",
                plan,
                known.iter().map(String::as_str),
            ));
        }
    }
    if let Some(env) = env {
        let mut known: Vec<String> = events.iter().filter_map(|r| r.event.env.clone()).collect();
        known.extend(source.environments());
        known.sort();
        known.dedup();
        if !known.iter().any(|k| k == env) {
            return Err(super::tools::unknown(
                "environment",
                env,
                known.iter().map(String::as_str),
            ));
        }
    }
    let shown: Vec<&crate::audit::Recorded> = events
        .iter()
        .filter(|r| plan.is_none_or(|p| r.event.plans.iter().any(|x| x == p)))
        .filter(|r| env.is_none_or(|e| r.event.env.as_deref() == Some(e)))
        .filter(|r| {
            since.is_none_or(|t| {
                r.event.instant().is_ok_and(|i| i >= t) || r.event.instant().is_err()
            })
        })
        .collect();
    let total = shown.len();
    let latest = &shown[total.saturating_sub(limit)..];
    Ok(json!({ "events": latest, "total": total }))
}
