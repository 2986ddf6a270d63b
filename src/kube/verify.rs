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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::thread::{self, JoinHandle};

    use super::*;

    const WAIT: Duration = Duration::from_millis(10);

    /// A health endpoint on 127.0.0.1 that answers one connection per
    /// status in `statuses`, then stops listening; joins to the number of
    /// requests it answered.
    fn health_server(statuses: &[u16]) -> (String, JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let url = format!(
            "http://{}/healthz",
            listener.local_addr().expect("local address")
        );
        let statuses = statuses.to_vec();
        let server = thread::spawn(move || {
            let mut answered = 0;
            for status in statuses {
                let (stream, _) = listener.accept().expect("accept");
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                // The request line and headers end with an empty line.
                while reader.read_line(&mut line).expect("read request") > 2 {
                    line.clear();
                }
                let reply = format!(
                    "HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                reader
                    .get_mut()
                    .write_all(reply.as_bytes())
                    .expect("write reply");
                answered += 1;
            }
            answered
        });
        (url, server)
    }

    #[tokio::test]
    async fn verify_passes_on_a_2xx_answer() {
        let (url, server) = health_server(&[200]);
        let outcome = verify(&url, 3, WAIT).await;
        assert_eq!(outcome, Verification::Verified { status: 200 });
        assert_eq!(server.join().expect("server"), 1);
        let json = serde_json::to_value(&outcome).expect("serializable");
        assert_eq!(
            json,
            serde_json::json!({ "outcome": "verified", "status": 200 })
        );
    }

    #[tokio::test]
    async fn verify_retries_until_the_block_is_up() {
        let (url, server) = health_server(&[503, 200]);
        assert_eq!(
            verify(&url, 3, WAIT).await,
            Verification::Verified { status: 200 }
        );
        assert_eq!(server.join().expect("server"), 2);
    }

    #[tokio::test]
    async fn verify_fails_with_the_last_status_after_all_attempts() {
        let (url, server) = health_server(&[500, 500, 500]);
        let outcome = verify(&url, 3, WAIT).await;
        let expected = "answered 500 Internal Server Error (after 3 attempts)";
        assert_eq!(
            outcome,
            Verification::Failed {
                reason: expected.into()
            }
        );
        assert_eq!(server.join().expect("server"), 3);
    }

    #[tokio::test]
    async fn verify_fails_when_nothing_listens_and_keeps_credentials_out() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("http://probe:s3cret@127.0.0.1:{port}/healthz");
        let Verification::Failed { reason } = verify(&url, 2, WAIT).await else {
            panic!("nothing listens on port {port}");
        };
        assert!(reason.starts_with("request failed: "), "{reason}");
        assert!(
            reason.to_lowercase().contains("connection refused"),
            "{reason}"
        );
        assert!(reason.ends_with("(after 2 attempts)"), "{reason}");
        assert!(!reason.contains("s3cret"), "{reason}");
    }

    #[tokio::test]
    async fn verify_gives_up_at_once_on_an_invalid_url() {
        let outcome = verify("not a url", 5, Duration::from_secs(60)).await;
        let Verification::Failed { reason } = outcome else {
            panic!("an invalid URL cannot verify");
        };
        assert!(reason.starts_with("invalid URL"), "{reason}");
    }
}
