//! HTTP/1.1 client for plain-http upstreams, driven from the request's own task.
//!
//! hyper-util's pooled client runs every upstream connection as a separate task and passes
//! requests, responses and body chunks through channels; on a proxy that is most of the CPU
//! spent per request. Here the request future checks a raw [`TcpStream`] out of a small
//! per-upstream pool, writes the request head (and a buffered body) in one write, parses the
//! response head with `httparse` out of the connection's reused read buffer, and hands the
//! connection to the response body, which returns it to the pool once the body is complete.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::forward::{ClientLength, Forwarding, HeaderSink, connection_lists, is_hop_by_hop};

/// Initial read buffer per connection; heads larger than this grow it up to [`MAX_HEAD`].
const READ_BUFFER: usize = 16 * 1024;
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
/// Buffered request bodies up to this size go out in the same write as the head.
const INLINE_BODY: usize = 64 * 1024;
/// Idle connections kept per upstream; more than this are closed when returned.
const MAX_IDLE: usize = 1024;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A reused connection the upstream closed in the meantime is replaced at most this often per
/// request before a fresh connection is dialled.
const MAX_STALE_RETRIES: usize = 4;

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

    fn checkin(&self, conn: Conn) {
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

    async fn connect(&self) -> Result<Conn, UpstreamError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.target))
            .await
            .map_err(|_| UpstreamError::ConnectTimeout)?
            .map_err(UpstreamError::Connect)?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            read: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            write: Vec::with_capacity(1024),
        })
    }

    /// Sends one request and returns the response head; the body streams from the connection.
    ///
    /// `body` is sent as is; a streamed body can be sent only once, so only requests with an
    /// empty or buffered body are resent on a reused connection the upstream had closed.
    pub async fn send(
        self: &Arc<Self>,
        head: &RequestHead<'_>,
        mut body: RequestBody,
    ) -> Result<Response<StreamedBody>, UpstreamError> {
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
        let framing = parsed.framing;
        let keep_alive = parsed.keep_alive && !matches!(framing, Framing::UntilClose);
        let mut body = StreamedBody {
            conn: Some(conn),
            pool: Arc::clone(self),
            pending: parsed.first,
            framing,
            keep_alive,
        };
        if matches!(body.framing, Framing::Length(0)) {
            body.finish();
        }
        let mut response = Response::new(body);
        *response.status_mut() = parsed.status;
        *response.version_mut() = Version::HTTP_11;
        *response.headers_mut() = parsed.headers;
        response
    }
}

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

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Zero-initialised once; `start..end` holds received bytes not consumed yet.
    read: Vec<u8>,
    start: usize,
    end: usize,
    write: Vec<u8>,
}

impl Conn {
    /// An idle connection that became readable was closed by the upstream (or sent something
    /// unsolicited); either way it cannot carry a request. Checking the reactor's readiness costs
    /// no system call while the connection is quiet.
    fn is_reusable(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                // Readiness may be left over from the last response; a read tells for sure.
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(err) if err.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    fn buffered(&self) -> &[u8] {
        self.read.get(self.start..self.end).unwrap_or(&[])
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Reads more bytes into the buffer; `Ok(0)` is end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.read.len() {
            if self.start > 0 {
                self.read.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.read.len() < MAX_HEAD {
                self.read.resize((self.read.len() * 2).min(MAX_HEAD), 0);
            } else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "upstream response head too large",
                )));
            }
        }
        let Some(spare) = self.read.get_mut(self.end..) else {
            return Poll::Ready(Ok(0));
        };
        let mut buf = ReadBuf::new(spare);
        ready!(Pin::new(&mut self.stream).poll_read(cx, &mut buf))?;
        let n = buf.filled().len();
        self.end += n;
        Poll::Ready(Ok(n))
    }

    async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }
}

struct ParsedHead {
    status: StatusCode,
    headers: HeaderMap,
    /// Body bytes that arrived with the head (already deducted from `framing`).
    first: Option<Bytes>,
    framing: Framing,
    keep_alive: bool,
}

