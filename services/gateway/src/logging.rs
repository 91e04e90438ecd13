//! Log setup: JSON lines on stdout (or text with `LOG_FORMAT=text`), written by a background
//! thread so that request handling never waits on stdout; and the OpenTelemetry export over
//! OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`panthera-otel`).

use tracing_appender::non_blocking::WorkerGuard;
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
    // The gateway makes its spans straight through the OpenTelemetry SDK (proxy/trace.rs), not
    // through `tracing`: no OpenTelemetry layer here, so its `tracing` spans are log context only.
    let setup_error = panthera_otel::init("panthera-gateway", panthera_otel::Sampling::Edge).err();
    let result = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .try_init();
    if let Err(err) = result {
        eprintln!("failed to install the log subscriber: {err}");
    } else if let Some(error) = setup_error {
        tracing::error!(error = %error, "tracing is off: its OTEL_* settings are wrong");
    }
    guard
}
