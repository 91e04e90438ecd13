//! Tracing subscriber: JSON lines in a cluster (`LOG_FORMAT=json`), human-readable text locally,
//! and OpenTelemetry spans over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`panthera-otel`).

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the global subscriber, its log lines filtered by `RUST_LOG` (default `info`);
/// `service` names the traces' service when `OTEL_SERVICE_NAME` is unset.
///
/// Calling it twice keeps the first subscriber, so tests and embedders can call it freely.
pub fn init(format: LogFormat, service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_target(true);
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            // The request span's fields, trace_id and span_id among them, on every line.
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    // RUST_LOG filters the log lines only: the spans are exported whatever it says.
    let (otel, setup_error) = match panthera_otel::layer(service, panthera_otel::Sampling::Sdk) {
        Ok(layer) => (layer, None),
        Err(error) => (None, Some(error)),
    };
    // Panthera's own spans only: the dependencies' (sqlx, rskafka) would add a span per poll.
    let otel = otel.map(|layer| {
        layer.with_filter(filter_fn(|metadata| {
            metadata.target().starts_with("panthera") && *metadata.level() <= Level::INFO
        }))
    });
    let sql = otel.is_some().then(|| {
        panthera_otel::SqlSpans.with_filter(filter_fn(|metadata| {
            metadata.target() == panthera_otel::sql::SQLX_TARGET
        }))
    });
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .with(sql)
        .try_init()
        .is_ok();
    if installed && let Some(error) = setup_error {
        tracing::error!(error = %error, "tracing is off: its OTEL_* settings are wrong");
    }
}

/// Exports the spans still buffered; called as the service stops.
pub fn shutdown() {
    panthera_otel::shutdown();
}

/// Makes ring rustls's process-wide crypto provider, so that TLS to PostgreSQL (`sslmode`) and
/// Redis (`rediss://`) works whatever other rustls features the workspace enables (with two
/// providers compiled in, rustls refuses to pick one on its own).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
