//! The floor of bench/run.sh: a "proxy" that does no HTTP work beyond framing. Each downstream
//! connection gets its own upstream connection; a request head is relayed as-is once its blank
//! line arrives, and the response back once its `Content-Length` is complete. No routing,
//! headers, metrics or timeouts, and no request bodies or chunked responses: not for real
//! traffic.
//!
//! What it reaches under wrk is the most the load side lets any proxy show on this machine, and
//! its CPU per request is what the kernel and tokio cost without any proxy logic.
//! `gateway-bench-relay LISTEN UPSTREAM` (defaults 127.0.0.1:18085 and 127.0.0.1:18081).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BUFFER: usize = 16 * 1024;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18085".to_owned());
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(serve(listen, upstream))
}

async fn serve(listen: String, upstream: String) -> io::Result<()> {
    let listener = TcpListener::bind(&listen).await?;
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            // A failed connection only ends that connection; wrk reports it as a socket error.
            let _ = relay(client, &upstream).await;
        });
    }
}

async fn relay(mut client: TcpStream, upstream: &str) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut upstream = TcpStream::connect(upstream).await?;
    upstream.set_nodelay(true)?;
    let mut request = vec![0; BUFFER];
    let mut response = vec![0; BUFFER];
    loop {
        let Some(length) = read_message(&mut client, &mut request, |_| Some(0)).await? else {
            return Ok(());
        };
        upstream.write_all(&request[..length]).await?;
        let Some(length) = read_message(&mut upstream, &mut response, content_length).await? else {
            return Ok(());
        };
        client.write_all(&response[..length]).await?;
    }
}

/// Reads one message (head plus `body_length(head)` bytes) into `buffer`; `None` on a clean close.
async fn read_message(
    stream: &mut TcpStream,
    buffer: &mut [u8],
    body_length: impl Fn(&[u8]) -> Option<usize>,
) -> io::Result<Option<usize>> {
    let mut filled = 0;
    loop {
        let read = stream.read(&mut buffer[filled..]).await?;
        if read == 0 {
            return if filled == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        filled += read;
        if let Some(end) = buffer[..filled]
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
        {
            let head = &buffer[..end + 4];
            let total = body_length(head)
                .and_then(|body| head.len().checked_add(body))
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Content-Length"))?;
            if filled >= total {
                return Ok(Some(total));
            }
        }
        if filled == buffer.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message over 16 KiB",
            ));
        }
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|&byte| byte == b'\n').find_map(|line| {
        let line = std::str::from_utf8(line).ok()?;
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}
