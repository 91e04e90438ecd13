//! OTLP over gRPC. tonic's client needs a Tokio reactor, and the SDK's batch processor exports
//! from its own OS thread, which has none (the exporter would panic there): this exporter owns a
//! current-thread runtime and drives each export on it, on that thread, off the binary's own
//! runtime.

use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use tokio::runtime::Runtime;

use super::SetupError;

#[derive(Debug)]
pub(super) struct Exporter {
    runtime: Runtime,
    inner: opentelemetry_otlp::SpanExporter,
}

impl Exporter {
    /// The tonic exporter, reading the endpoint from `OTEL_EXPORTER_OTLP_*` as the SDK does;
    /// built inside the runtime, whose context its channel needs.
    pub(super) fn build() -> Result<Self, SetupError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("otlp-grpc")
            .build()
            .map_err(SetupError::Runtime)?;
        let inner = {
            let _entered = runtime.enter();
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?
        };
        Ok(Self { runtime, inner })
    }

    /// Runs on the batch processor's thread, never inside another runtime.
    pub(super) fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.runtime.block_on(self.inner.export(batch))
    }

    pub(super) fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    pub(super) fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
