//! Head sampling at the edge: the gateway decides whether a request is traced before it makes
//! any span, so the requests left out (90% at the usual ratio) cost no span at all.
//!
//! `tracing-opentelemetry` builds the whole OpenTelemetry span (attributes, ids, links) for
//! every `tracing` span and only asks the sampler when the span closes, so a span that is not
//! sampled costs nearly as much as one that is. The gateway therefore samples first: a sampled
//! request gets its spans (the SDK then samples them always-on, the decision being made here);
//! one left out gets none, and only a `traceparent` with the sampled flag off goes upstream, so
//! the services, sampling parent-based, record nothing of it either and never start a trace of
//! their own for it.

use std::sync::OnceLock;

use http::HeaderValue;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

use super::{Incoming, extract};

/// The sampler `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` name, as a share of new
/// traces: `always_on` and `parentbased_always_on` 1, the `always_off` ones 0, the
/// `traceidratio` ones their argument (1 when it is missing or not a number in 0..=1).
pub fn configured_ratio(env: impl Fn(&str) -> Option<String>) -> f64 {
    let sampler = env("OTEL_TRACES_SAMPLER").unwrap_or_default();
    match sampler.trim() {
        "always_off" | "parentbased_always_off" => 0.0,
        "traceidratio" | "parentbased_traceidratio" => env("OTEL_TRACES_SAMPLER_ARG")
            .and_then(|arg| arg.trim().parse::<f64>().ok())
            .filter(|ratio| (0.0..=1.0).contains(ratio))
            .unwrap_or(1.0),
        _ => 1.0,
    }
}

static RATIO: OnceLock<f64> = OnceLock::new();

/// Set once by [`super::layer`] when the binary samples at the edge.
pub(super) fn set_ratio(ratio: f64) {
    let _ = RATIO.set(ratio);
}

/// What the edge decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeTrace {
    /// Traced: make the spans (their context goes upstream).
    Sampled,
    /// Not traced: no span; this `traceparent` (sampled flag off) goes upstream in place of the
    /// client's. `trace_id` is its trace id, for the access log.
    Unsampled {
        traceparent: HeaderValue,
        trace_id: TraceId,
    },
}

/// The decision for a request with these headers. With [`Incoming::Continue`] a valid client
/// context decides (its sampled flag); otherwise a new trace id is drawn and sampled at the
/// configured ratio, exactly as the SDK's trace-id-ratio sampler would.
pub fn decide(headers: &http::HeaderMap, incoming: Incoming) -> EdgeTrace {
    let ratio = RATIO.get().copied().unwrap_or(1.0);
    let ids = RandomIdGenerator::default();
    let (trace_id, sampled) = match incoming {
        Incoming::Continue => {
            let parent = extract(headers);
            let remote = parent.span().span_context().clone();
            if remote.is_valid() {
                (remote.trace_id(), remote.is_sampled())
            } else {
                let trace_id = ids.new_trace_id();
                (trace_id, ratio_samples(ratio, trace_id))
            }
        }
        Incoming::Link => {
            let trace_id = ids.new_trace_id();
            (trace_id, ratio_samples(ratio, trace_id))
        }
    };
    if sampled {
        return EdgeTrace::Sampled;
    }
    let unsampled = SpanContext::new(
        trace_id,
        ids.new_span_id(),
        TraceFlags::NOT_SAMPLED,
        true,
        TraceState::default(),
    );
    EdgeTrace::Unsampled {
        traceparent: super::direct::traceparent(&unsampled),
        trace_id,
    }
}

/// The SDK's trace-id-ratio rule (`Sampler::TraceIdRatioBased`), without building a sampler and
/// its result per request: the low 63 bits of the trace id below `ratio` of their range.
fn ratio_samples(ratio: f64, trace_id: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    // As the SDK computes it (opentelemetry_sdk 0.31, sampler.rs); the cast saturates.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::env;
    use http::HeaderMap;
    use opentelemetry::trace::{SamplingDecision, SpanKind};
    use opentelemetry_sdk::trace::{Sampler, ShouldSample};

    #[test]
    fn the_ratio_is_read_as_the_sdk_reads_it() {
        assert_eq!(configured_ratio(env(&[])), 1.0);
        let ratio = [
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
        ];
        assert_eq!(configured_ratio(env(&ratio)), 0.1);
        let bad = [
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ];
        assert_eq!(configured_ratio(env(&bad)), 1.0);
        let off = [("OTEL_TRACES_SAMPLER", "parentbased_always_off")];
        assert_eq!(configured_ratio(env(&off)), 0.0);
    }

    #[test]
    fn a_tenth_of_new_traces_are_sampled_and_the_rest_go_upstream_unsampled() {
        let ids = RandomIdGenerator::default();
        let sampled = (0..20_000)
            .filter(|_| ratio_samples(0.1, ids.new_trace_id()))
            .count();
        assert!((1_600..2_400).contains(&sampled), "{sampled} of 20000");
        assert!(ratio_samples(1.0, ids.new_trace_id()));
        assert!(!ratio_samples(0.0, ids.new_trace_id()));
    }

    #[test]
    fn the_decision_is_the_sdks_own() {
        let ids = RandomIdGenerator::default();
        for ratio in [0.001, 0.1, 0.5, 0.9] {
            let sdk = Sampler::TraceIdRatioBased(ratio);
            for _ in 0..5_000 {
                let trace_id = ids.new_trace_id();
                let expected = sdk
                    .should_sample(None, trace_id, "", &SpanKind::Server, &[], &[])
                    .decision
                    == SamplingDecision::RecordAndSample;
                assert_eq!(
                    ratio_samples(ratio, trace_id),
                    expected,
                    "{ratio} {trace_id}"
                );
            }
        }
    }

    #[test]
    fn a_trusted_client_context_decides_and_keeps_its_trace_id() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        let EdgeTrace::Unsampled {
            traceparent,
            trace_id,
        } = decide(&headers, Incoming::Continue)
        else {
            panic!("an unsampled parent is not traced");
        };
        assert_eq!(trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let sent = traceparent.to_str().unwrap();
        assert!(
            sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && sent.ends_with("-00"),
            "{sent}"
        );
        assert_ne!(
            sent,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(decide(&headers, Incoming::Continue), EdgeTrace::Sampled);
    }
}
