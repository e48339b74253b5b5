//! The recipients' listener around Pingora's proxy: the waits Pingora 0.9 leaves unbounded.
//!
//! Pingora times each read of a request head separately (the keep-alive timeout, or the read
//! timeout), so a head trickled one byte at a time is never cut, and 500 such connections were
//! all kept. [`Edge`] runs each request of a connection under a deadline that holds until the
//! head is complete (the proxy's first hook marks it, see [`head_read`]):
//! - a new connection must deliver its first request head within `client_head_timeout` of its
//!   accept: over TLS the handshake spends part of it ([`accepted_at`]), so that a slow
//!   handshake followed by a slow head gets one deadline, not two;
//! - a kept-alive connection may be idle for `keepalive_timeout` (Pingora's per-read timeout,
//!   set here) and must then deliver the head: at most the sum of both in all.
//!
//! A connection past its deadline is closed without an answer (as nginx does after
//! `client_header_timeout`). What happens after the head is bounded elsewhere: the read and write
//! timeouts per read and write, and a minimum rate for uploads ([`crate::share::upload::Pace`]).
//!
//! HTTP/2 (over TLS, see [`crate::share::tls`]): each stream reaches [`Edge`] with its head complete, so
//! the deadline never fires for it; instead the connection must start its first stream within
//! `client_head_timeout` ([`crate::share::tls::TlsEdge`]), is closed once it has had no stream for
//! `keepalive_timeout` (Pingora's `h2_idle_timeout`), and each read of a request body is bounded
//! by the read timeout here ([`body_read_timeout`]: Pingora applies its read timeout to
//! HTTP/1 only). Response writes are bounded by the write timeout for both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::v2::server::H2Options;
use pingora::protocols::http::ServerSession;
use pingora::protocols::SocketDigest;
use pingora::proxy::{HttpProxy, ProxyHttp};
use pingora::server::ShutdownWatch;

tokio::task_local! {
    /// When the connection was accepted, where that was before [`Edge`] saw it (TLS).
    static ACCEPTED: tokio::time::Instant;
    /// Set once the current request's head was read (by the proxy's first hook).
    static HEAD_READ: Arc<AtomicBool>;
    /// The longest wait for a piece of an HTTP/2 request body.
    static BODY_READ_TIMEOUT: Duration;
}

/// How long a read of the current HTTP/2 request's body may wait (`None` outside [`Edge`]).
pub fn body_read_timeout() -> Option<Duration> {
    BODY_READ_TIMEOUT.try_with(|t| *t).ok()
}

/// `at + wait`, or a moment far enough away to mean never when that cannot be represented (a
/// configured timeout of absurd size must not panic).
pub fn later(at: tokio::time::Instant, wait: Duration) -> tokio::time::Instant {
    at.checked_add(wait)
        .unwrap_or_else(|| at + Duration::from_secs(30 * 365 * 86_400))
}

/// Runs a connection's `work` (its HTTP/1.1 requests through [`Edge`]) knowing that it was
/// accepted at `at`: its first request head is due `client_head_timeout` after `at`, not after
/// [`Edge`] starts reading it. Used by [`crate::share::tls::TlsEdge`] around the decrypted
/// stream, so that the TLS handshake counts against the same deadline.
pub async fn accepted_at<F: std::future::Future>(at: tokio::time::Instant, work: F) -> F::Output {
    ACCEPTED.scope(at, work).await
}

/// Marks the current request's head as complete: its deadline no longer applies. Called by the
/// proxy's first hook; a no-op outside [`Edge`].
pub fn head_read() {
    let _ = HEAD_READ.try_with(|read| read.store(true, Ordering::Relaxed));
}

/// Carried from one request of a kept-alive connection to the next, so that the next one knows
/// the connection was reused (see `ProxyHttp::persist_connection_context`).
pub struct Reused;

/// Pingora's HTTP proxy app with deadlines for request heads and idle keep-alive connections.
pub struct Edge<SV> {
    inner: Arc<HttpProxy<SV>>,
    head_timeout: Duration,
    keepalive_seconds: u64,
    read_timeout: Duration,
    /// The proxy's options, with HTTP/2 connections closed after `keepalive_seconds` idle.
    options: HttpServerOptions,
}

