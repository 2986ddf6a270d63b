//! The HTTP side of the Gitea and GitHub forges: one blocking client that
//! authenticates, honours rate limits, retries what is worth retrying and
//! reports the rest in one line that never holds the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ForgeError;
use crate::secret::{Scrubber, Secret};

/// How many times a request is sent at most.
const ATTEMPTS: u32 = 5;
/// The longest druppie waits before one retry, whatever the forge says.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The first backoff step; it doubles per attempt, with jitter.
const BACKOFF: Duration = Duration::from_millis(250);

/// A forge's REST API.
pub struct Api {
    client: reqwest::blocking::Client,
    base: String,
    /// `token X` (Gitea) or `Bearer X` (GitHub); never printed.
    auth: Option<HeaderValue>,
    /// Applied to every message made of what the forge said.
    scrubber: Scrubber,
    /// Sleeps between attempts (tests shorten it).
    pub wait: fn(Duration),
}

/// The HTTP client cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot set up HTTPS")]
    Tls(#[source] reqwest::Error),
    #[error("the forge token holds characters an HTTP header cannot carry")]
    TokenNotAHeader,
}

/// A request that did not succeed, after retries. Every text in it that
/// came from the forge or the network has been scrubbed of secrets.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The forge answered with an error status.
    #[error("{what}: {status}{hint}{said}{after}",
        hint = hint(*status, *limited),
        said = if said.is_empty() { String::new() } else { format!(": {said}") },
        after = after(*attempts))]
    Refused {
        /// `METHOD /path`.
        what: String,
        status: StatusCode,
        /// The forge's own message, one short line.
        said: String,
        /// A rate limit: a 429, or a 403 with the limit used up.
        limited: bool,
        attempts: u32,
    },
    /// No answer: connection, TLS or timeout.
    #[error("{what}: the forge cannot be reached: {cause}{after}", after = after(*attempts))]
    Unreachable {
        what: String,
        cause: String,
        attempts: u32,
    },
    /// A success whose body is not what the API describes.
    #[error("{what}: the forge's answer cannot be read: {cause}")]
    Unreadable {
        what: String,
        status: StatusCode,
        cause: String,
        /// The body was cut off (connection lost, timeout), not malformed.
        cut: bool,
    },
    /// A name that cannot be one segment of an API path.
    #[error("{name:?} cannot be a forge {what}: {reason}")]
    Name {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
}

impl RequestError {
    /// The forge error for `repo`.
    pub fn at(self, repo: &str) -> ForgeError {
        ForgeError::Api {
            repo: repo.to_owned(),
            error: self,
        }
    }

    /// The status the forge answered with, when it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            RequestError::Refused { status, .. } | RequestError::Unreadable { status, .. } => {
                Some(*status)
            }
            RequestError::Unreachable { .. } | RequestError::Name { .. } => None,
        }
    }

    /// Whether the same request may succeed later: a server error, a rate
    /// limit, no answer at all, or an answer cut off. 401, 403, 404, 409,
    /// 422 and other refusals are answers: asking again changes nothing.
    pub fn is_transient(&self) -> bool {
        match self {
            RequestError::Refused {
                status, limited, ..
            } => *limited || status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS,
            RequestError::Unreachable { .. } => true,
            RequestError::Unreadable { cut, .. } => *cut,
            RequestError::Name { .. } => false,
        }
    }
}

fn hint(status: StatusCode, limited: bool) -> &'static str {
    match status {
        _ if limited => " (the rate limit is used up; retried later)",
        StatusCode::UNAUTHORIZED => " (the token is missing, wrong or expired)",
        StatusCode::FORBIDDEN => " (the token lacks the permission)",
        StatusCode::NOT_FOUND => " (no such repo or pull request, or the token cannot see it)",
        _ => "",
    }
}

fn after(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// An API path built from segments, each percent-encoded, so that no name
/// can leave its segment: `a/b`, `?`, `#` and `%` are encoded, and a
/// segment that is empty, `.` or `..` (which URL parsers resolve away)
/// is refused.
///
/// # Errors
/// A segment is empty, `.` or `..`.
pub fn path<'s>(
    segments: impl IntoIterator<Item = (&'static str, &'s str)>,
) -> Result<String, RequestError> {
    let mut out = String::new();
    for (what, segment) in segments {
        let refuse = |reason| RequestError::Name {
            what,
            name: segment.to_owned(),
            reason,
        };
        match segment {
            "" => return Err(refuse("it is empty")),
            "." | ".." => return Err(refuse("`.` and `..` are not names")),
            _ => {}
        }
        out.push('/');
        out.push_str(&encode(segment));
    }
    Ok(out)
}

/// `path` with `params` as its query, each value percent-encoded.
pub fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    let mut out = path.to_owned();
    for (i, (k, v)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What to do after an answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Done,
    /// Try again after this long.
    Retry(Duration),
    /// Report it: retrying will not help.
    Fail,
}

