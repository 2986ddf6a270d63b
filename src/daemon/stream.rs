//! `GET /api/v1/events`: the daemon's events as server-sent events, each
//! with its id, resumed from `Last-Event-ID`, shown as the viewer may
//! see them, and at most [`stream_slots`] streams at once.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::broadcast;

use super::api::{App, problem};
use super::auth::Viewer;
use super::journal::{Gap, Replay, Stamped};
use crate::secret::Scrubber;

/// The event stream. Every event carries its `id:`; a client that sends
/// `Last-Event-ID` (EventSource does when it reconnects) first gets the
/// kept events after that one, then the live ones, none twice and none
/// lost (see [`super::journal`]). When the daemon cannot give exactly
/// what the client missed (the id is another process's, or events after
/// it are no longer kept, or the client read too slowly), a `resync`
/// event without an id says so before the events it can give: the
/// client reloads what it shows from the API.
pub(super) async fn events(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
) -> Response {
    let Ok(slot) = app.streams.clone().try_acquire_owned() else {
        let mut busy = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many event streams are open; try again later",
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
        return busy;
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let (rx, replay) = match last {
        Some(last) => app.shared.events.resume(last),
        None => (app.shared.events.subscribe(), Replay::default()),
    };
    let rx = super::auth::Events::new(rx, &app.shared, viewer);
    let stopping = app.stopping.clone();
    let scrubber = app.scrubber.clone();
    let first: Vec<sse::Event> = replay
        .gap
        .map(resync)
        .into_iter()
        .chain(
            replay
                .events
                .iter()
                .filter_map(|e| rx.shown(e))
                .map(|e| sse_event(&e, &scrubber)),
        )
        .collect();
    let replayed = futures_util::stream::iter(first.into_iter().map(Ok::<_, Infallible>));
    let live = futures_util::stream::unfold(
        (rx, stopping, scrubber, slot),
        |(mut rx, mut stopping, scrubber, slot)| async move {
            if *stopping.borrow() {
                return None;
            }
            let event = tokio::select! {
                got = rx.recv() => match got {
                    Ok(e) => sse_event(&e, &scrubber),
                    Err(broadcast::error::RecvError::Lagged(_)) => resync(Gap::Lagged),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = stopping.changed() => return None,
            };
            Some((Ok(event), (rx, stopping, scrubber, slot)))
        },
    );
    Sse::new(futures_util::StreamExt::chain(replayed, live))
        .keep_alive(KeepAlive::new().interval(app.keep_alive))
        .into_response()
}

/// One event as SSE: its id, its name, its JSON scrubbed.
fn sse_event(e: &Stamped, scrubber: &Scrubber) -> sse::Event {
    let data = serde_json::to_string(e).expect("events serialize");
    sse::Event::default()
        .id(e.id.to_string())
        .event(e.name())
        .data(scrubber.scrub(&data))
}

/// The `resync` event: what follows is not exactly what the client
/// missed. It has no id, so the client keeps the last one it had.
fn resync(gap: Gap) -> sse::Event {
    sse::Event::default()
        .event("resync")
        .data(json!({"type": "resync", "reason": gap.name()}).to_string())
}

/// How many event streams may be open at once: a quarter of the
/// connections, so that streams held open (a browser tab each, or a
/// client opening thousands and never reading) leave the rest for
/// webhooks, probes and the API.
pub fn stream_slots(max_connections: usize) -> usize {
    (max_connections / 4).max(1)
}
