//! Tracing subscriber: JSON lines in a cluster (`LOG_FORMAT=json`), human-readable text locally.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber, filtered by `RUST_LOG` (default `info`).
///
/// Calling it twice keeps the first subscriber, so tests and embedders can call it freely.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Makes ring rustls's process-wide crypto provider, so that TLS to PostgreSQL (`sslmode`) and
/// Redis (`rediss://`) works whatever other rustls features the workspace enables (with two
/// providers compiled in, rustls refuses to pick one on its own).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
