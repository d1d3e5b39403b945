//! The connection loop both of the local server's listeners share — the SCIM port
//! ([`crate::server::serve`]) and the embedded engine's door ([`crate::engine::engine_door`]): hyper's
//! HTTP/1.1 on each accepted connection, with the limits a listener needs against clients that open
//! connections and send nothing, or send slowly.
//!
//! * **Timeouts** (see [`ServeConfig`]): a request head must arrive within the header read timeout (hyper's
//!   timer; it also bounds how long a kept-alive connection waits for its next request), and a connection on
//!   which no byte moves either way for the idle timeout is closed ([`Idle`]). A body's own deadline is the
//!   handler's (each listener reads its bodies itself).
//! * **Connection caps.** Past `SCIM_MAX_CONNECTIONS` open connections, or past
//!   `SCIM_MAX_CONNECTIONS_PER_PEER` from one peer address, a new connection is answered 503 (the
//!   listener's own error body, `Retry-After`) and closed: the process never runs into the file-descriptor
//!   limit, and one client cannot hold every slot. When `accept` fails anyway (the limit was reached
//!   elsewhere in the process) the loop pauses briefly instead of spinning.
//!
//! Imports nothing of this crate; each listener supplies its router, its 503 and how it wraps a connection.

use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// Connection limits of a local listener, from the environment (documented in the README).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `SCIM_HEADER_READ_TIMEOUT_SECS` (default 15): a request head (request line and headers) must be
    /// complete this long after the server starts waiting for it.
    pub header_read_timeout: Duration,
    /// `SCIM_IDLE_TIMEOUT_SECS` (default 60): a connection on which no byte moves either way this long is
    /// closed.
    pub idle_timeout: Duration,
    /// `SCIM_MAX_CONNECTIONS` (default 256): open connections at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// `SCIM_MAX_CONNECTIONS_PER_PEER` (default half of `max_connections`, so 128): open connections from one
    /// peer address (IPv6: one /64) at most; more are answered 503 and closed.
    pub max_connections_per_peer: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig::from_lookup(|_| None)
    }
}

impl ServeConfig {
    /// The settings of the environment, for one of the process's two listeners: caps lowered to fit the
    /// file-descriptor limit if it is low ([`ServeConfig::within_fd_limit`]).
    pub fn from_env() -> Self {
        let cfg = ServeConfig::from_lookup(|name| std::env::var(name).ok());
        let fitted = cfg.clone().within_fd_limit(LISTENERS, fd_limit());
        if fitted.max_connections < cfg.max_connections {
            tracing::warn!(
                max_connections = fitted.max_connections,
                max_connections_per_peer = fitted.max_connections_per_peer,
                fd_limit = fd_limit(),
                "connection caps lowered to fit the open-file limit (raise it with ulimit -n)"
            );
        }
        fitted
    }

    /// This configuration with its caps lowered, if need be, so that `listeners` listeners holding it all
    /// stay within `fd_limit` open files with [`FD_RESERVE`] to spare (the per-peer cap in proportion).
    pub fn within_fd_limit(mut self, listeners: usize, fd_limit: Option<u64>) -> Self {
        let Some(limit) = fd_limit else { return self };
        let room = (limit.saturating_sub(FD_RESERVE) / listeners.max(1) as u64).max(1) as usize;
        if room < self.max_connections {
            let per_peer =
                self.max_connections_per_peer as u128 * room as u128 / self.max_connections as u128;
            self.max_connections_per_peer = (per_peer as usize).clamp(1, room);
            self.max_connections = room;
        }
        self
    }

    /// The settings `var` gives (absent, empty, zero or unreadable values take the default).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let num = |name: &str, default: u64| {
            var(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        let max_connections = num("SCIM_MAX_CONNECTIONS", 256) as usize;
        // Half the server per peer: one client (locally often every client is 127.0.0.1) keeps room for
        // a benchmark at concurrency 64 twice over, and another peer always finds the other half free.
        let per_peer = num(
            "SCIM_MAX_CONNECTIONS_PER_PEER",
            (max_connections as u64 / 2).max(1),
        ) as usize;
        ServeConfig {
            header_read_timeout: Duration::from_secs(num("SCIM_HEADER_READ_TIMEOUT_SECS", 15)),
            idle_timeout: Duration::from_secs(num("SCIM_IDLE_TIMEOUT_SECS", 60)),
            max_connections,
            max_connections_per_peer: per_peer.min(max_connections),
        }
    }
}

/// The process's listeners: the SCIM port and the embedded engine's door.
const LISTENERS: usize = 2;
/// Open files kept for the rest of the process (database, logs, outgoing connections, refusals in flight).
pub const FD_RESERVE: u64 = 64;

