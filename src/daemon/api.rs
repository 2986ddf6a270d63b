//! The HTTP API: thin handlers over what the worker left in [`Shared`],
//! the webhooks, and the event stream. `docs/openapi.yaml` describes it;
//! a test keeps the two in step. Every answer, and every event of the
//! stream, is scrubbed of every configured secret on its way out: the
//! status, the events and the metrics carry error messages whose text
//! comes from git and the forge.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use super::auth::{Sight, SignedIn, Viewer};
use super::queue::Trigger;
use super::state::Shared;
use super::webhook::{self, Hint, Refused, Seen, Sender};
use crate::secret::{Scrubber, Secret};

/// The largest webhook body read; a larger one is refused unread.
pub const BODY_LIMIT: usize = 1 << 20;

/// What the handlers share.
pub struct App {
    pub shared: Arc<Shared>,
    /// Event streams open at once ([`super::stream::stream_slots`]); a stream holds its
    /// connection for as long as the client keeps it.
    pub streams: Arc<tokio::sync::Semaphore>,
    pub secret: Option<Secret>,
    /// The bearer token write requests carry; `None`: they are refused.
    pub api_token: Option<Secret>,
    /// Applied to every answer.
    pub scrubber: Scrubber,
    /// The spec repo's name and branch, as webhooks name them.
    pub spec: (String, String),
    /// Where the audit trail is read.
    pub spec_root: PathBuf,
    pub seen: Mutex<Seen>,
    /// Turns true when the server stops, ending event streams.
    pub stopping: watch::Receiver<bool>,
    /// How often an idle event stream sends a comment, so that the
    /// server's idle timeout never cuts it.
    pub keep_alive: std::time::Duration,
    /// What `/mcp` offers beyond reading.
    pub mcp: crate::mcp::Options,
    /// What the board checks the audit trail's signatures with.
    pub allowed_signers: Option<crate::git::sign::AllowedSigners>,
    /// The verdicts on the trail's signatures so far, and the one read
    /// of the trail at a time (pages that ask meanwhile wait for it,
    /// then find its verdicts).
    pub verdicts: crate::audit::Verdicts,
    pub trail_read: tokio::sync::Mutex<()>,
    pub chat: Arc<super::chat::Chat>,
    /// Sign-in (`[server.auth]`); `None`: every request sees everything.
    pub auth: Option<Arc<super::auth::Oidc>>,
}

/// Every route, as `(method, path)`: the OpenAPI description must
/// describe exactly these.
pub const ROUTES: [(&str, &str); 20] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/status"),
    ("get", "/api/v1/plans"),
    ("get", "/api/v1/plans/{plan}/status"),
    ("get", "/api/v1/blocks"),
    ("get", "/api/v1/skills"),
    ("get", "/api/v1/diff"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/events"),
    ("post", "/api/v1/promote"),
    ("post", "/webhooks/gitea"),
    ("post", "/webhooks/github"),
    ("get", "/v1/models"),
    ("get", "/v1/agents"),
    ("post", "/v1/chat/completions"),
    ("get", "/auth/login"),
    ("get", "/auth/callback"),
    ("post", "/auth/logout"),
];

pub fn router(app: Arc<App>) -> Router {
    let mcp = crate::mcp::http_service(
        Arc::new(crate::mcp::Served {
            shared: app.shared.clone(),
            spec_root: app.spec_root.clone(),
            chat: app.chat.clone(),
        }),
        app.scrubber.clone(),
        crate::mcp::Options {
            api_token: app.api_token.clone(),
            ..app.mcp.clone()
        },
    );
    Router::new()
        .route_service("/mcp", mcp)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/plans", get(plans))
        .route("/api/v1/plans/{plan}/status", get(plan_status))
        .route("/api/v1/blocks", get(blocks))
        .route("/api/v1/skills", get(skills))
        .route("/api/v1/diff", get(diff))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/events", get(super::stream::events))
        .route("/api/v1/promote", post(promote))
        .route(
            "/webhooks/gitea",
            post(|s: State<Arc<App>>, h: HeaderMap, b: Body| hook(Sender::Gitea, s, h, b)),
        )
        .route(
            "/webhooks/github",
            post(|s: State<Arc<App>>, h: HeaderMap, b: Body| hook(Sender::GitHub, s, h, b)),
        )
        .merge(super::chat::routes())
        .merge(crate::web::routes())
        .merge(super::auth::routes())
        .layer(middleware::from_fn_with_state(
            app.clone(),
            super::auth::identify,
        ))
        .layer(middleware::from_fn_with_state(app.clone(), scrub))
        .layer(middleware::map_response(nosniff))
        .with_state(app)
}

