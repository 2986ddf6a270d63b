//! The audit page, and the timeline rows the plan page shares: the
//! trail as `druppie audit` reads it, with each signature checked
//! against `[signing] allowed_signers` when it is set.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::page::{Frame, html, short};
use crate::audit::{self, Filter, Kind, Recorded};
use crate::daemon::api::App;
use crate::daemon::auth::{Sight, Viewer};

const KINDS: [Kind; 8] = [
    Kind::Proposed,
    Kind::Approved,
    Kind::Rejected,
    Kind::Violation,
    Kind::Applied,
    Kind::Promoted,
    Kind::Verified,
    Kind::Failed,
];

/// One event, as a timeline row shows it.
#[derive(Debug, Serialize)]
pub(super) struct Line {
    pub event_commit: String,
    pub time: String,
    pub kind: &'static str,
    pub plans: Vec<String>,
    /// `dev → test` for a promotion.
    pub env: String,
    pub repo: String,
    /// The branch, or the commit the event is about.
    pub what: String,
    pub actor: String,
    pub signature: String,
}

impl Line {
    pub fn of(r: &Recorded) -> Line {
        let e = &r.event;
        Line {
            event_commit: r.commit.clone(),
            time: e.time.clone(),
            kind: e.kind.name(),
            plans: e.plans.clone(),
            env: match (&e.from, &e.env) {
                (Some(from), Some(env)) => format!("{from} → {env}"),
                (_, env) => env.clone().unwrap_or_default(),
            },
            repo: e.repo.clone(),
            what: e
                .branch
                .clone()
                .or_else(|| e.commit.as_deref().map(short))
                .unwrap_or_default(),
            actor: e.actor.clone(),
            signature: r.signature.clone(),
        }
    }
}

/// The whole trail, oldest first, off the async workers.
///
/// # Errors
/// The spec root is not in a git repository, or the trail cannot be
/// read: the message says which.
pub(super) async fn trail(app: &Arc<App>) -> Result<Vec<Recorded>, String> {
    let _one_at_a_time = app.trail_read.lock().await;
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let repo = crate::git::Repo::discover(&app.spec_root)
            .ok_or_else(|| format!("{} is not in a git repository", app.spec_root.display()))?;
        audit::read_remembering(&repo, app.allowed_signers.as_ref(), &app.verdicts)
            .map_err(|e| crate::error::chain(&e))
    })
    .await
    .map_err(|e| format!("reading the audit trail stopped: {e}"))?
}

/// `?plan=&env=&kind=&since=`; empty means all.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Params {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    env: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
}

#[derive(Debug, Serialize)]
struct AuditPage<'a> {
    filter: &'a Params,
    plans: Vec<String>,
    envs: Vec<String>,
    kinds: Vec<&'static str>,
    error: Option<String>,
    timeline_caption: &'static str,
    timeline: Vec<Line>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
    Query(params): Query<Params>,
) -> Response {
    let (filter, mut error) = filter(&params);
    let mut status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let events = trail(&app).await;
    let view = app.shared.view.lock().expect("view lock");
    let sight = Sight::new(&viewer, &view.plans);
    let plans: Vec<String> = super::visible(&view, &viewer)
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let envs = view.environment_names();
    let timeline = match events {
        Ok(events) => events
            .iter()
            .filter(|r| sight.any(r.event.plans.iter().map(String::as_str)))
            .filter(|r| filter.keeps(r))
            .map(|r| {
                let mut line = Line::of(r);
                line.plans.retain(|p| sight.plan(p));
                line
            })
            .collect(),
        Err(e) => {
            error = Some(e);
            status = StatusCode::INTERNAL_SERVER_ERROR;
            Vec::new()
        }
    };
    drop(sight);
    drop(view);
    let frame = Frame {
        title: "Audit trail",
        nav: "audit",
        viewer: viewer.name(),
    };
    html(
        status,
        "audit.html",
        &frame,
        AuditPage {
            filter: &params,
            plans,
            envs,
            kinds: KINDS.iter().map(|k| k.name()).collect(),
            error,
            timeline_caption: "Events, oldest first",
            timeline,
        },
    )
}

/// The filter `params` ask for, and what in them cannot be read.
fn filter(params: &Params) -> (Filter, Option<String>) {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let mut error = None;
    let kind = match params.kind.as_str() {
        "" => None,
        k => {
            let found = KINDS.iter().copied().find(|kind| kind.name() == k);
            if found.is_none() {
                error = Some(format!("no event kind `{k}`"));
            }
            found
        }
    };
    let since = match params.since.trim() {
        "" => None,
        text => match crate::when::since(text, crate::when::Timestamp::now()) {
            Ok(t) => Some(t),
            Err(e) => {
                error = Some(format!("since: {e}"));
                None
            }
        },
    };
    (
        Filter {
            plan: some(&params.plan),
            env: some(&params.env),
            kind,
            since,
        },
        error,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_offered_and_bad_filters_are_named() {
        assert_eq!(KINDS.len(), 8);
        let (f, e) = filter(&Params {
            kind: "approved".into(),
            since: "7d".into(),
            ..Params::default()
        });
        assert_eq!(f.kind, Some(Kind::Approved));
        assert!(f.since.is_some() && e.is_none());
        let (_, e) = filter(&Params {
            kind: "deleted".into(),
            ..Params::default()
        });
        assert_eq!(e.as_deref(), Some("no event kind `deleted`"));
        let (_, e) = filter(&Params {
            since: "yesterday".into(),
            ..Params::default()
        });
        assert!(e.unwrap().starts_with("since: "));
    }
}
