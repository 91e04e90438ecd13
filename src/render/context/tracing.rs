//! What `spec.observability.tracing` renders: the standard `OTEL_*` variables of the gateway's
//! and the services' containers, and the NetworkPolicy egress to the collector.

use serde_json::{Value, json};

use super::*;
use crate::api::TracingSpec;

impl ContextBuilder<'_> {
    /// `spec.observability.tracing` when enabled.
    pub(super) fn tracing_spec(&self) -> Option<&TracingSpec> {
        self.spec()
            .observability
            .as_ref()
            .and_then(|o| o.tracing.as_ref())
            .filter(|t| t.enabled)
    }

    /// The container's `OTEL_*` variables for the component `service` (its traces' service
    /// name); none while tracing is off.
    pub(super) fn tracing_env(&self, service: &str) -> Vec<Value> {
        let Some(tracing) = self.tracing_spec() else {
            return Vec::new();
        };
        // The platform and the namespace first: a span says which platform's gateway it is.
        let mut attributes = vec![
            format!("service.namespace={}", encode(&self.names.platform)),
            format!("k8s.namespace.name={}", encode(&self.names.namespace)),
        ];
        attributes.extend(
            tracing
                .resource_attributes
                .iter()
                .map(|(key, value)| format!("{key}={}", encode(value))),
        );
        vec![
            json!({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": tracing.endpoint}),
            json!({"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": tracing.protocol.as_str()}),
            json!({"name": "OTEL_SERVICE_NAME", "value": service}),
            json!({"name": "OTEL_RESOURCE_ATTRIBUTES", "value": attributes.join(",")}),
            json!({"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"}),
            json!({"name": "OTEL_TRACES_SAMPLER_ARG", "value": sampling_ratio(tracing.sampling_ratio)}),
        ]
    }

    /// Egress to the collector: its port anywhere, since its address is the cluster DNS's (or
    /// outside the cluster) and not a pod the platform selects.
    pub(super) fn tracing_egress(&self) -> Option<Value> {
        let tracing = self.tracing_spec()?;
        Some(json!({
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
            "ports": [{"protocol": "TCP", "port": endpoint_port(&tracing.endpoint)}],
        }))
    }
}

/// The ratio as the SDKs parse it (`0.1`, `1`), without float noise.
fn sampling_ratio(ratio: f64) -> String {
    let text = format!("{:.6}", ratio.clamp(0.0, 1.0));
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() {
        "0".into()
    } else {
        text.into()
    }
}

/// The port of an `http(s)://host[:port][/path]` URL (the API's pattern), else the scheme's.
pub(crate) fn endpoint_port(endpoint: &str) -> u16 {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("http", endpoint));
    let authority = rest.split('/').next().unwrap_or(rest);
    // An IPv6 literal's colons are inside its brackets.
    let after_host = authority
        .rsplit_once(']')
        .map_or(authority, |(_, tail)| tail);
    after_host
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(if scheme == "https" { 443 } else { 80 })
}

/// A value of `OTEL_RESOURCE_ATTRIBUTES`, percent-encoded where the list's syntax would
/// otherwise break (`,`, `=`, `%`, spaces and anything not visible ASCII).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_graphic() && !matches!(byte, b',' | b'=' | b'%' | b'"' | b'\\' | b';') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collectors_port_and_the_encoded_values() {
        assert_eq!(endpoint_port("http://otel-collector.monitoring:4318"), 4318);
        assert_eq!(endpoint_port("http://collector/otlp"), 80);
        assert_eq!(endpoint_port("https://collector.example.com/otlp"), 443);
        assert_eq!(endpoint_port("http://[fd00::1]:4318/"), 4318);
        assert_eq!(endpoint_port("http://[fd00::1]/"), 80);
        assert_eq!(encode("shop, eu=1 %"), "shop%2C%20eu%3D1%20%25");
        assert_eq!(sampling_ratio(0.1), "0.1");
        assert_eq!(sampling_ratio(1.0), "1");
        assert_eq!(sampling_ratio(0.0), "0");
    }
}