async fn exchange(
    conn: &mut Conn,
    head: &RequestHead<'_>,
    body: RequestBody,
) -> Result<ParsedHead, UpstreamError> {
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

async fn write_request(
    conn: &mut Conn,
    write: &mut Vec<u8>,
    head: &RequestHead<'_>,
    body: RequestBody,
) -> Result<(), UpstreamError> {
    let has_length = encode_head(write, head, matches!(body, RequestBody::Buffered(_)));
    match body {
        RequestBody::Empty => {
            write.extend_from_slice(b"\r\n");
            conn.stream.write_all(write).await?;
        }
        RequestBody::Buffered(bytes) => {
            if !bytes.is_empty() || head.forwarding.headers.contains_key(header::CONTENT_LENGTH) {
                use std::io::Write as _;
                let _ = write!(write, "content-length: {}\r\n", bytes.len());
            }
            write.extend_from_slice(b"\r\n");
            if bytes.len() <= INLINE_BODY {
                write.extend_from_slice(&bytes);
                conn.stream.write_all(write).await?;
            } else {
                conn.stream.write_all(write).await?;
                conn.stream.write_all(&bytes).await?;
            }
        }
        RequestBody::Streaming(mut stream) => {
            let chunked = !has_length;
            if chunked {
                write.extend_from_slice(b"transfer-encoding: chunked\r\n");
            }
            write.extend_from_slice(b"\r\n");
            conn.stream.write_all(write).await?;
            while let Some(frame) = stream.frame().await {
                let frame = frame.map_err(|err| {
                    if err.is::<http_body_util::LengthLimitError>() {
                        UpstreamError::BodyTooLarge
                    } else {
                        UpstreamError::RequestBody
                    }
                })?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                if chunked {
                    write.clear();
                    use std::io::Write as _;
                    let _ = write!(write, "{:x}\r\n", data.len());
                    write.extend_from_slice(&data);
                    write.extend_from_slice(b"\r\n");
                    conn.stream.write_all(write).await?;
                } else {
                    conn.stream.write_all(&data).await?;
                }
            }
            if chunked {
                conn.stream.write_all(b"0\r\n\r\n").await?;
            }
        }
    }
    Ok(())
}

/// Writes the request line and headers (without the final empty line); returns whether a
/// Content-Length from the client was kept.
fn encode_head(write: &mut Vec<u8>, head: &RequestHead<'_>, buffered: bool) -> bool {
    write.extend_from_slice(head.method.as_str().as_bytes());
    write.push(b' ');
    write.extend_from_slice(head.target.as_bytes());
    write.extend_from_slice(b" HTTP/1.1\r\n");
    let length = if buffered {
        ClientLength::Restate
    } else {
        ClientLength::Keep
    };
    head.forwarding.write_to(&mut HeadWriter(write), length)
}

/// The forwarded headers written straight into the request head, as `name: value` lines.
struct HeadWriter<'a>(&'a mut Vec<u8>);

impl HeaderSink for HeadWriter<'_> {
    fn put(&mut self, name: &HeaderName, value: &HeaderValue) {
        put_header(self.0, name.as_str().as_bytes(), value.as_bytes());
    }

    fn put_list(&mut self, name: &HeaderName, list: &HeaderValue, item: &HeaderValue) {
        let write = &mut *self.0;
        write.extend_from_slice(name.as_str().as_bytes());
        write.extend_from_slice(b": ");
        write.extend_from_slice(list.as_bytes());
        write.extend_from_slice(b", ");
        write.extend_from_slice(item.as_bytes());
        write.extend_from_slice(b"\r\n");
    }
}

fn put_header(write: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    write.extend_from_slice(name);
    write.extend_from_slice(b": ");
    write.extend_from_slice(value);
    write.extend_from_slice(b"\r\n");
}

async fn read_head(conn: &mut Conn, head_request: bool) -> Result<ParsedHead, UpstreamError> {
    let mut received_any = false;
    loop {
        if conn.start < conn.end {
            received_any = true;
            match parse_head(conn.buffered(), head_request)? {
                Parsed::Partial => {}
                Parsed::Interim(length) => {
                    conn.consume(length);
                    continue;
                }
                Parsed::Complete(length, head) => {
                    conn.consume(length);
                    return Ok(head);
                }
            }
        }
        match conn.fill().await {
            Ok(0) | Err(_) if !received_any => return Err(UpstreamError::Closed),
            Ok(0) => return Err(UpstreamError::Malformed),
            Ok(_) => {}
            Err(err) => return Err(UpstreamError::Io(err)),
        }
    }
}

enum Parsed {
    Partial,
    /// A 1xx response other than 101: skipped, the final response follows.
    Interim(usize),
    Complete(usize, ParsedHead),
}

