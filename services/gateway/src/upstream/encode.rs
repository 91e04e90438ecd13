//! Writing a request to an upstream connection: the head, with the forwarding policy applied
//! as it is written, and the body, buffered or streamed (chunked when the client gave no length).

use http::header::{self, HeaderName, HeaderValue};
use http_body_util::BodyExt;
use panthera_identity::RequestLine;
use tokio::io::AsyncWriteExt;

use super::conn::Conn;
use super::{RequestBody, RequestHead, Result, UpstreamError};
use crate::forward::{ClientLength, HeaderSink};

/// Buffered request bodies up to this size go out in the same write as the head.
const INLINE_BODY: usize = 64 * 1024;

pub(super) async fn write_request(
    conn: &mut Conn,
    write: &mut Vec<u8>,
    head: &RequestHead<'_>,
    body: RequestBody,
) -> Result<()> {
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
    let request = RequestLine {
        method: head.method.as_str(),
        target: head.target,
    };
    head.forwarding
        .write_to(&mut HeadWriter(write), length, request)
}

/// The forwarded headers written straight into the request head, as `name: value` lines.
struct HeadWriter<'a>(&'a mut Vec<u8>);

impl HeaderSink for HeadWriter<'_> {
    fn put(&mut self, name: &HeaderName, value: &HeaderValue) {
        put_header(self.0, name.as_str().as_bytes(), value.as_bytes());
    }

    fn put_bytes(&mut self, name: &HeaderName, value: &[u8]) {
        put_header(self.0, name.as_str().as_bytes(), value);
    }

    fn put_list(&mut self, name: &HeaderName, list: &[&HeaderValue], item: &HeaderValue) {
        let write = &mut *self.0;
        write.extend_from_slice(name.as_str().as_bytes());
        write.extend_from_slice(b": ");
        for value in list {
            write.extend_from_slice(value.as_bytes());
            write.extend_from_slice(b", ");
        }
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

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::forward::tests::{client_headers, forwarding, identity};

    #[test]
    fn encodes_request_heads_with_forwarding_headers() {
        let headers = client_headers(&[
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
        ]);
        let identity = identity(serde_json::json!({"sub": "u-1", "roles": ["user"], "jti": "t-1"}));
        let head = RequestHead {
            method: &Method::GET,
            target: "/a?b",
            idempotent: true,
            forwarding: forwarding(&headers, Some(&identity)),
        };
        let mut out = Vec::new();
        assert!(!encode_head(&mut out, &head, false));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /a?b HTTP/1.1\r\nx-forwarded-proto: https\r\naccept: */*\r\nhost: users:8080\r\n\
             x-forwarded-host: gw.example.com\r\nx-forwarded-for: 127.0.0.1\r\n\
             x-request-id: rid-1\r\nx-panthera-subject: u-1\r\nx-panthera-roles: user\r\n\
             x-panthera-scopes: \r\nx-panthera-token-id: t-1\r\n"
        );
    }

    /// The plain-http head carries exactly what the https path puts in its header map.
    #[test]
    fn both_transports_send_the_same_headers() {
        let headers = client_headers(&[
            ("host", "gw.example.com"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("content-length", "3"),
            ("x-forwarded-for", "10.0.0.1"),
            ("accept", "text/html"),
            ("accept", "*/*"),
            ("x-panthera-subject", "forged"),
        ]);
        let identity = identity(serde_json::json!({"sub": "u-1"}));
        let mut forwarding = forwarding(&headers, Some(&identity));
        // From a trusted proxy, so the chain is joined on both paths.
        forwarding.chain = Some(crate::client_addr::ClientAddressHeader::XForwardedFor);
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
        let map = forwarding.to_header_map(RequestLine {
            method: "POST",
            target: "/",
        });
        let mapped: Vec<(&str, &str)> = map
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(written, mapped);
    }
}
