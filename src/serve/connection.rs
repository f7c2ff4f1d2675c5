//! One HTTP/1.1 connection: hyper reads requests and writes answers, the router handles them,
//! and a watchdog closes the connection when its client keeps it waiting.
//!
//! The watchdog knows, from the bytes that move and the requests being handled, what the
//! connection waits for:
//!
//! - the rest of a request's head, once its first byte has come: at most `--header-timeout`
//!   from that byte;
//! - a request's body: the handler reads it, and answers 408 after `--body-timeout`;
//! - the server's own work (a handler running): no limit here, the work has its own;
//! - anything else (the first byte of the next request, or a client that does not read its
//!   answer): at most `--idle-timeout` without a byte read or written.
//!
//! A connection the watchdog closes is dropped at once. A connection that ends otherwise (the
//! client closed it, `Connection: close`, an answer that leaves part of a body unread) is shut
//! for writing and then read to its end for a few seconds, as nginx's lingering close does:
//! closing a socket with unread bytes resets it, and the client could lose the answer it has
//! not read yet (a 413 sent while it is still sending the body the 413 refuses).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower_service::Service;

/// How long a connection may keep the server waiting.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From the first byte of a request's head to its end.
    pub header: Duration,
    /// Without a byte read or written, while no request is being handled.
    pub idle: Duration,
}

/// The largest request head, and the most answer bytes hyper buffers for a connection beyond
/// those counted in the answer budget.
const MAX_BUFFER: usize = 64 * 1024;

/// How long a closing connection is read to its end at most.
const LINGER: Duration = Duration::from_secs(5);

/// How long a closing connection is read without a byte coming before it is closed.
const LINGER_QUIET: Duration = Duration::from_secs(1);

/// What a connection is doing, as its bytes and requests tell: read by the watchdog, and by
/// the listener choosing an idle connection to close when it is full.
#[derive(Debug)]
pub struct Activity {
    epoch: std::time::Instant,
    /// When a byte was last read or written, in ms since `epoch`.
    last: AtomicU64,
    /// When the first byte of the request head being read came, in ms since `epoch` plus 1;
    /// 0 while no head is being read.
    head_since: AtomicU64,
    /// Requests whose handler is running.
    handling: AtomicUsize,
    /// Answers not yet handed to hyper whole.
    responding: AtomicUsize,
    /// The listener wants this connection closed, to make room for a new one.
    evicted: AtomicBool,
    /// Wakes the watchdog when the deadline may have moved earlier.
    changed: Notify,
}

