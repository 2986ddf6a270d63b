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
use crate::daemon::auth::Viewer;
use crate::daemon::state::{Placement, View};
use crate::registry::{BlockEntry, SkillEntry};

/// `?q=`.
#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

#[derive(Debug, Serialize)]
struct Found<'a> {
    #[serde(flatten)]
    block: &'a BlockEntry,
    /// Plan × environment placements the viewer sees.
    placed: usize,
}

#[derive(Debug, Serialize)]
struct CatalogPage<'a> {
    query: &'a str,
    blocks: Vec<Found<'a>>,
    skills: Vec<&'a SkillEntry>,
}

pub async fn search(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
    Query(search): Query<Search>,
) -> Response {
    let frame = Frame {
        title: "Catalog",
        nav: "catalog",
        viewer: viewer.name(),
    };
    let view = app.shared.view.lock().expect("view lock");
    let blocks = view
        .registry
        .search_blocks(&search.q)
        .into_iter()
        .map(|block| Found {
            placed: placements(&view, &viewer, &block.id).len(),
            block,
        })
        .collect();
    let page = CatalogPage {
        query: &search.q,
        blocks,
        skills: view.registry.search_skills(&search.q),
    };
    html(StatusCode::OK, "catalog.html", &frame, page)
}

#[derive(Debug, Serialize)]
struct BlockPage<'a> {
    block: &'a BlockEntry,
    inputs: &'a [crate::registry::InputDoc],
    docs: String,
    placements: Vec<Placed<'a>>,
    /// Some placements are of plans the viewer does not see.
    hidden: bool,
}

#[derive(Debug, Serialize)]
struct Placed<'a> {
    #[serde(flatten)]
    at: &'a Placement,
    urls: Vec<Address<'a>>,
}

#[derive(Debug, Serialize)]
struct Address<'a> {
    name: &'a str,
    url: &'a str,
    href: Option<String>,
}

pub async fn block(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let view = app.shared.view.lock().expect("view lock");
    let Some(block) = view.registry.blocks.iter().find(|b| b.id == id) else {
        return missing(
            &format!("There is no building block `{id}`."),
            viewer.name(),
        );
    };
    let seen = placements(&view, &viewer, &block.id);
    let all = view
        .placements
        .iter()
        .filter(|p| p.block == block.id)
        .count();
    let title = format!("{} ({})", block.name, block.id);
    let frame = Frame {
        title: &title,
        nav: "catalog",
        viewer: viewer.name(),
    };
    let page = BlockPage {
        block,
        inputs: &block.input_docs,
        docs: super::markdown::to_html(&block.docs, 1),
        hidden: seen.len() < all,
        placements: seen
            .into_iter()
            .map(|at| Placed {
                urls: at
                    .urls
                    .iter()
                    .map(|u| Address {
                        name: &u.name,
                        url: &u.url,
                        href: href(&u.url),
                    })
                    .collect(),
                at,
            })
            .collect(),
    };
    html(StatusCode::OK, "block.html", &frame, page)
}

/// Where `block` is placed, in the plans `viewer` sees.
fn placements<'v>(view: &'v View, viewer: &Viewer, block: &str) -> Vec<&'v Placement> {
    let seen = super::visible(view, viewer);
    view.placements
        .iter()
        .filter(|p| p.block == block && seen.iter().any(|s| s.name == p.plan))
        .collect()
}