/// No answer is read as another type than it says (a JSON error that
/// echoes a request as HTML, say).
async fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

/// Scrubs every answer's body; an event stream is scrubbed event by
/// event instead (see [`super::stream`]).
async fn scrub(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
    if streaming || app.scrubber.is_empty() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the answer cannot be read",
        );
    };
    let text = app.scrubber.scrub_bytes(&bytes);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text))
}

/// Ready once the first reconcile finished, or as a follower: replicas
/// that do not hold the Lease serve the API and queue webhooks, and must
/// not stall a rollout.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    if app.shared.view.lock().expect("view lock").ready || !app.shared.leading() {
        "ready\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: the first reconcile has not finished\n",
        )
            .into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.shared.metrics.render(),
    )
        .into_response()
}

async fn status(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
) -> Json<serde_json::Value> {
    let view = app.shared.view.lock().expect("view lock");
    let sight = Sight::new(&viewer, &view.plans);
    let statuses: Vec<_> = view
        .statuses
        .iter()
        .filter(|s| sight.plan(&s.plan))
        .map(|s| super::state::PlanStatus {
            message: sight.status_message(s),
            ..s.clone()
        })
        .collect();
    Json(json!({
        "ready": view.ready,
        "revision": view.revision,
        "dirty": view.dirty,
        "last_error": sight.reconcile_error(view.last_error.as_deref()),
        "plans": statuses,
    }))
}

async fn plans(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
) -> Json<serde_json::Value> {
    let view = app.shared.view.lock().expect("view lock");
    let sight = Sight::new(&viewer, &view.plans);
    let plans: Vec<_> = view.plans.iter().filter(|p| sight.plan(&p.name)).collect();
    Json(json!(plans))
}

/// One plan's freight per environment and what waits where, as
/// `druppie status --plan P --json` shows it, after the last reconcile.
/// A plan the viewer does not see is answered as an unknown one.
async fn plan_status(
    State(app): State<Arc<App>>,
    Extension(viewer): Extension<Viewer>,
    Path(plan): Path<String>,
) -> Response {
    let view = app.shared.view.lock().expect("view lock");
    let sight = Sight::new(&viewer, &view.plans);
    if !sight.plan(&plan) && view.ready {
        let known = view.plans.iter().map(|p| p.name.as_str());
        return unknown_plan(&plan, known.filter(|p| sight.plan(p)));
    }
    if let Some(found) = view.freight.iter().find(|p| p.plan == plan) {
        return Json(found).into_response();
    }
    if !view.ready {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the first reconcile has not finished",
        );
    }
    if view.plans.iter().any(|p| p.name == plan) {
        return problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the last reconcile could not read where `{plan}` stands (see /api/v1/status)"
            ),
        );
    }
    unknown_plan(&plan, view.plans.iter().map(|p| p.name.as_str()))
}

