//! The HTTP server under the API and the webhooks: a tokio accept loop
//! over hyper's HTTP/1 connections, with the limits a server that takes
//! webhooks from the internet needs. A hostile client cannot hold a
//! connection by sending its request slowly (the header timeout), by
//! keeping it open and silent (the header and idle timeouts), or by
//! sending a body slowly (the request timeout), and cannot exhaust file
//! descriptors (at most `max_connections` are served; further ones wait
//! in the listen queue). An accept error (out of descriptors, memory)
//! backs off instead of spinning.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config;

/// How long open connections get to finish after a stop.
const GRACE: Duration = Duration::from_secs(10);
/// Descriptors kept free of connections: repos, git's pipes, the watch.
const RESERVED_FDS: u64 = 256;
/// The longest pause after failed accepts.
const ACCEPT_BACKOFF_CAP: Duration = Duration::from_secs(1);
/// After its answer, a connection reads and drops what the client still
/// sends (a body refused unread) for this long at most, or this many
/// bytes, so the client reads the answer instead of a reset.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 8 << 20;

/// The server's timeouts and connection cap (`[server]` in druppie.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

/// A `[server]` setting that cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("[server] {key}: {error}")]
    Duration {
        key: &'static str,
        error: super::DurationError,
    },
    #[error("[server] max_connections must be at least 1")]
    NoConnections,
}

impl Limits {
    /// The limits `[server]` sets.
    ///
    /// # Errors
    /// A timeout is not a duration, or no connection is allowed.
    pub fn from_config(server: &config::Server) -> Result<Limits, LimitsError> {
        let duration = |key, text: &str| {
            super::parse_duration(text).map_err(|error| LimitsError::Duration { key, error })
        };
        if server.max_connections == 0 {
            return Err(LimitsError::NoConnections);
        }
        Ok(Limits {
            header_timeout: duration("header_timeout", &server.header_timeout)?,
            idle_timeout: duration("idle_timeout", &server.idle_timeout)?,
            request_timeout: duration("request_timeout", &server.request_timeout)?,
            max_connections: server.max_connections,
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from_config(&config::Server::default()).expect("the defaults are valid")
    }
}

/// Raises this process's soft limit on open files to its hard limit, and
/// returns the connections that fit under it: `wanted`, or fewer when the
/// limit leaves less room (which is logged).
pub fn fit_connections(wanted: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
        }
    }
    let Some(soft) = getrlimit(Resource::Nofile).current else {
        return wanted;
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
    if room < wanted {
        tracing::warn!(
            max_connections = wanted,
            open_files = soft,
            serving = room,
            "the open-files limit leaves room for fewer connections than [server] max_connections"
        );
    }
    wanted.min(room)
}

/// Serves `router` on `listener` until `stop` resolves; then stops
/// accepting, lets every connection finish what it is doing (an idle one
/// closes at once) and waits up to [`GRACE`] for them.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let service = TowerToHyperService::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut backoff = Duration::ZERO;
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut stop => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                stream
            }
            // The client gave up before it was accepted: nothing to fix.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                continue;
            }
            // Out of descriptors or memory: wait for some to be freed.
            Err(e) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), ACCEPT_BACKOFF_CAP);
                tracing::warn!(error = %e, retry_in = ?backoff, "cannot accept a connection");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => continue,
                    () = &mut stop => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let io = TokioIo::new(Tracked::new(stream, activity.clone()));
        let timeout = limits.request_timeout;
        let service = service.clone();
        let handler = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let call = hyper::service::Service::call(&service, req);
            async move {
                Ok::<_, Infallible>(match tokio::time::timeout(timeout, call).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(_) => timed_out(timeout),
                })
            }
        });
        let connection = graceful.watch(http.serve_connection(io, handler));
        let idle = limits.idle_timeout;
        tokio::spawn(async move {
            tokio::select! {
                served = connection => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                () = activity.silent_for(idle) => {
                    tracing::debug!(?idle, "closing a connection on which nothing moved");
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(GRACE) => {
            tracing::warn!(grace = ?GRACE, "connections still open after the grace period are closed");
        }
    }
}

/// The answer to a request that took longer than `limit`.
fn timed_out(limit: Duration) -> axum::response::Response {
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::CONNECTION, "close")],
        axum::Json(serde_json::json!({
            "error": format!("the request was not answered within {limit:?}")
        })),
    )
        .into_response()
}

/// When a byte last moved on a connection, in milliseconds from `origin`.
#[derive(Clone)]
struct Activity {
    origin: Instant,
    last: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `limit`.
    async fn silent_for(&self, limit: Duration) {
        loop {
            let last = self.origin + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A TCP stream that records when bytes move, and closes lingering.
struct Tracked {
    inner: TcpStream,
    activity: Activity,
    /// Set once the write side is shut: the lingering read's deadline.
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    drained: usize,
}

impl Tracked {
    fn new(inner: TcpStream, activity: Activity) -> Tracked {
        Tracked {
            inner,
            activity,
            linger: None,
            drained: 0,
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Shuts the write side, then reads and drops what the client still
    /// sends until it closes, for [`LINGER`] or [`LINGER_BYTES`] at most:
    /// closing with unread data would reset the connection, and the
    /// client would lose the answer (a 413 to a body too large).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.linger.is_none() {
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.linger = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        let mut buf = [0u8; 8192];
        loop {
            let mut read = ReadBuf::new(&mut buf);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if !read.filled().is_empty() => {
                    this.drained += read.filled().len();
                    if this.drained >= LINGER_BYTES {
                        return Poll::Ready(Ok(()));
                    }
                }
                // The client closed, or the connection broke: done.
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    let deadline = this.linger.as_mut().expect("set above");
                    return match deadline.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(Ok(())),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_sane_and_bad_settings_are_named() {
        let d = Limits::default();
        assert_eq!(d.header_timeout, Duration::from_secs(10));
        assert_eq!(d.idle_timeout, Duration::from_secs(60));
        assert_eq!(d.request_timeout, Duration::from_secs(30));
        assert_eq!(d.max_connections, 4096);
        let mut server = config::Server {
            header_timeout: "soon".into(),
            ..config::Server::default()
        };
        let e = Limits::from_config(&server).unwrap_err();
        assert!(
            e.to_string().starts_with("[server] header_timeout: "),
            "{e}"
        );
        server.header_timeout = "1s".into();
        server.max_connections = 0;
        assert_eq!(
            Limits::from_config(&server),
            Err(LimitsError::NoConnections)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_silent_only_when_nothing_moved_for_the_limit() {
        let activity = Activity::new();
        let limit = Duration::from_secs(5);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await;
        activity.touch();
        activity.silent_for(limit).await;
        assert_eq!(started.elapsed(), Duration::from_secs(8));
    }
}
