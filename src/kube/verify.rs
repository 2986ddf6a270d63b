//! Post-deploy verification: does a block answer on its health URL?

use std::error::Error as _;
use std::time::Duration;

use serde::Serialize;

/// How long one health request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verification {
    /// The URL answered with this 2xx status.
    Verified { status: u16 },
    /// Every attempt failed; `reason` is the last attempt's error or status.
    Failed { reason: String },
}

/// Post-deploy verification: GETs `url` until it answers 2xx, at most
/// `attempts` times (at least once), waiting `wait` between attempts.
///
/// Each request may take up to ten seconds. Redirects are followed. The
/// reason of a failure leaves out the URL, which the caller knows and which
/// may hold credentials.
///
/// # Guarantees
/// Never panics and never returns early with an error: every failure,
/// including an invalid URL, is a [`Verification::Failed`].
pub async fn verify(url: &str, attempts: u32, wait: Duration) -> Verification {
    super::install_ring();
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => return failed(format!("cannot build an HTTP client: {}", chain(e))),
    };
    let attempts = attempts.max(1);
    let mut last = String::new();
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(wait).await;
        }
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => {
                return Verification::Verified {
                    status: response.status().as_u16(),
                };
            }
            Ok(response) => last = format!("answered {}", response.status()),
            // An unusable URL will not get better by asking again.
            Err(e) if e.is_builder() => return failed(format!("invalid URL: {}", chain(e))),
            Err(e) if e.is_timeout() => {
                last = format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())
            }
            Err(e) => last = format!("request failed: {}", chain(e)),
        }
    }
    let tries = if attempts == 1 { "attempt" } else { "attempts" };
    failed(format!("{last} (after {attempts} {tries})"))
}

fn failed(reason: String) -> Verification {
    Verification::Failed { reason }
}

/// The error's messages from outermost to innermost, without the URL.
fn chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
