//! Sending a request upstream, over the gateway's own plain-http client ([`crate::upstream`]) or
//! hyper-util's pooled client for https upstreams. Both transports apply the same forwarding
//! policy ([`crate::forward`]) and the same retry loop ([`crate::retry`]); what differs is only
//! how a request is written and a response read.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::uri::Uri;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use panthera_identity::RequestLine;
use tokio::time::error::Elapsed;

use super::pipeline::Pipeline;
use super::responses::error_response;
use super::trace::{self, RequestTrace};
use crate::auth::Identity;
use crate::body::{GatewayBody, UpstreamBody};
use crate::forward::{Forwarding, strip_response_hop_by_hop};
use crate::retry::{RetryPolicy, Retryable, is_idempotent};
use crate::routing::Route;
use crate::upstream::{Pool, RequestBody, RequestHead, StreamedBody, UpstreamError};

type Result<T, E = UpstreamFailure> = std::result::Result<T, E>;

impl Pipeline {
    /// Sends the request upstream, retrying idempotent requests on transport errors and timeouts.
    pub(super) async fn forward(
        &self,
        route: &Route,
        request: Request<Incoming>,
        max_body: u64,
        identity: Option<&Identity>,
    ) -> Result<Response<GatewayBody>> {
        let (parts, body) = request.into_parts();
        let retry = RetryPolicy::new(&parts.method, route.retries, route.timeout);
        let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
        // Only for a traced request: the upstream span, whose context the upstream continues;
        // for one left out, the unsampled context, so the services record none of it either.
        let mut upstream_span = match &self.trace {
            Some(RequestTrace::Sampled(server)) => trace::upstream(server, route, &parts.method),
            _ => None,
        };
        let trace = match (&upstream_span, &self.trace) {
            (Some(span), _) => Some(span.traceparent()),
            (None, Some(RequestTrace::Unsampled { traceparent, .. })) => Some(traceparent.clone()),
            (None, _) => None,
        };
        let forwarding = Forwarding {
            headers: &parts.headers,
            host: &route.host_header,
            request_id: &self.request_id,
            peer_ip: &self.peer.ip,
            chain: self
                .client
                .via_trusted_proxy
                .then(|| self.state.client_address.header()),
            identity,
            identity_keys: self.state.identity_keys.as_deref(),
            trace: trace.as_ref(),
        };
        let sent = async {
            match &route.pool {
                Some(pool) => {
                    let body = request_body(body, limit, &retry).await?;
                    send_plain(pool, route, &parts, forwarding, body, retry)
                        .await
                        .map(|response| response.map(GatewayBody::Upstream))
                }
                // Boxed: the rarer path's future does not inflate every request's.
                None => Box::pin(self.send_https(route, &parts, forwarding, body, limit, retry))
                    .await
                    .map(|response| response.map(GatewayBody::Client)),
            }
        };
        let sent = sent.await;
        if let Some(span) = &mut upstream_span {
            let outcome = match &sent {
                Ok(response) => Ok(response.status().as_u16()),
                Err(failure) => Err(failure.kind()),
            };
            trace::finish_upstream(span, outcome);
        }
        sent
    }

    /// https upstreams: the hyper-util pooled client (TLS included).
    async fn send_https(
        &self,
        route: &Route,
        parts: &Parts,
        forwarding: Forwarding<'_>,
        body: Incoming,
        limit: usize,
        retry: RetryPolicy,
    ) -> Result<Response<Incoming>> {
        let path_and_query = route
            .upstream_path_and_query(parts.uri.path(), parts.uri.query())
            .map_err(|_| UpstreamFailure::BadRequest)?;
        let mut uri_parts = http::uri::Parts::default();
        uri_parts.scheme = Some(route.scheme.clone());
        uri_parts.authority = Some(route.authority.clone());
        uri_parts.path_and_query = Some(path_and_query);
        let uri = Uri::from_parts(uri_parts).map_err(|_| UpstreamFailure::BadRequest)?;
        let request = RequestLine {
            method: parts.method.as_str(),
            target: uri.path_and_query().map_or("/", |target| target.as_str()),
        };
        let mut headers = forwarding.to_header_map(request);
        let mut body = request_body(body, limit, &retry).await?;
        let method = &parts.method;
        let last = retry.attempts().saturating_sub(1);
        retry
            .run(&route.name, move |attempt| {
                let mut request = Request::new(UpstreamBody::from(body.for_attempt()));
                *request.method_mut() = method.clone();
                *request.uri_mut() = uri.clone();
                // The last attempt takes the headers instead of a copy.
                *request.headers_mut() = if attempt == last {
                    std::mem::take(&mut headers)
                } else {
                    headers.clone()
                };
                self.send_once(request)
            })
            .await
    }

