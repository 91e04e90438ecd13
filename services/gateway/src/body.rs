//! Body types shared by the proxy: one response body type for streamed upstream responses and
//! locally produced ones (errors, cache hits), without boxing every response.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::upstream::{RequestBody, StreamedBody};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Body of every response the gateway sends downstream.
#[derive(Debug)]
pub enum GatewayBody {
    /// From a plain-http upstream, read straight off the pooled connection.
    Upstream(StreamedBody),
    /// From an https upstream (hyper-util client).
    Client(Incoming),
    Full(Full<Bytes>),
}

impl GatewayBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Full::new(bytes.into()))
    }

    pub fn empty() -> Self {
        Self::Full(Full::new(Bytes::new()))
    }
}

impl Default for GatewayBody {
    fn default() -> Self {
        Self::empty()
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Self::Client(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Self::Full(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream(body) => body.is_end_stream(),
            Self::Client(body) => body.is_end_stream(),
            Self::Full(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Upstream(body) => body.size_hint(),
            Self::Client(body) => body.size_hint(),
            Self::Full(body) => body.size_hint(),
        }
    }
}

/// Body of requests sent upstream: streamed with a size cap, or buffered so a retry can resend it.
#[derive(Debug)]
pub enum UpstreamBody {
    Streaming(Limited<Incoming>),
    Buffered(Full<Bytes>),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Streaming(body) => Pin::new(body).poll_frame(cx),
            Self::Buffered(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Streaming(body) => body.is_end_stream(),
            Self::Buffered(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Streaming(body) => body.size_hint(),
            Self::Buffered(body) => body.size_hint(),
        }
    }
}

/// The https client takes the same request bodies as the plain-http one.
impl From<RequestBody> for UpstreamBody {
    fn from(body: RequestBody) -> Self {
        match body {
            RequestBody::Empty => Self::Buffered(Full::new(Bytes::new())),
            RequestBody::Buffered(bytes) => Self::Buffered(Full::new(bytes)),
            RequestBody::Streaming(stream) => Self::Streaming(stream),
        }
    }
}
