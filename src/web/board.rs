//! The board: plans × environments, each cell where the plan stands.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::page::{Frame, href, html, short};
use crate::daemon::api::App;
use crate::daemon::auth::{Sight, Viewer};
use crate::daemon::state::{PlanState, View};
use crate::status::Next;

/// `?team=&state=`; empty means all.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    team: String,
    #[serde(default)]
    state: String,
}

#[derive(Debug, Serialize)]
struct Board {
    ready: bool,
    revision: Option<String>,
    last_error: Option<String>,
    envs: Vec<String>,
    rows: Vec<Row>,
    teams: Vec<String>,
    states: Vec<&'static str>,
    team: String,
    state: String,
}

#[derive(Debug, Serialize)]
struct Row {
    plan: String,
    owner: String,
    intent: Option<String>,
    /// One per column; `None` where the plan is not deployed.
    cells: Vec<Option<Cell>>,
}

/// Where a plan stands in one environment.
#[derive(Debug, Serialize)]
pub(super) struct Cell {
    pub env: String,
    /// What the cell says: `in-sync`, `waiting: dev`, …
    pub state: String,
    /// The state's name alone, for styling and filtering.
    pub class: &'static str,
    /// The live freight: its spec commit and when it went live.
    pub commit: Option<String>,
    pub when: Option<String>,
    /// The open proposal.
    pub pull: Option<Pull>,
    pub message: Option<String>,
}

/// An open proposal: a pull request's address, or a branch on plain git.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Pull {
    pub text: String,
    pub href: Option<String>,
}

impl Pull {
    pub fn of(pull: &str) -> Pull {
        Pull {
            text: pull.to_owned(),
            href: href(pull),
        }
    }
}

pub async fn page(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
    Query(filters): Query<Filters>,
) -> Response {
    let board = {
        let view = app.shared.view.lock().expect("view lock");
        Board::of(&view, &viewer, &filters)
    };
    let frame = Frame {
        title: "Board",
        nav: "board",
        viewer: viewer.name(),
    };
    html(StatusCode::OK, "board.html", &frame, board)
}

impl Board {
    fn of(view: &View, viewer: &Viewer, filters: &Filters) -> Board {
        let envs = view.environment_names();
        let sight = Sight::new(viewer, &view.plans);
        let plans = super::visible(view, viewer);
        let mut teams: Vec<String> = plans.iter().map(|p| p.owner.clone()).collect();
        teams.sort();
        teams.dedup();
        let rows = plans
            .into_iter()
            .filter(|p| filters.team.is_empty() || p.owner == filters.team)
            .map(|p| Row {
                plan: p.name.clone(),
                owner: p.owner.clone(),
                intent: p.intent.clone(),
                cells: envs
                    .iter()
                    .map(|e| {
                        p.environments
                            .contains(e)
                            .then(|| cell(view, &sight, &p.name, e))
                    })
                    .collect(),
            })
            .filter(|r| {
                filters.state.is_empty()
                    || r.cells.iter().flatten().any(|c| c.class == filters.state)
            })
            .collect();
        Board {
            ready: view.ready,
            revision: view.revision.as_deref().map(short),
            last_error: sight.reconcile_error(view.last_error.as_deref()),
            envs,
            rows,
            teams,
            states: PlanState::ALL.iter().map(|s| s.name()).collect(),
            team: filters.team.clone(),
            state: filters.state.clone(),
        }
    }
}

