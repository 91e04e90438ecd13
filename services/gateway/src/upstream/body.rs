//! A response body read straight from the upstream connection, which goes back to the pool
//! once the body is complete.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::conn::{Conn, MAX_HEAD};
use super::pool::Pool;

/// How the rest of a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy)]
pub(super) enum Framing {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Where a chunked body's reader is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Chunk {
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
    /// The body of a response whose head was just read from `conn`; `first` holds the body
    /// bytes that arrived with the head.
    pub(super) fn new(
        conn: Conn,
        pool: Arc<Pool>,
        first: Option<Bytes>,
        framing: Framing,
        keep_alive: bool,
    ) -> Self {
        // A body delimited by the connection's close leaves nothing to reuse.
        let keep_alive = keep_alive && !matches!(framing, Framing::UntilClose);
        let mut body = Self {
            conn: Some(conn),
            pool,
            pending: first,
            framing,
            keep_alive,
        };
        if matches!(body.framing, Framing::Length(0)) {
            body.finish();
        }
        body
    }

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
