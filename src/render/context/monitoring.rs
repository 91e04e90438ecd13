//! What `spec.observability.prometheus` renders: the scrape settings of the ServiceMonitors,
//! the PrometheusRule's groups (recording rules, burn-rate and day-one alerts) and the Grafana
//! dashboards. Built here rather than in the templates because every expression is computed
//! from the topology (which components exist, their names) and the SLO, and because Prometheus
//! annotations use `{{ $labels.x }}`, which tera would try to render.
//!
//! Every metric named here is one a Panthera binary exports (services/kit, services/gateway,
//! the operator) or one of the standard exporters a monitoring stack runs (kube-state-metrics,
//! the kubelet).

use serde_json::{Value, json};

use super::*;
use crate::api::{PrometheusSpec, ServiceKind};

/// Labels the ServiceMonitors copy from the pods onto every series (the Prometheus operator
/// writes `panthera.dev/platform` as `panthera_dev_platform`); a plain Prometheus that maps pod
/// labels (`labelmap: __meta_kubernetes_pod_label_(.+)`) gets the same ones.
pub const POD_TARGET_LABELS: [&str; 3] =
    [LABEL_PLATFORM, LABEL_PLATFORM_COMPONENT, LABEL_COMPONENT];
/// The label the Grafana sidecar loads dashboards from.
pub const GRAFANA_DASHBOARD_LABEL: &str = "grafana_dashboard";
/// Where the runbooks live: one section per alert, anchored by its name in lower case.
const RUNBOOKS: &str = "https://github.com/panthera-dev/panthera/blob/main/docs/runbooks.md";

/// The multi-window, multi-burn-rate pairs of the Google SRE workbook (chapter 5) for a 30-day
/// SLO: (long window, short window, burn factor). The first two page, the last two open a ticket.
const PAGE_WINDOWS: [(&str, &str, f64); 2] = [("1h", "5m", 14.4), ("6h", "30m", 6.0)];
const TICKET_WINDOWS: [(&str, &str, f64); 2] = [("1d", "2h", 3.0), ("3d", "6h", 1.0)];

/// Thresholds of the day-one alerts, said in their descriptions and the runbooks.
const OUTBOX_AGE_SECONDS: u32 = 300;
const CONSUMER_LAG_RECORDS: u32 = 1000;
const POOL_SATURATION: f64 = 0.9;
const VOLUME_FREE: f64 = 0.15;

/// A decimal without float noise (`0.0010000000000000009` is `0.001`).
fn decimal(x: f64) -> String {
    let text = format!("{x:.9}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".into()
    } else {
        text.to_string()
    }
}

/// The `le` label of a gateway bucket, as the gateway writes it (`0.5`, `1.0`, `10.0`).
fn le(milliseconds: i32) -> String {
    format!("{:?}", f64::from(milliseconds) / 1000.0)
}

