//! OpenTelemetry tracing for Panthera's binaries: OTLP export over HTTP/protobuf or gRPC,
//! configured by the standard `OTEL_*` variables, and W3C trace context (`traceparent`, `tracestate`) in HTTP
//! headers and Kafka message headers.
//!
//! Off unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and
//! `OTEL_SDK_DISABLED` is not `true`): then [`layer`] returns `None`, [`enabled`] is false and
//! callers skip making spans at all, so tracing off costs one relaxed atomic load per request.
//!
//! Read by the SDK itself: `OTEL_SERVICE_NAME` (else the binary's name given to [`layer`]),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (parent-based
//! always-on by default; the renderer sets `parentbased_traceidratio`), `OTEL_BSP_*` (batching).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use opentelemetry;
pub use tracing_opentelemetry::OpenTelemetryLayer;

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

static ENABLED: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

pub mod direct;
pub mod edge;
mod grpc;
pub mod sql;
pub use edge::EdgeTrace;
pub use sql::SqlSpans;

/// Why tracing could not be set up (the binary then runs without it, saying so).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0}: expected http/protobuf or grpc")]
    Protocol(String),
    #[error("building the OTLP span exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("starting the runtime of the gRPC span exporter")]
    Runtime(#[source] std::io::Error),
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `http/protobuf`, the default: POST to `<endpoint>/v1/traces`.
    HttpProtobuf,
    /// `grpc`: the collector's `TraceService/Export` at the endpoint (usually port 4317).
    Grpc,
}

/// The protocol the environment names (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
/// `OTEL_EXPORTER_OTLP_PROTOCOL`; `http/protobuf` when neither is set).
pub fn configured_protocol(env: impl Fn(&str) -> Option<String>) -> Result<Protocol, SetupError> {
    let named = [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into_iter()
    .filter_map(&env)
    .map(|value| value.trim().to_owned())
    .find(|value| !value.is_empty());
    match named.as_deref() {
        None | Some("http/protobuf") => Ok(Protocol::HttpProtobuf),
        Some("grpc") => Ok(Protocol::Grpc),
        Some(other) => Err(SetupError::Protocol(other.to_owned())),
    }
}

/// Who decides which traces are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// The SDK, by `OTEL_TRACES_SAMPLER` (the services and the operator).
    Sdk,
    /// The binary itself, before it makes a span ([`edge::decide`]), at the ratio
    /// `OTEL_TRACES_SAMPLER` names; the SDK then records what it is given (the gateway).
    Edge,
}

/// Whether spans are exported: checked before making a span on a hot path.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The endpoint OTLP traces go to, from the environment; `None` when tracing is off.
pub fn configured_endpoint(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    if env("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    if env("OTEL_TRACES_EXPORTER").is_some_and(|value| value.trim() == "none") {
        return None;
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .filter_map(&env)
    .map(|value| value.trim().to_owned())
    .find(|value| !value.is_empty())
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Sets up export over OTLP when the environment configures it (see the crate's docs); returns
/// whether tracing is on. For a binary that makes its spans
/// with [`direct::Span`]; [`layer`] calls it too. `default_service` names the service when
/// `OTEL_SERVICE_NAME` is unset.
pub fn init(default_service: &str, sampling: Sampling) -> Result<bool, SetupError> {
    if configured_endpoint(process_env).is_none() {
        return Ok(false);
    }
    if PROVIDER.get().is_some() {
        // A second call (tests) keeps the first provider.
        return Ok(true);
    }
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match configured_protocol(process_env)? {
        Protocol::HttpProtobuf => Exporter::Http(builder.with_http().build()?),
        Protocol::Grpc => Exporter::Grpc(grpc::Exporter::build()?),
    };
    let mut resource = Resource::builder();
    if process_env("OTEL_SERVICE_NAME").is_none_or(|name| name.trim().is_empty()) {
        resource = resource.with_service_name(default_service.to_owned());
    }
    let resource = resource
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let mut provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource);
    if sampling == Sampling::Edge {
        edge::set_ratio(edge::configured_ratio(process_env));
        provider = provider.with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    }
    let provider = provider.build();
    let _ = TRACER.set(provider.tracer("panthera"));
    let _ = PROVIDER.set(provider);
    ENABLED.store(true, Ordering::Relaxed);
    Ok(true)
}

/// The tracer [`init`] made; `None` while tracing is off.
pub(crate) fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// The `tracing` layer exporting spans over OTLP, or `None` when tracing is off (see [`init`]).
pub fn layer<S>(
    default_service: &str,
    sampling: Sampling,
) -> Result<Option<OpenTelemetryLayer<S, SdkTracer>>, SetupError>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    if !init(default_service, sampling)? {
        return Ok(None);
    }
    let Some(tracer) = tracer() else {
        return Ok(None);
    };
    // Not the source location, thread, target or busy/idle time of each span: seven attributes
    // (three of them allocated strings) per span that no trace reader needs.
    Ok(Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer.clone())
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false),
    ))
}

