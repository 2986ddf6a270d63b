//! A plan's page: its components, each environment's live and pending
//! state, its open proposals as approval cards, and its timeline.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::audit::{Line, trail};
use super::board::{Pull, cell};
use super::card::{Card, cards};
use super::page::{Frame, href, html, missing, short};
use crate::daemon::api::App;
use crate::daemon::auth::{Sight, Viewer};
use crate::daemon::dry_run::DryRun;
use crate::daemon::state::View;
use crate::status::{EnvStatus, Next};

#[derive(Debug, Serialize)]
struct PlanPage {
    name: String,
    owner: String,
    stack: String,
    intent: Option<String>,
    envs: Vec<EnvRow>,
    components: Vec<ComponentRow>,
    proposals: Vec<Card>,
    timeline_caption: &'static str,
    timeline: Vec<Line>,
    timeline_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct EnvRow {
    env: String,
    trust: String,
    state: String,
    class: &'static str,
    message: Option<String>,
    live: Option<Live>,
    next: String,
}

#[derive(Debug, Serialize)]
struct Live {
    commit: String,
    /// `applied by druppie at …`, `approved by Ana at …`.
    how: Option<String>,
    /// The environment it was promoted from.
    promoted_from: Option<String>,
    verification: Option<String>,
}

#[derive(Debug, Serialize)]
struct ComponentRow {
    name: String,
    block: String,
    /// `1.2.0`, or `1.2.0 (dev), 1.3.0 (prod)` while a version moves.
    versions: String,
    repo: String,
    urls: Vec<Address>,
}

#[derive(Debug, Serialize)]
struct Address {
    env: String,
    url: String,
    href: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    let known = {
        let view = app.shared.view.lock().expect("view lock");
        super::visible(&view, &viewer)
            .iter()
            .any(|p| p.name == name)
    };
    // A plan this viewer does not see answers as one that does not exist.
    if !known {
        return missing(&format!("There is no plan `{name}`."), viewer.name());
    }
    let (timeline, timeline_error) = match trail(&app).await {
        Ok(events) => (
            events
                .into_iter()
                .filter(|r| r.event.plans.contains(&name))
                .collect::<Vec<_>>(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e)),
    };
    // The last dry run's JSON, made off the view's lock.
    let dry = app.shared.view.lock().expect("view lock").diff.clone();
    let dry = match dry {
        Some(dry) => crate::daemon::dry_run::made(dry).await,
        None => None,
    };
    let page = {
        let view = app.shared.view.lock().expect("view lock");
        let Some(plan) = view.plans.iter().find(|p| p.name == name) else {
            return missing(&format!("There is no plan `{name}`."), viewer.name());
        };
        let sight = Sight::new(&viewer, &view.plans);
        PlanPage {
            name: plan.name.clone(),
            owner: plan.owner.clone(),
            stack: plan.stack.clone(),
            intent: plan.intent.clone(),
            envs: envs(&view, &sight, &plan.name, &plan.environments),
            components: components(&view, &plan.name),
            // A card shows its change's files: only when every plan in
            // it is the viewer's, as `/api/v1/diff` shows a change set.
            proposals: cards(
                &view,
                dry.as_deref().map(DryRun::json),
                &plan.name,
                &timeline,
            )
            .into_iter()
            .filter(|c| sight.all(c.plans.iter().map(String::as_str)))
            .collect(),
            timeline_caption: "Events about this plan, oldest first, as druppie audit --plan shows them",
            timeline: timeline
                .iter()
                .map(|r| {
                    let mut line = Line::of(r);
                    line.plans.retain(|p| sight.plan(p));
                    line
                })
                .collect(),
            timeline_error,
        }
    };
    let title = format!("Plan {name}");
    let frame = Frame {
        title: &title,
        nav: "board",
        viewer: viewer.name(),
    };
    html(StatusCode::OK, "plan.html", &frame, page)
}

fn envs(view: &View, sight: &Sight<'_>, plan: &str, own: &[String]) -> Vec<EnvRow> {
    let freight = view.freight.iter().find(|p| p.plan == plan);
    view.environment_names()
        .into_iter()
        .filter(|e| own.contains(e))
        .map(|env| {
            let c = cell(view, sight, plan, &env);
            let status = freight.and_then(|f| f.environments.iter().find(|e| e.env == env));
            EnvRow {
                trust: view
                    .environments
                    .iter()
                    .find(|e| e.name == env)
                    .map(|e| e.trust.name().to_owned())
                    .unwrap_or_default(),
                state: c.state,
                class: c.class,
                message: c.message,
                live: status.and_then(live),
                next: status.map_or_else(|| "not read yet".to_owned(), |s| next(&s.next)),
                env,
            }
        })
        .collect()
}

fn live(status: &EnvStatus) -> Option<Live> {
    let l = status.live.as_ref()?;
    Some(Live {
        commit: l
            .spec_commit
            .as_deref()
            .map_or_else(|| "unknown".to_owned(), short),
        how: l
            .went_live
            .as_ref()
            .map(|w| format!("{} by {} at {}", w.event.name(), w.by, w.time)),
        promoted_from: l.promoted_from.clone(),
        verification: l
            .verification
            .as_ref()
            .map(|v| format!("{} at {}", v.event.name(), v.time)),
    })
}

/// What waits in a target, in words.
fn next(next: &Next) -> String {
    match next {
        Next::UpToDate => "nothing: up to date".to_owned(),
        Next::Commit { files } => format!("a commit of {files} file(s)"),
        Next::Proposed {
            branch,
            already: true,
            ..
        } => format!("waiting for approval on {branch}"),
        Next::Proposed { branch, files, .. } => {
            format!("a proposal of {files} file(s) on {branch}")
        }
        Next::Held { branch, by } => format!("{branch} holds edits by {by}"),
        Next::Waiting { on, open } => match open {
            Some(open) => format!("waits to be live in {on} ({open} still open)"),
            None => format!("waits to be live in {on}"),
        },
        Next::Rejected { branch } => format!("closed without merging ({branch})"),
        Next::Nothing { reason } => format!("nothing: {reason}"),
        Next::Observe { files } => format!("observed only: {files} file(s) differ"),
        Next::Blocked { findings } => format!("blocked by {findings} policy finding(s)"),
        Next::Unknown => "unknown: the target could not be read".to_owned(),
    }
}

/// The plan's components, each once, with their versions and addresses
/// across its environments.
fn components(view: &View, plan: &str) -> Vec<ComponentRow> {
    // (component, block, repo) -> (version -> environments, addresses)
    type Versions = BTreeMap<String, Vec<String>>;
    let mut rows: BTreeMap<(String, String, String), (Versions, Vec<Address>)> = BTreeMap::new();
    for p in view.placements.iter().filter(|p| p.plan == plan) {
        let row = rows
            .entry((p.component.clone(), p.block.clone(), p.repo.clone()))
            .or_default();
        row.0
            .entry(p.version.clone())
            .or_default()
            .push(p.env.clone());
        row.1.extend(p.urls.iter().map(|u| Address {
            env: p.env.clone(),
            url: u.url.clone(),
            href: href(&u.url),
        }));
    }
    rows.into_iter()
        .map(|((name, block, repo), (versions, urls))| ComponentRow {
            versions: if versions.len() == 1 {
                versions.into_keys().collect()
            } else {
                versions
                    .iter()
                    .map(|(v, envs)| format!("{v} ({})", envs.join(", ")))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            name,
            block,
            repo,
            urls,
        })
        .collect()
}

/// A proposal's address, as the board cell shows it.
pub(super) fn pull(view: &View, plan: &str, env: Option<&str>) -> Option<Pull> {
    let env = env?;
    view.statuses
        .iter()
        .find(|s| s.plan == plan && s.env == env)
        .and_then(|s| s.pull.as_deref())
        .map(Pull::of)
}