impl ContextBuilder<'_> {
    /// `spec.observability.prometheus` when enabled.
    pub(super) fn prometheus_spec(&self) -> Option<&PrometheusSpec> {
        self.spec()
            .observability
            .as_ref()
            .and_then(|o| o.prometheus.as_ref())
            .filter(|p| p.enabled)
    }

    /// The platform-wide monitoring values (`platform.prometheus`), or false.
    pub(super) fn prometheus_values(&self) -> Value {
        let Some(prometheus) = self.prometheus_spec() else {
            return json!(false);
        };
        // Platform-wide objects, labelled like the identity Secret (component `platform`).
        let labels_of = |instance: &str, app: &str, extra: &[(&str, &str)]| {
            let mut labels = self.labels(None);
            for (key, value) in [
                (LABEL_COMPONENT, "platform"),
                (LABEL_PLATFORM_COMPONENT, "platform"),
                (LABEL_INSTANCE, instance),
                (LABEL_NAME, app),
            ]
            .into_iter()
            .chain(extra.iter().copied())
            {
                labels.insert(key.to_string(), value.to_string());
            }
            labels.extend(prometheus.labels.clone());
            labels
        };
        let labels = labels_of(&self.names.platform, "panthera-alerts", &[]);
        let selector = format!(
            "namespace=\"{}\", panthera_dev_platform=\"{}\"",
            self.names.namespace, self.names.platform
        );
        let rules = Rules {
            builder: self,
            prometheus,
            selector: &selector,
        };
        let dashboards = if prometheus.dashboards {
            let items: Vec<Value> =
                super::super::dashboards::build(&self.names, &selector, &self.dashboard_topology())
                    .into_iter()
                    .map(|mut d| {
                        let name = d["name"].as_str().unwrap_or_default().to_string();
                        d["labels"] = json!(labels_of(
                            &name,
                            "panthera-dashboard",
                            &[(GRAFANA_DASHBOARD_LABEL, "1")]
                        ));
                        d
                    })
                    .collect();
            json!(items)
        } else {
            json!(false)
        };
        json!({
            "labels": labels,
            "extraLabels": prometheus.labels,
            "interval": prometheus.scrape_interval,
            "podTargetLabels": POD_TARGET_LABELS,
            "groups": rules.groups(),
            "dashboards": dashboards,
        })
    }

    fn dashboard_topology(&self) -> super::super::dashboards::Topology {
        let spec = self.spec();
        super::super::dashboards::Topology {
            gateway: spec.gateway.is_some(),
            services: spec.services.iter().map(|s| s.name.clone()).collect(),
            outbox: self.outbox_services().next().is_some(),
            consumers: self.consumer_services().next().is_some(),
            pools: spec.services.iter().any(|s| s.database.is_some()),
            stores: !self.volume_claims().is_empty(),
        }
    }

    /// Services running an outbox relay: users and orders publish their events when Kafka is
    /// theirs.
    fn outbox_services(&self) -> impl Iterator<Item = &ServiceSpec> {
        self.spec().services.iter().filter(|s| {
            matches!(s.kind, ServiceKind::Users | ServiceKind::Orders) && !s.topics.is_empty()
        })
    }

    /// Services consuming a topic: catalog reserves stock from the orders' events.
    fn consumer_services(&self) -> impl Iterator<Item = &ServiceSpec> {
        self.spec()
            .services
            .iter()
            .filter(|s| s.kind == ServiceKind::Catalog && !s.topics.is_empty())
    }

    /// The StatefulSets of the cluster-backed stores (their claims are `data-{name}-{ordinal}`).
    fn volume_claims(&self) -> Vec<String> {
        let spec = self.spec();
        let mut out: Vec<String> = spec
            .databases
            .iter()
            .filter(|d| d.backend == Backend::Cluster)
            .map(|d| self.names.database(&d.name))
            .collect();
        if spec
            .redis
            .as_ref()
            .is_some_and(|r| r.backend == Backend::Cluster)
        {
            out.push(self.names.redis());
        }
        if spec
            .kafka
            .as_ref()
            .is_some_and(|k| k.backend == Backend::Cluster)
        {
            out.push(self.names.kafka());
        }
        if spec
            .search
            .as_ref()
            .is_some_and(|s| s.backend == Backend::Cluster)
        {
            out.push(self.names.search());
        }
        out
    }

    /// The workloads whose pods belong to the platform, for kube-state-metrics' `pod` label.
    fn workloads(&self) -> Vec<String> {
        let spec = self.spec();
        let mut out = self.volume_claims();
        out.extend(spec.services.iter().map(|s| self.names.service(&s.name)));
        if spec.gateway.is_some() {
            out.push(self.names.gateway());
        }
        out
    }
}

/// Builds the PrometheusRule's groups.
struct Rules<'a, 'b> {
    builder: &'a ContextBuilder<'b>,
    prometheus: &'a PrometheusSpec,
    selector: &'a str,
}

/// One alerting rule.
struct Alert<'a> {
    name: &'a str,
    expr: String,
    for_: &'a str,
    severity: &'a str,
    summary: String,
    description: String,
    /// Extra static labels (the component an `absent` rule watches).
    labels: Vec<(&'a str, String)>,
}

impl Alert<'_> {
    fn to_value(&self) -> Value {
        let mut labels = serde_json::Map::new();
        labels.insert("severity".into(), json!(self.severity));
        for (k, v) in &self.labels {
            labels.insert((*k).into(), json!(v));
        }
        json!({
            "alert": self.name,
            "expr": self.expr,
            "for": self.for_,
            "labels": labels,
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": format!("{RUNBOOKS}#{}", self.name.to_lowercase()),
            },
        })
    }
}

impl Rules<'_, '_> {
    fn names(&self) -> &Names {
        &self.builder.names
    }