/// The span exporter of the protocol configured.
#[derive(Debug)]
enum Exporter {
    Http(opentelemetry_otlp::SpanExporter),
    Grpc(grpc::Exporter),
}

impl opentelemetry_sdk::trace::SpanExporter for Exporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            Self::Http(exporter) => exporter.export(batch).await,
            Self::Grpc(exporter) => exporter.export(batch),
        }
    }

    fn shutdown_with_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        match self {
            Self::Http(exporter) => exporter.shutdown_with_timeout(timeout),
            Self::Grpc(exporter) => exporter.shutdown_with_timeout(timeout),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        match self {
            Self::Http(exporter) => exporter.set_resource(resource),
            Self::Grpc(exporter) => exporter.set_resource(resource),
        }
    }
}

/// Exports the spans still buffered; called once as the process stops.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        eprintln!("flushing the last trace spans failed: {error}");
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The trace context a request's `traceparent`/`tracestate` carry (an empty context when absent
/// or malformed).
pub fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// The trace context from (name, value) pairs, as Kafka headers carry it.
pub fn extract_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Context {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.insert(name, value);
        }
    }
    extract(&headers)
}

/// Writes `span`'s context as `traceparent` (and `tracestate`) into `headers`, replacing any.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    let context = span.context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
    }
}

/// `span`'s context as `traceparent` (and `tracestate`) pairs, for a Kafka message or a row.
pub fn context_pairs(span: &tracing::Span) -> Vec<(String, String)> {
    let mut headers = HeaderMap::new();
    inject(span, &mut headers);
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// How a server treats the trace context a request arrives with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Continue it: the span is its child and the sampling decision follows it (between
    /// Panthera's own workloads, or behind a gateway the platform trusts).
    Continue,
    /// Start a new trace, linked to the caller's context: a client cannot force sampling or
    /// join a trace of its choosing.
    Link,
}

/// Makes `span` continue or link the trace context in `headers`; then notes the trace and span
/// ids on it (fields `trace_id`, `span_id`, if declared) so log lines inside carry them.
pub fn adopt(span: &tracing::Span, headers: &HeaderMap, incoming: Incoming) {
    adopt_context(span, extract(headers), incoming);
}

/// [`adopt`] for a context already extracted (a Kafka message's).
pub fn adopt_context(span: &tracing::Span, parent: Context, incoming: Incoming) {
    let remote: SpanContext = parent.span().span_context().clone();
    if remote.is_valid() {
        match incoming {
            Incoming::Continue => {
                // Only fails on a span already started, which callers do not pass.
                let _ = span.set_parent(parent);
            }
            Incoming::Link => span.add_link(remote),
        }
    }
    record_ids(span);
}

/// The span's trace id (32 hex digits), for a log line written outside it.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let otel = context.span();
    let ids = otel.span_context();
    ids.is_valid().then(|| ids.trace_id().to_string())
}

/// Records the span's OTel trace and span ids in its `trace_id` and `span_id` fields.
pub fn record_ids(span: &tracing::Span) {
    let context = span.context();
    let otel = context.span();
    let ids = otel.span_context();
    if ids.is_valid() {
        span.record("trace_id", tracing::field::display(ids.trace_id()));
        span.record("span_id", tracing::field::display(ids.span_id()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment of these pairs only.
    pub(crate) fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn off_without_an_endpoint_or_when_disabled() {
        assert_eq!(configured_endpoint(env(&[])), None);
        assert_eq!(
            configured_endpoint(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])),
            None
        );
        let on = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")];
        assert_eq!(
            configured_endpoint(env(&on)).as_deref(),
            Some("http://collector:4318")
        );
        let disabled = [on[0], ("OTEL_SDK_DISABLED", "TRUE")];
        assert_eq!(configured_endpoint(env(&disabled)), None);
        let none = [on[0], ("OTEL_TRACES_EXPORTER", "none")];
        assert_eq!(configured_endpoint(env(&none)), None);
        let traces = [
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:4318/v1/traces",
            ),
            on[0],
        ];
        assert_eq!(
            configured_endpoint(env(&traces)).as_deref(),
            Some("http://traces:4318/v1/traces")
        );
    }

    #[test]
    fn extracts_a_valid_traceparent_and_ignores_a_malformed_one() {
        let mut headers = HeaderMap::new();
        headers.insert(
            &TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let context = extract(&headers);
        let span = context.span();
        let remote = span.span_context();
        assert!(remote.is_valid() && remote.is_remote() && remote.is_sampled());
        assert_eq!(
            remote.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        headers.insert(
            &TRACEPARENT,
            HeaderValue::from_static("00-zz-00f067aa0ba902b7-01"),
        );
        assert!(!extract(&headers).span().span_context().is_valid());
        let pairs = extract_pairs([(
            "traceparent",
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"[..],
        )]);
        assert!(!pairs.span().span_context().is_sampled());
        assert!(pairs.span().span_context().is_valid());
    }
}