fn parse_head(buffer: &[u8], head_request: bool) -> Result<Parsed, UpstreamError> {
    // Uninitialised slots: filling 128 empty headers first would cost a 4 KiB write per response.
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let length = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buffer,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(_) => return Err(UpstreamError::Malformed),
    };
    let code = response.code.unwrap_or(0);
    if (100..200).contains(&code) && code != 101 {
        return Ok(Parsed::Interim(length));
    }
    let status = StatusCode::from_u16(code).map_err(|_| UpstreamError::Malformed)?;
    if code == 101 {
        // Upgrades are not proxied (see README); the connection cannot be reused either.
        return Err(UpstreamError::Malformed);
    }
    let mut keep_alive = response.version == Some(1);
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    // Values of Connection headers: the headers they name are hop-by-hop too.
    let mut connection: Vec<&[u8]> = Vec::new();
    for parsed in response.headers.iter() {
        if parsed.name.eq_ignore_ascii_case("content-length") {
            let parsed_length = std::str::from_utf8(parsed.value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or(UpstreamError::Malformed)?;
            // Differing lengths are a smuggling vector (RFC 9112 §6.3).
            if content_length.is_some_and(|previous| previous != parsed_length) {
                return Err(UpstreamError::Malformed);
            }
            content_length = Some(parsed_length);
        } else if parsed.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            chunked = parsed
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if parsed.name.eq_ignore_ascii_case("connection") {
            connection.push(parsed.value);
            for token in parsed.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && response.version == Some(0) {
                    keep_alive = true;
                }
            }
        }
    }
    let no_body = head_request || code == 204 || code == 304;
    let mut framing = if no_body {
        Framing::Length(0)
    } else if transfer_encoding {
        if chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            Framing::UntilClose
        }
    } else {
        match content_length {
            Some(length) => Framing::Length(length),
            None => Framing::UntilClose,
        }
    };
    // Body bytes received with the head share one copy with it: header values and the first
    // body frame become slices of that copy instead of one allocation each.
    let first_length = match framing {
        Framing::Length(remaining) => usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(buffer.len().saturating_sub(length)),
        _ => 0,
    };
    let block = buffer
        .get(..length + first_length)
        .map(Bytes::copy_from_slice)
        .ok_or(UpstreamError::Malformed)?;
    let first = (first_length > 0).then(|| block.slice(length..));
    if let Framing::Length(remaining) = &mut framing {
        *remaining -= first_length as u64;
    }
    let base = buffer.as_ptr() as usize;
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    for parsed in response.headers.iter() {
        let name =
            HeaderName::from_bytes(parsed.name.as_bytes()).map_err(|_| UpstreamError::Malformed)?;
        // Hop-by-hop headers describe this connection only (RFC 9110 §7.6.1). Transfer-Encoding
        // stays: hyper frames the downstream body by it.
        let hop_by_hop = match name.as_str() {
            other if is_hop_by_hop(other) => true,
            other => connection
                .iter()
                .any(|value| connection_lists(value, other)),
        };
        if hop_by_hop {
            continue;
        }
        let offset = (parsed.value.as_ptr() as usize).wrapping_sub(base);
        let end = offset.saturating_add(parsed.value.len());
        if end > length {
            return Err(UpstreamError::Malformed);
        }
        let value = HeaderValue::from_maybe_shared(block.slice(offset..end))
            .map_err(|_| UpstreamError::Malformed)?;
        headers.append(name, value);
    }
    if transfer_encoding && content_length.is_some() {
        // Transfer-Encoding overrides Content-Length, which must not be passed on with it.
        headers.remove(header::CONTENT_LENGTH);
    }
    Ok(Parsed::Complete(
        length + first_length,
        ParsedHead {
            status,
            headers,
            first,
            framing,
            keep_alive,
        },
    ))
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// Response body read straight from the upstream connection.
#[derive(Debug)]
pub struct StreamedBody {
    conn: Option<Conn>,
    pool: Arc<Pool>,
    /// Received with the head; the first frame.
    pending: Option<Bytes>,
    framing: Framing,
    keep_alive: bool,
}

