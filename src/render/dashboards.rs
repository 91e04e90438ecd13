//! Grafana dashboards of a platform, as JSON for ConfigMaps the Grafana sidecar loads (label
//! `grafana_dashboard: "1"`): the overview (RED per route and per service, saturation) and one
//! per component kind. Every query reads a metric a Panthera binary exports, or the kubelet's
//! and kube-state-metrics' (the data stores run no exporter: their dashboard shows volumes and
//! restarts only). Windows are fixed (`[5m]`) so `promtool` can parse every query as it is.

use serde_json::{Value, json};

use super::Names;

/// Which parts of the platform exist, so a dashboard shows no panel that can never have data.
pub struct Topology {
    pub gateway: bool,
    pub services: Vec<String>,
    pub outbox: bool,
    pub consumers: bool,
    pub pools: bool,
    pub stores: bool,
}

/// One panel: a title, a unit and its queries (legend, PromQL).
struct Panel {
    title: &'static str,
    unit: &'static str,
    queries: Vec<(&'static str, String)>,
}

fn panel(title: &'static str, unit: &'static str, queries: Vec<(&'static str, String)>) -> Panel {
    Panel {
        title,
        unit,
        queries,
    }
}

/// The dashboards: `{name, title, json}` each.
pub fn build(names: &Names, selector: &str, topology: &Topology) -> Vec<Value> {
    let platform = &names.platform;
    let gw = |metric: &str, extra: &str| format!("{metric}{{{selector}{extra}}}");
    let mut gateway = Vec::new();
    let mut overview = Vec::new();
    if topology.gateway {
        let requests = gw("gateway_requests_total", "");
        let errors = gw("gateway_requests_total", ", status=~\"5..\"");
        let buckets = gw("gateway_request_duration_seconds_bucket", "");
        overview.push(panel(
            "Gateway requests per route",
            "reqps",
            vec![(
                "{{route}}",
                format!("sum by (route) (rate({requests}[5m]))"),
            )],
        ));
        overview.push(panel(
            "Gateway 5xx ratio per route",
            "percentunit",
            vec![(
                "{{route}}",
                format!(
                    "sum by (route) (rate({errors}[5m])) / sum by (route) (rate({requests}[5m]))"
                ),
            )],
        ));
        overview.push(panel(
            "Gateway p99 latency per route",
            "s",
            vec![(
                "{{route}}",
                format!("histogram_quantile(0.99, sum by (route, le) (rate({buckets}[5m])))"),
            )],
        ));
        overview.push(panel(
            "Error and latency budget burn (1h)",
            "short",
            vec![
                (
                    "errors",
                    format!("panthera_gateway:request_errors:ratio_rate1h{{{selector}}}"),
                ),
                (
                    "slow",
                    format!("panthera_gateway:request_slow:ratio_rate1h{{{selector}}}"),
                ),
            ],
        ));
        gateway.push(panel(
            "Requests per route and method",
            "reqps",
            vec![(
                "{{route}} {{method}}",
                format!("sum by (route, method) (rate({requests}[5m]))"),
            )],
        ));
        gateway.push(panel(
            "Responses per status",
            "reqps",
            vec![(
                "{{status}}",
                format!("sum by (status) (rate({requests}[5m]))"),
            )],
        ));
        gateway.push(panel(
            "Latency quantiles",
            "s",
            vec![
                (
                    "p50",
                    format!("histogram_quantile(0.5, sum by (le) (rate({buckets}[5m])))"),
                ),
                (
                    "p90",
                    format!("histogram_quantile(0.9, sum by (le) (rate({buckets}[5m])))"),
                ),
                (
                    "p99",
                    format!("histogram_quantile(0.99, sum by (le) (rate({buckets}[5m])))"),
                ),
            ],
        ));
        gateway.push(panel(
            "Configuration reloads",
            "short",
            vec![(
                "{{result}}",
                format!(
                    "sum by (result) (increase({}[1h]))",
                    gw("gateway_config_reloads_total", "")
                ),
            )],
        ));
        gateway.push(panel(
            "Targets up",
            "short",
            vec![(
                "{{pod}}",
                format!("up{{{selector}, panthera_dev_component=\"gateway\"}}"),
            )],
        ));
    }
    let mut service = Vec::new();
    if !topology.services.is_empty() {
        let requests = gw("http_requests_total", "");
        let errors = gw("http_requests_total", ", status=~\"5..\"");
        let buckets = gw("http_request_duration_seconds_bucket", "");
        overview.push(panel(
            "Service requests",
            "reqps",
            vec![(
                "{{service}}",
                format!("sum by (service) (rate({requests}[5m]))"),
            )],
        ));
        overview.push(panel(
            "Service 5xx ratio",
            "percentunit",
            vec![(
                "{{service}}",
                format!(
                    "sum by (service) (rate({errors}[5m])) / sum by (service) (rate({requests}[5m]))"
                ),
            )],
        ));
        overview.push(panel(
            "Service p99 latency",
            "s",
            vec![(
                "{{service}}",
                format!("histogram_quantile(0.99, sum by (service, le) (rate({buckets}[5m])))"),
            )],
        ));
        service.push(panel(
            "Requests per route",
            "reqps",
            vec![(
                "{{service}} {{method}} {{route}}",
                format!("sum by (service, method, route) (rate({requests}[5m]))"),
            )],
        ));
        service.push(panel(
            "5xx per route",
            "reqps",
            vec![(
                "{{service}} {{method}} {{route}}",
                format!("sum by (service, method, route) (rate({errors}[5m]))"),
            )],
        ));
        service.push(panel(
            "p99 latency per route",
            "s",
            vec![(
                "{{service}} {{route}}",
                format!(
                    "histogram_quantile(0.99, sum by (service, route, le) (rate({buckets}[5m])))"
                ),
            )],
        ));
    }
    if topology.pools {
        let pool = panel(
            "Database pool in use",
            "percentunit",
            vec![(
                "{{service}} {{pod}}",
                format!(
                    "(db_pool_connections{{{selector}}} - db_pool_idle_connections{{{selector}}}) / db_pool_max_connections{{{selector}}}"
                ),
            )],
        );
        overview.push(panel(
            "Database pool in use (highest pod)",
            "percentunit",
            vec![(
                "{{service}}",
                format!(
                    "max by (service) ((db_pool_connections{{{selector}}} - db_pool_idle_connections{{{selector}}}) / db_pool_max_connections{{{selector}}})"
                ),
            )],
        ));
        service.push(pool);
    }
    if topology.outbox {
        let age = panel(
            "Outbox: oldest unpublished event",
            "s",
            vec![(
                "{{service}}",
                format!("max by (service) (outbox_oldest_unpublished_age_seconds{{{selector}}})"),
            )],
        );
        service.push(panel(
            "Outbox: events published and waiting",
            "short",
            vec![
                (
                    "published/s {{service}}",
                    format!(
                        "sum by (service) (rate(outbox_events_published_total{{{selector}}}[5m]))"
                    ),
                ),
                (
                    "waiting {{service}}",
                    format!("max by (service) (outbox_unpublished_events{{{selector}}})"),
                ),
                (
                    "relay failures/s {{service}}",
                    format!(
                        "sum by (service) (rate(outbox_relay_failures_total{{{selector}}}[5m]))"
                    ),
                ),
            ],
        ));
        overview.push(age);
        service.push(panel(
            "Outbox: oldest unpublished event",
            "s",
            vec![(
                "{{service}}",
                format!("max by (service) (outbox_oldest_unpublished_age_seconds{{{selector}}})"),
            )],
        ));
    }
    if topology.consumers {
        let lag = panel(
            "Consumer lag",
            "short",
            vec![(
                "{{service}} {{topic}}",
                format!("max by (service, topic) (consumer_lag_records{{{selector}}})"),
            )],
        );
        service.push(panel(
            "Consumed events per outcome",
            "short",
            vec![(
                "{{service}} {{outcome}}",
                format!(
                    "sum by (service, outcome) (rate(consumer_events_total{{{selector}}}[5m]))"
                ),
            )],
        ));
        overview.push(lag);
        service.push(panel(
            "Consumer lag",
            "short",
            vec![(
                "{{service}} {{topic}}",
                format!("max by (service, topic) (consumer_lag_records{{{selector}}})"),
            )],
        ));
    }
    let mut stores = Vec::new();
    if topology.stores {
        let volume = format!(
            "namespace=\"{}\", persistentvolumeclaim=~\"data-{platform}-.+\"",
            names.namespace
        );
        let used = format!(
            "1 - kubelet_volume_stats_available_bytes{{{volume}}} / kubelet_volume_stats_capacity_bytes{{{volume}}}"
        );
        overview.push(panel(
            "Data volumes used",
            "percentunit",
            vec![("{{persistentvolumeclaim}}", used.clone())],
        ));
        stores.push(panel(
            "Volumes used",
            "percentunit",
            vec![("{{persistentvolumeclaim}}", used)],
        ));
        stores.push(panel(
            "Volume bytes available",
            "bytes",
            vec![(
                "{{persistentvolumeclaim}}",
                format!("kubelet_volume_stats_available_bytes{{{volume}}}"),
            )],
        ));
        stores.push(panel(
            "Container restarts (1h)",
            "short",
            vec![(
                "{{pod}} {{container}}",
                format!(
                    "increase(kube_pod_container_status_restarts_total{{namespace=\"{}\", pod=~\"{platform}-(db-.+|redis|kafka)-[0-9]+\"}}[1h])",
                    names.namespace
                ),
            )],
        ));
    }
    let mut out = vec![dashboard(
        &format!("{platform}-overview"),
        &format!("Panthera {platform}: overview"),
        overview,
    )];
    for (suffix, title, panels) in [
        ("gateway", "gateway", gateway),
        ("services", "services", service),
        ("data-stores", "data stores", stores),
    ] {
        if !panels.is_empty() {
            out.push(dashboard(
                &format!("{platform}-{suffix}"),
                &format!("Panthera {platform}: {title}"),
                panels,
            ));
        }
    }
    out
}

/// A dashboard's ConfigMap values: its name, file name and JSON.
fn dashboard(name: &str, title: &str, panels: Vec<Panel>) -> Value {
    let panels: Vec<Value> = panels
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "id": i + 1,
                "type": "timeseries",
                "title": p.title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "targets": p.queries.iter().enumerate().map(|(j, (legend, expr))| json!({
                    "refId": char::from(b'A' + (j as u8 % 26)).to_string(),
                    "expr": expr,
                    "legendFormat": legend,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let dashboard = json!({
        "uid": format!("panthera-{name}").chars().take(40).collect::<String>(),
        "title": title,
        "tags": ["panthera"],
        "timezone": "browser",
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{
            "name": "datasource",
            "type": "datasource",
            "query": "prometheus",
            "label": "Data source",
        }]},
        "panels": panels,
    });
    json!({
        "name": format!("{name}-dashboard"),
        "file": format!("{name}.json"),
        "json": serde_json::to_string_pretty(&dashboard).unwrap_or_default(),
    })
}
