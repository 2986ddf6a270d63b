//! The catalog: blocks and skills with the registry's search, and each
//! block's page: its documentation, inputs, outputs and where it runs.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::page::{Frame, href, html, missing};
use crate::daemon::api::App;
use crate::daemon::auth::{Sight, Viewer};
use crate::daemon::state::{Placement, View};
use crate::registry::{BlockEntry, SkillEntry};

/// `?q=`.
#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

/// A block as a search result shows it.
#[derive(Debug, Serialize)]
struct Found {
    id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    version: String,
    description: String,
    capabilities: Vec<String>,
    instantiable: bool,
    /// Plan × environment placements the viewer sees.
    placed: usize,
}

#[derive(Debug, Serialize)]
struct CatalogPage {
    query: String,
    blocks: Vec<Found>,
    skills: Vec<SkillEntry>,
}

pub async fn search(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
    Query(search): Query<Search>,
) -> Response {
    // Read under the view's lock, rendered after it.
    let page = {
        let view = app.shared.view.lock().expect("view lock");
        let sight = Sight::new(&viewer, &view.plans);
        CatalogPage {
            blocks: view
                .registry
                .search_blocks(&search.q)
                .into_iter()
                .map(|b| Found {
                    id: b.id.clone(),
                    name: b.name.clone(),
                    kind: b.kind.clone(),
                    version: b.version.clone(),
                    description: b.description.clone(),
                    capabilities: b.capabilities.clone(),
                    instantiable: b.instantiable,
                    placed: placements(&view, &sight, &b.id).len(),
                })
                .collect(),
            skills: view
                .registry
                .search_skills(&search.q)
                .into_iter()
                .cloned()
                .collect(),
            query: search.q,
        }
    };
    let frame = Frame {
        title: "Catalog",
        nav: "catalog",
        viewer: viewer.name(),
    };
    html(StatusCode::OK, "catalog.html", &frame, page)
}

#[derive(Debug, Serialize)]
struct BlockPage {
    block: BlockEntry,
    inputs: Vec<crate::registry::InputDoc>,
    docs: String,
    placements: Vec<Placed>,
}

#[derive(Debug, Serialize)]
struct Placed {
    #[serde(flatten)]
    at: Placement,
    urls: Vec<Address>,
}

#[derive(Debug, Serialize)]
struct Address {
    name: String,
    url: String,
    href: Option<String>,
}

pub async fn block(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    // Read under the view's lock; the Markdown and the page are made
    // after it.
    let found = {
        let view = app.shared.view.lock().expect("view lock");
        let sight = Sight::new(&viewer, &view.plans);
        view.registry
            .blocks
            .iter()
            .find(|b| b.id == id)
            .cloned()
            .map(|block| {
                let placed: Vec<Placement> = placements(&view, &sight, &block.id)
                    .into_iter()
                    .cloned()
                    .collect();
                (block, placed)
            })
    };
    let Some((block, placed)) = found else {
        return missing(
            &format!("There is no building block `{id}`."),
            viewer.name(),
        );
    };
    let title = format!("{} ({})", block.name, block.id);
    let frame = Frame {
        title: &title,
        nav: "catalog",
        viewer: viewer.name(),
    };
    let page = BlockPage {
        docs: super::markdown::to_html(&block.docs, 1),
        inputs: block.input_docs.clone(),
        placements: placed
            .into_iter()
            .map(|at| Placed {
                urls: at
                    .urls
                    .iter()
                    .map(|u| Address {
                        name: u.name.clone(),
                        url: u.url.clone(),
                        href: href(&u.url),
                    })
                    .collect(),
                at,
            })
            .collect(),
        block,
    };
    html(StatusCode::OK, "block.html", &frame, page)
}

/// Where `block` is placed, in the plans `viewer` sees.
fn placements<'v>(view: &'v View, sight: &Sight<'_>, block: &str) -> Vec<&'v Placement> {
    view.placements
        .iter()
        .filter(|p| p.block == block && sight.plan(&p.plan))
        .collect()
}
