//! Notifications: the daemon's events sent to HTTP sinks (`[[notify]]`)
//! as CloudEvents or as a Slack- and Teams-compatible line.
//!
//! Each sink has two tasks: one reads the event stream and queues what
//! the sink wants, one sends the queue in order. Neither can hold a
//! reconcile up: the stream never waits for a reader (one that falls
//! behind loses the oldest events, counted), and the queue is bounded
//! (when full, the oldest waiting notification is dropped, counted).
//! A sink that hangs costs its own timeout, nothing else.
//!
//! ```text
//! Shared::emit ─> journal ─┬─> SSE clients
//!                          └─> per sink: listen (map, filter, write) ─> queue ─> send (retries)
//! ```

mod deliver;
mod notice;
mod payload;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::broadcast;

pub use notice::{Mapper, Notice};

use super::journal::Stamped;
use super::state::Shared;
use crate::config::Notify;
use crate::secret::{Scrubber, Secret};

/// One sink: its settings and its URL.
#[derive(Debug, Clone)]
pub struct Sink {
    pub settings: Notify,
    pub url: Secret,
}

/// A sink that cannot be used. Never carries the URL.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("[[notify]] `{name}`: the variable {var} does not hold an http:// or https:// URL")]
    NotUrl { name: String, var: String },
    #[error("[[notify]] `{name}`: cannot make its HTTP client")]
    Client {
        name: String,
        #[source]
        source: reqwest::Error,
    },
}

impl Sink {
    /// A sink whose URL (read from `settings.url_env`) is `url`.
    ///
    /// # Errors
    /// The URL is not an absolute http(s) URL.
    pub fn new(settings: Notify, url: Secret) -> Result<Sink, SinkError> {
        let parsed = reqwest::Url::parse(url.expose()).ok();
        if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
            return Err(SinkError::NotUrl {
                name: settings.name.clone(),
                var: settings.url_env.clone(),
            });
        }
        Ok(Sink { settings, url })
    }

    fn client(&self) -> Result<reqwest::Client, SinkError> {
        // The one TLS provider druppie links (ring); installing it again
        // is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(self.settings.timeout.0)
            .connect_timeout(self.settings.timeout.0)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("druppie/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| SinkError::Client {
                name: self.settings.name.clone(),
                source,
            })
    }
}

/// The parts of a sink URL that are secret on their own: the URL, its
/// path and query (a Slack or Teams webhook's token is its path), and
/// its password.
pub fn secret_parts(url: &Secret) -> Vec<Secret> {
    let mut parts = vec![url.clone()];
    if let Ok(u) = reqwest::Url::parse(url.expose()) {
        let mut tail = u.path().to_owned();
        if let Some(q) = u.query() {
            tail.push('?');
            tail.push_str(q);
        }
        // A bare `/` or `/hook` says nothing; a token path does.
        if tail.len() >= 8 {
            parts.push(Secret::new(tail));
        }
        if let Some(p) = u.password() {
            parts.push(Secret::new(p));
        }
    }
    parts
}

/// A notification written for its sink, waiting to be sent.
struct Queued {
    event_id: String,
    kind: &'static str,
    /// When the event happened, for the delivery's latency.
    at: Instant,
    body: payload::Body,
}

/// A bounded queue that drops its oldest entry when full.
struct Queue {
    items: Mutex<VecDeque<Queued>>,
    capacity: usize,
    ready: tokio::sync::Notify,
}

impl Queue {
    /// Adds `item`; returns whether an older one was dropped for it.
    fn push(&self, item: Queued) -> (bool, usize) {
        let mut items = self.items.lock().expect("queue lock");
        let dropped = items.len() >= self.capacity && items.pop_front().is_some();
        items.push_back(item);
        let len = items.len();
        drop(items);
        self.ready.notify_one();
        (dropped, len)
    }

    async fn pop(&self) -> (Queued, usize) {
        loop {
            {
                let mut items = self.items.lock().expect("queue lock");
                if let Some(item) = items.pop_front() {
                    return (item, items.len());
                }
            }
            self.ready.notified().await;
        }
    }
}

/// Starts every sink's tasks on `runtime`, subscribed now, so that no
/// event emitted after this returns is missed.
///
/// # Errors
/// A sink's HTTP client cannot be made.
pub fn start(
    runtime: &tokio::runtime::Handle,
    shared: &Arc<Shared>,
    sinks: Vec<Sink>,
    scrubber: &Scrubber,
) -> Result<(), SinkError> {
    for sink in sinks {
        let client = sink.client()?;
        let sink = Arc::new(sink);
        let queue = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            capacity: sink.settings.queue,
            ready: tokio::sync::Notify::new(),
        });
        let rx = shared.events.subscribe();
        shared.metrics.notification_queue(&sink.settings.name, 0);
        tracing::info!(
            sink = %sink.settings.name,
            format = ?sink.settings.format,
            events = ?sink.settings.events,
            "notifications on"
        );
        runtime.spawn(listen(
            rx,
            sink.clone(),
            queue.clone(),
            shared.clone(),
            scrubber.clone(),
        ));
        runtime.spawn(send(client, sink, queue, shared.clone()));
    }
    Ok(())
}

