//! Spans of a service's calls to other systems (HTTP, Redis, Kafka), named and attributed after
//! the OpenTelemetry semantic conventions. SQL statements get theirs from sqlx's own events
//! (`panthera_otel::SqlSpans`).
//!
//! Each helper returns [`Span::none`] while tracing is off, so a call costs one atomic load.

use http::HeaderMap;
use tracing::Span;

/// A client span for an HTTP call to another service; send [`propagation_headers`] with it.
pub fn http_client(method: &'static str, route: &'static str, server: &str) -> Span {
    if !panthera_otel::enabled() {
        return Span::none();
    }
    tracing::info_span!(
        "http client",
        otel.name = format_args!("{method} {route}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        url.template = route,
        server.address = server,
        http.response.status_code = tracing::field::Empty,
    )
}

/// Records the response status of an [`http_client`] span (an error from 400 on, as the
/// conventions say for clients).
pub fn record_status(span: &Span, status: u16) {
    // As i64: tracing-opentelemetry exports a u16 or u64 as its text.
    span.record("http.response.status_code", i64::from(status));
    if status >= 400 {
        span.record("otel.status_code", "ERROR");
    }
}

/// `traceparent` (and `tracestate`) for the request `span` covers; empty while tracing is off.
pub fn propagation_headers(span: &Span) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if panthera_otel::enabled() {
        panthera_otel::inject(span, &mut headers);
    }
    headers
}

/// A client span for one Redis command (`GET`, `SET`...).
pub fn redis(command: &'static str) -> Span {
    if !panthera_otel::enabled() {
        return Span::none();
    }
    tracing::info_span!(
        "redis",
        otel.name = command,
        otel.kind = "client",
        db.system = "redis",
        db.system.name = "redis",
        db.operation.name = command,
    )
}

/// A producer span for one Kafka message to `topic`, child of the context the event was
/// recorded in (`traceparent` stored with it); `None` when the event carries none.
pub fn kafka_produce(topic: &str, traceparent: Option<&str>) -> Option<Span> {
    if !panthera_otel::enabled() {
        return None;
    }
    let traceparent = traceparent?;
    let span = tracing::info_span!(
        parent: None,
        "kafka produce",
        otel.name = format_args!("send {topic}"),
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.destination.name = topic,
    );
    panthera_otel::adopt_context(
        &span,
        panthera_otel::extract_pairs([("traceparent", traceparent.as_bytes())]),
        panthera_otel::Incoming::Continue,
    );
    Some(span)
}

/// A consumer span for processing one Kafka message, child of the producer's span whose
/// context the message's headers carry.
pub fn kafka_process<'a>(
    topic: &str,
    consumer: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Span {
    if !panthera_otel::enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        parent: None,
        "kafka process",
        otel.name = format_args!("process {topic}"),
        otel.kind = "consumer",
        messaging.system = "kafka",
        messaging.operation.type = "process",
        messaging.destination.name = topic,
        messaging.consumer.group.name = consumer,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    panthera_otel::adopt_context(
        &span,
        panthera_otel::extract_pairs(headers),
        panthera_otel::Incoming::Continue,
    );
    span
}

/// The `traceparent` of the current span, stored with an outbox event so that its Kafka
/// message continues the trace; `None` while tracing is off or outside a recorded span.
pub fn current_traceparent() -> Option<String> {
    if !panthera_otel::enabled() {
        return None;
    }
    panthera_otel::context_pairs(&Span::current())
        .into_iter()
        .find(|(name, _)| name == "traceparent")
        .map(|(_, value)| value)
}
