//! What a viewer is shown of the answers that name plans: the dry run,
//! the audit trail and the event stream, each cut down by [`Sight`].
//!
//! An event or audit entry about several plans is shown when the viewer
//! sees one of them, naming only those it sees. A change set or step of
//! the dry run is shown only when the viewer sees every plan in it: its
//! files are the other plans' too (an environment's shared commit).

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{Sight, Viewer};
use crate::daemon::journal::Stamped;
use crate::daemon::state::{Event, Shared};

/// The plan names of a JSON value's `plans` array.
fn plans(v: &Value) -> impl Iterator<Item = &str> {
    v.get("plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Keeps only the names in `plans` the viewer sees.
fn narrow(sight: &Sight<'_>, v: &mut Value) {
    if let Some(list) = v.get_mut("plans").and_then(Value::as_array_mut) {
        list.retain(|p| p.as_str().is_some_and(|p| sight.plan(p)));
    }
}

/// The audit trail (`druppie audit --json`) as the viewer is shown it.
pub fn shown_audit(sight: &Sight<'_>, mut trail: Value) -> Value {
    if sight.everything() {
        return trail;
    }
    if let Some(events) = trail.as_array_mut() {
        events.retain(|e| plans(e).any(|p| sight.plan(p)));
        events.iter_mut().for_each(|e| narrow(sight, e));
    }
    trail
}

/// The dry run (`druppie diff --json`) as the viewer is shown it: its
/// change sets and steps of plans it sees, the findings on those sets,
/// and the summary counted again over what is left.
pub fn shown_diff(sight: &Sight<'_>, mut diff: Value) -> Value {
    if sight.everything() {
        return diff;
    }
    let whole = |v: &Value| v.get("plans").is_some() && sight.all(plans(v));
    let mut targets = Vec::new();
    if let Some(changes) = diff.get_mut("changes").and_then(Value::as_array_mut) {
        changes.retain(whole);
        targets = changes
            .iter()
            .map(|c| (c["repo"].clone(), c["env"].clone()))
            .collect();
    }
    if let Some(findings) = diff.get_mut("findings").and_then(Value::as_array_mut) {
        findings.retain(|f| {
            let env = f.get("env").cloned().unwrap_or(Value::Null);
            targets.contains(&(f["repo"].clone(), env))
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(plan) = diff.get_mut("execution_plan") {
        if let Some(steps) = plan.get_mut("steps").and_then(Value::as_array_mut) {
            steps.retain(|s| s.get("params").is_some_and(whole));
            for s in steps.iter() {
                seen.extend(plans(&s["params"]).map(str::to_owned));
            }
        }
        if let Some(intent) = plan.get_mut("intent") {
            let names: Vec<String> = seen.into_iter().collect();
            *intent = Value::String(format!(
                "bring the plans you see in line with the spec: {}",
                names.join(", ")
            ));
        }
    }
    let summary = summary(&diff);
    if let Some(s) = diff.get_mut("summary") {
        *s = summary;
    }
    diff
}

/// The summary counted over the change sets and findings left.
fn summary(diff: &Value) -> Value {
    let mut count = serde_json::Map::new();
    let mut repos = 0;
    for action in ["create", "modify", "delete", "conflict", "drift"] {
        count.insert(action.into(), 0.into());
    }
    for change in diff["changes"].as_array().into_iter().flatten() {
        let files = change["files"].as_array().map_or(&[][..], Vec::as_slice);
        if !files.is_empty() {
            repos += 1;
        }
        for f in files {
            if let Some(n) = f["action"].as_str().and_then(|a| count.get_mut(a)) {
                *n = (n.as_u64().unwrap_or(0) + 1).into();
            }
        }
    }
    let findings = diff["findings"].as_array().map_or(&[][..], Vec::as_slice);
    let severity = |s: &str| findings.iter().filter(|f| f["severity"] == s).count();
    count.insert("repos".into(), repos.into());
    count.insert("errors".into(), severity("error").into());
    count.insert("warnings".into(), severity("warning").into());
    Value::Object(count)
}

/// The plans an event is about; none for a reconcile starting or ending.
fn event_plans(event: &mut Event) -> Option<&mut Vec<String>> {
    match event {
        Event::ChangeApplied { plans, .. }
        | Event::PrOpened { plans, .. }
        | Event::ApprovalRecorded { plans, .. }
        | Event::PromotionRecorded { plans, .. } => Some(plans),
        Event::Verification { .. }
        | Event::VerificationRecorded { .. }
        | Event::Promotion { .. }
        | Event::ReconcileStarted { .. }
        | Event::ReconcileFinished { .. } => None,
    }
}

/// The one plan an event is about, for those about one.
fn event_plan(event: &Event) -> Option<&str> {
    match event {
        Event::Verification { plan, .. }
        | Event::VerificationRecorded { plan, .. }
        | Event::Promotion { plan, .. } => Some(plan),
        _ => None,
    }
}

/// The event stream as one viewer is shown it: an event about plans
/// none of which it sees is skipped; one about no plan is sent. Events
/// replayed to a client that resumes go through [`Events::shown`] too.
pub struct Events {
    rx: broadcast::Receiver<Arc<Stamped>>,
    shared: Arc<Shared>,
    viewer: Viewer,
}

impl Events {
    pub fn new(
        rx: broadcast::Receiver<Arc<Stamped>>,
        shared: &Arc<Shared>,
        viewer: Viewer,
    ) -> Events {
        Events {
            rx,
            shared: shared.clone(),
            viewer,
        }
    }

    /// The next event shown, as [`broadcast::Receiver::recv`].
    ///
    /// # Errors
    /// As [`broadcast::Receiver::recv`].
    pub async fn recv(&mut self) -> Result<Arc<Stamped>, RecvError> {
        loop {
            let event = self.rx.recv().await?;
            if let Some(shown) = self.shown(&event) {
                return Ok(shown);
            }
        }
    }

    /// `stamped` as this viewer is shown it (its id kept, its plans
    /// narrowed to those it sees), or `None`.
    pub fn shown(&self, stamped: &Arc<Stamped>) -> Option<Arc<Stamped>> {
        if matches!(self.viewer, Viewer::Everyone) {
            return Some(stamped.clone());
        }
        let mut event = stamped.event.clone();
        let view = self.shared.view.lock().expect("view lock");
        let sight = Sight::new(&self.viewer, &view.plans);
        if let Event::ReconcileFinished { error, .. } = &mut event {
            *error = sight.reconcile_error(error.as_deref());
        }
        if let Some(plan) = event_plan(&event) {
            if !sight.plan(plan) {
                return None;
            }
        } else if let Some(plans) = event_plans(&mut event) {
            if !sight.any(plans.iter().map(String::as_str)) {
                return None;
            }
            plans.retain(|p| sight.plan(p));
        }
        Some(Arc::new(Stamped {
            id: stamped.id,
            time: stamped.time,
            event,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::state::PlanInfo;
    use serde_json::json;

    fn plans() -> Vec<PlanInfo> {
        [("permits", "team-permits"), ("ledger", "team-finance")]
            .into_iter()
            .map(|(name, owner)| PlanInfo {
                name: name.into(),
                stack: "webapp-db".into(),
                owner: owner.into(),
                intent: None,
                environments: vec!["dev".into()],
            })
            .collect()
    }

    fn member() -> Viewer {
        Viewer::Member {
            subject: "ana".into(),
            groups: ["team-permits".to_owned()].into(),
        }
    }

    #[test]
    fn a_group_sees_only_its_plans_and_an_unknown_plan_is_not_seen() {
        let plans = plans();
        let viewer = member();
        let sight = Sight::new(&viewer, &plans);
        assert!(sight.plan("permits"));
        assert!(!sight.plan("ledger"));
        assert!(!sight.plan("gone"));
        assert!(sight.any([]), "about no plan: shown");
        assert!(sight.any(["ledger", "permits"]));
        assert!(!sight.all(["ledger", "permits"].into_iter()));
        let everyone = Viewer::Everyone;
        assert!(Sight::new(&everyone, &plans).plan("gone"));
    }

    #[test]
    fn the_trail_shows_a_member_its_plans_events_naming_only_its_plans() {
        let plans = plans();
        let viewer = member();
        let trail = json!([
            {"kind": "applied", "plans": ["ledger"]},
            {"kind": "applied", "plans": ["ledger", "permits"]},
            {"kind": "proposed", "plans": ["permits"]},
        ]);
        let shown = shown_audit(&Sight::new(&viewer, &plans), trail);
        assert_eq!(
            shown,
            json!([
                {"kind": "applied", "plans": ["permits"]},
                {"kind": "proposed", "plans": ["permits"]},
            ])
        );
    }

    #[test]
    fn the_dry_run_shows_a_member_only_sets_and_steps_of_its_plans() {
        let plans = plans();
        let viewer = member();
        let diff = json!({
            "changes": [
                {"repo": "permits-app", "env": null, "plans": ["permits"], "files": [{"action": "create"}, {"action": "modify"}]},
                {"repo": "ledger-app", "env": null, "plans": ["ledger"], "files": [{"action": "create"}]},
                {"repo": "infra", "env": "dev", "plans": ["ledger", "permits"], "files": [{"action": "create"}]},
            ],
            "findings": [
                {"repo": "permits-app", "severity": "warning"},
                {"repo": "infra", "env": "dev", "severity": "error"},
            ],
            "summary": {"repos": 3},
            "execution_plan": {"intent": "bring 2 plans in line with the spec: ledger, permits", "steps": [
                {"action": "commit", "params": {"repo": "permits-app", "plans": ["permits"]}},
                {"action": "commit", "params": {"repo": "infra", "plans": ["ledger", "permits"]}},
                {"action": "create_repo", "params": {"repo": "ledger-app"}},
            ]},
        });
        let shown = shown_diff(&Sight::new(&viewer, &plans), diff);
        let text = shown.to_string();
        assert!(!text.contains("ledger"), "{text}");
        assert_eq!(shown["changes"].as_array().map(Vec::len), Some(1));
        assert_eq!(shown["findings"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            shown["execution_plan"]["steps"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(
            shown["summary"],
            json!({"repos": 1, "create": 1, "modify": 1, "delete": 0, "conflict": 0, "drift": 0, "errors": 0, "warnings": 1})
        );
    }

    #[tokio::test]
    async fn the_stream_skips_events_about_unseen_plans_only() {
        let shared = Arc::new(Shared::new());
        shared.view.lock().expect("view").plans = plans();
        let mut events = Events::new(shared.events.subscribe(), &shared, member());
        let applied = |plans: &[&str]| Event::ChangeApplied {
            id: "r1".into(),
            repo: "infra".into(),
            env: Some("dev".into()),
            plans: plans.iter().map(|p| (*p).to_owned()).collect(),
            commit: "c".into(),
        };
        shared.emit(applied(&["ledger"]));
        shared.emit(Event::Verification {
            id: "r1".into(),
            plan: "ledger".into(),
            env: "dev".into(),
            url: "http://x".into(),
            result: "ok".into(),
        });
        shared.emit(applied(&["ledger", "permits"]));
        shared.emit(Event::ReconcileStarted {
            id: "r2".into(),
            trigger: "poll".into(),
        });
        match &events.recv().await.expect("an event").event {
            Event::ChangeApplied { plans, .. } => assert_eq!(plans, &["permits"]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            events.recv().await.expect("an event").event,
            Event::ReconcileStarted { .. }
        ));
    }
}
