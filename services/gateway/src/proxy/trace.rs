//! The gateway's spans (OpenTelemetry HTTP semantic conventions), made straight through the
//! SDK (`panthera_otel::direct`): a server span per traced request and a client span for its
//! trip upstream, whose context the upstream continues.
//!
//! Whether a request is traced is decided first, before any span exists
//! (`panthera_otel::edge`): one left out by sampling makes none, and sends upstream a
//! `traceparent` with the sampled flag off.

use http::{HeaderMap, HeaderValue};
use panthera_otel::direct::{Parent, Span};
use panthera_otel::opentelemetry::KeyValue;
use panthera_otel::opentelemetry::trace::{SpanContext, SpanKind, TraceContextExt, TraceId};
use panthera_otel::{EdgeTrace, Incoming};

use crate::client_addr::ClientAddress;
use crate::routing::Route;

/// What tracing does for one request; `None` in the pipeline while tracing is off.
#[derive(Clone, Debug)]
pub(super) enum RequestTrace {
    /// Traced: the server span's context, parent of the upstream span.
    Sampled(SpanContext),
    /// Left out: only this unsampled context goes upstream.
    Unsampled {
        traceparent: HeaderValue,
        trace_id: TraceId,
    },
}

impl RequestTrace {
    pub(super) fn trace_id(&self) -> TraceId {
        match self {
            Self::Sampled(context) => context.trace_id(),
            Self::Unsampled { trace_id, .. } => *trace_id,
        }
    }
}

/// Decides whether the request is traced and, if it is, starts its server span: a new trace
/// linked to the client's context, or its continuation when the configuration trusts clients
/// (`tracing.trustClientContext`).
pub(super) fn start(
    headers: &HeaderMap,
    method: &http::Method,
    route: Option<&Route>,
    route_name: &str,
    client: &ClientAddress,
    trust_client_context: bool,
) -> (RequestTrace, Option<Span>) {
    let incoming = if trust_client_context {
        Incoming::Continue
    } else {
        Incoming::Link
    };
    match panthera_otel::edge::decide(headers, incoming) {
        EdgeTrace::Unsampled {
            traceparent,
            trace_id,
        } => (
            RequestTrace::Unsampled {
                traceparent,
                trace_id,
            },
            None,
        ),
        EdgeTrace::Sampled => {
            let client_context = panthera_otel::extract(headers)
                .span()
                .span_context()
                .clone();
            let parent = match incoming {
                Incoming::Continue if client_context.is_valid() => Parent::Continue(client_context),
                _ => Parent::NewTrace {
                    link: Some(client_context),
                },
            };
            let template = route.map_or("", |route| route.prefix.as_str());
            let host = headers
                .get(http::header::HOST)
                .and_then(|host| host.to_str().ok())
                .map(|host| host.rsplit_once(':').map_or(host, |(name, _)| name))
                .unwrap_or("");
            let attributes = vec![
                KeyValue::new("http.request.method", method.as_str().to_owned()),
                KeyValue::new("http.route", template.to_owned()),
                KeyValue::new("server.address", host.to_owned()),
                KeyValue::new("client.address", client.ip.to_string()),
                KeyValue::new("panthera.route", route_name.to_owned()),
            ];
            let name = format!("{method} {template}");
            match Span::start(name, SpanKind::Server, parent, attributes) {
                Some(span) => (RequestTrace::Sampled(span.context().clone()), Some(span)),
                // Tracing went off in between (it never does once on): as if left out.
                None => (
                    RequestTrace::Unsampled {
                        traceparent: HeaderValue::from_static(""),
                        trace_id: TraceId::INVALID,
                    },
                    None,
                ),
            }
        }
    }
}

/// The server span's outcome.
pub(super) fn finish_server(span: &mut Span, status: u16) {
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
    if status >= 500 {
        span.set_error();
    }
}

/// The client span of the trip upstream (all attempts): its duration is the upstream time.
pub(super) fn upstream(parent: &SpanContext, route: &Route, method: &http::Method) -> Option<Span> {
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.as_str().to_owned()),
        KeyValue::new("server.address", route.authority.host().to_owned()),
        KeyValue::new("panthera.route", route.name.to_string()),
    ];
    if let Some(port) = route.authority.port_u16() {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    Span::start(
        method.as_str().to_owned(),
        SpanKind::Client,
        Parent::Continue(parent.clone()),
        attributes,
    )
}

/// The upstream span's outcome: the response's status, or the failure's kind.
pub(super) fn finish_upstream(span: &mut Span, outcome: Result<u16, &'static str>) {
    match outcome {
        Ok(status) => {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
            if status >= 500 {
                span.set_error();
            }
        }
        Err(kind) => {
            span.set_attribute(KeyValue::new("error.type", kind));
            span.set_error();
        }
    }
}
