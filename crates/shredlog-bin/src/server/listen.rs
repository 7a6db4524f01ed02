//! Accepting connections, so that hostile clients cannot starve the server:
//!
//! - **a time limit on request heads** (`--header-read-timeout`): a client
//!   that has not sent a whole request line and headers in time (also
//!   between requests on a kept-alive connection) is disconnected;
//! - **a cap on open connections** (`--max-connections`): at the cap, a new
//!   connection closes the oldest one with no request in progress (idle, or
//!   still dribbling its head), so that a flood of half-sent requests cannot
//!   keep `/healthz` or anyone else out; if every connection is busy with a
//!   request, the newcomer gets 503 `overloaded` and is closed;
//! - **JSON bodies on hyper's own answers**: hyper answers a request it cannot
//!   parse (400), a URI too long (414) or headers too large (431) itself,
//!   with an empty body; [`ErrorBodies`] gives those the JSON error body
//!   every other answer has;
//! - **graceful shutdown**: when told to stop, no new connection is accepted,
//!   idle ones are closed and requests in flight run to their end.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower::ServiceExt;

use super::error;

/// How connections are accepted and bounded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Requests in progress (from the call of the router to the end of the
    /// response body).
    busy: Arc<AtomicUsize>,
    /// Closes the connection when notified.
    evict: Arc<Notify>,
}

/// The open connections, oldest first (ids grow).
#[derive(Default)]
struct Registry {
    conns: Mutex<BTreeMap<u64, Conn>>,
    next: AtomicU64,
}

/// What to do with a newly accepted connection.
enum Admission {
    /// Serve it, as connection `id`.
    Serve(u64, Arc<AtomicUsize>, Arc<Notify>),
    /// Every connection is busy: answer 503 and close.
    Refuse,
}

