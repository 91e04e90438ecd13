//! One request's trip through the gateway: route, authentication and authorization, rate
//! limit, body limit and cache, then upstream (see [`super::send`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower::Service;

use super::responses::{error_response, forbidden, unauthorized};
use super::{Gateway, GatewayState, Peer};
use crate::auth::bearer_token;
use crate::body::GatewayBody;
use crate::cache::{self, CachedResponse, ResponseCache};
use crate::client_addr::ClientAddress;
use crate::forward::X_REQUEST_ID;
use crate::ratelimit::{Decision, retry_after_secs};
use crate::routing::Route;

static X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// One request's trip through the gateway, as a tower service so tower-http's CORS can wrap it.
#[derive(Clone)]
pub(super) struct Pipeline {
    pub(super) gateway: Arc<Gateway>,
    pub(super) state: Arc<GatewayState>,
    pub(super) route: Option<Arc<Route>>,
    pub(super) peer: Peer,
    /// Who sent the request: the peer, or the client a trusted proxy names.
    pub(super) client: ClientAddress,
    pub(super) request_id: HeaderValue,
    /// Whether this request is traced; `None` while tracing is off.
    pub(super) trace: Option<super::trace::RequestTrace>,
}

impl Service<Request<Incoming>> for Pipeline {
    type Response = Response<GatewayBody>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = std::result::Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let pipeline = self.clone();
        Box::pin(async move { Ok(pipeline.run(request).await) })
    }
}

impl Pipeline {
    /// The response to `request`. One to a request that carried `Authorization` leaves the
    /// gateway `private`, cached by the gateway or not: no shared cache in front of it (a CDN
    /// keyed by the header, a corporate proxy) may keep it.
    pub(super) async fn run(self, request: Request<Incoming>) -> Response<GatewayBody> {
        let authorized = request.headers().contains_key(header::AUTHORIZATION);
        let mut response = self.respond(request).await;
        if authorized {
            cache::mark_private(response.headers_mut());
        }
        response
    }

    async fn respond(self, request: Request<Incoming>) -> Response<GatewayBody> {
        let Some(route) = self.route.clone() else {
            return error_response(StatusCode::NOT_FOUND, "no route matches the request path");
        };
        let mut identity = None;
        let access = route.access(request.method());
        if let Some(jwt) = &self.state.jwt
            && !access.is_public()
        {
            let verified = match bearer_token(request.headers()) {
                Ok(token) => Box::pin(jwt.verify(token)).await,
                Err(err) => Err(err),
            };
            match verified {
                Ok(token) if access.allows(&token.identity) => identity = Some(token.identity),
                Ok(_) => return forbidden(),
                Err(err) => return unauthorized(&err),
            }
        }
        if let Some(limiter) = &self.state.rate_limiter {
            let subject = identity.as_ref().and_then(|id| id.subject.as_ref());
            let key = limiter.key_for(self.client.ip, subject);
            if let Decision::Limited { retry_after } = Box::pin(limiter.check(&key)).await {
                let mut response =
                    error_response(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(retry_after)),
                );
                return response;
            }
        }
        let max_body = self.state.config.max_body_bytes;
        if content_length(request.headers()).is_some_and(|length| length > max_body) {
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large");
        }
        let cache = self.state.cache.as_ref().filter(|_| {
            request.method() == Method::GET && cache::request_allows_cache(request.headers())
        });
        let cache_key = cache.map(|_| {
            let path_and_query = request
                .uri()
                .path_and_query()
                .map_or("/", PathAndQuery::as_str);
            ResponseCache::key(&route.name, path_and_query)
        });
        if let (Some(cache), Some(key)) = (cache, &cache_key)
            && let Some(hit) = cache.get(key)
        {
            return cached_response(&hit);
        }
        let has_authorization = request.headers().contains_key(header::AUTHORIZATION);
        let response = match self
            .forward(&route, request, max_body, identity.as_deref())
            .await
        {
            Ok(response) => response,
            Err(failure) => return failure.into_response(),
        };
        match (cache, cache_key) {
            (Some(cache), Some(key)) => {
                Box::pin(store_if_cacheable(
                    cache,
                    key,
                    response,
                    has_authorization,
                    route.timeout,
                ))
                .await
            }
            _ => response,
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn store_if_cacheable(
    cache: &ResponseCache,
    key: String,
    response: Response<GatewayBody>,
    request_has_authorization: bool,
    timeout: Duration,
) -> Response<GatewayBody> {
    let ttl = cache::response_ttl(
        response.status(),
        response.headers(),
        request_has_authorization,
    );
    let small_enough =
        content_length(response.headers()).is_some_and(|len| len <= cache::MAX_CACHEABLE_BODY);
    let Some(ttl) = ttl.filter(|_| small_enough) else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let bytes = match tokio::time::timeout(timeout, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => return error_response(StatusCode::BAD_GATEWAY, "upstream response failed"),
        Err(_) => return error_response(StatusCode::GATEWAY_TIMEOUT, "upstream timed out"),
    };
    let initial_age = parts
        .headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    let mut stored_headers = parts.headers.clone();
    stored_headers.remove(&X_REQUEST_ID);
    cache.insert(
        key,
        CachedResponse {
            status: parts.status,
            headers: stored_headers,
            body: bytes.clone(),
            stored_at: Instant::now(),
            initial_age,
            ttl,
        },
    );
    parts
        .headers
        .insert(X_CACHE.clone(), HeaderValue::from_static("MISS"));
    Response::from_parts(parts, GatewayBody::full(bytes))
}

fn cached_response(hit: &CachedResponse) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::full(hit.body.clone()));
    *response.status_mut() = hit.status;
    *response.headers_mut() = hit.headers.clone();
    response
        .headers_mut()
        .insert(header::AGE, HeaderValue::from(hit.age_secs()));
    response
        .headers_mut()
        .insert(X_CACHE.clone(), HeaderValue::from_static("HIT"));
    response
}
