//! Signing in through the browser: the authorization-code flow with
//! PKCE (S256), its `state` and `nonce` held in a short-lived signed
//! cookie, and the session cookie it ends with (HttpOnly, SameSite=Lax,
//! Secure over https, signed over subject, groups and expiry).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::oidc::Oidc;
use super::seal::{Purpose, random_text};
use super::{Viewer, answer};
use crate::daemon::api::App;

/// How long a started sign-in may take.
const LOGIN_TTL: i64 = 600;
/// The largest session cookie: browsers keep 4 KiB per cookie.
const COOKIE_LIMIT: usize = 3800;

/// The session cookie's content.
#[derive(Debug, Serialize, Deserialize)]
struct Session {
    sub: String,
    groups: BTreeSet<String>,
    exp: i64,
}

/// A sign-in under way, until the issuer sends the browser back.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    next: String,
    exp: i64,
}

pub(in crate::daemon) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
}

/// A cookie's name: `__Host-` bound to this host over https.
fn name(oidc: &Oidc, base: &str) -> String {
    if secure(oidc) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

fn secure(oidc: &Oidc) -> bool {
    oidc.settings.redirect_url.starts_with("https://")
}

fn set_cookie(oidc: &Oidc, base: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(oidc) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        name(oidc, base)
    ))
    .expect("cookie values are base64url")
}

/// Every value of the cookie `name` the request carries.
fn cookies<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .collect()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The viewer of a valid, unexpired session cookie, if the request
/// carries one.
pub(super) fn session(oidc: &Oidc, headers: &HeaderMap) -> Option<Viewer> {
    let name = name(oidc, "druppie_session");
    cookies(headers, &name).into_iter().find_map(|value| {
        let s: Session = oidc.sealer.open(Purpose::Session, value)?;
        (s.exp > now()).then(|| oidc.viewer_of(s.sub, s.groups))
    })
}

/// A local path to go back to after signing in; anything else is `/`.
fn local(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control)
                && n.len() <= 2048 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// 404 for the sign-in routes of a daemon without `[server.auth]`.
fn not_configured() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        "sign-in is not configured ([server.auth] in druppie.toml)",
    )
}

fn redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => answer(StatusCode::BAD_REQUEST, "not a place to go back to"),
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// Sends the browser to the issuer, with a new state, nonce and PKCE
/// verifier in a signed cookie.
async fn login(State(app): State<Arc<App>>, Query(q): Query<LoginQuery>) -> Response {
    let Some(oidc) = &app.auth else {
        return not_configured();
    };
    let endpoints = match oidc.endpoints().await {
        Ok(e) => e,
        Err(e) => return unavailable(&e),
    };
    let pending = Pending {
        state: random_text(),
        nonce: random_text(),
        verifier: random_text(),
        next: local(q.next.as_deref()),
        exp: now() + LOGIN_TTL,
    };
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(pending.verifier.as_bytes()));
    let Ok(mut to) = url::Url::parse(&endpoints.authorization) else {
        return answer(
            StatusCode::BAD_GATEWAY,
            "the identity provider's authorization endpoint is not a URL",
        );
    };
    to.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &oidc.settings.client_id)
        .append_pair("redirect_uri", &oidc.settings.redirect_url)
        .append_pair("scope", "openid")
        .append_pair("state", &pending.state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let cookie = oidc.sealer.seal(Purpose::Login, &pending);
    let mut response = redirect(to.as_str());
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(oidc, "druppie_login", &cookie, LOGIN_TTL),
    );
    response
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The issuer sends the browser back: the state checked against the
/// cookie, the code exchanged, the ID token and its nonce verified, the
/// session cookie set.
async fn callback(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(oidc) = &app.auth else {
        return not_configured();
    };
    let again = "; start again at /auth/login";
    let pending = cookies(&headers, &name(oidc, "druppie_login"))
        .into_iter()
        .filter_map(|v| oidc.sealer.open::<Pending>(Purpose::Login, v))
        .find(|p| p.exp > now() && Some(&p.state) == q.state.as_ref());
    let Some(pending) = pending else {
        return answer(
            StatusCode::BAD_REQUEST,
            &format!("this sign-in was not started here, or took longer than 10 minutes{again}"),
        );
    };
    if let Some(error) = q.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return answer(
            StatusCode::UNAUTHORIZED,
            &format!("the identity provider did not sign you in ({error}){again}"),
        );
    }
    let Some(code) = q.code else {
        return answer(StatusCode::BAD_REQUEST, &format!("no code{again}"));
    };
    let id_token = match oidc.exchange(&code, &pending.verifier).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "the code exchange failed");
            return answer(
                StatusCode::BAD_GATEWAY,
                &format!("the identity provider did not exchange the code{again}"),
            );
        }
    };
    let claims = match oidc.verify(&id_token, &oidc.settings.client_id).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "an ID token was refused");
            return answer(
                StatusCode::UNAUTHORIZED,
                &format!("the ID token was refused: {e}{again}"),
            );
        }
    };
    if claims.all.get("nonce").and_then(|n| n.as_str()) != Some(pending.nonce.as_str()) {
        return answer(
            StatusCode::UNAUTHORIZED,
            &format!("the ID token does not carry this sign-in's nonce{again}"),
        );
    }
    let groups = match super::oidc::groups(&claims.all, &oidc.settings.groups_claim) {
        Ok(g) => g,
        Err(e) => return answer(StatusCode::UNAUTHORIZED, &e.to_string()),
    };
    let ttl = i64::try_from(oidc.settings.session_ttl.as_secs()).unwrap_or(i64::MAX);
    let session = Session {
        sub: claims.subject,
        groups,
        exp: now().saturating_add(ttl),
    };
    let value = oidc.sealer.seal(Purpose::Session, &session);
    if value.len() > COOKIE_LIMIT {
        return answer(
            StatusCode::UNAUTHORIZED,
            "your groups do not fit in a session cookie; sign in with a bearer token instead",
        );
    }
    tracing::info!(subject = %session.sub, groups = session.groups.len(), "signed in");
    let mut response = redirect(&pending.next);
    let set = response.headers_mut();
    set.append(
        header::SET_COOKIE,
        set_cookie(oidc, "druppie_session", &value, ttl),
    );
    set.append(header::SET_COOKIE, set_cookie(oidc, "druppie_login", "", 0));
    response
}