impl Activity {
    /// A connection just accepted: idle since now.
    pub fn new() -> Self {
        Activity {
            epoch: std::time::Instant::now(),
            last: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
            responding: AtomicUsize::new(0),
            evicted: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn instant(&self, ms: u64) -> Instant {
        Instant::from_std(self.epoch + Duration::from_millis(ms))
    }

    /// Bytes were read: a request head starts with them if no request is being handled.
    pub(crate) fn read(&self) {
        let now = self.now();
        self.last.store(now, Ordering::Relaxed);
        if self.handling.load(Ordering::Relaxed) == 0
            && self
                .head_since
                .compare_exchange(0, now + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // the header deadline may come before the idle one
            self.changed.notify_one();
        }
    }

    fn wrote(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// Whether the connection waits for a request that has not started, with no answer to
    /// send: closing it loses nothing.
    pub fn is_idle(&self) -> bool {
        self.handling.load(Ordering::Relaxed) == 0
            && self.responding.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
    }

    /// How long since a byte last moved (since the connection was accepted, if none has).
    pub fn idle_for(&self) -> Duration {
        let last = self.last.load(Ordering::Relaxed);
        Duration::from_millis(self.now().saturating_sub(last))
    }

    /// Asks the connection to close at once.
    pub fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// Whether the listener has asked the connection to close.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Relaxed)
    }

    /// When the connection is to be closed if nothing changes; `None` while a request is
    /// being handled.
    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        if self.evicted.load(Ordering::Relaxed) {
            return Some(self.instant(0));
        }
        if self.handling.load(Ordering::Relaxed) > 0 {
            return None;
        }
        match self.head_since.load(Ordering::Relaxed) {
            0 => Some(self.instant(self.last.load(Ordering::Relaxed)) + timeouts.idle),
            since => Some(self.instant(since - 1) + timeouts.header),
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// A request being handled, from its head to the handler's answer.
struct Handling(Arc<Activity>);

impl Handling {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.handling.fetch_add(1, Ordering::Relaxed);
        activity.head_since.store(0, Ordering::Relaxed);
        Handling(Arc::clone(activity))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        if self.0.handling.fetch_sub(1, Ordering::Relaxed) == 1 {
            // the idle deadline applies again
            self.0.changed.notify_one();
        }
    }
}

/// An answer being handed to hyper.
struct Responding(Arc<Activity>);

impl Responding {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.responding.fetch_add(1, Ordering::Relaxed);
        Responding(Arc::clone(activity))
    }
}

impl Drop for Responding {
    fn drop(&mut self) {
        self.0.responding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted connection until it ends, the watchdog closes it, or the server stops
/// (then the request in flight is answered first).
pub async fn serve(
    stream: TcpStream,
    activity: Arc<Activity>,
    router: Router,
    timeouts: Timeouts,
    mut stopping: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Tracked {
        stream,
        activity: Arc::clone(&activity),
    });
    let handler = Handler {
        router,
        activity: Arc::clone(&activity),
    };
    let mut http = http1::Builder::new();
    // The watchdog times request heads, so hyper's own timer is off.
    http.max_buf_size(MAX_BUFFER).header_read_timeout(None);
    let mut conn = http.serve_connection(io, handler);
    let mut stopping_now = false;
    loop {
        let deadline = activity.deadline(timeouts);
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return; // dropping the connection closes it
        }
        let changed = activity.changed.notified();
        let far = Instant::now() + Duration::from_secs(24 * 3600);
        tokio::select! {
            _ = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break,
            () = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {}
            () = changed => {}
            () = super::stopped(&mut stopping), if !stopping_now => {
                stopping_now = true;
                if activity.is_idle() {
                    return;
                }
                // answer the request in flight, then close
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    }
    let stream = conn.into_parts().io.into_inner().stream;
    linger(stream).await;
}

/// Shuts `stream` for writing (the client reads the answer, then the end), and reads what the
/// client still sends until it closes, for [`LINGER`] at most.
pub(crate) async fn linger(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let until = Instant::now() + LINGER;
    let mut sink = vec![0; 16 * 1024];
    loop {
        let quiet = (Instant::now() + LINGER_QUIET).min(until);
        match tokio::time::timeout_at(quiet, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => continue,
            _ => return,
        }
    }
}

/// The router as hyper's service, telling the connection's [`Activity`] when a request's
/// handling starts and ends, and when its answer has been handed over whole.
#[derive(Clone)]
struct Handler {
    router: Router,
    activity: Arc<Activity>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Handler {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        let handling = Handling::start(&self.activity);
        let responding = Responding::start(&self.activity);
        let mut router = self.router.clone();
        Box::pin(async move {
            // A router is always ready; asking keeps to tower's contract.
            std::future::poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut router, cx))
                .await?;
            let response = router.call(request).await?;
            drop(handling);
            Ok(response.map(|body| {
                Body::new(Watched {
                    body,
                    _responding: responding,
                })
            }))
        })
    }
}

/// An answer's body, marking its connection as responding until hyper has taken it whole.
struct Watched {
    body: Body,
    _responding: Responding,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A TCP stream that tells its [`Activity`] when bytes move.
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(30),
    };

    #[test]
    fn the_deadline_follows_what_the_connection_waits_for() {
        let activity = Arc::new(Activity::new());
        let start = activity.instant(0);
        assert_eq!(activity.deadline(T), Some(start + T.idle));
        assert!(activity.is_idle());

        activity.read(); // the first bytes of a head
        let head = activity.deadline(T).unwrap();
        assert!(head >= start + T.header && head < start + T.idle);
        assert!(!activity.is_idle());

        let handling = Handling::start(&activity);
        let responding = Responding::start(&activity);
        assert_eq!(
            activity.deadline(T),
            None,
            "no limit while the server works"
        );
        activity.read(); // body bytes are no head
        drop(handling);
        assert!(
            activity.deadline(T).unwrap() >= start + T.idle,
            "idle again"
        );
        assert!(!activity.is_idle(), "an answer is still being sent");
        drop(responding);
        assert!(activity.is_idle());

        activity.evict();
        assert!(activity.deadline(T).unwrap() <= Instant::now());
    }
}