/// 404 for a plan not among `known`, naming the nearest.
fn unknown_plan<'a>(plan: &str, known: impl Iterator<Item = &'a str>) -> Response {
    let near = crate::spec::suggest::candidates(plan, known);
    let hint = match near.first() {
        Some(name) => format!("; did you mean `{name}`?"),
        None => String::new(),
    };
    problem(
        StatusCode::NOT_FOUND,
        &format!("unknown plan `{plan}`{hint}"),
    )
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn blocks(State(app): State<Arc<App>>, Query(s): Query<Search>) -> Json<serde_json::Value> {
    let view = app.shared.view.lock().expect("view lock");
    Json(json!(view.registry.search_blocks(&s.q)))
}

async fn skills(State(app): State<Arc<App>>, Query(s): Query<Search>) -> Json<serde_json::Value> {
    let view = app.shared.view.lock().expect("view lock");
    Json(json!(view.registry.search_skills(&s.q)))
}

async fn diff(State(app): State<Arc<App>>, Extension(viewer): Extension<Viewer>) -> Response {
    let dry = app.shared.view.lock().expect("view lock").diff.clone();
    let Some(dry) = dry else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "no dry run yet");
    };
    // Made, copied and filtered off the view's lock: a first apply's is
    // every file.
    let Some(dry) = super::dry_run::made(dry).await else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the dry run could not be shown (the daemon's log says why)",
        );
    };
    let plans = app.shared.view.lock().expect("view lock").plans.clone();
    let sight = Sight::new(&viewer, &plans);
    Json(super::auth::shown_diff(&sight, dry.json().clone())).into_response()
}

async fn audit(State(app): State<Arc<App>>, Extension(viewer): Extension<Viewer>) -> Response {
    let root = app.spec_root.clone();
    let read = tokio::task::spawn_blocking(move || {
        let repo = crate::git::Repo::discover(&root)
            .ok_or_else(|| format!("{} is not in a git repository", root.display()))?;
        crate::audit::read(&repo, None).map_err(|e| e.to_string())
    })
    .await;
    match read {
        Ok(Ok(events)) => {
            let view = app.shared.view.lock().expect("view lock");
            let sight = Sight::new(&viewer, &view.plans);
            Json(super::auth::shown_audit(&sight, json!(events))).into_response()
        }
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// The body of `POST /api/v1/promote`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteRequest {
    plan: String,
    to: String,
}

/// The largest promotion request read.
const PROMOTE_LIMIT: usize = 4096;

/// Queues a promotion (`druppie promote`'s twin): the worker reconciles,
/// then promotes, and says how it went as a `promotion` event. Only
/// with the bearer token `[server] api_token_env` names, or signed in
/// (`[server.auth]`) for a plan the person sees.
async fn promote(
    State(app): State<Arc<App>>,
    signed_in: Option<Extension<SignedIn>>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let viewer = match bearer(&app, &headers) {
        Ok(()) => Viewer::Everyone,
        Err(_) if signed_in.is_some() => viewer,
        Err(Denied::Off) => {
            return problem(
                StatusCode::FORBIDDEN,
                "writing through the API is off: set the variable `[server] api_token_env` names",
            );
        }
        Err(Denied::Wrong) => {
            let mut answer = problem(
                StatusCode::UNAUTHORIZED,
                "this request needs the API's bearer token",
            );
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return answer;
        }
    };
    let Ok(body) = axum::body::to_bytes(body, PROMOTE_LIMIT).await else {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than 4 KiB",
        );
    };
    let request: PromoteRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &format!("not a promotion: {e}")),
    };
    {
        let view = app.shared.view.lock().expect("view lock");
        let sight = Sight::new(&viewer, &view.plans);
        if !view.ready && !sight.everything() {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the first reconcile has not finished",
            );
        }
        if view.ready {
            let seen = |p: &&super::state::PlanInfo| p.name == request.plan && sight.plan(&p.name);
            let Some(plan) = view.plans.iter().find(seen) else {
                return problem(
                    StatusCode::NOT_FOUND,
                    &format!("no plan `{}`", request.plan),
                );
            };
            if !plan.environments.contains(&request.to) {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!(
                        "plan `{}` is not deployed to `{}`; its environments: {}",
                        request.plan,
                        request.to,
                        plan.environments.join(", ")
                    ),
                );
            }
        }
    }
    tracing::info!(plan = %request.plan, to = %request.to, by = viewer.name().unwrap_or("the API token or an admin"), "promotion queued");
    app.shared.queue.push(Trigger::Promote {
        plan: request.plan.clone(),
        to: request.to.clone(),
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({"queued": true, "plan": request.plan, "to": request.to})),
    )
        .into_response()
}