/// Ends the session: the cookie is cleared. A browser goes back to `/`.
async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(oidc) = &app.auth else {
        return not_configured();
    };
    let mut response = if super::wants_html(&headers) {
        redirect("/")
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(oidc, "druppie_session", "", 0),
    );
    response
}

/// The issuer cannot be used now: 503, the cause logged.
pub(super) fn unavailable(e: &super::oidc::IssuerError) -> Response {
    tracing::warn!(error = %crate::error::chain(e), "the identity provider cannot be used");
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "the identity provider cannot be reached; try again shortly",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(redirect_url: &str) -> Oidc {
        Oidc::new(super::super::Settings {
            issuer: "https://id.example.org".into(),
            client_id: "druppie".into(),
            client_secret: None,
            audience: "druppie".into(),
            groups_claim: "groups".into(),
            admin_group: "platform-admins".into(),
            redirect_url: redirect_url.into(),
            session_ttl: std::time::Duration::from_secs(3600),
            session_secret: None,
        })
        .expect("a client")
    }

    fn carrying(name: &str, oidc: &Oidc, session: &Session) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = oidc.sealer.seal(Purpose::Session, session);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {name}={value}")).expect("ascii"),
        );
        headers
    }

    #[test]
    fn a_session_is_its_holders_until_it_expires_and_an_admin_sees_everything() {
        let oidc = oidc("https://druppie.example.org/auth/callback");
        let name = "__Host-druppie_session";
        let session = |groups: &[&str], exp: i64| Session {
            sub: "ana".into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            exp,
        };
        let member = carrying(name, &oidc, &session(&["team-permits"], now() + 60));
        assert_eq!(
            super::session(&oidc, &member),
            Some(Viewer::Member {
                subject: "ana".into(),
                groups: ["team-permits".to_owned()].into()
            })
        );
        let admin = carrying(name, &oidc, &session(&["platform-admins"], now() + 60));
        assert_eq!(super::session(&oidc, &admin), Some(Viewer::Everyone));
        let expired = carrying(name, &oidc, &session(&["team-permits"], now() - 1));
        assert_eq!(super::session(&oidc, &expired), None);
        // Over https the cookie is bound to the host: a plain name is not read.
        let plain = carrying(
            "druppie_session",
            &oidc,
            &session(&["team-permits"], now() + 60),
        );
        assert_eq!(super::session(&oidc, &plain), None);
        let cookie = set_cookie(&oidc, "druppie_session", "v", 60);
        assert_eq!(
            cookie.to_str().expect("ascii"),
            "__Host-druppie_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
    }

    #[test]
    fn only_a_local_path_is_a_place_to_go_back_to() {
        for (given, want) in [
            (Some("/plans/permits?x=1"), "/plans/permits?x=1"),
            (Some("//evil.example.org/"), "/"),
            (Some("/\\evil.example.org"), "/"),
            (Some("https://evil.example.org/"), "/"),
            (Some("/\r\nSet-Cookie: x"), "/"),
            (Some("evil"), "/"),
            (None, "/"),
        ] {
            assert_eq!(local(given), want, "{given:?}");
        }
    }
}
