//! Log setup: JSON lines on stdout (or text with `LOG_FORMAT=text`), written by a background
//! thread so that request handling never waits on stdout; and OpenTelemetry spans over OTLP
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`panthera-otel`).

use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Installs the global subscriber. Keep the guard alive: dropping it flushes and stops the writer.
pub fn init() -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        // Dropping lines under extreme load beats stalling the proxy.
        .lossy(true)
        .finish(std::io::stdout());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("LOG_FORMAT").is_ok_and(|format| format == "text");
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let fmt = if text {
        fmt.boxed()
    } else {
        fmt.json()
            .flatten_event(true)
            // The request span's fields (trace_id, span_id) on lines written inside it; there
            // are no spans while tracing is off.
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    };
    let (otel, setup_error) = match panthera_otel::layer("panthera-gateway") {
        Ok(layer) => (layer, None),
        Err(error) => (None, Some(error)),
    };
    // RUST_LOG filters the log lines only; the gateway's spans are exported whatever it says.
    let otel = otel.map(|layer| {
        layer.with_filter(filter_fn(|metadata| {
            metadata.target().starts_with("panthera") && *metadata.level() <= Level::INFO
        }))
    });
    let result = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init();
    if let Err(err) = result {
        eprintln!("failed to install the log subscriber: {err}");
    } else if let Some(error) = setup_error {
        tracing::error!(error = %error, "tracing is off: its OTEL_* settings are wrong");
    }
    guard
}
