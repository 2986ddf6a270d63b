//! `druppie serve`: the daemon. Triggers (webhooks, polling, a file
//! watch on a local checkout) feed a queue; one worker thread reconciles
//! coalesced batches through the same pipeline as `druppie apply`; an
//! HTTP API shows what it knows. A chat request (`/v1/chat/completions`)
//! is a job for the same worker, run between reconciles, so the planner
//! never races a reconcile on the clones. It keeps no state of its own:
//! after a restart the first reconcile rebuilds everything from git.
//!
//! ```text
//! webhook ─┐
//! poll ────┼─> queue ─> worker (reconcile) ─> Shared ─> HTTP API, SSE
//! watch ───┘     ▲         (chat jobs)
//! chat ──────────┘
//! ```

pub(crate) mod api;
pub mod auth;
mod catalog;
pub(crate) mod chat;
mod check;
mod cluster;
pub(crate) mod dry_run;
mod election;
mod freight;
pub(crate) mod journal;
mod last;
pub mod memory;
mod metrics;
pub mod notify;
mod promote;
mod queue;
mod reconcile;
mod server;
mod settle;
mod source;
pub(crate) mod state;
mod stream;
mod watch;
pub mod webhook;
mod worker;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use api::{BODY_LIMIT, ROUTES};
pub use chat::Settings as ChatSettings;
pub use check::{
    CheckError, Open as CheckOpen, Passed as CheckPassed, Render as CheckRender, RenderCheck,
};
pub use election::{Election, MAX_SHARDS};
pub use reconcile::Reconciler;
pub use server::{Limits, LimitsError};
pub use source::{Revision, SpecSource};
pub use state::{Event, PlanState, PlanStatus};

use crate::secret::{Scrubber, Secret};

