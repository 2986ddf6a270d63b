//! The chat API, OpenAI-compatible: `POST /v1/chat/completions` (whole,
//! or streamed as server-sent chunks), `GET /v1/models` (druppie, as
//! its one model) and `GET /v1/agents` (the spec's skills, its
//! personas). The conversation is what the client sends; the last user
//! message is routed and answered by the planner
//! ([`crate::planner::propose::answer`]) on the reconcile worker
//! ([`job`]): a catalog question from the registry, a status question
//! from the status and the audit trail, a create or change request as a
//! spec proposal when it checks out, its open questions when not.
//!
//! Opening a proposal writes to the spec repo, so every chat request
//! carries the API's bearer token (the client's API key), checked as
//! for `POST /api/v1/promote`; reading the models and agents needs none,
//! like every other read of the API.

mod job;
mod text;
mod wire;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt as _;
use serde_json::json;
use tokio::sync::oneshot;

use super::api::{App, Denied, bearer};
use crate::secret::Scrubber;
pub use job::{ChatError, on_worker, session};
use text::Reply;
use wire::{ChatRequest, Completion, Refusal};

/// The largest chat request read: a conversation of
/// [`wire::MAX_MESSAGES`] messages fits, a larger body is refused
/// unread.
pub const BODY_LIMIT: usize = 1 << 20;

/// How long a streamed answer waits for the worker to start on it.
const STREAM_PATIENCE: Duration = Duration::from_secs(300);

/// What the chat needs from the configuration: the planner's session
/// is made from it ([`crate::planner::session::Session`]).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub config: crate::config::Config,
    /// The value of the variable `[forge] token_env` names.
    pub forge_token: Option<crate::secret::Secret>,
    /// The value of the variable `[llm] api_key_env` names.
    pub llm_key: Option<crate::secret::Secret>,
}

/// The chat's state in the daemon.
pub struct Chat {
    pub config: crate::config::Config,
    pub forge_token: Option<crate::secret::Secret>,
    pub llm_key: Option<crate::secret::Secret>,
    pub scrubber: Scrubber,
    /// How long a whole (not streamed) answer waits for the worker to
    /// start on it: less than the server's request timeout.
    pub patience: Duration,
    /// When the daemon started: the model's `created`.
    pub started: u64,
    /// The last spec commit that passed the render check.
    checked: Mutex<Option<crate::git::ObjectId>>,
}

impl Chat {
    pub fn new(settings: Settings, scrubber: Scrubber, request_timeout: Duration) -> Chat {
        Chat {
            config: settings.config,
            forge_token: settings.forge_token,
            llm_key: settings.llm_key,
            scrubber,
            patience: request_timeout
                .saturating_sub(Duration::from_secs(2))
                .max(Duration::from_secs(1)),
            started: Completion::new().created,
            checked: Mutex::new(None),
        }
    }
}

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/agents", get(agents))
        .route("/v1/chat/completions", post(completions))
}

async fn models(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(wire::models(app.chat.started))
}

/// The personas: the spec's skills.
async fn agents(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let view = app.shared.view.lock().expect("view lock");
    let data: Vec<serde_json::Value> = view
        .registry
        .skills
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "object": "agent",
                "name": s.name,
                "description": s.description,
                "category": s.category,
            })
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}

fn error(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut answer = (status, Json(refusal.body())).into_response();
    if refusal.status == 401 {
        answer
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    answer
}

fn unavailable(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status: 503,
        kind: "server_error",
        code,
        param: None,
        message: message.into(),
    }
}

/// The job's progress, so that a request that stops waiting either
/// finds its job not started (and never run) or waits for its end.
const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

