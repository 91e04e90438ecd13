//! The per-upstream pool of idle keep-alive connections, and sending one request through it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Method, Response, Version};
use tokio::net::TcpStream;

use super::body::StreamedBody;
use super::conn::Conn;
use super::encode::write_request;
use super::parse::{ParsedHead, read_head};
use super::{RequestBody, RequestHead, Result, UpstreamError};

/// Idle connections kept per upstream; more than this are closed when returned.
const MAX_IDLE: usize = 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A refused connection is dialled again this often per attempt, after 25, then 50 ms.
const REFUSED_REDIALS: u32 = 2;
const REDIAL_PAUSE: Duration = Duration::from_millis(25);
/// A reused connection the upstream closed in the meantime is replaced at most this often per
/// request before a fresh connection is dialled.
const MAX_STALE_RETRIES: usize = 4;

/// Idle keep-alive connections to one upstream authority.
#[derive(Debug)]
pub struct Pool {
    /// `host:port` dialled for new connections.
    target: String,
    idle: Mutex<VecDeque<Idle>>,
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Instant,
}

impl Pool {
    pub fn new(target: String) -> Self {
        Self {
            target,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().ok()?;
        // Most recently used first: it is the least likely to have been closed by the upstream.
        while let Some(entry) = idle.pop_back() {
            if entry.conn.is_reusable() {
                return Some(entry.conn);
            }
        }
        None
    }

    pub(super) fn checkin(&self, conn: Conn) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        while idle
            .front()
            .is_some_and(|entry| now.duration_since(entry.since) > IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE {
            idle.push_back(Idle { conn, since: now });
        }
    }

    /// A new connection. A refused one is dialled again after a moment, for every method:
    /// nothing was sent yet, and through a Service address the next connection may reach
    /// another endpoint (a pod that has closed its listener can stay behind the Service address
    /// until the proxies on every node have caught up).
    async fn connect(&self) -> Result<Conn> {
        let mut refused = 0;
        loop {
            match self.dial().await {
                Err(UpstreamError::Connect(error))
                    if error.kind() == std::io::ErrorKind::ConnectionRefused
                        && refused < REFUSED_REDIALS =>
                {
                    refused += 1;
                    tokio::time::sleep(REDIAL_PAUSE * refused).await;
                }
                dialled => return dialled,
            }
        }
    }

    async fn dial(&self) -> Result<Conn> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.target))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout)?
            .map_err(UpstreamError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(Conn::new(stream))
    }

    /// Sends one request and returns the response head; the body streams from the connection.
    ///
    /// `body` is sent as is; a streamed body can be sent only once, so only requests with an
    /// empty or buffered body are resent on a reused connection the upstream had closed.
    pub async fn send(
        self: &Arc<Self>,
        head: &RequestHead<'_>,
        mut body: RequestBody,
    ) -> Result<Response<StreamedBody>> {
        let mut stale = 0;
        loop {
            let reused = if stale < MAX_STALE_RETRIES {
                self.checkout()
            } else {
                None
            };
            let (mut conn, is_reused) = match reused {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            let resendable = head.idempotent && !matches!(body, RequestBody::Streaming(_));
            let body_now = body
                .try_clone()
                .filter(|_| resendable)
                .unwrap_or_else(|| std::mem::replace(&mut body, RequestBody::Empty));
            match exchange(&mut conn, head, body_now).await {
                Ok(parsed) => return Ok(self.response(conn, parsed)),
                Err(UpstreamError::Closed) if is_reused && resendable => stale += 1,
                Err(err) => return Err(err),
            }
        }
    }

    fn response(self: &Arc<Self>, conn: Conn, parsed: ParsedHead) -> Response<StreamedBody> {
        let body = StreamedBody::new(
            conn,
            Arc::clone(self),
            parsed.first,
            parsed.framing,
            parsed.keep_alive,
        );
        let mut response = Response::new(body);
        *response.status_mut() = parsed.status;
        *response.version_mut() = Version::HTTP_11;
        *response.headers_mut() = parsed.headers;
        response
    }
}

/// One request and its response head on one connection.
async fn exchange(
    conn: &mut Conn,
    head: &RequestHead<'_>,
    body: RequestBody,
) -> Result<ParsedHead> {
    let mut write = std::mem::take(&mut conn.write);
    write.clear();
    let result = write_request(conn, &mut write, head, body).await;
    conn.write = write;
    match result {
        // A reused connection the upstream closed fails on write as often as on read.
        Err(UpstreamError::Io(_)) => return Err(UpstreamError::Closed),
        Err(err) => return Err(err),
        Ok(()) => {}
    }
    read_head(conn, *head.method == Method::HEAD).await
}
