//! The local server's HTTP/1.1 serving loop: hyper, with what a server facing the open network needs and
//! `axum::serve` does not offer.
//!
//! * **Request lines as Entra sends them.** Each request line's target is made a valid URI before hyper
//!   parses it ([`scim_core::http::request_target::repair_request_line`]: a raw `"` becomes `%22`, nothing is decoded),
//!   so `GET /scim/v2/Users?filter=userName+eq+"a%40b.c"` reaches the SCIM code instead of hyper's empty 400.
//!   To find each request line on a kept-alive connection, [`Conn`] follows HTTP/1.1 message framing
//!   (`Content-Length`, chunked bodies); anything it cannot follow it passes through untouched.
//! * **SCIM bodies on hyper's own refusals.** A 4xx that hyper writes by itself (431 headers too large, 400 a
//!   malformed head, 414) carries no body; [`Conn`] adds a SCIM Error body to it.
//! * **Timeouts and connection caps**: the loop shared with the engine's door ([`crate::server::listener`]), its
//!   503 a SCIM Error; a request body must arrive within the body read timeout (the SCIM layer,
//!   [`scim_core::config::HttpConfig::body_read_timeout`]).
//!
//! Why hand-written: hyper leaves the connection loop to its user, and no crate rewrites request lines.

use crate::server::listener::{self, Idle};
use axum::Router;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The listener's limits (shared with the engine's door).
pub use crate::server::listener::ServeConfig;

/// Serve `router` on `listener` until `shutdown` completes; then stop accepting and give open connections
/// a few seconds to finish their requests.
pub async fn serve_until(
    router: Router,
    listener: TcpListener,
    cfg: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let busy = listener::busy_answer(
        "application/scim+json",
        &scim_error_body(
            503,
            "The server has too many open connections; retry shortly",
        ),
    );
    listener::serve_until(router, listener, cfg, busy, Conn::new, shutdown).await
}

fn scim_error_body(status: u16, detail: &str) -> String {
    serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.to_string(), "detail": detail}).to_string()
}

/// A client connection as hyper sees it: request lines repaired on the way in, hyper's bodiless refusals
/// given a SCIM body on the way out.
pub struct Conn<S = Idle<TcpStream>> {
    inner: S,
    framer: Framer,
    /// Bytes for hyper that the framer has produced and hyper has not read yet.
    incoming: Vec<u8>,
    incoming_pos: usize,
    /// A rewritten refusal still to be written to the client.
    outgoing: Vec<u8>,
    outgoing_pos: usize,
}

