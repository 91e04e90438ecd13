//! The reverse proxy: per-request pipeline from routing to the upstream response.
//!
//! Order: route -> CORS (tower-http, wraps everything below) -> JWT -> rate limit -> body limit
//! -> cache -> upstream (timeout, retries for idempotent methods) -> response.
//! The active configuration lives in an [`ArcSwap`] so reloads never block requests; requests in
//! flight finish with the snapshot they started with.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::error::Elapsed;
use tower::{Layer, Service, ServiceExt};
use tower_http::cors::CorsLayer;

use crate::auth::{AuthError, Identity, JwtValidator, bearer_token};
use crate::body::{GatewayBody, UpstreamBody};
use crate::cache::{self, CachedResponse, ResponseCache};
use crate::config::{CacheConfig, GatewayConfig, RateLimitConfig};
use crate::cors::cors_layer;
use crate::forward::{Forwarding, X_REQUEST_ID, strip_response_hop_by_hop};
use crate::metrics::Metrics;
use crate::ratelimit::{Decision, RateLimiter, retry_after_secs};
use crate::retry::{RetryPolicy, Retryable, is_idempotent};
use crate::routing::{Route, RouteTable};
use crate::upstream::{Pool, RequestBody, RequestHead, UpstreamError};

pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;
pub type UpstreamClient = Client<HttpsConnector, UpstreamBody>;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("failed to build the upstream TLS client: {0}")]
    Tls(#[from] rustls::Error),
    #[error("failed to build routes: {0}")]
    Routes(#[from] crate::routing::RouteError),
    #[error(transparent)]
    Jwt(#[from] crate::auth::jwt::JwtSetupError),
    #[error(transparent)]
    RateLimit(#[from] crate::ratelimit::RateLimitError),
}

pub type Result<T, E = ProxyError> = std::result::Result<T, E>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REQUEST_ID_LEN: usize = 128;
const RELOAD_READY_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP(S) connector for upstreams and JWKS; `ring` is named explicitly so that no process-wide
/// default crypto provider is needed (its absence would panic inside rustls).
pub fn build_connector() -> Result<HttpsConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_keepalive(Some(Duration::from_secs(60)));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// Where variables named by the config (`hs256SecretEnv`, `redisUrlEnv`) are looked up:
/// the process environment, or a fixed map (tests, which may not mutate the process env).
#[derive(Clone)]
pub struct Environment(Arc<EnvLookup>);

type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Environment {
    pub fn process() -> Self {
        Self(Arc::new(|name| std::env::var(name).ok()))
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let map: std::collections::HashMap<String, String> = pairs
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect();
        Self(Arc::new(move |name| map.get(name).cloned()))
    }

    pub fn var(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl std::fmt::Debug for Environment {
    // Values may be secrets, so they are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Environment(..)")
    }
}

/// Knobs that are not part of the configuration file.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// Prefix of the Redis keys holding shared rate-limit buckets.
    pub redis_key_prefix: String,
    /// Emit one JSON access-log event per request (target `panthera_gateway::access`).
    pub access_log: bool,
    pub environment: Environment,
    /// Minimum time between JWKS fetches triggered by tokens with an unknown key ID.
    pub jwks_min_refresh_interval: Duration,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            redis_key_prefix: "panthera:gateway:ratelimit:".to_owned(),
            access_log: true,
            environment: Environment::process(),
            jwks_min_refresh_interval: crate::auth::jwks::MIN_ON_DEMAND_INTERVAL,
        }
    }
}

/// Everything derived from one configuration file.
pub struct GatewayState {
    pub config: GatewayConfig,
    routes: RouteTable,
    jwt: Option<Arc<JwtValidator>>,
    rate_limiter: Option<Arc<RateLimiter>>,
    cors: Option<CorsLayer>,
    cache: Option<Arc<ResponseCache>>,
}

impl GatewayState {
    /// Builds runtime state, reusing the rate limiter and cache of `previous` when their sections
    /// did not change (so a reload does not reset buckets or drop cached responses).
    fn build(
        config: GatewayConfig,
        previous: Option<&GatewayState>,
        options: &GatewayOptions,
    ) -> Result<Self> {
        let routes = RouteTable::from_config_reusing(&config, previous.map(|prev| &prev.routes))?;
        let jwt = match config.jwt() {
            None => None,
            Some(jwt_config) => match previous {
                Some(prev) if prev.config.jwt() == Some(jwt_config) && prev.jwt.is_some() => {
                    prev.jwt.clone()
                }
                _ => Some(Arc::new(JwtValidator::from_config(
                    jwt_config,
                    &options.environment,
                    options.jwks_min_refresh_interval,
                )?)),
            },
        };
        let rate_limiter = match &config.rate_limit {
            None => None,
            Some(rate) => {
                reuse_if_same(previous, rate, |p| (&p.config.rate_limit, &p.rate_limiter))
                    .map(Ok)
                    .unwrap_or_else(|| {
                        RateLimiter::from_config(
                            rate,
                            &options.redis_key_prefix,
                            &options.environment,
                        )
                        .map(Arc::new)
                    })
                    .map(Some)?
            }
        };
        let cache = match &config.cache {
            None => None,
            Some(cache_config) => reuse_cache(previous, &config, cache_config)
                .or_else(|| ResponseCache::from_config(cache_config).map(Arc::new)),
        };
        let cors = config.cors.as_ref().map(cors_layer);
        Ok(Self {
            config,
            routes,
            jwt,
            rate_limiter,
            cors,
            cache,
        })
    }

    /// Whether everything needed to serve requests is loaded (JWKS fetched when configured).
    pub fn is_ready(&self) -> bool {
        self.jwt.as_ref().is_none_or(|jwt| jwt.is_ready())
    }
}

fn reuse_if_same<'a>(
    previous: Option<&'a GatewayState>,
    section: &RateLimitConfig,
    select: impl Fn(&'a GatewayState) -> (&'a Option<RateLimitConfig>, &'a Option<Arc<RateLimiter>>),
) -> Option<Arc<RateLimiter>> {
    let (old_section, old_limiter) = select(previous?);
    (old_section.as_ref() == Some(section)).then(|| old_limiter.clone())?
}

fn reuse_cache(
    previous: Option<&GatewayState>,
    config: &GatewayConfig,
    section: &CacheConfig,
) -> Option<Arc<ResponseCache>> {
    let previous = previous?;
    // Routes may now point elsewhere, so cached responses survive only an identical route table.
    (previous.config.cache.as_ref() == Some(section) && previous.config.routes == config.routes)
        .then(|| previous.cache.clone())?
}

/// The process-wide gateway: current state, upstream connection pool, metrics.
pub struct Gateway {
    state: ArcSwap<GatewayState>,
    client: UpstreamClient,
    metrics: Metrics,
    options: GatewayOptions,
    request_id_prefix: String,
    request_counter: AtomicU64,
    draining: AtomicBool,
}

impl Gateway {
    /// Builds the gateway from a validated configuration. Must run inside a Tokio runtime.
    pub fn new(config: GatewayConfig, options: GatewayOptions) -> Result<Arc<Self>> {
        let state = GatewayState::build(config, None, &options)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(usize::MAX)
            .pool_timer(TokioTimer::new())
            // Host is set from the route's precomputed value (see crate::forward).
            .set_host(false)
            .timer(TokioTimer::new())
            .build(build_connector()?);
        Ok(Arc::new(Self {
            state: ArcSwap::from_pointee(state),
            client,
            metrics: Metrics::new(),
            options,
            request_id_prefix: random_prefix(),
            request_counter: AtomicU64::new(0),
            draining: AtomicBool::new(false),
        }))
    }

    /// Swaps in a new configuration; on error the current one stays active.
    pub async fn reload(&self, config: GatewayConfig) -> Result<()> {
        let current = self.state.load_full();
        let result = GatewayState::build(config, Some(&current), &self.options);
        self.metrics.observe_reload(result.is_ok());
        let state = result?;
        // A new JWKS validator starts empty; swapping it in at once would reject every token
        // (and fail /readyz) until its first fetch, so give that fetch a moment first.
        let deadline = Instant::now() + RELOAD_READY_TIMEOUT;
        while !state.is_ready() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !state.is_ready() {
            tracing::warn!(
                "new configuration is not ready yet (JWKS not loaded); applying it anyway"
            );
        }
        if state.config.listen != current.config.listen
            || state.config.admin_listen != current.config.admin_listen
        {
            tracing::warn!("listen addresses changed; they take effect after a restart");
        }
        self.state.store(Arc::new(state));
        tracing::info!("gateway configuration reloaded");
        Ok(())
    }

    pub fn state(&self) -> Arc<GatewayState> {
        self.state.load_full()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::Acquire) && self.state.load().is_ready()
    }

    /// Makes `/readyz` fail so load balancers stop sending traffic before shutdown.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    fn request_id(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(id) = headers.get(&X_REQUEST_ID)
            && !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_LEN
            && id.as_bytes().iter().all(|b| b.is_ascii_graphic())
        {
            return id.clone();
        }
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        // Hex digits by hand on the stack: `format!` showed up in profiles.
        let mut digits = [0u8; 16];
        let mut start = digits.len();
        let mut rest = n;
        loop {
            start -= 1;
            digits[start] = b"0123456789abcdef"[(rest & 0xf) as usize];
            rest >>= 4;
            if rest == 0 {
                break;
            }
        }
        let mut id = Vec::with_capacity(self.request_id_prefix.len() + digits.len());
        id.extend_from_slice(self.request_id_prefix.as_bytes());
        id.extend_from_slice(&digits[start..]);
        HeaderValue::from_maybe_shared(Bytes::from(id))
            .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }

    /// Handles one downstream request end to end; never fails (errors become responses).
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: Peer,
    ) -> Response<GatewayBody> {
        let started = Instant::now();
        let state = self.state.load_full();
        let client = peer.addr;
        // Forwarded upstream by the pipeline (not inserted here: one header-map update less).
        let request_id = self.request_id(request.headers());
        let route = state.routes.find(request.uri().path()).cloned();
        let method = request.method().clone();
        let access_log = self.options.access_log
            && tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO);
        let path = if access_log {
            Some(request.uri().path().to_owned())
        } else {
            None
        };
        let route_name = route
            .as_ref()
            .map_or_else(|| Arc::clone(&UNMATCHED), |route| route.name.clone());
        let pipeline = Pipeline {
            gateway: Arc::clone(&self),
            state: Arc::clone(&state),
            route,
            peer,
            request_id: request_id.clone(),
        };
        let mut response = match &state.cors {
            // Optional steps are boxed so their (large) futures do not inflate, and get copied
            // with, every request's future on the plain path.
            Some(layer) => match Box::pin(layer.clone().layer(pipeline).oneshot(request)).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            None => pipeline.run(request).await,
        };
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), request_id.clone());
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        self.metrics
            .observe_request(&route_name, &method, status, elapsed);
        if let Some(path) = path {
            tracing::info!(
                target: ACCESS_TARGET,
                request_id = request_id.to_str().unwrap_or(""),
                client = %client.ip(),
                method = %method,
                path,
                route = &*route_name,
                status,
                duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            );
        }
        response
    }
}