/// How the daemon listens and polls.
#[derive(Debug)]
pub struct Options {
    pub listen: String,
    pub poll: Duration,
    /// The first wait before a transiently failed reconcile is tried
    /// again, and the longest (the waits double in between).
    pub retry: (Duration, Duration),
    /// The HTTP server's timeouts and connection cap.
    pub limits: Limits,
    /// Scrubs every configured secret from what the API serves.
    pub scrubber: Scrubber,
    /// Webhooks must be signed with it; without one they are not checked.
    pub webhook_secret: Option<Secret>,
    /// Write requests to the API must carry it as a bearer token;
    /// without one they are refused.
    pub api_token: Option<Secret>,
    /// Where the cluster's credentials are; `None`: no cluster.
    pub cluster: Option<crate::kube::Source>,
    /// This replica's name and namespace, for the leader Lease.
    pub identity: String,
    pub namespace: String,
    /// How replicas share the work (with a cluster).
    pub election: Election,
    /// What `/mcp` offers beyond reading (`[mcp]`).
    pub mcp: crate::mcp::Options,
    /// The board checks the audit trail's signatures with these
    /// (`[signing] allowed_signers`); without, it shows them unchecked.
    pub allowed_signers: Option<crate::git::sign::AllowedSigners>,
    /// The chat API's view of the configuration.
    pub chat: ChatSettings,
    /// Sign-in (`[server.auth]`); `None`: every request sees everything.
    pub auth: Option<auth::Settings>,
    /// Where events are sent (`[[notify]]`).
    pub notify: Vec<notify::Sink>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot make the identity provider's HTTP client")]
    Auth(#[source] reqwest::Error),
    #[error(transparent)]
    Notify(#[from] notify::SinkError),
}

/// Serves until SIGTERM or SIGINT, then lets the reconcile in flight
/// finish and returns.
///
/// # Errors
/// The address cannot be bound, the runtime cannot start, or a sink's
/// HTTP client cannot be made.
pub fn serve(mut reconciler: Reconciler, mut options: Options) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let auth = match options.auth.clone() {
        Some(settings) => {
            if settings.session_secret.is_none() {
                tracing::warn!(
                    "sessions are signed with a key made at start: they end when the daemon restarts (set the variable [server.auth] session_secret_env names to keep them)"
                );
            }
            tracing::info!(issuer = %settings.issuer, "sign-in required");
            Some(Arc::new(auth::Oidc::new(settings).map_err(Error::Auth)?))
        }
        None => None,
    };
    let shared = Arc::new(state::Shared::new());
    let spec = (
        reconciler.source.name(),
        reconciler.source.branch().to_owned(),
    );
    let spec_root = reconciler.source.root().to_owned();
    let local = matches!(reconciler.source, SpecSource::Local(_));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&options.listen))
        .map_err(|source| Error::Listen {
            addr: options.listen.clone(),
            source,
        })?;
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let limits = Limits {
        max_connections: server::fit_connections(options.limits.max_connections),
        ..options.limits.clone()
    };
    let leader = election::connect(&runtime, &options, &mut reconciler, &shared);
    notify::start(
        runtime.handle(),
        &shared,
        std::mem::take(&mut options.notify),
        &options.scrubber,
    )?;
    shared.queue.push(queue::Trigger::Start);
    let worker = {
        let shared = shared.clone();
        let retry = options.retry;
        std::thread::Builder::new()
            .name("druppie-reconcile".into())
            .spawn(move || {
                worker::run(&reconciler, &shared, worker::Backoff::new(retry.0, retry.1))
            })
            .expect("a thread can be started")
    };
    if options.webhook_secret.is_none() {
        tracing::warn!("webhooks are not authenticated: no webhook secret is set");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app = Arc::new(api::App {
        streams: Arc::new(tokio::sync::Semaphore::new(stream::stream_slots(
            limits.max_connections,
        ))),
        shared: shared.clone(),
        secret: options.webhook_secret,
        api_token: options.api_token,
        scrubber: options.scrubber.clone(),
        spec,
        spec_root: spec_root.clone(),
        seen: Mutex::new(webhook::Seen::new(10_000)),
        stopping: stop_rx,
        // SSE's usual 15 s, or more often when the idle timeout is short.
        keep_alive: (limits.idle_timeout / 2).min(Duration::from_secs(15)),
        mcp: options.mcp,
        allowed_signers: options.allowed_signers,
        verdicts: crate::audit::Verdicts::default(),
        trail_read: tokio::sync::Mutex::new(()),
        chat: Arc::new(chat::Chat::new(
            options.chat,
            options.scrubber.clone(),
            limits.request_timeout,
        )),
        auth,
    });
    runtime.block_on(async {
        let _watcher = if local {
            match watch::start(&spec_root, shared.clone()) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch the spec checkout; polling only");
                    None
                }
            }
        } else {
            None
        };
        let poller = {
            let shared = shared.clone();
            let every = options.poll;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    shared.queue.push(queue::Trigger::Poll);
                }
            })
        };
        let addr = addr.map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(
            addr = %addr,
            poll = ?options.poll,
            retry_backoff = ?options.retry.0,
            retry_backoff_max = ?options.retry.1,
            header_timeout = ?limits.header_timeout,
            idle_timeout = ?limits.idle_timeout,
            request_timeout = ?limits.request_timeout,
            max_connections = limits.max_connections,
            "listening"
        );
        server::serve(listener, api::router(app), &limits, async move {
            stopped().await;
            tracing::info!("stopping: finishing the reconcile in flight");
            let _ = stop_tx.send(true);
        })
        .await;
        poller.abort();
        // The Leases are renewed until the reconcile in flight ended,
        // and only then given back: no other replica starts on its
        // plans while it still writes.
        shared.queue.stop();
        let _ = tokio::task::spawn_blocking(move || worker.join()).await;
        if let Some((task, leases)) = leader {
            task.abort();
            if let Err(e) = leases.release().await {
                tracing::warn!(error = %e, "giving the Leases back");
            }
        }
    });
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// A duration in druppie.toml that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("`{0}` is not a duration like 30s, 5m or 500ms")]
    Syntax(String),
    #[error("`{0}`: the interval must be more than zero")]
    Zero(String),
}

/// Parses a duration as `druppie.toml` writes it: `500ms`, `30s`, `5m`,
/// `1h`, `1h30m` (read by [`crate::when::span`]); a bare number is
/// seconds.
///
/// # Errors
/// Not a span of time, or zero.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let d = match t.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => crate::when::span(t).ok_or_else(|| DurationError::Syntax(text.to_owned()))?,
    };
    if d.is_zero() {
        return Err(DurationError::Zero(text.to_owned()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_config_writes_them() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("1 month").is_err());
    }
}