async fn completions(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    match bearer(&app, &headers) {
        Ok(()) => {}
        Err(Denied::Off) => {
            return error(&Refusal {
                status: 403,
                kind: "invalid_request_error",
                code: "permission_denied",
                param: None,
                message: "the chat opens spec proposals, and writing through the API is off: set the variable `[server] api_token_env` names, and use its value as the API key".into(),
            });
        }
        Err(Denied::Wrong) => {
            return error(&Refusal {
                status: 401,
                kind: "invalid_request_error",
                code: "invalid_api_key",
                param: None,
                message: "this request needs the API's bearer token as its API key".into(),
            });
        }
    }
    let too_large = || {
        error(&Refusal {
            status: 413,
            kind: "invalid_request_error",
            code: "request_too_large",
            param: None,
            message: format!("the body is larger than {} KiB", BODY_LIMIT / 1024),
        })
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > BODY_LIMIT) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return too_large();
    };
    let (chat, request) = match ChatRequest::parse(&bytes).and_then(|c| {
        let r = c.request()?;
        Ok((c, r))
    }) {
        Ok(parsed) => parsed,
        Err(refusal) => return error(&refusal),
    };
    if !app.shared.leading() {
        return error(&unavailable(
            "not_leader",
            "this replica does not hold the leader Lease; the leader answers the chat",
        ));
    }
    if !app.shared.view.lock().expect("view lock").ready {
        return error(&unavailable(
            "starting",
            "the first reconcile has not finished; ask again in a moment",
        ));
    }
    tracing::info!(stream = chat.stream, "chat request");
    let (tx, rx) = oneshot::channel();
    let progress = Arc::new(AtomicU8::new(QUEUED));
    {
        let (shared, state, progress) = (app.shared.clone(), app.chat.clone(), progress.clone());
        app.shared.queue.job(Box::new(move |r| {
            if progress
                .compare_exchange(QUEUED, STARTED, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                return;
            }
            let _ = tx.send(job::reply(r, &shared, &state, &request));
        }));
    }
    let prompt = chat.words();
    let completion = Completion::new();
    if !chat.stream {
        return match wait(rx, &progress, app.chat.patience).await {
            Ok(reply) => {
                Json(completion.whole(&reply.content, prompt, &reply.facts)).into_response()
            }
            Err(refusal) => error(&refusal),
        };
    }
    let usage = chat.stream_options.is_some_and(|o| o.include_usage);
    let scrubber = app.chat.scrubber.clone();
    let event = move |v: serde_json::Value| -> Result<sse::Event, Infallible> {
        Ok(sse::Event::default().data(scrubber.scrub(&v.to_string())))
    };
    let head = futures_util::stream::iter([event(
        completion.chunk(json!({"role": "assistant", "content": ""}), None),
    )]);
    let scrubber = app.chat.scrubber.clone();
    let rest = futures_util::stream::once(async move {
        let mut events = Vec::new();
        match wait(rx, &progress, STREAM_PATIENCE).await {
            Ok(reply) => {
                let content = scrubber.scrub(&reply.content).into_owned();
                for piece in wire::pieces(&content) {
                    events.push(event(completion.chunk(json!({"content": piece}), None)));
                }
                let mut last = completion.chunk(json!({}), Some("stop"));
                last["druppie"] = reply.facts;
                events.push(event(last));
                if usage {
                    events.push(event(completion.usage_chunk(prompt, wire::words(&content))));
                }
            }
            Err(refusal) => events.push(event(refusal.body())),
        }
        events.push(Ok(sse::Event::default().data("[DONE]")));
        futures_util::stream::iter(events)
    })
    .flatten();
    Sse::new(head.chain(rest))
        .keep_alive(KeepAlive::new().interval(app.keep_alive))
        .into_response()
}

/// The job's answer, or why there is none: the worker did not start on
/// it within `patience` (then it never runs), or it failed.
async fn wait(
    rx: oneshot::Receiver<Result<Reply, ChatError>>,
    progress: &AtomicU8,
    patience: Duration,
) -> Result<Reply, Refusal> {
    let stopped = || unavailable("stopping", "the daemon is stopping; nothing was done");
    tokio::pin!(rx);
    let answered = match tokio::time::timeout(patience, &mut rx).await {
        Ok(answered) => answered,
        Err(_) => {
            if progress
                .compare_exchange(QUEUED, ABANDONED, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return Err(unavailable(
                    "busy",
                    format!(
                        "a reconcile kept druppie busy for {}s; nothing was done, ask again",
                        patience.as_secs()
                    ),
                ));
            }
            rx.await
        }
    };
    match answered {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::error::chain(&e), "chat request failed");
            Err(Refusal {
                status: if e.is_transient() { 503 } else { 500 },
                kind: "server_error",
                code: if e.is_transient() { "retry" } else { "failed" },
                param: None,
                message: crate::error::chain(&e),
            })
        }
        Err(_) => Err(stopped()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_that_stops_waiting_before_its_job_starts_leaves_it_unrun() {
        let (tx, rx) = oneshot::channel::<Result<Reply, ChatError>>();
        let progress = AtomicU8::new(QUEUED);
        let refused = wait(rx, &progress, Duration::from_millis(10))
            .await
            .err()
            .expect("no answer");
        assert_eq!((refused.status, refused.code), (503, "busy"));
        assert!(refused.message.contains("nothing was done"), "{refused:?}");
        // The job, starting late, finds itself abandoned and does not run.
        assert!(
            progress
                .compare_exchange(QUEUED, STARTED, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        );
        drop(tx);
    }

    #[tokio::test]
    async fn a_request_whose_job_started_waits_for_its_answer() {
        let (tx, rx) = oneshot::channel::<Result<Reply, ChatError>>();
        let progress = AtomicU8::new(STARTED);
        let answer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = tx.send(Ok(Reply {
                content: "done".into(),
                facts: json!({}),
            }));
        });
        let reply = wait(rx, &progress, Duration::from_millis(1))
            .await
            .map_err(|r| r.message)
            .expect("the answer");
        assert_eq!(reply.content, "done");
        answer.await.expect("sent");
    }
}
