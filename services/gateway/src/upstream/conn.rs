//! One keep-alive connection to an upstream and its reused read buffer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

/// Initial read buffer per connection; heads larger than this grow it up to [`MAX_HEAD`].
const READ_BUFFER: usize = 16 * 1024;
/// The most a response head (or a chunked body's trailers) may take.
pub(super) const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug)]
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    /// Zero-initialised once; `start..end` holds received bytes not consumed yet.
    read: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Reused for every request head written on this connection.
    pub(super) write: Vec<u8>,
}

impl Conn {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            read: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            write: Vec::with_capacity(1024),
        }
    }

    /// An idle connection that became readable was closed by the upstream (or sent something
    /// unsolicited); either way it cannot carry a request. Checking the reactor's readiness costs
    /// no system call while the connection is quiet.
    pub(super) fn is_reusable(&self) -> bool {
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

    pub(super) fn buffered(&self) -> &[u8] {
        self.read.get(self.start..self.end).unwrap_or(&[])
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Reads more bytes into the buffer; `Ok(0)` is end of stream.
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
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

    pub(super) async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }
}