/// The process's soft limit of open files (Linux; `None` elsewhere or when unreadable).
fn fd_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// A complete HTTP/1.1 503 answer with `content_type` and `body`, `Retry-After: 1` and `Connection: close`:
/// what a listener writes to a connection over one of its caps.
pub fn busy_answer(content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serve `router` on `listener` until `shutdown` completes; then stop accepting and give open connections
/// a few seconds to finish their requests. Each connection is wrapped in [`Idle`] and then by `wrap`
/// before hyper reads it; connections over a cap get `busy` (see [`busy_answer`]).
pub async fn serve_until<C, W>(
    router: Router,
    listener: TcpListener,
    cfg: ServeConfig,
    busy: Vec<u8>,
    wrap: W,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    W: Fn(Idle<TcpStream>) -> C,
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let peers = Arc::new(Peers {
        per_peer: cfg.max_connections_per_peer,
        open: Mutex::default(),
    });
    let busy: Arc<[u8]> = busy.into();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_accept_warning: Option<Instant> = None;
    let mut last_busy_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors (or a connection reset before it was accepted): pause, keep
                // serving.
                if last_accept_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    last_accept_warning = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let slot = peers.try_take(peer.ip());
        let permit = permits.clone().try_acquire_owned().ok();
        let (Some(slot), Some(permit)) = (slot, permit) else {
            if last_busy_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
                let local = listener.local_addr().ok();
                let why = "connection refused: too many open connections (in all or from one peer)";
                tracing::warn!(?local, "{why}");
                last_busy_warning = Some(Instant::now());
            }
            tokio::spawn(refuse_busy(stream, busy.clone()));
            continue;
        };
        let io = wrap(Idle::new(stream, cfg.idle_timeout));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(cfg.header_read_timeout)
            .serve_connection(
                TokioIo::new(io),
                TowerToHyperService::new(with_peer(&router, peer)),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop((permit, slot));
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}

/// `router`, its requests carrying the connection's peer address as axum's `ConnectInfo` (the operator
/// page's sign-in limit counts failed attempts per address).
fn with_peer(
    router: &Router,
    peer: std::net::SocketAddr,
) -> tower::util::MapRequest<Router, impl FnMut(Request<Incoming>) -> Request<Incoming> + Clone> {
    router
        .clone()
        .map_request(move |mut req: Request<Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            req
        })
}

/// The answer to a connection over a cap, then close.
async fn refuse_busy(mut stream: TcpStream, answer: Arc<[u8]>) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
}

/// Open connections per peer address.
struct Peers {
    per_peer: usize,
    /// Only peers with an open connection: at most `max_connections` entries.
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Peers {
    fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<PeerSlot> {
        let key = peer_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.per_peer {
            if *n == 0 {
                open.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: self.clone(),
            key,
        })
    }
}

/// One open connection counted against its peer; given back when dropped.
struct PeerSlot {
    peers: Arc<Peers>,
    key: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The address a peer is counted under: an IPv4 address (also when it arrives IPv4-mapped), or an IPv6
/// address's /64 — one subscriber's usual allocation, so rotating addresses within it gains nothing.
fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) if !v6.is_loopback() => {
            IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into())
        }
        other => other,
    }
}

/// A connection closed once no byte has moved either way for its idle timeout: reads and writes that stay
/// pending past it fail with `TimedOut`, which ends the connection.
pub struct Idle<S> {
    inner: S,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<S> Idle<S> {
    pub fn new(inner: S, timeout: Duration) -> Self {
        Idle {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn progress(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.timeout);
    }

    /// Pending, unless the connection has been idle too long (then an error that closes it).
    fn pending_or_idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.progress();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.pending_or_idle(cx),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.progress();
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.pending_or_idle(cx),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_peer_cap_defaults_to_half_the_server_and_never_exceeds_it() {
        let d = ServeConfig::default();
        assert_eq!((d.max_connections, d.max_connections_per_peer), (256, 128));
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            ServeConfig::from_lookup(move |n| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(
            env(&[("SCIM_MAX_CONNECTIONS", "64")]).max_connections_per_peer,
            32
        );
        assert_eq!(
            env(&[("SCIM_MAX_CONNECTIONS", "1")]).max_connections_per_peer,
            1
        );
        assert_eq!(
            env(&[("SCIM_MAX_CONNECTIONS_PER_PEER", "300")]).max_connections_per_peer,
            256
        );
        assert_eq!(
            env(&[("SCIM_MAX_CONNECTIONS_PER_PEER", "10")]).max_connections_per_peer,
            10
        );
        assert_eq!(
            env(&[("SCIM_MAX_CONNECTIONS_PER_PEER", "0")]).max_connections_per_peer,
            128
        );
    }

    #[test]
    fn caps_fit_the_open_file_limit() {
        let d = ServeConfig::default();
        let low = d.clone().within_fd_limit(2, Some(128));
        assert_eq!(
            (low.max_connections, low.max_connections_per_peer),
            (32, 16),
            "(128 - 64) / 2 listeners"
        );
        let high = d.clone().within_fd_limit(2, Some(1_048_576));
        assert_eq!(
            (high.max_connections, high.max_connections_per_peer),
            (256, 128)
        );
        assert_eq!(d.clone().within_fd_limit(2, None).max_connections, 256);
        let tiny = d.within_fd_limit(2, Some(10));
        assert_eq!(
            (tiny.max_connections, tiny.max_connections_per_peer),
            (1, 1)
        );
    }

    #[test]
    fn peers_are_counted_by_address_and_ipv6_by_64() {
        let peers = Arc::new(Peers {
            per_peer: 2,
            open: Mutex::default(),
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a1 = peers.try_take(ip("127.0.0.1")).unwrap();
        let a2 = peers.try_take(ip("::ffff:127.0.0.1")).unwrap();
        assert!(
            peers.try_take(ip("127.0.0.1")).is_none(),
            "a third from the same address"
        );
        let b = peers
            .try_take(ip("127.0.0.2"))
            .expect("another address has its own slots");
        let v6a = peers.try_take(ip("2001:db8::1")).unwrap();
        let v6b = peers.try_take(ip("2001:db8::ffff:2")).unwrap();
        assert!(peers.try_take(ip("2001:db8::3")).is_none(), "the same /64");
        assert!(
            peers.try_take(ip("2001:db8:0:1::1")).is_some(),
            "another /64"
        );
        drop(a1);
        let again = peers
            .try_take(ip("127.0.0.1"))
            .expect("a slot given back is free again");
        drop((a2, again, b, v6a, v6b));
        assert!(
            peers.open.lock().unwrap().is_empty(),
            "no entry for a peer without open connections"
        );
    }
}