/// Why a write request is refused before its body is read.
pub(crate) enum Denied {
    /// No token is configured: writing through the API is off.
    Off,
    /// The request carries no token, or another one.
    Wrong,
}

/// Whether `headers` carry the API's bearer token, which every write
/// request needs.
pub(super) fn bearer(app: &App, headers: &HeaderMap) -> Result<(), Denied> {
    bearer_of(app.api_token.as_ref(), headers)
}

/// Whether `headers` carry `token` as a bearer token.
pub(crate) fn bearer_of(
    token: Option<&crate::secret::Secret>,
    headers: &HeaderMap,
) -> Result<(), Denied> {
    let Some(token) = token else {
        return Err(Denied::Off);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| same_token(g, token.expose())) {
        Ok(())
    } else {
        Err(Denied::Wrong)
    }
}

/// Whether two tokens are equal, in time that does not depend on where
/// they differ: their SHA-256 digests are compared byte by byte.
fn same_token(given: &str, token: &str) -> bool {
    use sha2::Digest as _;
    let (a, b) = (sha2::Sha256::digest(given), sha2::Sha256::digest(token));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// A webhook delivery: size, signature, payload, delivery id, then a
/// trigger. The answer says which of these stopped it.
async fn hook(
    sender: Sender,
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let metrics = &app.shared.metrics;
    let (event_header, delivery_header, signature_header) = sender.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let declared = text(header::CONTENT_LENGTH.as_str()).and_then(|l| l.parse::<usize>().ok());
    let too_large = || {
        metrics.delivery("too-large");
        problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the body is larger than 1 MiB",
        )
    };
    if declared.is_some_and(|l| l > BODY_LIMIT) {
        return too_large();
    }
    let body: Bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    if let Some(secret) = &app.secret
        && let Err(e) = webhook::verify(sender, secret, &body, text(signature_header))
    {
        metrics.delivery("unauthorized");
        return problem(StatusCode::UNAUTHORIZED, &e.to_string());
    }
    let Some(event) = text(event_header) else {
        metrics.delivery("malformed");
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("no {event_header} header"),
        );
    };
    let hint = match webhook::parse(event, &body) {
        Ok(h) => h,
        Err(e @ Refused::Malformed(_)) => {
            metrics.delivery("malformed");
            return problem(StatusCode::BAD_REQUEST, &e.to_string());
        }
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Some(id) = text(delivery_header)
        && !app.seen.lock().expect("seen lock").first(id)
    {
        metrics.delivery("duplicate");
        return (
            StatusCode::OK,
            Json(json!({"handled": false, "reason": "duplicate delivery"})),
        )
            .into_response();
    }
    let trigger = match hint {
        Hint::Push {
            repo,
            branch,
            after,
        } => {
            let (name, spec_branch) = &app.spec;
            let spec_push = repo == *name && branch.as_deref() == Some(spec_branch.as_str());
            Trigger::Webhook {
                after: after.filter(|_| spec_push),
            }
        }
        Hint::PullRequest { .. } => Trigger::PullRequest,
        Hint::Ping | Hint::Ignored(_) => {
            metrics.delivery("ignored");
            return (
                StatusCode::OK,
                Json(json!({"handled": false, "reason": "nothing to do"})),
            )
                .into_response();
        }
    };
    metrics.delivery("accepted");
    tracing::info!(forge = sender.name(), event, "webhook accepted");
    app.shared.heard(&trigger);
    app.shared.queue.push(trigger);
    (StatusCode::ACCEPTED, Json(json!({"handled": true}))).into_response()
}

/// An error answer: `{"error": message}`.
pub(super) fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
