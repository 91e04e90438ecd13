//! HTTP/1.1 client for plain-http upstreams, driven from the request's own task.
//!
//! hyper-util's pooled client runs every upstream connection as a separate task and passes
//! requests, responses and body chunks through channels; on a proxy that is most of the CPU
//! spent per request. Here the request future checks a raw `TcpStream` out of a small
//! per-upstream pool (`pool`), writes the request head (and a buffered body) in one write
//! (`encode`), parses the response head with `httparse` out of the connection's reused read
//! buffer (`parse`), and hands the connection to the response body (`body`), which returns it
//! to the pool once the body is complete.
//!
//! Which headers go upstream is decided by [`crate::forward`], as for https upstreams.

use std::io;

use bytes::Bytes;
use http::Method;
use http_body_util::Limited;
use hyper::body::Incoming;

use crate::forward::Forwarding;

mod body;
mod conn;
mod encode;
mod parse;
mod pool;

pub use body::StreamedBody;
pub use pool::Pool;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connect failed: {0}")]
    Connect(io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("upstream i/o failed: {0}")]
    Io(#[from] io::Error),
    #[error("upstream closed the connection before responding")]
    Closed,
    #[error("malformed upstream response")]
    Malformed,
    #[error("request body is too large")]
    BodyTooLarge,
    #[error("request body could not be read")]
    RequestBody,
}

pub type Result<T, E = UpstreamError> = std::result::Result<T, E>;

/// What the request head is made of; the target is already rewritten for the upstream.
pub struct RequestHead<'a> {
    pub method: &'a Method,
    pub target: &'a str,
    /// Whether the request may be resent on a fresh connection when a reused one was stale.
    pub idempotent: bool,
    /// The client's headers, unmodified, and what the gateway adds: the forwarding policy is
    /// applied while the head is encoded, which saves a handful of header-map updates per
    /// request.
    pub forwarding: Forwarding<'a>,
}

pub enum RequestBody {
    Empty,
    Buffered(Bytes),
    Streaming(Limited<Incoming>),
}

impl RequestBody {
    /// A copy for another attempt; `None` for a streamed body, which can be sent only once.
    pub fn try_clone(&self) -> Option<Self> {
        match self {
            Self::Empty => Some(Self::Empty),
            Self::Buffered(bytes) => Some(Self::Buffered(bytes.clone())),
            Self::Streaming(_) => None,
        }
    }

    /// The body for one attempt: a copy of an empty or buffered body, which stays for the next
    /// attempt; a streamed body itself, which can go only once (leaving `Empty`).
    pub fn for_attempt(&mut self) -> Self {
        self.try_clone()
            .unwrap_or_else(|| std::mem::replace(self, Self::Empty))
    }
}