/// `tracing` target of access-log events (filter with `RUST_LOG=...,panthera_gateway::access=off`).
pub const ACCESS_TARGET: &str = "panthera_gateway::access";
static UNMATCHED: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from("unmatched"));
static X_CACHE: HeaderName = HeaderName::from_static("x-cache");

fn random_prefix() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS; enough to keep IDs of different replicas apart.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}-", hasher.finish())
}

/// The downstream peer; its IP is formatted once per connection (for X-Forwarded-For) rather
/// than per request.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    pub ip: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        let ip = HeaderValue::from_maybe_shared(Bytes::from(addr.ip().to_string()))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self { addr, ip }
    }
}

/// One request's trip through the gateway, as a tower service so tower-http's CORS can wrap it.
#[derive(Clone)]
struct Pipeline {
    gateway: Arc<Gateway>,
    state: Arc<GatewayState>,
    route: Option<Arc<Route>>,
    peer: Peer,
    request_id: HeaderValue,
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
    async fn run(self, request: Request<Incoming>) -> Response<GatewayBody> {
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
            let key = limiter.key_for(self.peer.addr.ip(), subject);
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

    /// Sends the request upstream, retrying idempotent requests on transport errors and timeouts.
    async fn forward(
        &self,
        route: &Route,
        request: Request<Incoming>,
        max_body: u64,
        identity: Option<&Identity>,
    ) -> std::result::Result<Response<GatewayBody>, UpstreamFailure> {
        let (parts, body) = request.into_parts();
        let retry = RetryPolicy::new(&parts.method, route.retries, route.timeout);
        let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
        let forwarding = Forwarding {
            headers: &parts.headers,
            host: &route.host_header,
            request_id: &self.request_id,
            client_ip: &self.peer.ip,
            identity,
        };
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
    ) -> std::result::Result<Response<Incoming>, UpstreamFailure> {
        let path_and_query = route
            .upstream_path_and_query(parts.uri.path(), parts.uri.query())
            .map_err(|_| UpstreamFailure::BadRequest)?;
        let mut uri_parts = http::uri::Parts::default();
        uri_parts.scheme = Some(route.scheme.clone());
        uri_parts.authority = Some(route.authority.clone());
        uri_parts.path_and_query = Some(path_and_query);
        let uri = Uri::from_parts(uri_parts).map_err(|_| UpstreamFailure::BadRequest)?;
        let mut headers = forwarding.to_header_map();
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

    async fn send_once(
        &self,
        request: Request<UpstreamBody>,
    ) -> std::result::Result<Response<Incoming>, UpstreamFailure> {
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
    pool: &std::sync::Arc<Pool>,
    route: &Route,
    parts: &Parts,
    forwarding: Forwarding<'_>,
    mut body: RequestBody,
    retry: RetryPolicy,
) -> std::result::Result<Response<crate::upstream::StreamedBody>, UpstreamFailure> {
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
async fn request_body(
    body: Incoming,
    limit: usize,
    retry: &RetryPolicy,
) -> std::result::Result<RequestBody, UpstreamFailure> {
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
async fn buffer_body(
    body: Incoming,
    limit: usize,
    timeout: std::time::Duration,
) -> std::result::Result<Bytes, UpstreamFailure> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if is_length_limit(&*err) => Err(UpstreamFailure::BodyTooLarge),
        Ok(Err(_)) => Err(UpstreamFailure::BadRequest),
        Err(_) => Err(UpstreamFailure::Timeout),
    }
}

/// Why a request got no upstream response; each becomes the gateway's own answer.
#[derive(Debug)]
enum UpstreamFailure {
    Unavailable,
    Timeout,
    BodyTooLarge,
    BadRequest,
}

impl UpstreamFailure {
    fn into_response(self) -> Response<GatewayBody> {
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

/// A small JSON error body; messages are fixed strings, never request data or secrets.
pub fn error_response(status: StatusCode, message: &'static str) -> Response<GatewayBody> {
    let body = format!("{{\"error\":\"{message}\",\"status\":{}}}", status.as_u16());
    let mut response = Response::new(GatewayBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// RFC 9457 problem details, as the services answer errors. `reason` repeats `detail` for
/// clients of the gateway's earlier `{"error","reason","status"}` body.
fn problem(status: StatusCode, slug: &str, title: &str, detail: &str) -> Response<GatewayBody> {
    let body = serde_json::json!({
        "type": format!("https://panthera.dev/problems/{slug}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "error": slug,
        "reason": detail,
    });
    let mut response = Response::new(GatewayBody::full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// A valid token without a role or scope the route's rule asks for. The rule itself is not
/// disclosed, only that this token is not enough.
fn forbidden() -> Response<GatewayBody> {
    problem(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Forbidden",
        "the token lacks a role or scope this route requires",
    )
}

fn unauthorized(error: &AuthError) -> Response<GatewayBody> {
    let description = error.to_string();
    let mut response = problem(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        &description,
    );
    let challenge = if matches!(error, AuthError::MissingToken) {
        "Bearer".to_owned()
    } else {
        format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