    async fn send_once(&self, request: Request<UpstreamBody>) -> Result<Response<Incoming>> {
        match self.gateway.client.request(request).await {
            Ok(mut response) => {
                strip_response_hop_by_hop(response.headers_mut());
                Ok(response)
            }
            Err(err) => {
                let source: &(dyn std::error::Error + 'static) = &err;
                if is_length_limit(source) {
                    Err(UpstreamFailure::BodyTooLarge)
                } else {
                    tracing::debug!(error = %err, "upstream request failed");
                    Err(UpstreamFailure::Unavailable)
                }
            }
        }
    }
}

/// Plain-http upstreams: the gateway's own client, which applies the forwarding policy while
/// it writes the request head.
async fn send_plain(
    pool: &Arc<Pool>,
    route: &Route,
    parts: &Parts,
    forwarding: Forwarding<'_>,
    mut body: RequestBody,
    retry: RetryPolicy,
) -> Result<Response<StreamedBody>> {
    let target = route.upstream_target(parts.uri.path(), parts.uri.query());
    let head = RequestHead {
        method: &parts.method,
        target: &target,
        idempotent: is_idempotent(&parts.method),
        forwarding,
    };
    let head = &head;
    retry
        .run(&route.name, move |_| {
            let body = body.for_attempt();
            // Hop-by-hop response headers are dropped while the head is parsed.
            async move { pool.send(head, body).await.map_err(UpstreamFailure::from) }
        })
        .await
}

/// The request body as it goes upstream: streamed when it is sent once, buffered when it may
/// have to be sent again.
async fn request_body(body: Incoming, limit: usize, retry: &RetryPolicy) -> Result<RequestBody> {
    if body.is_end_stream() {
        Ok(RequestBody::Empty)
    } else if !retry.may_resend() {
        Ok(RequestBody::Streaming(Limited::new(body, limit)))
    } else {
        // Boxed: only retried routes buffer, and the collecting future is large.
        Box::pin(buffer_body(body, limit, retry.timeout()))
            .await
            .map(RequestBody::Buffered)
    }
}

/// Retrying needs the body again, so it is buffered (it is bounded by maxBodyBytes).
async fn buffer_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if is_length_limit(&*err) => Err(UpstreamFailure::BodyTooLarge),
        Ok(Err(_)) => Err(UpstreamFailure::BadRequest),
        Err(_) => Err(UpstreamFailure::Timeout),
    }
}

/// Why a request got no upstream response; each becomes the gateway's own answer.
#[derive(Debug)]
pub(super) enum UpstreamFailure {
    Unavailable,
    Timeout,
    BodyTooLarge,
    BadRequest,
}

impl UpstreamFailure {
    /// `error.type` of the upstream span.
    fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::BodyTooLarge => "body_too_large",
            Self::BadRequest => "bad_request",
        }
    }

    pub(super) fn into_response(self) -> Response<GatewayBody> {
        match self {
            Self::Unavailable => error_response(StatusCode::BAD_GATEWAY, "upstream unavailable"),
            Self::Timeout => error_response(StatusCode::GATEWAY_TIMEOUT, "upstream timed out"),
            Self::BodyTooLarge => {
                error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large")
            }
            Self::BadRequest => error_response(StatusCode::BAD_REQUEST, "malformed request"),
        }
    }
}

/// The upstream may answer another attempt; the client's request will not get better.
impl Retryable for UpstreamFailure {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable | Self::Timeout)
    }
}

impl From<Elapsed> for UpstreamFailure {
    fn from(_: Elapsed) -> Self {
        Self::Timeout
    }
}

impl From<UpstreamError> for UpstreamFailure {
    fn from(err: UpstreamError) -> Self {
        match err {
            UpstreamError::BodyTooLarge => Self::BodyTooLarge,
            UpstreamError::RequestBody => Self::BadRequest,
            err => {
                tracing::debug!(error = %err, "upstream request failed");
                Self::Unavailable
            }
        }
    }
}

fn is_length_limit(mut error: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        match error.source() {
            Some(source) => error = source,
            None => return false,
        }
    }
}
