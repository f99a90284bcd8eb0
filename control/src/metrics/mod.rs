//! The metrics listener: Prometheus text format at `/metrics` and the HTML
//! status page at `/`, on one HTTP/1.1 socket (config section `metrics`,
//! default `127.0.0.1:9469`).
//!
//! Layer: control, slow path. A hyper 1 server on its own thread with a
//! current-thread tokio runtime. Each request calls the daemon's
//! [`StatusFn`], which reads the snapshot and the counters the workers
//! publish on their tick: a scrape never stops, locks or slows a worker.
//! [`collector`] turns the status into `prometheus` crate metric families
//! (encoded by its `TextEncoder`), [`page`] into the status page.
//!
//! Guarantees: only `GET` and `HEAD` (405 with `Allow` otherwise); `/`,
//! `/metrics` and nothing else (404); the request head is bounded
//! ([`MAX_HEAD_BYTES`]), each connection is closed after one request and
//! after [`CONNECTION_TIME_LIMIT`] at most, and at most
//! [`MAX_CONNECTIONS`] are served at once (more are closed at accept), so
//! a slow or hostile client costs one socket for a few seconds. A
//! non-loopback address is refused unless the caller allows it (config
//! `allow_remote`), the same rule validation applies.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, Semaphore};
use tracing::{debug, warn};

use crate::admin::StatusFn;

pub mod collector;
pub mod page;

pub use collector::{families, FamilyDef, Kind, StatusCollector, FAMILIES};

/// Longest request head (request line and headers) read, bytes; hyper
/// answers 431 beyond it.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time a client has to send its request head.
pub const HEAD_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection may live, request and response included.
pub const CONNECTION_TIME_LIMIT: Duration = Duration::from_secs(10);
/// Connections served at once; further ones are closed at accept.
pub const MAX_CONNECTIONS: usize = 32;

/// Why the listener did not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// `listen` is not a loopback address and remote access was not allowed.
    #[error("metrics listener {addr}: not a loopback address: set `allow_remote: true` in the metrics section to serve it")]
    NotLoopback {
        /// The refused address.
        addr: SocketAddr,
    },
    /// The socket could not be bound (in use, no such address, ...).
    #[error("metrics listener {addr}: cannot bind: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The collector, the runtime or the thread could not be built.
    #[error("metrics listener {addr}: cannot start: {reason}")]
    Start {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        reason: String,
    },
}

/// A running metrics listener. Stops on [`MetricsServer::stop`] or drop.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `/metrics` and `/` from `status` on a new
    /// thread.
    ///
    /// # Errors
    /// [`MetricsError::NotLoopback`] when `addr` is not loopback and
    /// `allow_remote` is false; [`MetricsError::Bind`] when the socket
    /// cannot be bound; [`MetricsError::Start`] when the runtime or thread
    /// cannot be created.
    pub fn start(
        addr: SocketAddr,
        allow_remote: bool,
        status: StatusFn,
    ) -> Result<MetricsServer, MetricsError> {
        if !addr.ip().is_loopback() && !allow_remote {
            return Err(MetricsError::NotLoopback { addr });
        }
        let start_err = |reason: String| MetricsError::Start { addr, reason };
        let collector = StatusCollector::new(Arc::clone(&status))
            .map_err(|e| start_err(format!("collector: {e}")))?;
        let std_listener = std::net::TcpListener::bind(addr)
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let bound = std_listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| start_err(format!("tokio runtime: {e}")))?;
        let (stop, stop_rx) = watch::channel(false);
        let ctx = Arc::new(Ctx { collector, status });
        let thread = std::thread::Builder::new()
            .name("fulcrum-metrics".into())
            .spawn(move || {
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => serve(l, ctx, stop_rx).await,
                        Err(e) => warn!("metrics listener {bound}: {e}"),
                    }
                });
            })
            .map_err(|e| start_err(format!("thread: {e}")))?;
        Ok(MetricsServer {
            addr: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// The address actually bound (the port is the configured one).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets the connections in flight end (each is bounded
    /// by [`CONNECTION_TIME_LIMIT`]) and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Ctx {
    collector: StatusCollector,
    status: StatusFn,
}

async fn serve(listener: tokio::net::TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                debug!("metrics accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            debug!(%peer, "metrics: {MAX_CONNECTIONS} connections busy, closing a new one");
            continue;
        };
        while tasks.try_join_next().is_some() {}
        let ctx = Arc::clone(&ctx);
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let ctx = Arc::clone(&ctx);
                async move { Ok::<_, Infallible>(respond(&ctx, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_READ_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_TIME_LIMIT, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!(%peer, "metrics connection: {e}"),
                Err(_) => debug!(%peer, "metrics connection: time limit reached, closed"),
            }
            drop(permit);
        });
    }
    // Connections in flight end on their own, each within the time limit.
    while tasks.join_next().await.is_some() {}
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The answer to one request (the body of a `HEAD` is dropped by hyper).
fn respond(ctx: &Ctx, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT_PLAIN,
            "method not allowed: GET or HEAD\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match req.uri().path() {
        "/metrics" => match collector::encode(&ctx.collector) {
            Ok(body) => reply(StatusCode::OK, prometheus::TEXT_FORMAT, body),
            Err(e) => {
                warn!("metrics: encoding failed: {e}");
                reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    TEXT_PLAIN,
                    format!("encoding failed: {e}\n"),
                )
            }
        },
        "/" => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            page::render(&(ctx.status)(), SystemTime::now()),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT_PLAIN,
            "not found: this endpoint serves / (status page) and /metrics\n",
        ),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