/// Reads the event stream and queues what `sink` wants.
async fn listen(
    mut rx: broadcast::Receiver<Arc<Stamped>>,
    sink: Arc<Sink>,
    queue: Arc<Queue>,
    shared: Arc<Shared>,
    scrubber: Scrubber,
) {
    let name = &sink.settings.name;
    let mut mapper = Mapper::default();
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(sink = %name, missed = n, "notifications fell behind the events");
                shared.metrics.notification(name, "dropped", n);
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(notice) = mapper.map(&event.event) else {
            continue;
        };
        if !notice.wanted_by(&sink.settings) {
            continue;
        }
        let body = payload::body(
            sink.settings.format,
            &sink.settings.source,
            &event,
            &notice,
            &scrubber,
        );
        let (dropped, waiting) = queue.push(Queued {
            event_id: event.id.to_string(),
            kind: notice.kind.name(),
            at: Instant::now(),
            body,
        });
        if dropped {
            tracing::warn!(sink = %name, "notification queue full: the oldest waiting was dropped");
            shared.metrics.notification(name, "dropped", 1);
        }
        shared.metrics.notification_queue(name, waiting);
    }
}

/// Sends the queue in order, one notification at a time.
async fn send(client: reqwest::Client, sink: Arc<Sink>, queue: Arc<Queue>, shared: Arc<Shared>) {
    let name = &sink.settings.name;
    loop {
        let (item, waiting) = queue.pop().await;
        shared.metrics.notification_queue(name, waiting);
        let done = deliver::deliver(
            &client,
            &sink.url,
            &item.body,
            sink.settings.attempts,
            sink.settings.backoff.0,
            |why| {
                tracing::info!(sink = %name, event_id = %item.event_id, error = %why, "notification retried");
                shared.metrics.notification(name, "retried", 1);
            },
        )
        .await;
        let latency_ms = item.at.elapsed().as_millis() as u64;
        shared.metrics.notification(name, done.result(), 1);
        match &done {
            deliver::Delivered::Yes { attempts } => tracing::info!(
                sink = %name,
                event_id = %item.event_id,
                kind = item.kind,
                attempts,
                latency_ms,
                "notification delivered"
            ),
            deliver::Delivered::Refused { status } => tracing::warn!(
                sink = %name,
                event_id = %item.event_id,
                kind = item.kind,
                status,
                "notification refused by the sink; not retried"
            ),
            deliver::Delivered::GaveUp { attempts, last } => tracing::warn!(
                sink = %name,
                event_id = %item.event_id,
                kind = item.kind,
                attempts,
                error = %last,
                "notification not delivered"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Notify {
        toml::from_str("name = \"slack\"\nurl_env = \"SLACK_URL\"\n").expect("settings")
    }

    #[test]
    fn a_sink_url_must_be_http_and_the_error_never_shows_it() {
        for bad in [
            "hooks.slack.com/services/T/B/tok-123",
            "file:///etc/passwd",
            "ftp://x/tok-123",
        ] {
            let e = Sink::new(settings(), Secret::new(bad)).expect_err(bad);
            let text = crate::error::chain(&e);
            assert!(
                !text.contains("tok-123") && !text.contains("passwd"),
                "{text}"
            );
            assert!(text.contains("SLACK_URL"), "{text}");
        }
        assert!(
            Sink::new(
                settings(),
                Secret::new("https://hooks.slack.com/services/T/B/x")
            )
            .is_ok()
        );
    }

    #[test]
    fn the_path_of_a_webhook_url_is_secret_too() {
        let parts = secret_parts(&Secret::new(
            "https://u:pw-123@hooks.example.org/services/T0/B0/tok?x=1",
        ));
        let shown: Vec<&str> = parts.iter().map(Secret::expose).collect();
        assert_eq!(
            shown,
            [
                "https://u:pw-123@hooks.example.org/services/T0/B0/tok?x=1",
                "/services/T0/B0/tok?x=1",
                "pw-123"
            ]
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest() {
        let q = Queue {
            items: Mutex::new(VecDeque::new()),
            capacity: 2,
            ready: tokio::sync::Notify::new(),
        };
        let item = |id: &str| Queued {
            event_id: id.into(),
            kind: "applied",
            at: Instant::now(),
            body: payload::Body {
                content_type: "application/json",
                bytes: Vec::new(),
            },
        };
        assert_eq!(q.push(item("1")), (false, 1));
        assert_eq!(q.push(item("2")), (false, 2));
        assert_eq!(q.push(item("3")), (true, 2));
        assert_eq!(q.pop().await.0.event_id, "2");
        assert_eq!(q.pop().await.0.event_id, "3");
    }
}