impl Api {
    /// A client for the API at `base` (no trailing slash), authenticating
    /// with `scheme` and `token` as the `Authorization` value
    /// (`token X`, `Bearer X`); the token is added to `scrubber`.
    ///
    /// # Errors
    /// The TLS setup fails, or the token cannot be a header value.
    pub fn new(
        base: &str,
        auth: Option<(&str, &Secret)>,
        scrubber: Scrubber,
    ) -> Result<Api, SetupError> {
        // One TLS provider for the process; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("druppie/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(SetupError::Tls)?;
        let auth = auth
            .map(|(scheme, token)| {
                scrubber.add(token);
                let mut v = HeaderValue::from_str(&format!("{scheme} {}", token.expose()))
                    .map_err(|_| SetupError::TokenNotAHeader)?;
                v.set_sensitive(true);
                Ok::<_, SetupError>(v)
            })
            .transpose()?;
        Ok(Api {
            client,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            scrubber,
            wait: std::thread::sleep,
        })
    }

    /// Text with every secret the client knows scrubbed.
    pub fn scrub(&self, text: &str) -> String {
        self.scrubber.scrub(text).into_owned()
    }

    /// GETs `path` and decodes the JSON answer; `Ok(None)` on 404.
    ///
    /// # Errors
    /// Any other failure.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, RequestError> {
        match self.send::<(), T>(reqwest::Method::GET, path, None) {
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Sends `body` as JSON and decodes the JSON answer.
    ///
    /// # Errors
    /// The forge refuses, or cannot be reached after retries.
    pub fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, RequestError> {
        let (resp, what) = self.exchange(method, path, body)?;
        let status = resp.status();
        resp.json::<T>().map_err(|e| RequestError::Unreadable {
            what,
            status,
            cause: self.scrub(&cause(&e)),
            cut: e.is_timeout() || e.is_body() || e.is_request(),
        })
    }

    /// Sends `body` as JSON to an endpoint that answers with no content
    /// (`204`): whatever body comes back is not read.
    ///
    /// # Errors
    /// The forge refuses, or cannot be reached after retries.
    pub fn send_only<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), RequestError> {
        self.exchange(method, path, body).map(|_| ())
    }

    /// Sends the request, retrying what is worth retrying, until a
    /// success (returned with `METHOD /path`) or a failure to report.
    fn exchange<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(reqwest::blocking::Response, String), RequestError> {
        let url = format!("{}{path}", self.base);
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .client
                .request(method.clone(), &url)
                .header("accept", "application/json");
            if let Some(auth) = &self.auth {
                req = req.header("authorization", auth.clone());
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let (next, failure) = match req.send() {
                Ok(resp) => {
                    let status = resp.status();
                    let next = next(status, resp.headers(), attempt, now());
                    if next == Next::Done {
                        return Ok((resp, what));
                    }
                    let limited = limited(status, resp.headers());
                    let said = said(resp, &self.scrubber);
                    (
                        next,
                        RequestError::Refused {
                            what: what.clone(),
                            status,
                            said,
                            limited,
                            attempts: attempt,
                        },
                    )
                }
                Err(e) => (
                    if attempt < ATTEMPTS {
                        Next::Retry(backoff(attempt))
                    } else {
                        Next::Fail
                    },
                    RequestError::Unreachable {
                        what: what.clone(),
                        cause: self.scrub(&cause(&e)),
                        attempts: attempt,
                    },
                ),
            };
            match next {
                Next::Retry(wait) if attempt < ATTEMPTS => {
                    tracing::debug!("{failure}; retrying in {wait:?}");
                    (self.wait)(wait);
                }
                _ => return Err(failure),
            }
        }
    }
}

/// A 429, or a 403 saying the rate limit is used up.
fn limited(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && headers
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok())
                == Some("0"))
}

/// Decides what an answer means: success, a retry after a wait (5xx,
/// 429, or 403 with the rate limit used up), or a failure to report
/// (every other 4xx: 401, 404, 409, 422 are answers, not accidents).
pub fn next(status: StatusCode, headers: &HeaderMap, attempt: u32, now: u64) -> Next {
    if status.is_success() {
        return Next::Done;
    }
    if attempt >= ATTEMPTS {
        return Next::Fail;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let limited = limited(status, headers);
    if limited || status.is_server_error() {
        // The forge's own word first: retry-after (seconds), then the
        // rate-limit reset (epoch seconds).
        let told = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .or_else(|| {
                header("x-ratelimit-reset")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|_| limited)
                    .map(|reset| reset.saturating_sub(now).max(1))
            });
        return match told {
            Some(secs) if Duration::from_secs(secs) > MAX_WAIT => Next::Fail,
            Some(secs) => Next::Retry(Duration::from_secs(secs)),
            None if limited => Next::Retry(MAX_WAIT.min(backoff(attempt) * 4)),
            None => Next::Retry(backoff(attempt)),
        };
    }
    Next::Fail
}