impl<S> Conn<S> {
    pub fn new(inner: S) -> Self {
        Conn {
            inner,
            framer: Framer::default(),
            incoming: Vec::new(),
            incoming_pos: 0,
            outgoing: Vec::new(),
            outgoing_pos: 0,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn poll_drain_outgoing(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.outgoing_pos < self.outgoing.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.outgoing[self.outgoing_pos..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.outgoing_pos += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.outgoing.clear();
        self.outgoing_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.incoming_pos < this.incoming.len() {
                let n = (this.incoming.len() - this.incoming_pos).min(buf.remaining());
                buf.put_slice(&this.incoming[this.incoming_pos..this.incoming_pos + n]);
                this.incoming_pos += n;
                if this.incoming_pos == this.incoming.len() {
                    this.incoming.clear();
                    this.incoming_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let read = rb.filled();
                    if read.is_empty() {
                        // End of stream: hand over whatever is held back, then the end.
                        this.framer.finish(&mut this.incoming);
                        if this.incoming.is_empty() {
                            return Poll::Ready(Ok(()));
                        }
                        continue;
                    }
                    this.framer.feed(read, &mut this.incoming);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain_outgoing(cx))?;
        if let Some(rewritten) = with_scim_body(buf) {
            this.outgoing = rewritten;
            this.outgoing_pos = 0;
            // The caller's bytes are taken; the rewritten answer goes out on this and later polls.
            let _ = this.poll_drain_outgoing(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain_outgoing(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain_outgoing(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// A response head hyper wrote by itself — a 4xx or 505 with no content type and nothing after the head
/// (every answer of the SCIM layer at 400 and above has a SCIM body) — with a SCIM Error body added.
fn with_scim_body(buf: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(buf).ok()?;
    let rest = head.strip_prefix("HTTP/1.1 ")?;
    let status: u16 = rest.get(..3)?.parse().ok()?;
    if !((400..500).contains(&status) || status == 505) || !head.ends_with("\r\n\r\n") {
        return None;
    }
    let lower = head.to_ascii_lowercase();
    if lower.contains("\r\ncontent-type:") || !lower.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let detail = match status {
        431 => "The request's headers are too large",
        414 => "The request's URL is too long",
        505 => "Only HTTP/1.1 and HTTP/1.0 are served",
        408 => "The request did not arrive in time",
        _ => "The request could not be parsed as HTTP (malformed request line or headers)",
    };
    let body = scim_error_body(status, detail);
    let mut out = String::with_capacity(head.len() + body.len() + 64);
    for line in head.trim_end_matches("\r\n").split("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!(
                "content-type: application/scim+json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

/// Longest request line or header line the framer holds back; past it, it stops rewriting (hyper refuses
/// the request with 414 or 431 on its own).
const MAX_LINE: usize = 64 * 1024;

/// Follows HTTP/1.1 request framing over the bytes a client sends, to rewrite each request line.
#[derive(Debug, Default)]
struct Framer {
    state: State,
    line: Vec<u8>,
    content_length: Option<u64>,
    chunked: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum State {
    /// Waiting for (the rest of) a request line.
    #[default]
    RequestLine,
    Headers,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    /// Framing not understood: pass everything through unchanged.
    Passthrough,
}

impl Framer {
    /// Consume `input`, appending what hyper should see to `out`.
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self.state {
                State::Passthrough => {
                    out.extend_from_slice(input);
                    return;
                }
                State::Body(n) | State::ChunkData(n) => {
                    let take = (n as usize).min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    let left = n - take as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::RequestLine,
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::RequestLine => {
                    let Some(end) = input.iter().position(|b| *b == b'\n') else {
                        self.line.extend_from_slice(input);
                        if self.line.len() > MAX_LINE {
                            self.pass_through(out);
                        }
                        return;
                    };
                    self.line.extend_from_slice(&input[..=end]);
                    input = &input[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    let text = line.strip_suffix(b"\n").unwrap_or(&line);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    if text.is_empty() {
                        // Blank lines before a request line are allowed (RFC 9112 §2.2).
                        out.extend_from_slice(&line);
                        continue;
                    }
                    match scim_core::http::request_target::repair_request_line(text) {
                        Some(fixed) => {
                            out.extend_from_slice(&fixed);
                            out.extend_from_slice(b"\r\n");
                        }
                        None => out.extend_from_slice(&line),
                    }
                    self.content_length = None;
                    self.chunked = false;
                    self.state = State::Headers;
                }
                State::Headers | State::ChunkSize | State::ChunkEnd | State::Trailers => {
                    let end = input.iter().position(|b| *b == b'\n');
                    let take = end.map_or(input.len(), |e| e + 1);
                    out.extend_from_slice(&input[..take]);
                    self.line.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if end.is_none() {
                        if self.line.len() > MAX_LINE {
                            self.line.clear();
                            self.state = State::Passthrough;
                        }
                        return;
                    }
                    let line = std::mem::take(&mut self.line);
                    let text = line.strip_suffix(b"\n").unwrap_or(&line);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    self.state = self.after_line(text);
                }
            }
        }
    }

    /// The state after one complete line of the head, a chunk size line, a chunk's end or a trailer.
    fn after_line(&mut self, line: &[u8]) -> State {
        match self.state {
            State::Headers if line.is_empty() => match (self.chunked, self.content_length) {
                (true, None) => State::ChunkSize,
                (false, Some(0) | None) => State::RequestLine,
                (false, Some(n)) => State::Body(n),
                // Both: a request hyper refuses; do not guess its framing.
                (true, Some(_)) => State::Passthrough,
            },
            State::Headers => {
                let Ok(text) = std::str::from_utf8(line) else {
                    return State::Headers;
                };
                let Some((name, value)) = text.split_once(':') else {
                    return State::Headers;
                };
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    match value.parse::<u64>() {
                        Ok(n) if self.content_length.is_none_or(|c| c == n) => {
                            self.content_length = Some(n)
                        }
                        _ => return State::Passthrough,
                    }
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    if value.to_ascii_lowercase().rsplit(',').next().map(str::trim)
                        == Some("chunked")
                    {
                        self.chunked = true;
                    } else {
                        return State::Passthrough;
                    }
                }
                State::Headers
            }
            State::ChunkSize => {
                let size = std::str::from_utf8(line).ok().and_then(|t| {
                    u64::from_str_radix(t.split(';').next().unwrap_or("").trim(), 16).ok()
                });
                match size {
                    Some(0) => State::Trailers,
                    Some(n) => State::ChunkData(n),
                    None => State::Passthrough,
                }
            }
            State::ChunkEnd if line.is_empty() => State::ChunkSize,
            State::Trailers if line.is_empty() => State::RequestLine,
            State::Trailers => State::Trailers,
            _ => State::Passthrough,
        }
    }

    fn pass_through(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.line);
        self.state = State::Passthrough;
    }

    /// At the end of the stream: release a partial line held back.
    fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<u8> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out);
        }
        f.finish(&mut out);
        out
    }

    #[test]
    fn rewrites_each_request_line_of_a_kept_alive_connection_and_nothing_else() {
        let body = r#"{"userName":"a\"b GET /x?\" HTTP/1.1"}"#;
        let input = format!(
            "GET /Users?filter=userName+eq+\"a\" HTTP/1.1\r\nHost: x\r\n\r\nPOST /Users HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}GET /Users?filter=x+eq+\"y\" HTTP/1.1\r\n\r\n",
            body.len()
        );
        let expected = format!(
            "GET /Users?filter=userName+eq+%22a%22 HTTP/1.1\r\nHost: x\r\n\r\nPOST /Users HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}GET /Users?filter=x+eq+%22y%22 HTTP/1.1\r\n\r\n",
            body.len()
        );
        assert_eq!(
            String::from_utf8(run(&[input.as_bytes()])).unwrap(),
            expected
        );
        // The same bytes split at every position give the same result.
        for cut in 1..input.len() {
            let (a, b) = input.as_bytes().split_at(cut);
            assert_eq!(
                String::from_utf8(run(&[a, b])).unwrap(),
                expected,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn follows_chunked_bodies() {
        let input = "PATCH /Users/1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\n\"GET \r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /a?b=\"c\" HTTP/1.1\r\n\r\n";
        let out = String::from_utf8(run(&[input.as_bytes()])).unwrap();
        assert!(out.starts_with("PATCH /Users/1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\n\"GET \r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n"), "{out}");
        assert!(out.ends_with("GET /a?b=%22c%22 HTTP/1.1\r\n\r\n"), "{out}");
    }

    #[test]
    fn framing_it_cannot_follow_passes_through() {
        let input = b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxyGET /b?\"c\" HTTP/1.1\r\n\r\n";
        assert_eq!(run(&[input]), input.to_vec());
    }

    #[test]
    fn hypers_bodiless_refusals_get_a_scim_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(with_scim_body(head).expect("rewritten")).unwrap();
        let (h, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(h.contains("content-type: application/scim+json"), "{h}");
        assert!(
            h.contains(&format!("content-length: {}", body.len())),
            "{h}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], "431");
        // The SCIM layer's own answers are left alone.
        assert!(with_scim_body(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/scim+json\r\ncontent-length: 10\r\n\r\n").is_none());
        assert!(with_scim_body(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
