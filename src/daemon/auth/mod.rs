//! Who is asking: every request to the daemon gets a [`Viewer`] before
//! its handler runs, and each handler shows only what that viewer may
//! see ([`Sight`] decides). Without `[server.auth]` every request sees
//! everything (the board and the read API are read-only, as
//! documented). With it, every request but the health, metrics,
//! webhook, static and sign-in routes needs a credential: the API token
//! (a machine, sees everything), a bearer JWT from the issuer, or the
//! session cookie of a browser sign-in ([`login`]). A browser asking
//! for a page without one is sent to sign in; anything else gets 401.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::App;

pub mod jwt;
mod login;
pub mod oidc;
pub mod seal;
mod shown;

pub(super) use login::routes;
pub use oidc::{Oidc, Settings};
pub(super) use shown::{Events, shown_audit, shown_diff};

/// Who a request comes from, as far as what it may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// No sign-in is configured, or a platform admin: every plan.
    Everyone,
    /// A signed-in person: the plans whose owner is one of `groups`.
    Member {
        subject: String,
        groups: BTreeSet<String>,
    },
}

impl Viewer {
    /// Whether this viewer sees a plan owned by `owner`.
    pub fn sees(&self, owner: &str) -> bool {
        match self {
            Viewer::Everyone => true,
            Viewer::Member { groups, .. } => groups.contains(owner),
        }
    }

    /// Who, for the page header; `None` without sign-in.
    pub fn name(&self) -> Option<&str> {
        match self {
            Viewer::Everyone => None,
            Viewer::Member { subject, .. } => Some(subject),
        }
    }
}

/// The request came from a person who signed in (a bearer JWT or a
/// session), not from the API token or an open daemon.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn;

/// What one viewer sees of the plans: the one place that decides.
pub struct Sight<'a> {
    viewer: &'a Viewer,
    /// Each plan's owner.
    owners: HashMap<&'a str, &'a str>,
}

impl<'a> Sight<'a> {
    pub fn new(viewer: &'a Viewer, plans: &'a [super::state::PlanInfo]) -> Sight<'a> {
        Sight {
            viewer,
            owners: plans
                .iter()
                .map(|p| (p.name.as_str(), p.owner.as_str()))
                .collect(),
        }
    }

    /// Whether the viewer sees `plan`. A plan the spec does not (or no
    /// longer) has is seen by everyone who sees every plan, and no one
    /// else.
    pub fn plan(&self, plan: &str) -> bool {
        match self.viewer {
            Viewer::Everyone => true,
            Viewer::Member { .. } => self
                .owners
                .get(plan)
                .is_some_and(|owner| self.viewer.sees(owner)),
        }
    }

    /// Whether the viewer sees something about `plans`: about no plan
    /// (a reconcile starting), or about at least one it sees.
    pub fn any<'p>(&self, plans: impl IntoIterator<Item = &'p str>) -> bool {
        let mut none = true;
        for p in plans {
            if self.plan(p) {
                return true;
            }
            none = false;
        }
        none
    }

    /// Whether the viewer sees every one of `plans`.
    pub fn all<'p>(&self, mut plans: impl Iterator<Item = &'p str>) -> bool {
        plans.all(|p| self.plan(p))
    }

    pub fn everything(&self) -> bool {
        matches!(self.viewer, Viewer::Everyone)
    }

    /// A reconcile's error as this viewer is told it. The error of a
    /// whole reconcile may quote any plan's files and values (a spec
    /// error in another team's plan), so only those who see every plan
    /// read it; the others are told that it failed.
    pub fn reconcile_error(&self, error: Option<&str>) -> Option<String> {
        let error = error?;
        Some(if self.everything() {
            error.to_owned()
        } else {
            WITHHELD.to_owned()
        })
    }

    /// A plan's status message as this viewer is told it: a `failed`
    /// plan carries its reconcile's error ([`Sight::reconcile_error`]).
    pub fn status_message(&self, status: &super::state::PlanStatus) -> Option<String> {
        if status.state == super::state::PlanState::Failed {
            self.reconcile_error(status.message.as_deref())
        } else {
            status.message.clone()
        }
    }
}