impl StreamedBody {
    /// The body is complete: the connection goes back to the pool if it can carry another
    /// request (keep-alive, and no bytes beyond this response).
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(conn) = self.conn.take()
            && self.keep_alive
            && conn.start == conn.end
        {
            self.pool.checkin(conn);
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        if let Some(data) = self.pending.take() {
            return Poll::Ready(Some(Ok(data)));
        }
        loop {
            let framing = self.framing;
            let Some(conn) = self.conn.as_mut() else {
                self.framing = Framing::Done;
                return Poll::Ready(None);
            };
            match framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(0) => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Framing::Length(remaining) => {
                    if let Some(data) = take(conn, remaining) {
                        let left = remaining - data.len() as u64;
                        self.framing = Framing::Length(left);
                        if left == 0 {
                            self.finish();
                        }
                        return Poll::Ready(Some(Ok(data)));
                    }
                    if ready!(conn.poll_fill(cx))? == 0 {
                        return Poll::Ready(Some(Err(truncated())));
                    }
                }
                Framing::UntilClose => {
                    if let Some(data) = take(conn, u64::MAX) {
                        return Poll::Ready(Some(Ok(data)));
                    }
                    if ready!(conn.poll_fill(cx))? == 0 {
                        self.framing = Framing::Done;
                        self.conn = None;
                        return Poll::Ready(None);
                    }
                }
                Framing::Chunked(Chunk::Size) => {
                    match httparse::parse_chunk_size(conn.buffered()) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            conn.consume(used);
                            self.framing = Framing::Chunked(if size == 0 {
                                Chunk::Trailers
                            } else {
                                Chunk::Data(size)
                            });
                            continue;
                        }
                        Ok(httparse::Status::Partial) => {}
                        Err(_) => return Poll::Ready(Some(Err(malformed()))),
                    }
                    if ready!(conn.poll_fill(cx))? == 0 {
                        return Poll::Ready(Some(Err(truncated())));
                    }
                }
                Framing::Chunked(Chunk::Data(remaining)) => {
                    if let Some(data) = take(conn, remaining) {
                        let left = remaining - data.len() as u64;
                        self.framing = Framing::Chunked(if left == 0 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left)
                        });
                        return Poll::Ready(Some(Ok(data)));
                    }
                    if ready!(conn.poll_fill(cx))? == 0 {
                        return Poll::Ready(Some(Err(truncated())));
                    }
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    let buffered = conn.buffered();
                    if buffered.len() >= 2 {
                        if !buffered.starts_with(b"\r\n") {
                            return Poll::Ready(Some(Err(malformed())));
                        }
                        conn.consume(2);
                        self.framing = Framing::Chunked(Chunk::Size);
                        continue;
                    }
                    if ready!(conn.poll_fill(cx))? == 0 {
                        return Poll::Ready(Some(Err(truncated())));
                    }
                }
                Framing::Chunked(Chunk::Trailers) => {
                    // Trailers are dropped: hyper's server would not forward them either.
                    let buffered = conn.buffered();
                    if let Some(line_end) = buffered.windows(2).position(|w| w == b"\r\n") {
                        conn.consume(line_end + 2);
                        if line_end == 0 {
                            self.finish();
                            return Poll::Ready(None);
                        }
                        continue;
                    }
                    if buffered.len() >= MAX_HEAD {
                        return Poll::Ready(Some(Err(malformed())));
                    }
                    if ready!(conn.poll_fill(cx))? == 0 {
                        return Poll::Ready(Some(Err(truncated())));
                    }
                }
            }
        }
    }
}

/// Up to `limit` buffered body bytes, or `None` when the buffer is empty.
fn take(conn: &mut Conn, limit: u64) -> Option<Bytes> {
    let buffered = conn.buffered();
    if buffered.is_empty() {
        return None;
    }
    let n = usize::try_from(limit).map_or(buffered.len(), |limit| limit.min(buffered.len()));
    let data = Bytes::copy_from_slice(buffered.get(..n)?);
    conn.consume(n);
    Some(data)
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "upstream closed the connection mid-body",
    )
}