impl Registry {
    fn admit(&self, max: usize) -> Admission {
        let mut conns = self.conns.lock();
        if conns.len() >= max {
            let idle = conns
                .iter()
                .find(|(_, c)| c.busy.load(Ordering::SeqCst) == 0)
                .map(|(id, _)| *id);
            match idle.and_then(|id| conns.remove(&id)) {
                Some(victim) => victim.evict.notify_one(),
                None => return Admission::Refuse,
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = Arc::new(Notify::new());
        conns.insert(
            id,
            Conn {
                busy: Arc::clone(&busy),
                evict: Arc::clone(&evict),
            },
        );
        Admission::Serve(id, busy, evict)
    }

    fn remove(&self, id: u64) {
        self.conns.lock().remove(&id);
    }
}

/// Serves `router` on `listener` until `stop` completes, then lets requests
/// in flight finish (the caller bounds how long it waits for this future).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    stop: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment
                    // rather than spin; connections that end free some.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (id, busy, evict) = match registry.admit(limits.max_connections) {
            Admission::Serve(id, busy, evict) => (id, busy, evict),
            Admission::Refuse => {
                tokio::spawn(refuse(stream));
                continue;
            }
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let guard = BusyGuard::enter(&busy);
            let router = router.clone();
            async move {
                let resp = router
                    .oneshot(req.map(Body::new))
                    .await
                    .unwrap_or_else(|never| match never {});
                Ok::<_, std::convert::Infallible>(resp.map(|body| {
                    Body::new(GuardedBody {
                        body,
                        _guard: guard,
                    })
                }))
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let conn = http.serve_connection(TokioIo::new(ErrorBodies::new(stream)), service);
        let conn = graceful.watch(conn);
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            tokio::select! {
                // Errors are the client's (a reset, a head that timed out).
                _ = conn => {}
                // Dropping the connection closes it.
                () = evict.notified() => {}
            }
            registry.remove(id);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection over the cap with 503 and closes it.
async fn refuse(mut stream: TcpStream) {
    let answer = canned(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "too many connections are busy; retry later",
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
}

/// A whole HTTP/1.1 answer with a JSON error body, that closes the connection.
fn canned(status: StatusCode, code: &str, message: &str) -> Vec<u8> {
    let body = error::body(code, message);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\ncontent-length: {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        out.push_str("retry-after: 1\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// Counts a request in progress until dropped (with its response body).
struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    fn enter(busy: &Arc<AtomicUsize>) -> BusyGuard {
        busy.fetch_add(1, Ordering::SeqCst);
        BusyGuard(Arc::clone(busy))
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its connection counted as busy while it is
/// sent (exports stream for a while after the handler returned).
struct GuardedBody {
    body: Body,
    _guard: BusyGuard,
}

impl hyper::body::Body for GuardedBody {
    type Data = <Body as hyper::body::Body>::Data;
    type Error = <Body as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's stream, giving hyper's own error answers a JSON body.
///
/// hyper answers a request head it cannot parse with a bare head: status
/// 400, 414 or 431, `connection: close`, `content-length: 0`, no
/// `content-type`, then closes the connection. Every answer the router
/// writes has a `content-type`, so such a head can only be hyper's; it is
/// replaced, whole, by the same status with a JSON error body.
pub(crate) struct ErrorBodies<S> {
    inner: S,
    /// The replacement still to be written, and how much of it was.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> ErrorBodies<S> {
    pub(crate) fn new(inner: S) -> ErrorBodies<S> {
        ErrorBodies {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer for hyper's bare error head `buf`, if it is one.
fn replacement(buf: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(buf).ok()?;
    let rest = head
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| head.strip_prefix("HTTP/1.0 "))?;
    if !head.ends_with("\r\n\r\n") || head.matches("\r\n\r\n").count() != 1 {
        return None;
    }
    let lower = head.to_ascii_lowercase();
    if lower.contains("\r\ncontent-type:") || !lower.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let (code, message) = match rest.get(..4)? {
        "400 " => (
            "bad_request",
            "the request is not valid HTTP/1.1 (request line or a header)",
        ),
        "414 " => ("uri_too_long", "the request's URI is too long"),
        "431 " => (
            "headers_too_large",
            "the request's headers are too large or too many",
        ),
        _ => return None,
    };
    let status = StatusCode::from_bytes(rest.get(..3)?.as_bytes()).ok()?;
    Some(canned(status, code, message))
}

impl<S: AsyncWrite + Unpin> ErrorBodies<S> {
    /// Writes what is left of a replacement.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            let Some(left) = bytes.get(*done..).filter(|l| !l.is_empty()) else {
                self.pending = None;
                break;
            };
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, left))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ErrorBodies<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ErrorBodies<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none()
            && let Some(bytes) = replacement(buf)
        {
            this.pending = Some((bytes, 0));
        }
        if this.pending.is_some() {
            // hyper's head is swallowed once its replacement is written.
            ready!(this.poll_pending(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper's bare head comes alone; anything else goes through as is.
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) if self.pending.is_some() || replacement(first).is_some() => {
                let first: &[u8] = first;
                self.poll_write(cx, first)
            }
            _ => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_error_heads_are_replaced() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 08:00:15 GMT\r\n\r\n";
        let out = String::from_utf8(replacement(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        assert!(
            out.ends_with(r#"{"code":"uri_too_long","message":"the request's URI is too long"}"#)
        );
        let len = out.split("\r\n\r\n").nth(1).unwrap().len();
        assert!(out.contains(&format!("content-length: {len}\r\n")));
        for (status, code) in [
            ("400 Bad Request", "bad_request"),
            ("431 Request Header Fields Too Large", "headers_too_large"),
        ] {
            let head =
                format!("HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
            let out = String::from_utf8(replacement(head.as_bytes()).unwrap()).unwrap();
            assert!(out.contains(&format!("\"code\":\"{code}\"")), "{out}");
        }
        // The router's answers (content-type), bodies, other statuses: as is.
        for other in [
            &b"HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\n\r\nbody",
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 10\r\n\r\n",
            b"{\"text\":\"HTTP/1.1 414 \"}",
        ] {
            assert!(replacement(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let r = Registry::default();
        let mut handles = Vec::new();
        for _ in 0..3 {
            match r.admit(3) {
                Admission::Serve(id, busy, evict) => handles.push((id, busy, evict)),
                Admission::Refuse => panic!("refused under the cap"),
            }
        }
        // The oldest is busy: the second, idle, goes.
        handles[0].1.fetch_add(1, Ordering::SeqCst);
        assert!(matches!(r.admit(3), Admission::Serve(..)));
        assert!(r.conns.lock().contains_key(&handles[0].0));
        assert!(!r.conns.lock().contains_key(&handles[1].0));
        // Its task is told to close (the permit waits for it).
        let notified = handles[1].2.notified();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(std::pin::pin!(notified).poll(&mut cx).is_ready());
        // Everyone busy: refused.
        for c in r.conns.lock().values() {
            c.busy.fetch_add(1, Ordering::SeqCst);
        }
        assert!(matches!(r.admit(3), Admission::Refuse));
        assert_eq!(r.conns.lock().len(), 3);
    }
}