impl<SV> Edge<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    <SV as ProxyHttp>::CTX: Send + Sync,
{
    pub fn new(
        inner: HttpProxy<SV>,
        head_timeout: Duration,
        keepalive_seconds: u64,
        read_timeout: Duration,
    ) -> Edge<SV> {
        let keepalive_seconds = keepalive_seconds.max(1);
        let mut options = inner.server_options().cloned().unwrap_or_default();
        options.h2_idle_timeout = Some(Duration::from_secs(keepalive_seconds));
        Edge {
            inner: Arc::new(inner),
            head_timeout,
            keepalive_seconds,
            read_timeout,
            options,
        }
    }
}

#[async_trait]
impl<SV> HttpServerApp for Edge<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    <SV as ProxyHttp>::CTX: Send + Sync,
{
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if session.is_http2() {
            h2_stream_started(&session);
        }
        let reused = match session.take_connection_user_context() {
            Some(context) => {
                session.set_connection_user_context(Some(context));
                true
            }
            None => false,
        };
        // Pingora's keep-alive timeout bounds each wait for a byte of the next head (the idle
        // time); it is carried from request to request of the connection.
        if session.get_keepalive().is_some() && !*shutdown.borrow() {
            session.set_keepalive(Some(self.keepalive_seconds));
        }
        let deadline = if reused {
            later(
                tokio::time::Instant::now(),
                self.head_timeout
                    .saturating_add(Duration::from_secs(self.keepalive_seconds)),
            )
        } else {
            // The first request: from the accept, where the TLS edge says when that was.
            let accepted = ACCEPTED
                .try_with(|at| *at)
                .unwrap_or_else(|_| tokio::time::Instant::now());
            later(accepted, self.head_timeout)
        };
        let read = Arc::new(AtomicBool::new(false));
        let watched = read.clone();
        // The address itself, formatted only if the deadline passes (not on every request).
        let client = session.client_addr().cloned();
        let inner = self.inner.clone();
        let work = HEAD_READ.scope(read, async move {
                tokio::select! {
                    biased;
                    done = inner.process_new_http(session, shutdown) => done,
                    () = async {
                        tokio::time::sleep_until(deadline).await;
                        if watched.load(Ordering::Relaxed) {
                            std::future::pending::<()>().await;
                        }
                    } => {
                        tracing::debug!(client = ?client, reused, "no complete request head in time; connection closed");
                        None
                    }
                }
        });
        BODY_READ_TIMEOUT.scope(self.read_timeout, work).await
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.inner.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        Some(&self.options)
    }

    async fn http_cleanup(&self) {
        self.inner.http_cleanup().await
    }
}
/// HTTP/2 connections that have not started a request yet, by their socket (see
/// [`h2_stream_started`]).
static H2_WAITING: LazyLock<Mutex<HashMap<usize, Arc<AtomicBool>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn socket_key(digest: &Arc<SocketDigest>) -> usize {
    Arc::as_ptr(digest) as usize
}

/// Removes a connection from [`H2_WAITING`] however its task ends. It holds the socket digest,
/// so no other connection can have the same key while the entry exists.
pub struct Waiting {
    digest: Arc<SocketDigest>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        H2_WAITING.lock().remove(&socket_key(&self.digest));
    }
}

/// Registers an HTTP/2 connection that has not started a request yet: the flag turns true with
/// its first stream; the guard removes the entry however the connection ends.
pub fn h2_waiting(digest: Arc<SocketDigest>) -> (Arc<AtomicBool>, Waiting) {
    let started = Arc::new(AtomicBool::new(false));
    H2_WAITING
        .lock()
        .insert(socket_key(&digest), started.clone());
    (started, Waiting { digest })
}

/// Tells an HTTP/2 connection that a request arrived on it: its first-request deadline no longer
/// applies. Called by [`Edge`] for every HTTP/2 stream (one map look-up).
pub fn h2_stream_started(session: &ServerSession) {
    let Some(digest) = session.digest().and_then(|d| d.socket_digest.as_ref()) else {
        return;
    };
    if let Some(flag) = H2_WAITING.lock().get(&socket_key(digest)) {
        flag.store(true, Ordering::Relaxed);
    }
}