/// Where `plan` stands in `env` after the last reconcile: its state
/// (with the environment a `waiting` change waits on), its live freight
/// and its open proposal.
pub(super) fn cell(view: &View, sight: &Sight<'_>, plan: &str, env: &str) -> Cell {
    let status = view
        .statuses
        .iter()
        .find(|s| s.plan == plan && s.env == env);
    let freight = view
        .freight
        .iter()
        .find(|p| p.plan == plan)
        .and_then(|p| p.environments.iter().find(|e| e.env == env));
    let live = freight.and_then(|f| f.live.as_ref());
    let Some(status) = status else {
        return Cell {
            env: env.to_owned(),
            state: "unknown".to_owned(),
            class: "unknown",
            commit: None,
            when: None,
            pull: None,
            message: Some("not reconciled yet".to_owned()),
        };
    };
    let waits_on = freight.and_then(|f| match &f.next {
        Next::Waiting { on, .. } => Some(on.clone()),
        _ => None,
    });
    let state = match (status.state, waits_on) {
        (PlanState::Waiting, Some(on)) => format!("waiting: {on}"),
        (s, _) => s.name().to_owned(),
    };
    Cell {
        env: env.to_owned(),
        state,
        class: status.state.name(),
        commit: live.and_then(|l| l.spec_commit.as_deref()).map(short),
        when: live
            .and_then(|l| l.went_live.as_ref())
            .map(|w| w.time.clone()),
        pull: status.pull.as_deref().map(Pull::of),
        message: sight
            .status_message(status)
            .filter(|_| status.state != PlanState::Waiting),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::state::{PlanInfo, PlanStatus};

    fn view() -> View {
        let plan = |name: &str, owner: &str, envs: &[&str]| PlanInfo {
            name: name.into(),
            stack: "webapp-db".into(),
            owner: owner.into(),
            intent: None,
            environments: envs.iter().map(|e| (*e).to_owned()).collect(),
        };
        let status = |plan: &str, env: &str, state| PlanStatus {
            plan: plan.into(),
            env: env.into(),
            state,
            spec_commit: None,
            pull: (state == PlanState::PendingApproval)
                .then(|| "https://forge.example.org/platform/infra/pulls/7".to_owned()),
            message: None,
            cluster: None,
        };
        View {
            ready: true,
            plans: vec![
                plan("meters", "team-meters", &["dev"]),
                plan("permits", "team-permits", &["dev", "prod"]),
            ],
            statuses: vec![
                status("meters", "dev", PlanState::Failed),
                status("permits", "dev", PlanState::InSync),
                status("permits", "prod", PlanState::PendingApproval),
            ],
            ..View::default()
        }
    }

    fn plans(board: &Board) -> Vec<&str> {
        board.rows.iter().map(|r| r.plan.as_str()).collect()
    }

    #[test]
    fn filters_keep_a_teams_plans_and_plans_in_a_state() {
        let v = view();
        let all = Board::of(&v, &Viewer::Everyone, &Filters::default());
        assert_eq!(plans(&all), ["meters", "permits"]);
        assert_eq!(all.envs, ["dev", "prod"]);
        assert_eq!(all.teams, ["team-meters", "team-permits"]);
        // meters is not in prod: no cell there.
        assert!(all.rows[0].cells[1].is_none());
        let prod = all.rows[1].cells[1].as_ref().unwrap();
        assert_eq!(prod.state, "pending-approval");
        assert_eq!(
            prod.pull.as_ref().unwrap().href.as_deref(),
            Some("https://forge.example.org/platform/infra/pulls/7")
        );
        let team = Filters {
            team: "team-permits".into(),
            state: String::new(),
        };
        assert_eq!(plans(&Board::of(&v, &Viewer::Everyone, &team)), ["permits"]);
        let failed = Filters {
            team: String::new(),
            state: "failed".into(),
        };
        assert_eq!(
            plans(&Board::of(&v, &Viewer::Everyone, &failed)),
            ["meters"]
        );
    }

    #[test]
    fn a_member_sees_only_its_teams_plans_and_teams() {
        let mut v = view();
        // A reconcile failed on another team's plan: its error quotes
        // that plan's file and values.
        let why = "spec/plans/permits.yaml:7:61: input `replicas` is the string \"hunter2\"";
        v.last_error = Some(why.to_owned());
        v.statuses[0].message = Some(why.to_owned());
        let member = Viewer::Member {
            subject: "ana".into(),
            groups: ["team-meters".to_owned()].into(),
        };
        let board = Board::of(&v, &member, &Filters::default());
        assert_eq!(plans(&board), ["meters"]);
        assert_eq!(board.teams, ["team-meters"]);
        let told = board.rows[0].cells[0].as_ref().unwrap();
        assert_eq!(told.state, "failed");
        assert_eq!(told.message.as_deref(), Some(crate::daemon::auth::WITHHELD));
        assert_eq!(
            board.last_error.as_deref(),
            Some(crate::daemon::auth::WITHHELD)
        );
        // A platform admin reads the error itself.
        let all = Board::of(&v, &Viewer::Everyone, &Filters::default());
        assert_eq!(all.last_error.as_deref(), Some(why));
    }
}
