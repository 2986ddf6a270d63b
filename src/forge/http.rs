//! The HTTP side of the Gitea and GitHub forges: one blocking client that
//! authenticates, honours rate limits, retries what is worth retrying and
//! reports the rest in one line that never holds the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ForgeError;

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
    /// Sleeps between attempts (tests shorten it).
    pub wait: fn(Duration),
}

/// An answer that is not a success, after retries.
#[derive(Debug)]
pub struct Failure {
    pub status: Option<StatusCode>,
    pub message: String,
}

impl Failure {
    /// The forge error for `repo`.
    pub fn at(self, repo: &str) -> ForgeError {
        ForgeError {
            repo: repo.to_owned(),
            message: self.message,
        }
    }
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
    /// with `auth` as the whole `Authorization` value.
    ///
    /// # Errors
    /// The TLS setup fails, or the token cannot be a header value.
    pub fn new(base: &str, auth: Option<String>) -> Result<Api, String> {
        // One TLS provider for the process; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .user_agent(concat!("druppie/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot set up HTTPS: {e}"))?;
        let auth = auth
            .map(|a| {
                let mut v = HeaderValue::from_str(&a)
                    .map_err(|_| "the forge token holds characters a header cannot".to_owned())?;
                v.set_sensitive(true);
                Ok::<_, String>(v)
            })
            .transpose()?;
        Ok(Api {
            client,
            base: base.trim_end_matches('/').to_owned(),
            auth,
            wait: std::thread::sleep,
        })
    }

    /// GETs `path` and decodes the JSON answer; `Ok(None)` on 404.
    ///
    /// # Errors
    /// Any other failure.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, Failure> {
        match self.send::<(), T>(reqwest::Method::GET, path, None) {
            Err(Failure {
                status: Some(StatusCode::NOT_FOUND),
                ..
            }) => Ok(None),
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
    ) -> Result<T, Failure> {
        let url = format!("{}{path}", self.base);
        let what = format!("{method} {path}");
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
                        return resp.json::<T>().map_err(|e| Failure {
                            status: Some(status),
                            message: format!("{what}: the forge's answer cannot be read: {e}"),
                        });
                    }
                    let said = said(resp);
                    (
                        next,
                        Failure {
                            status: Some(status),
                            message: refusal(&what, status, &said),
                        },
                    )
                }
                Err(e) => (
                    if attempt < ATTEMPTS {
                        Next::Retry(backoff(attempt))
                    } else {
                        Next::Fail
                    },
                    Failure {
                        status: None,
                        message: format!("{what}: the forge cannot be reached: {}", cause(&e)),
                    },
                ),
            };
            match next {
                Next::Retry(wait) if attempt < ATTEMPTS => {
                    tracing::debug!("{}; retrying in {wait:?}", failure.message);
                    (self.wait)(wait);
                }
                _ => {
                    let mut failure = failure;
                    if attempt > 1 {
                        failure
                            .message
                            .push_str(&format!(" (after {attempt} attempts)"));
                    }
                    return Err(failure);
                }
            }
        }
    }
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
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && header("x-ratelimit-remaining") == Some("0"));
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

/// The forge's own message from an error body (`{"message": …}`), cut
/// to one short line.
fn said(resp: reqwest::blocking::Response) -> String {
    let text = resp.text().unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("title"))
                .and_then(|m| m.as_str().map(str::to_owned))
        })
        .unwrap_or(text);
    let line: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn refusal(what: &str, status: StatusCode, said: &str) -> String {
    let hint = match status {
        StatusCode::UNAUTHORIZED => " (the token is missing, wrong or expired)",
        StatusCode::FORBIDDEN => " (the token lacks the permission)",
        StatusCode::NOT_FOUND => " (no such repo or pull request, or the token cannot see it)",
        _ => "",
    };
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    format!("{what}: {status}{hint}{said}")
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
}