    fn groups(&self) -> Value {
        let mut groups = Vec::new();
        if self.builder.spec().gateway.is_some() {
            groups.push(json!({
                "name": format!("panthera.{}.slo.recording", self.names().platform),
                "rules": self.slo_recording(),
            }));
            groups.push(json!({
                "name": format!("panthera.{}.slo", self.names().platform),
                "rules": self.slo_alerts().iter().map(Alert::to_value).collect::<Vec<_>>(),
            }));
        }
        groups.push(json!({
            "name": format!("panthera.{}.platform", self.names().platform),
            "rules": self.day_one_alerts().iter().map(Alert::to_value).collect::<Vec<_>>(),
        }));
        Value::Array(groups)
    }

    /// Error and slow ratios over every window the burn-rate alerts read.
    fn slo_recording(&self) -> Vec<Value> {
        let by = "sum by (namespace, panthera_dev_platform)";
        let sel = self.selector;
        let threshold = le(self.prometheus.slo.latency.threshold_milliseconds);
        let mut rules = Vec::new();
        for window in ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] {
            rules.push(json!({
                "record": format!("panthera_gateway:request_errors:ratio_rate{window}"),
                // `or 0 * total`: with no 5xx series yet the ratio is 0, not absent (an absent
                // ratio blanks the dashboard and cannot be told from a gateway not scraped).
                "expr": format!(
                    "(\n  {by} (rate(gateway_requests_total{{{sel}, status=~\"5..\"}}[{window}]))\n  or\n  0 * {by} (rate(gateway_requests_total{{{sel}}}[{window}]))\n)\n/\n{by} (rate(gateway_requests_total{{{sel}}}[{window}]))"
                ),
            }));
            rules.push(json!({
                "record": format!("panthera_gateway:request_slow:ratio_rate{window}"),
                "expr": format!(
                    "1 - (\n  {by} (rate(gateway_request_duration_seconds_bucket{{{sel}, le=\"{threshold}\"}}[{window}]))\n  /\n  {by} (rate(gateway_request_duration_seconds_count{{{sel}}}[{window}]))\n)"
                ),
            }));
        }
        rules
    }

    fn burn(&self, record: &str, budget: f64, windows: &[(&str, &str, f64)]) -> String {
        let sel = self.selector;
        windows
            .iter()
            .map(|(long, short, factor)| {
                let limit = decimal(factor * budget);
                format!(
                    "(\n  panthera_gateway:{record}:ratio_rate{long}{{{sel}}} > {limit}\n  and\n  panthera_gateway:{record}:ratio_rate{short}{{{sel}}} > {limit}\n)"
                )
            })
            .collect::<Vec<_>>()
            .join("\nor\n")
    }

    fn slo_alerts(&self) -> Vec<Alert<'static>> {
        let slo = &self.prometheus.slo;
        let platform = &self.names().platform;
        let error_budget = (100.0 - slo.availability) / 100.0;
        let latency_budget = (100.0 - slo.latency.target) / 100.0;
        let availability = decimal(slo.availability);
        let latency = format!(
            "{}% of requests within {} ms",
            decimal(slo.latency.target),
            slo.latency.threshold_milliseconds
        );
        let page = "burning the 30-day error budget fast: at this rate it is gone in under 2 days (1h and 5m windows above 14.4x, or 6h and 30m above 6x)";
        let ticket = "burning the 30-day error budget: at this rate it is gone before the month ends (1d and 2h windows above 3x, or 3d and 6h above 1x)";
        vec![
            Alert {
                name: "PantheraGatewayErrorBudgetBurn",
                expr: self.burn("request_errors", error_budget, &PAGE_WINDOWS),
                for_: "2m",
                severity: "critical",
                summary: format!("Gateway of platform {platform} is failing requests"),
                description: format!(
                    "The gateway of {{{{ $labels.namespace }}}}/{platform} answers too many requests with 5xx for its {availability}% availability objective: {page}."
                ),
                labels: vec![("slo", "availability".into())],
            },
            Alert {
                name: "PantheraGatewayErrorBudgetBurnSlow",
                expr: self.burn("request_errors", error_budget, &TICKET_WINDOWS),
                for_: "15m",
                severity: "warning",
                summary: format!(
                    "Gateway of platform {platform} fails more requests than its objective allows"
                ),
                description: format!(
                    "The gateway of {{{{ $labels.namespace }}}}/{platform} answers more requests with 5xx than its {availability}% availability objective allows: {ticket}."
                ),
                labels: vec![("slo", "availability".into())],
            },
            Alert {
                name: "PantheraGatewayLatencyBudgetBurn",
                expr: self.burn("request_slow", latency_budget, &PAGE_WINDOWS),
                for_: "2m",
                severity: "critical",
                summary: format!("Gateway of platform {platform} is slow"),
                description: format!(
                    "The gateway of {{{{ $labels.namespace }}}}/{platform} answers too many requests slower than its objective ({latency}): {page}."
                ),
                labels: vec![("slo", "latency".into())],
            },
            Alert {
                name: "PantheraGatewayLatencyBudgetBurnSlow",
                expr: self.burn("request_slow", latency_budget, &TICKET_WINDOWS),
                for_: "15m",
                severity: "warning",
                summary: format!("Gateway of platform {platform} is slower than its objective"),
                description: format!(
                    "The gateway of {{{{ $labels.namespace }}}}/{platform} answers more requests slower than its objective ({latency}) than it allows: {ticket}."
                ),
                labels: vec![("slo", "latency".into())],
            },
        ]
    }

    fn day_one_alerts(&self) -> Vec<Alert<'static>> {
        let sel = self.selector;
        let names = self.names();
        let platform = &names.platform;
        let spec = self.builder.spec();
        let mut alerts = vec![Alert {
            name: "PantheraTargetDown",
            expr: format!("up{{{sel}}} == 0"),
            for_: "5m",
            severity: "critical",
            summary: format!("A {platform} pod does not answer Prometheus"),
            description: format!(
                "Prometheus cannot scrape {{{{ $labels.pod }}}} ({{{{ $labels.panthera_dev_component }}}} of {{{{ $labels.namespace }}}}/{platform}) for 5 minutes: the process is down, hung, or unreachable."
            ),
            labels: vec![],
        }];
        // One rule per component: `absent` only knows the labels of its own selector.
        let mut scraped: Vec<String> = spec.services.iter().map(|s| s.name.clone()).collect();
        if spec.gateway.is_some() {
            scraped.push("gateway".into());
        }
        for component in scraped {
            alerts.push(Alert {
                name: "PantheraComponentAbsent",
                expr: format!("absent(up{{{sel}, panthera_dev_component=\"{component}\"}})"),
                for_: "15m",
                severity: "critical",
                summary: format!("No {component} target of platform {platform} is scraped"),
                description: format!(
                    "Prometheus has no target for {component} of {}/{platform} for 15 minutes: no pod runs, or nothing discovers it (ServiceMonitor, labels, NetworkPolicy from the monitoring namespace).",
                    names.namespace
                ),
                labels: vec![("component", component.clone())],
            });
        }
        let pods = self.builder.workloads().join("|");
        alerts.push(Alert {
            name: "PantheraPodCrashLooping",
            expr: format!(
                "increase(kube_pod_container_status_restarts_total{{namespace=\"{}\", pod=~\"({pods})-.+\"}}[15m]) >= 3",
                names.namespace
            ),
            for_: "5m",
            severity: "warning",
            summary: format!("A container of platform {platform} keeps restarting"),
            description: "Container {{ $labels.container }} of {{ $labels.namespace }}/{{ $labels.pod }} restarted 3 times or more in 15 minutes.".into(),
            labels: vec![],
        });
        if self.builder.outbox_services().next().is_some() {
            alerts.push(Alert {
                name: "PantheraOutboxBacklog",
                expr: format!(
                    "max by (namespace, panthera_dev_platform, service) (outbox_oldest_unpublished_age_seconds{{{sel}}}) > {OUTBOX_AGE_SECONDS}"
                ),
                for_: "5m",
                severity: "warning",
                summary: format!("Events of platform {platform} wait in the outbox"),
                description: format!(
                    "The oldest event {{{{ $labels.service }}}} has not published to Kafka is over {OUTBOX_AGE_SECONDS} s old: the relay cannot reach Kafka, or cannot keep up."
                ),
                labels: vec![],
            });
        }
        if self.builder.consumer_services().next().is_some() {
            alerts.push(Alert {
                name: "PantheraConsumerLag",
                expr: format!(
                    "max by (namespace, panthera_dev_platform, service, topic) (consumer_lag_records{{{sel}}}) > {CONSUMER_LAG_RECORDS}"
                ),
                for_: "10m",
                severity: "warning",
                summary: format!("A consumer of platform {platform} falls behind its topic"),
                description: format!(
                    "{{{{ $labels.service }}}} is more than {CONSUMER_LAG_RECORDS} records behind topic {{{{ $labels.topic }}}} for 10 minutes."
                ),
                labels: vec![],
            });
            alerts.push(Alert {
                name: "PantheraConsumerStuck",
                expr: format!(
                    "(max by (namespace, panthera_dev_platform, service, topic) (consumer_lag_records{{{sel}}}) > 0)\nunless on (namespace, panthera_dev_platform, service)\n(sum by (namespace, panthera_dev_platform, service) (rate(consumer_events_total{{{sel}}}[10m])) > 0)"
                ),
                for_: "10m",
                severity: "critical",
                summary: format!("A consumer of platform {platform} stopped"),
                description: "{{ $labels.service }} has records to read on topic {{ $labels.topic }} but has read none for 10 minutes: a record it cannot apply, or its database.".into(),
                labels: vec![],
            });
        }
        if spec.services.iter().any(|s| s.database.is_some()) {
            alerts.push(Alert {
                name: "PantheraDatabasePoolSaturated",
                expr: format!(
                    "max by (namespace, panthera_dev_platform, service, pod) (\n  (db_pool_connections{{{sel}}} - db_pool_idle_connections{{{sel}}})\n  / db_pool_max_connections{{{sel}}}\n) >= {}",
                    decimal(POOL_SATURATION)
                ),
                for_: "10m",
                severity: "warning",
                summary: format!("A service of platform {platform} has used up its database connections"),
                description: format!(
                    "{{{{ $labels.pod }}}} ({{{{ $labels.service }}}}) has had {}% or more of its PostgreSQL pool in use for 10 minutes: requests queue for a connection and time out after 5 s.",
                    decimal(POOL_SATURATION * 100.0)
                ),
                labels: vec![],
            });
        }
        let claims = self.builder.volume_claims();
        if !claims.is_empty() {
            let claims = format!("data-({})-[0-9]+", claims.join("|"));
            let volume = format!(
                "namespace=\"{}\", persistentvolumeclaim=~\"{claims}\"",
                names.namespace
            );
            alerts.push(Alert {
                name: "PantheraVolumeFillingUp",
                expr: format!(
                    "kubelet_volume_stats_available_bytes{{{volume}}}\n/\nkubelet_volume_stats_capacity_bytes{{{volume}}}\n< {}",
                    decimal(VOLUME_FREE)
                ),
                for_: "10m",
                severity: "warning",
                summary: format!("A data volume of platform {platform} is filling up"),
                description: format!(
                    "Claim {{{{ $labels.persistentvolumeclaim }}}} in {{{{ $labels.namespace }}}} has less than {}% free: a full disk stops the store.",
                    decimal(VOLUME_FREE * 100.0)
                ),
                labels: vec![],
            });
        }
        alerts.push(Alert {
            name: "PantheraPlatformNotReady",
            // Only the leader reconciles; a replica that was leader keeps its last values.
            expr: format!(
                "(panthera_operator_platform_ready{{namespace=\"{}\", platform=\"{platform}\"}} == 0)\nand on (instance)\n(panthera_operator_leader == 1)",
                names.namespace
            ),
            for_: "15m",
            severity: "warning",
            summary: format!("Platform {platform} is not Ready"),
            description: format!(
                "The operator has reported {}/{platform} not Ready for 15 minutes: kubectl -n {} get pantheraplatform {platform} says why.",
                names.namespace, names.namespace
            ),
            labels: vec![],
        });
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_have_no_float_noise() {
        assert_eq!(decimal(14.4 * (100.0 - 99.9) / 100.0), "0.0144");
        assert_eq!(decimal((100.0 - 99.9) / 100.0), "0.001");
        assert_eq!(decimal(6.0 * 0.01), "0.06");
        assert_eq!(decimal(0.0), "0");
        assert_eq!(decimal(90.0), "90");
    }

    #[test]
    fn thresholds_are_written_as_the_gateway_writes_its_buckets() {
        assert_eq!(le(500), "0.5");
        assert_eq!(le(1000), "1.0");
        assert_eq!(le(5), "0.005");
        assert_eq!(le(10000), "10.0");
    }
}
