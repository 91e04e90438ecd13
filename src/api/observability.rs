//! How a monitoring stack finds and judges a platform: Prometheus scrape targets, alerts on the
//! gateway's service level objectives, Grafana dashboards, and where the traces go.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::msg;
use super::{LABEL_KEY, LABEL_VALUE};

/// Observability of the platform.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservabilitySpec {
    /// Prometheus: ServiceMonitors (when the cluster serves `monitoring.coreos.com/v1`), scrape
    /// annotations, a PrometheusRule with the platform's alerts, and Grafana dashboards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    /// OpenTelemetry traces of the gateway and the services, exported over OTLP to a collector
    /// (Jaeger, Tempo, an OpenTelemetry Collector...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingSpec>,
}

/// Where and how much the gateway and the services trace; rendered as the standard `OTEL_*`
/// variables of their containers.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.resourceAttributes.all(k, k.matches('^[A-Za-z][A-Za-z0-9._-]*$'))").message(msg::RESOURCE_ATTRIBUTE_KEY).field_path(".resourceAttributes"))]
pub struct TracingSpec {
    /// Export traces; false keeps the settings and renders none.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The collector's OTLP base URL, e.g. `http://otel-collector.monitoring:4318` for
    /// HTTP/protobuf (the binaries append `/v1/traces`), `http://otel-collector.monitoring:4317`
    /// for gRPC.
    #[schemars(
        length(min = 8, max = 2048),
        regex(pattern = r"^https?://[^\s/?#@]+(/[^\s?#]*)?$")
    )]
    pub endpoint: String,
    /// The OTLP transport: `http/protobuf` (the default, port 4318 by convention) or `grpc`
    /// (4317).
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Share of the traces started at the gateway that are recorded, 0 to 1 (parent-based: a
    /// service follows the decision of the request it serves).
    #[serde(default = "default_sampling_ratio")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sampling_ratio: f64,
    /// Extra resource attributes on every span, e.g. `deployment.environment.name: production`.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 16, "additionalProperties" = {"type": "string", "maxLength": 255}))]
    pub resource_attributes: BTreeMap<String, String>,
    /// Continue a client's `traceparent` at the gateway (and its sampling decision). False: a new
    /// trace linked to the client's, so clients cannot force sampling.
    #[serde(default)]
    pub trust_client_context: bool,
}

/// How spans travel to the collector.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum OtlpProtocol {
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "grpc")]
    Grpc,
}

impl OtlpProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpProtobuf => "http/protobuf",
            Self::Grpc => "grpc",
        }
    }
}

fn default_sampling_ratio() -> f64 {
    0.1
}

/// Prometheus monitoring of the platform.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.labels.all(k, !k.startsWith('panthera.dev/') && !k.startsWith('app.kubernetes.io/'))").message(msg::MONITORING_LABEL_RESERVED).field_path(".labels"))]
pub struct PrometheusSpec {
    /// Render the monitoring objects; false keeps the settings and renders none.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Extra labels on the ServiceMonitors, the PrometheusRule and the dashboard ConfigMaps: the
    /// ones your Prometheus selects them by, e.g. `release: kube-prometheus-stack`.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 16, "additionalProperties" = {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE}))]
    #[x_kube(validation = Rule::new(format!("self.all(k, size(k) <= 317 && k.matches('{LABEL_KEY}'))")).message(msg::LABEL_KEY))]
    pub labels: BTreeMap<String, String>,
    /// How often Prometheus scrapes every target, in seconds (`30s`).
    #[serde(default = "default_scrape_interval")]
    #[schemars(
        length(max = 5),
        regex(pattern = "^([5-9]|[1-9][0-9]|[1-2][0-9]{2}|300)s$")
    )]
    pub scrape_interval: String,
    /// The gateway's service level objectives, which the burn-rate alerts protect.
    #[serde(default)]
    pub slo: SloSpec,
    /// Grafana dashboards as ConfigMaps labelled `grafana_dashboard: "1"` (the Grafana sidecar's
    /// convention).
    #[serde(default = "default_true")]
    pub dashboards: bool,
}

/// Service level objectives of the gateway, over a 30-day window.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SloSpec {
    /// Percent of requests answered without a server error (5xx), e.g. 99.9.
    #[serde(default = "default_availability")]
    #[schemars(range(min = 90.0, max = 99.999))]
    pub availability: f64,
    /// How fast the gateway answers.
    #[serde(default)]
    pub latency: LatencySloSpec,
}

/// A latency objective: `target` percent of requests answered within `thresholdMilliseconds`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LatencySloSpec {
    /// The threshold, one of the gateway's latency buckets: 5, 10, 25, 50, 100, 250, 500,
    /// 1000, 2500, 5000 or 10000 (milliseconds).
    #[serde(default = "default_threshold")]
    #[schemars(extend("enum" = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]))]
    pub threshold_milliseconds: i32,
    /// Percent of requests answered within the threshold, e.g. 99.
    #[serde(default = "default_latency_target")]
    #[schemars(range(min = 90.0, max = 99.999))]
    pub target: f64,
}

impl Default for SloSpec {
    fn default() -> Self {
        Self {
            availability: default_availability(),
            latency: LatencySloSpec::default(),
        }
    }
}

impl Default for LatencySloSpec {
    fn default() -> Self {
        Self {
            threshold_milliseconds: default_threshold(),
            target: default_latency_target(),
        }
    }
}

impl PrometheusSpec {
    /// The scrape interval in seconds.
    pub fn scrape_seconds(&self) -> u32 {
        self.scrape_interval
            .trim_end_matches('s')
            .parse()
            .unwrap_or(30)
    }
}

fn default_true() -> bool {
    true
}

fn default_scrape_interval() -> String {
    "30s".into()
}

fn default_availability() -> f64 {
    99.9
}

fn default_threshold() -> i32 {
    500
}

fn default_latency_target() -> f64 {
    99.0
}