fn malformed() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "malformed upstream body framing",
    )
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.get_mut()
            .poll_next(cx)
            .map(|next| next.map(|result| result.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && matches!(self.framing, Framing::Done | Framing::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        let pending = self.pending.as_ref().map_or(0, |data| data.len() as u64);
        match self.framing {
            Framing::Length(remaining) => SizeHint::with_exact(remaining + pending),
            Framing::Done => SizeHint::with_exact(pending),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Identity;

    fn complete(buffer: &[u8], head_request: bool) -> (usize, ParsedHead) {
        match parse_head(buffer, head_request) {
            Ok(Parsed::Complete(length, head)) => (length, head),
            _ => panic!("not parsed: {:?}", String::from_utf8_lossy(buffer)),
        }
    }

    #[test]
    fn parses_heads_and_framing() {
        let (length, head) = complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\nConnection: close\r\n\r\nhel",
            false,
        );
        assert_eq!(length, 68, "head and the body bytes received with it");
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers["x-a"], "b");
        assert_eq!(head.first.as_deref(), Some(&b"hel"[..]));
        assert!(!head.keep_alive);
        assert!(matches!(head.framing, Framing::Length(2)));

        let (length, head) = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true);
        assert_eq!(length, 38);
        assert!(head.first.is_none());
        assert!(
            matches!(head.framing, Framing::Length(0)),
            "HEAD has no body"
        );

        let (_, head) = complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
            false,
        );
        assert!(matches!(head.framing, Framing::Chunked(Chunk::Size)));
        assert!(head.keep_alive);
        assert!(!head.headers.contains_key(header::CONTENT_LENGTH));

        let (_, head) = complete(b"HTTP/1.0 200 OK\r\n\r\n", false);
        assert!(!head.keep_alive);
        assert!(matches!(head.framing, Framing::UntilClose));

        assert!(matches!(
            parse_head(b"HTTP/1.1 100 Continue\r\n\r\n", false),
            Ok(Parsed::Interim(25))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Len", false),
            Ok(Parsed::Partial)
        ));
        assert!(matches!(
            parse_head(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                false
            ),
            Err(UpstreamError::Malformed)
        ));
        assert!(parse_head(b"garbage\r\n\r\n", false).is_err());

        let (_, head) = complete(
            b"HTTP/1.1 200 OK\r\nConnection: x-secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nX-Kept: 2\r\n\r\n",
            false,
        );
        assert!(head.keep_alive);
        let names: Vec<&str> = head.headers.keys().map(|name| name.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn encodes_request_heads_with_forwarding_headers() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "gw.example.com"),
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("x-request-id", "from-client"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("accept", "*/*"),
            ("x-panthera-subject", "forged"),
            ("x-panthera-roles", "admin"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let claims = serde_json::json!({"sub": "u-1", "roles": ["user"], "jti": "t-1"});
        let identity =
            Identity::from_claims(claims.as_object().unwrap(), "roles", "scope").unwrap();
        let head = RequestHead {
            method: &Method::GET,
            target: "/a?b",
            idempotent: true,
            forwarding: Forwarding {
                headers: &headers,
                host: &HeaderValue::from_static("users:8080"),
                request_id: &HeaderValue::from_static("rid-1"),
                client_ip: &HeaderValue::from_static("127.0.0.1"),
                identity: Some(&identity),
            },
        };
        let mut out = Vec::new();
        assert!(!encode_head(&mut out, &head, false));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /a?b HTTP/1.1\r\nx-forwarded-proto: https\r\naccept: */*\r\nhost: users:8080\r\n\
             x-forwarded-host: gw.example.com\r\nx-forwarded-for: 10.0.0.1, 127.0.0.1\r\n\
             x-request-id: rid-1\r\nx-panthera-subject: u-1\r\nx-panthera-roles: user\r\n\
             x-panthera-scopes: \r\nx-panthera-token-id: t-1\r\n"
        );
    }

    /// The plain-http head carries exactly what the https path puts in its header map.
    #[test]
    fn both_transports_send_the_same_headers() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "gw.example.com"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("content-length", "3"),
            ("x-forwarded-for", "10.0.0.1"),
            ("accept", "text/html"),
            ("accept", "*/*"),
            ("x-panthera-subject", "forged"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let claims = serde_json::json!({"sub": "u-1"});
        let identity =
            Identity::from_claims(claims.as_object().unwrap(), "roles", "scope").unwrap();
        let forwarding = Forwarding {
            headers: &headers,
            host: &HeaderValue::from_static("users:8080"),
            request_id: &HeaderValue::from_static("rid-1"),
            client_ip: &HeaderValue::from_static("127.0.0.1"),
            identity: Some(&identity),
        };
        let head = RequestHead {
            method: &Method::POST,
            target: "/",
            idempotent: false,
            forwarding,
        };
        let mut out = Vec::new();
        assert!(encode_head(&mut out, &head, false));
        let text = String::from_utf8(out).unwrap();
        let written: Vec<(&str, &str)> = text
            .lines()
            .skip(1)
            .map(|line| line.split_once(": ").unwrap())
            .collect();
        let map = forwarding.to_header_map();
        let mapped: Vec<(&str, &str)> = map
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(written, mapped);
    }
}
