//! Spans made straight through the OpenTelemetry SDK, not through `tracing`: for the gateway,
//! where a traced request must cost little more than an untraced one.
//!
//! A `tracing` span exported by `tracing-opentelemetry` goes through the subscriber's registry,
//! every layer's hooks on each poll it is entered in, a field visitor per attribute and an
//! extension lookup for each context read; measured on the gateway that was about 20 µs of its
//! core per traced request, as much as the whole request costs untraced. A [`Span`] here is the
//! SDK's span itself: its attributes are written once, its context read without a lookup, and
//! it ends when dropped.

use std::borrow::Cow;

use http::HeaderValue;
use opentelemetry::trace::Span as _;
use opentelemetry::trace::{Link, SpanContext, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};

/// One span, ended (and handed to the exporter) when dropped.
#[derive(Debug)]
pub struct Span {
    inner: opentelemetry_sdk::trace::Span,
}

/// The trace a new server span belongs to.
#[derive(Debug, Clone)]
pub enum Parent {
    /// A new trace (root span), linked to this context when it is valid: the client's, which
    /// is recorded but decides nothing.
    NewTrace { link: Option<SpanContext> },
    /// The trace of this context, continued.
    Continue(SpanContext),
}

impl Span {
    /// A span of `kind` named `name`; `None` while tracing is off.
    pub fn start(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: Parent,
        attributes: Vec<KeyValue>,
    ) -> Option<Self> {
        let tracer = super::tracer()?;
        let mut builder = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes);
        let parent_cx = match parent {
            Parent::NewTrace { link } => {
                if let Some(link) = link.filter(SpanContext::is_valid) {
                    builder = builder.with_links(vec![Link::with_context(link)]);
                }
                Context::new()
            }
            Parent::Continue(context) => Context::new().with_remote_span_context(context),
        };
        Some(Self {
            inner: builder.start_with_context(tracer, &parent_cx),
        })
    }

    /// A child span of this one.
    pub fn child(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Option<Self> {
        Self::start(
            name,
            kind,
            Parent::Continue(self.context().clone()),
            attributes,
        )
    }

    pub fn context(&self) -> &SpanContext {
        self.inner.span_context()
    }

    /// Its context as a W3C `traceparent` value, for the next hop.
    pub fn traceparent(&self) -> HeaderValue {
        traceparent(self.context())
    }

    pub fn set_attribute(&mut self, attribute: KeyValue) {
        self.inner.set_attribute(attribute);
    }

    /// Marks the span failed (`otel.status_code = ERROR`).
    pub fn set_error(&mut self) {
        self.inner.set_status(Status::error(""));
    }
}

/// `context` as a W3C `traceparent` value (`00-{trace id}-{span id}-{flags}`), its hex digits
/// written by hand: `format!` of the ids showed in the gateway's profile, on every request.
pub fn traceparent(context: &SpanContext) -> HeaderValue {
    let mut out = Vec::with_capacity(55);
    out.extend_from_slice(b"00-");
    push_hex(&mut out, &context.trace_id().to_bytes());
    out.push(b'-');
    push_hex(&mut out, &context.span_id().to_bytes());
    out.push(b'-');
    push_hex(&mut out, &[context.trace_flags().to_u8()]);
    // Hex digits and dashes only: always a valid header value.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(out))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0xf)]);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    #[test]
    fn a_traceparent_is_the_w3c_format() {
        let context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        assert_eq!(
            traceparent(&context),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }
}
