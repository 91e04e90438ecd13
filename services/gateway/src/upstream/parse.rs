//! Parsing an upstream's response head with `httparse`, out of the connection's read buffer.

use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::body::{Chunk, Framing};
use super::conn::Conn;
use super::{Result, UpstreamError};
use crate::forward::{connection_lists, is_hop_by_hop};

const MAX_HEADERS: usize = 128;

/// A final response head, and how its body is framed.
pub(super) struct ParsedHead {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    /// Body bytes that arrived with the head (already deducted from `framing`).
    pub(super) first: Option<Bytes>,
    pub(super) framing: Framing,
    pub(super) keep_alive: bool,
}

/// Reads until a final response head is complete; 1xx interim responses are skipped.
pub(super) async fn read_head(conn: &mut Conn, head_request: bool) -> Result<ParsedHead> {
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

fn parse_head(buffer: &[u8], head_request: bool) -> Result<Parsed> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
