//! Sending one body to one sink: retried with exponential backoff and
//! jitter on a connection error, a timeout, a 5xx or a 429 (waiting as
//! `Retry-After` says, up to [`MAX_BACKOFF`]); any other answer but a
//! 2xx is final. Nothing here names the sink's URL: errors are shown
//! `without_url()`.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};

use super::payload::Body;
use crate::config::MAX_BACKOFF;
use crate::secret::Secret;

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// A 2xx, after this many attempts.
    Yes { attempts: u32 },
    /// An answer that retrying cannot change (a 4xx other than 429, a
    /// redirect).
    Refused { status: u16 },
    /// Every attempt failed; the last error.
    GaveUp { attempts: u32, last: String },
}

impl Delivered {
    /// The metric's `result` label.
    pub fn result(&self) -> &'static str {
        match self {
            Delivered::Yes { .. } => "delivered",
            Delivered::Refused { .. } => "refused",
            Delivered::GaveUp { .. } => "failed",
        }
    }
}

/// One attempt's answer.
enum Attempt {
    Done,
    Final(u16),
    /// Worth another try; the server's wait, when it gave one.
    Again(String, Option<Duration>),
}

/// Posts `body` to `url` up to `attempts` times; `retried` is called
/// before each wait.
pub async fn deliver(
    client: &reqwest::Client,
    url: &Secret,
    body: &Body,
    attempts: u32,
    backoff: Duration,
    mut retried: impl FnMut(&str),
) -> Delivered {
    let mut last = String::new();
    for attempt in 1..=attempts {
        match once(client, url, body).await {
            Attempt::Done => return Delivered::Yes { attempts: attempt },
            Attempt::Final(status) => return Delivered::Refused { status },
            Attempt::Again(why, asked) => {
                if attempt < attempts {
                    retried(&why);
                    let wait = asked.map_or_else(|| wait(backoff, attempt), |a| a.min(MAX_BACKOFF));
                    tokio::time::sleep(wait).await;
                }
                last = why;
            }
        }
    }
    Delivered::GaveUp { attempts, last }
}

async fn once(client: &reqwest::Client, url: &Secret, body: &Body) -> Attempt {
    let sent = client
        .post(url.expose())
        .header(CONTENT_TYPE, body.content_type)
        .body(body.bytes.clone())
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let status = answer.status();
            if status.is_success() {
                Attempt::Done
            } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                let asked = retry_after(answer.headers(), jiff::Timestamp::now());
                Attempt::Again(format!("the sink answered {}", status.as_u16()), asked)
            } else {
                Attempt::Final(status.as_u16())
            }
        }
        Err(e) => Attempt::Again(crate::error::chain(&e.without_url()), None),
    }
}

/// The wait before attempt `attempt + 1`: `first` doubled per attempt
/// made, at most [`MAX_BACKOFF`], drawn between half and all of it.
fn wait(first: Duration, attempt: u32) -> Duration {
    let full = first
        .saturating_mul(1 << (attempt - 1).min(20))
        .min(MAX_BACKOFF);
    full.mul_f64(0.5 + fastrand::f64() / 2.0)
}

/// `Retry-After` in seconds or as an HTTP date, from `now`.
fn retry_after(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(text)
        .ok()?;
    let until = at.duration_since(now);
    Some(Duration::try_from(until).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, value.parse().expect("a header value"));
        h
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now: jiff::Timestamp = "2026-12-05T01:00:00Z".parse().expect("time");
        assert_eq!(
            retry_after(&headers("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&headers("Sat, 05 Dec 2026 01:00:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&headers("Sat, 05 Dec 2026 00:59:00 GMT"), now),
            Some(Duration::ZERO),
            "a date gone by: at once"
        );
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn waits_double_with_jitter_up_to_the_cap() {
        let first = Duration::from_millis(100);
        for attempt in 1..=4 {
            let full = first * (1 << (attempt - 1));
            let w = wait(first, attempt);
            assert!(w >= full / 2 && w <= full, "{attempt}: {w:?}");
        }
        assert!(wait(first, 30) <= MAX_BACKOFF);
    }
}
