//! Prometheus metrics and the health endpoints the kubelet and Prometheus scrape.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    pub namespace: String,
    pub platform: String,
}

/// Everything the operator exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<ResultLabels, Counter>,
    pub duration: Histogram,
    pub errors: Family<ErrorLabels, Counter>,
    /// Platforms whose current generation is not reconciled yet, plus reconciles running.
    pub queue_depth: Gauge,
    pub in_flight: AtomicI64,
    pub leader: Gauge,
    pub writes: Counter,
    /// 1 while a platform's Ready condition is True, 0 while False; no series for a platform
    /// that is paused, being deleted, or gone (nothing to alert on).
    pub platform_ready: Family<PlatformLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("panthera_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let errors = Family::<ErrorLabels, Counter>::default();
        let queue_depth = Gauge::default();
        let leader = Gauge::default();
        let writes = Counter::default();
        let platform_ready = Family::<PlatformLabels, Gauge>::default();
        registry.register(
            "reconciles",
            "Reconciles by result (success, error)",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile takes",
            duration.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Failed reconciles by reason",
            errors.clone(),
        );
        registry.register(
            "queue_depth",
            "Platforms whose current generation is not reconciled yet, plus reconciles running",
            queue_depth.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        registry.register(
            "child_writes",
            "Objects created, changed or deleted in the cluster",
            writes.clone(),
        );
        registry.register(
            "platform_ready",
            "1 while the platform's Ready condition is True, 0 while it is False (written by the leader)",
            platform_ready.clone(),
        );
        Self {
            registry,
            reconciles,
            duration,
            errors,
            queue_depth,
            in_flight: AtomicI64::new(0),
            leader,
            writes,
            platform_ready,
        }
    }
}

impl Metrics {
    /// Count a reconcile from now until the guard is dropped.
    pub fn reconcile(self: &Arc<Self>) -> ReconcileTimer {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        ReconcileTimer {
            metrics: self.clone(),
            started: Instant::now(),
        }
    }

    pub fn error(&self, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Record whether a platform is Ready; `None` drops its series (paused, deleted).
    pub fn platform_ready(&self, namespace: &str, platform: &str, ready: Option<bool>) {
        let labels = PlatformLabels {
            namespace: namespace.to_string(),
            platform: platform.to_string(),
        };
        match ready {
            Some(ready) => {
                self.platform_ready
                    .get_or_create(&labels)
                    .set(i64::from(ready));
            }
            None => {
                self.platform_ready.remove(&labels);
            }
        }
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Observes a reconcile's duration when dropped.
pub struct ReconcileTimer {
    metrics: Arc<Metrics>,
    started: Instant,
}

impl ReconcileTimer {
    pub fn finish(self, ok: bool) {
        self.metrics
            .reconciles
            .get_or_create(&ResultLabels {
                result: if ok { "success" } else { "error" }.into(),
            })
            .inc();
    }
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.metrics
            .duration
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// What `/readyz` and `/metrics` read.
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub ready: AtomicBool,
    /// Counts platforms not yet reconciled at their current generation, at scrape time.
    pub pending: Box<dyn Fn() -> i64 + Send + Sync>,
}

pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn metrics(State(health): State<Arc<Health>>) -> impl IntoResponse {
    let m = &health.metrics;
    m.queue_depth
        .set((health.pending)() + m.in_flight.load(Ordering::Relaxed));
    match m.encode() {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn readyz(State(health): State<Arc<Health>>) -> impl IntoResponse {
    if health.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Serve the health and metrics endpoints until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, router(health))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_names_are_the_documented_ones() {
        let m = Arc::new(Metrics::default());
        m.reconcile().finish(true);
        m.error("Conflict");
        m.platform_ready("shop", "acme", Some(false));
        m.platform_ready("shop", "gone", Some(true));
        m.platform_ready("shop", "gone", None);
        let text = m.encode().unwrap();
        assert!(!text.contains("platform=\"gone\""), "{text}");
        for name in [
            "panthera_operator_reconciles_total{result=\"success\"} 1",
            "panthera_operator_reconcile_duration_seconds_count 1",
            "panthera_operator_reconcile_errors_total{reason=\"Conflict\"} 1",
            "panthera_operator_queue_depth",
            "panthera_operator_leader",
            "panthera_operator_platform_ready{namespace=\"shop\",platform=\"acme\"} 0",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
        assert_eq!(m.in_flight.load(Ordering::Relaxed), 0);
    }
}