/// Exponential backoff with full jitter, capped.
fn backoff(attempt: u32) -> Duration {
    let top = BACKOFF.saturating_mul(1 << attempt.min(8)).min(MAX_WAIT);
    let millis = u64::try_from(top.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(millis / 2 + fastrand::u64(0..=millis / 2))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The forge's own message from an error body (`{"message": …}`),
/// scrubbed of secrets (a forge may echo what it was sent), then cut to
/// one short line.
fn said(resp: reqwest::blocking::Response, scrubber: &Scrubber) -> String {
    let text = resp.text().unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("title"))
                .and_then(|m| m.as_str().map(str::to_owned))
        })
        .unwrap_or(text);
    let message = scrubber.scrub(&message);
    let line: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// A transport error's innermost cause, without the URL (which holds no
/// secret, but is already in the message's prefix).
fn cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else {
        source.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn success_is_done_and_client_errors_are_reported_not_retried() {
        let none = HeaderMap::new();
        assert_eq!(next(StatusCode::CREATED, &none, 1, 0), Next::Done);
        for s in [401, 404, 409, 422] {
            let s = StatusCode::from_u16(s).unwrap();
            assert_eq!(next(s, &none, 1, 0), Next::Fail, "{s}");
        }
        // A 403 without a used-up rate limit is a permission problem.
        let h = headers(&[("x-ratelimit-remaining", "12")]);
        assert_eq!(next(StatusCode::FORBIDDEN, &h, 1, 0), Next::Fail);
    }

    #[test]
    fn rate_limits_wait_as_long_as_the_forge_says() {
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            next(StatusCode::TOO_MANY_REQUESTS, &h, 1, 0),
            Next::Retry(Duration::from_secs(7))
        );
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1012"),
        ]);
        assert_eq!(
            next(StatusCode::FORBIDDEN, &h, 1, 1000),
            Next::Retry(Duration::from_secs(12))
        );
        // A reset further away than the cap is reported instead of slept.
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "4600"),
        ]);
        assert_eq!(next(StatusCode::FORBIDDEN, &h, 1, 1000), Next::Fail);
    }

    #[test]
    fn server_errors_back_off_with_jitter_up_to_a_cap_then_fail() {
        let none = HeaderMap::new();
        for attempt in 1..ATTEMPTS {
            let Next::Retry(wait) = next(StatusCode::BAD_GATEWAY, &none, attempt, 0) else {
                panic!("a 502 is retried");
            };
            let top = BACKOFF * (1 << attempt);
            assert!(wait >= top / 2 && wait <= top, "{wait:?} for {attempt}");
        }
        assert_eq!(
            next(StatusCode::SERVICE_UNAVAILABLE, &none, ATTEMPTS, 0),
            Next::Fail
        );
        assert!(backoff(30) <= MAX_WAIT);
    }

    #[test]
    fn a_name_never_leaves_its_path_segment() {
        let built = |name: &str| path([("repos", "repos"), ("owner", "platform"), ("repo", name)]);
        assert_eq!(built("infra").unwrap(), "/repos/platform/infra");
        assert_eq!(
            built("../../admin/users/x").unwrap(),
            "/repos/platform/..%2F..%2Fadmin%2Fusers%2Fx"
        );
        assert_eq!(built("a?b#c").unwrap(), "/repos/platform/a%3Fb%23c");
        assert_eq!(built("%2e%2e").unwrap(), "/repos/platform/%252e%252e");
        assert_eq!(
            built("a b\n\u{e9}").unwrap(),
            "/repos/platform/a%20b%0A%C3%A9"
        );
        for refused in ["", ".", ".."] {
            let e = built(refused).unwrap_err();
            assert!(matches!(e, RequestError::Name { what: "repo", .. }), "{e}");
            assert!(!e.is_transient());
        }
        // reqwest (the url crate) keeps every encoded segment as it is.
        let url = reqwest::Url::parse(&format!(
            "http://forge.example{}",
            built("../../admin/users/x?y#z").unwrap()
        ))
        .unwrap();
        assert_eq!(url.path_segments().unwrap().count(), 3, "{url}");
        assert_eq!(url.query(), None);
        assert_eq!(url.fragment(), None);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            with_query(
                "/p",
                &[("head", "platform:druppie/shop-prod"), ("page", "2")]
            ),
            "/p?head=platform%3Adruppie%2Fshop-prod&page=2"
        );
    }

    #[test]
    fn server_errors_rate_limits_and_lost_connections_are_transient_refusals_are_not() {
        let refused = |code: u16, limited: bool| RequestError::Refused {
            what: "GET /x".into(),
            status: StatusCode::from_u16(code).unwrap(),
            said: String::new(),
            limited,
            attempts: 1,
        };
        for code in [500, 502, 503, 429] {
            assert!(refused(code, false).is_transient(), "{code}");
        }
        assert!(refused(403, true).is_transient());
        for code in [400, 401, 403, 404, 409, 422] {
            assert!(!refused(code, false).is_transient(), "{code}");
        }
        let unreachable = RequestError::Unreachable {
            what: "GET /x".into(),
            cause: "connection refused".into(),
            attempts: 5,
        };
        assert!(unreachable.is_transient());
        assert_eq!(
            unreachable.to_string(),
            "GET /x: the forge cannot be reached: connection refused (after 5 attempts)"
        );
    }
}
