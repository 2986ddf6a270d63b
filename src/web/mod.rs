//! The board: server-rendered pages over what the daemon knows, served
//! by `druppie serve` at `/` beside its API.
//!
//! - **Board** (`/`): every plan × environment, each cell its state,
//!   live freight and open proposal; filters by team and state.
//! - **Plan** (`/plans/{plan}`): components and repos, each
//!   environment's live and pending state, the open proposals as
//!   approval cards, and the plan's timeline from the audit trail.
//! - **Catalog** (`/catalog`, `/catalog/{block}`): blocks and skills
//!   with the registry's search, each block's documentation, inputs and
//!   outputs, and where it runs.
//! - **Audit** (`/audit`): the whole trail, filtered by plan,
//!   environment, kind and time.
//!
//! Every page reads the daemon's view after its last reconcile (and the
//! audit trail from git); nothing here decides anything again. A page
//! shows only the plans its [`Viewer`] sees. Everything from the spec is
//! escaped, Markdown documentation included ([`markdown`]); the pages
//! carry a strict Content-Security-Policy and load one script of
//! druppie's own (`static/board.js`), which refreshes the live parts of a
//! page when the event stream says a reconcile moved something.

mod audit;
mod board;
mod card;
mod catalog;
pub mod markdown;
mod page;
mod plan;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::daemon::api::App;
use crate::daemon::auth::{Sight, Viewer};
use crate::daemon::state::View;

pub use page::CONTENT_SECURITY_POLICY;

/// The pages and their assets.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(board::page))
        .route("/plans/{plan}", get(plan::page))
        .route("/catalog", get(catalog::search))
        .route("/catalog/{block}", get(catalog::block))
        .route("/audit", get(audit::page))
        .route(
            "/static/board.js",
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("static/board.js"),
                )
            }),
        )
        .route(
            "/static/board.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("static/board.css")) }),
        )
        .layer(axum::middleware::map_response(page::headers))
}

fn asset(kind: &'static str, body: &'static str) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The plans `viewer` sees, as [`Sight`] decides for the API too.
fn visible<'v>(view: &'v View, viewer: &Viewer) -> Vec<&'v crate::daemon::state::PlanInfo> {
    let sight = Sight::new(viewer, &view.plans);
    view.plans.iter().filter(|p| sight.plan(&p.name)).collect()
}
