//! The reverse proxy: per-request pipeline from routing to the upstream response.
//!
//! Order: route -> CORS (tower-http, wraps everything below) -> JWT -> rate limit -> body limit
//! -> cache -> upstream (timeout, retries for idempotent methods) -> response.
//! The active configuration lives in an [`ArcSwap`] so reloads never block requests; requests in
//! flight finish with the snapshot they started with.
//!
//! Here: the process-wide [`Gateway`]; `state` holds what one configuration file builds,
//! `pipeline` the per-request steps, `send` the trip upstream and `responses` the gateway's
//! own answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower::{Layer, ServiceExt};
use tracing::Instrument;

use crate::body::{GatewayBody, UpstreamBody};
use crate::config::GatewayConfig;
use crate::forward::X_REQUEST_ID;
use crate::metrics::Metrics;

mod pipeline;
mod responses;
mod send;
mod state;
mod trace;

use pipeline::Pipeline;
pub use responses::error_response;
pub use state::{Environment, GatewayOptions, GatewayState};

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
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("failed to read the identity signing keys from {env}: {reason}")]
    IdentityKeys { env: String, reason: String },
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
        let client = state
            .client_address
            .resolve(peer.addr.ip(), request.headers());
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
        // Only while tracing is on: off, a request pays one atomic load for it. Whether the
        // request is traced is decided before any span exists.
        let (trace, mut server_span) = if panthera_otel::enabled() {
            let (trace, span) = trace::start(
                request.headers(),
                &method,
                route.as_deref(),
                &route_name,
                &client,
                state.config.tracing.trust_client_context,
            );
            (Some(trace), span)
        } else {
            (None, None)
        };
        // Log lines written in the pipeline carry the trace's ids (only while they are logged).
        let log_span = trace.as_ref().and_then(|trace| {
            tracing::enabled!(target: LOG_SPAN_TARGET, tracing::Level::INFO).then(|| {
                tracing::info_span!(
                    target: LOG_SPAN_TARGET,
                    "request",
                    trace_id = %trace.trace_id(),
                    span_id = server_span.as_ref().map(|span| span.context().span_id().to_string()),
                )
            })
        });
        let pipeline = Pipeline {
            gateway: Arc::clone(&self),
            state: Arc::clone(&state),
            route,
            peer,
            client,
            request_id: request_id.clone(),
            trace: trace.clone(),
        };
        let handled = async {
            match &state.cors {
                // Optional steps are boxed so their (large) futures do not inflate, and get
                // copied with, every request's future on the plain path.
                Some(layer) => {
                    match Box::pin(layer.clone().layer(pipeline).oneshot(request)).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    }
                }
                None => pipeline.run(request).await,
            }
        };
        let mut response = match log_span {
            None => handled.await,
            Some(span) => Box::pin(handled.instrument(span)).await,
        };
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), request_id.clone());
        let status = response.status().as_u16();
        if let Some(span) = &mut server_span {
            trace::finish_server(span, status);
        }
        let elapsed = started.elapsed();
        self.metrics
            .observe_request(&route_name, &method, status, elapsed);
        if let Some(path) = path {
            tracing::info!(
                target: ACCESS_TARGET,
                request_id = request_id.to_str().unwrap_or(""),
                client = %client.ip,
                method = %method,
                path,
                route = &*route_name,
                status,
                trace_id = trace.as_ref().map(|trace| trace.trace_id().to_string()),
                duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            );
        }
        response
    }
}

/// `tracing` target of access-log events (filter with `RUST_LOG=...,panthera_gateway::access=off`).
pub const ACCESS_TARGET: &str = "panthera_gateway::access";
/// `tracing` target of the span that gives a request's log lines its trace ids.
const LOG_SPAN_TARGET: &str = "panthera_gateway::request";
static UNMATCHED: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from("unmatched"));

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