/// What a team member is told instead of a reconcile's own error.
pub const WITHHELD: &str = "the last reconcile failed; its error may name other teams' plans, so only platform admins see it";

/// Routes that need no sign-in: probes, metrics, webhooks (HMAC),
/// static files, and signing in itself.
fn exempt(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/auth/login" | "/auth/callback" | "/auth/logout"
    ) || path.starts_with("/webhooks/")
        || path.starts_with("/static/")
}

/// Whether a browser asks for a page.
pub(super) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// An error answer: `{"error": message}`.
fn answer(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// 401 with the challenge a client reads.
fn unauthorized(message: &str, challenge: &'static str) -> Response {
    let mut r = answer(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

/// Puts the request's [`Viewer`] in its extensions (and [`SignedIn`]
/// when a person signed in), or answers for a request that needs a
/// credential and has none.
pub(super) async fn identify(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(oidc) = &app.auth else {
        request.extensions_mut().insert(Viewer::Everyone);
        return next.run(request).await;
    };
    if exempt(request.uri().path()) {
        // These handlers show no plan; should one ever ask, it sees none.
        request.extensions_mut().insert(Viewer::Member {
            subject: String::new(),
            groups: BTreeSet::new(),
        });
        return next.run(request).await;
    }
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let viewer = if let Some(token) = bearer {
        if super::api::bearer(&app, headers).is_ok() {
            request.extensions_mut().insert(Viewer::Everyone);
            return next.run(request).await;
        }
        let verified = oidc.verify(token.trim(), &oidc.settings.audience).await;
        match verified.and_then(|claims| oidc.viewer(&claims)) {
            Ok(v) => v,
            Err(oidc::AuthError::Issuer(e)) => return login::unavailable(&e),
            Err(e) => {
                tracing::info!(error = %e, "a bearer token was refused");
                return unauthorized(&format!("{e}"), "Bearer error=\"invalid_token\"");
            }
        }
    } else if let Some(v) = login::session(oidc, headers) {
        if !matches!(*request.method(), Method::GET | Method::HEAD)
            && !same_origin(headers, &oidc.settings.redirect_url)
        {
            return answer(
                StatusCode::FORBIDDEN,
                "a signed-in browser may write only from the board's own pages",
            );
        }
        v
    } else if request.method() == Method::GET && wants_html(headers) {
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let next: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", target)
            .finish();
        return match HeaderValue::from_str(&format!("/auth/login?{next}")) {
            Ok(to) => (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response(),
            Err(_) => answer(StatusCode::BAD_REQUEST, "not a page"),
        };
    } else {
        return unauthorized(
            "sign in: this request needs a bearer token or a session",
            "Bearer",
        );
    };
    // The MCP server answers about every plan: not for a team member.
    if request.uri().path() == "/mcp" && !matches!(viewer, Viewer::Everyone) {
        return answer(
            StatusCode::FORBIDDEN,
            "the MCP server shows every plan: platform admins and the API token only",
        );
    }
    request.extensions_mut().insert(SignedIn);
    request.extensions_mut().insert(viewer);
    next.run(request).await
}

/// A write from a browser carries its page's origin (every current
/// browser sends `Origin` on a POST); it must be the daemon's own, as
/// `redirect_url` names it. None sent: not a browser's cross-site form.
fn same_origin(headers: &HeaderMap, redirect_url: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    url::Url::parse(redirect_url).is_ok_and(|own| own.origin().ascii_serialization() == origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_sees_only_the_plans_its_groups_own() {
        let member = Viewer::Member {
            subject: "ana".into(),
            groups: ["team-permits".to_owned()].into(),
        };
        assert!(member.sees("team-permits"));
        assert!(!member.sees("team-docs"));
        assert!(Viewer::Everyone.sees("team-docs"));
    }
}
