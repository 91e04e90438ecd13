//! Prometheus metrics: per-route request counts and latencies, plus whatever a service registers.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route template (`/v1/users/{id}`), never the raw path, to keep cardinality bounded.
    route: String,
    status: u16,
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// Cheap to clone; all clones share one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_labels(
            [(
                std::borrow::Cow::Borrowed("service"),
                std::borrow::Cow::Owned(service.to_owned()),
            )]
            .into_iter(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "HTTP requests served, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route and status",
            latency.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            latency,
        }
    }

    /// Adds a service-specific metric (e.g. outbox lag).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.register(name, help, metric);
        }
    }

    /// Exports the connection pool's size at every scrape: `db_pool_connections` (open),
    /// `db_pool_idle_connections` and `db_pool_max_connections`, so an alert can tell a pool
    /// whose every connection is in use (requests queue for one, then time out).
    pub fn register_pool(&self, pool: sqlx::PgPool) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.register_collector(Box::new(PoolCollector { pool }));
        }
    }

    /// The registry in the Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        let registry = self.registry.lock().map_err(|_| std::fmt::Error)?;
        encode(&mut out, &registry)?;
        Ok(out)
    }

    fn observe(&self, method: &str, route: &str, status: StatusCode, seconds: f64) {
        let labels = RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status: status.as_u16(),
        };
        self.latency.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }
}

/// Reads the pool when scraped: a gauge updated on a timer would be stale exactly when the pool
/// is saturated and the service too busy to update it.
#[derive(Debug)]
struct PoolCollector {
    pool: sqlx::PgPool,
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauges = [
            (
                "db_pool_connections",
                "Open connections of the PostgreSQL pool (in use and idle)",
                i64::from(self.pool.size()),
            ),
            (
                "db_pool_idle_connections",
                "Idle connections of the PostgreSQL pool",
                i64::try_from(self.pool.num_idle()).unwrap_or(i64::MAX),
            ),
            (
                "db_pool_max_connections",
                "Most connections the PostgreSQL pool opens (DATABASE_MAX_CONNECTIONS)",
                i64::from(self.pool.options().get_max_connections()),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// Middleware recording every routed request; install with `Router::route_layer` so that
/// [`MatchedPath`] is known.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    metrics.observe(
        &method,
        &route,
        response.status(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`
pub async fn handler(State(metrics): State<Metrics>) -> Response {
    match metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_requests_are_encoded() {
        let metrics = Metrics::new("test");
        metrics.observe("GET", "/v1/users/{id}", StatusCode::OK, 0.002);
        let text = metrics.encode().unwrap();
        assert!(text.contains("http_requests_total{"), "{text}");
        assert!(text.contains("route=\"/v1/users/{id}\""), "{text}");
        assert!(text.contains("service=\"test\""), "{text}");
    }

    #[tokio::test]
    async fn the_pool_is_read_at_every_scrape() {
        // A lazy pool opens no connection: its size is read without a server.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(7)
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        let metrics = Metrics::new("test");
        metrics.register_pool(pool);
        let text = metrics.encode().unwrap();
        assert!(
            text.contains("db_pool_max_connections{service=\"test\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("db_pool_connections{service=\"test\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("db_pool_idle_connections{service=\"test\"} 0"),
            "{text}"
        );
    }
}
