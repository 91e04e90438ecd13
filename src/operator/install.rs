//! The operator's own manifests (`panthera install`): CRD, namespace, ServiceAccount,
//! least-privilege RBAC, Deployment and metrics Service, rendered from `templates/operator/`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::Kind;
use crate::render::{Object, Renderer};

type Result<T, E = crate::render::Error> = std::result::Result<T, E>;

/// What to install.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    pub namespace: String,
    pub image: String,
    pub replicas: u16,
    /// Grant and watch one namespace only.
    pub watch_namespace: Option<String>,
    /// Extra arguments for `panthera operator`.
    pub args: Vec<String>,
    /// A ServiceMonitor for the operator's metrics (the cluster serves monitoring.coreos.com/v1).
    pub service_monitor: bool,
    /// Extra labels on that ServiceMonitor (the ones Prometheus selects by).
    pub monitor_labels: BTreeMap<String, String>,
    /// Environment of the operator beyond its own (`OTEL_*` for its traces, `AWS_*`); a
    /// `RUST_LOG` here replaces the default `info`.
    pub env: BTreeMap<String, String>,
}

impl InstallOptions {
    pub fn default_image() -> String {
        format!(
            "ghcr.io/panthera-dev/panthera:{}",
            env!("CARGO_PKG_VERSION")
        )
    }
}

/// The ClusterRole's rules: for every child kind exactly the verbs the engine uses — list and
/// watch (metadata watches, the engine's listing), create and patch (server-side apply creates
/// and updates), delete (prune, teardown) — plus the platform resource, its status, PVCs (only
/// listed and deleted, when a store's deletionPolicy is Delete) and events. No `get` on
/// Secrets, no wildcards, no `update`, no escalation verbs.
pub fn rules() -> Vec<Value> {
    let mut by_group: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for managed in Kind::children() {
        by_group
            .entry(managed.group())
            .or_default()
            .push(managed.plural);
    }
    let mut rules: Vec<Value> = by_group
        .into_iter()
        .map(|(group, resources)| {
            json!({
                "apiGroups": [group],
                "resources": resources,
                "verbs": ["list", "watch", "create", "patch", "delete"],
            })
        })
        .collect();
    for pvc in Kind::listed(true).filter(|k| k.role == crate::api::kinds::Role::Data) {
        rules.push(json!({
            "apiGroups": [pvc.group()],
            "resources": [pvc.plural],
            "verbs": ["list", "delete"],
        }));
    }
    rules.push(json!({
        "apiGroups": ["panthera.dev"],
        "resources": ["pantheraplatforms"],
        "verbs": ["list", "watch", "patch"],
    }));
    rules.push(json!({
        "apiGroups": ["panthera.dev"],
        "resources": ["pantheraplatforms/status"],
        "verbs": ["get", "patch"],
    }));
    rules.push(json!({
        "apiGroups": ["events.k8s.io"],
        "resources": ["events"],
        "verbs": ["create", "patch"],
    }));
    rules
}

/// The manifests, in the order they must be applied.
pub fn manifests(renderer: &Renderer, options: &InstallOptions) -> Result<Vec<Object>> {
    let labels = json!({
        "app.kubernetes.io/name": "panthera-operator",
        "app.kubernetes.io/instance": "panthera-operator",
        "app.kubernetes.io/component": "operator",
        "app.kubernetes.io/part-of": "panthera",
        "app.kubernetes.io/managed-by": crate::api::MANAGER,
        "app.kubernetes.io/version": env!("CARGO_PKG_VERSION"),
    });
    let mut namespace_labels = labels.clone();
    namespace_labels["pod-security.kubernetes.io/enforce"] = json!("restricted");
    namespace_labels["pod-security.kubernetes.io/enforce-version"] = json!("latest");
    // The CLI's 50 qps suits one person's apply; the operator reconciles every platform, about
    // 12 requests each, and the API server's priority and fairness protects it anyway.
    let mut args = vec![
        "operator".to_string(),
        "--qps=200".to_string(),
        "--burst=400".to_string(),
    ];
    if let Some(ns) = &options.watch_namespace {
        args.push(format!("--watch-namespace={ns}"));
    }
    args.extend(options.args.iter().cloned());
    let mut monitor_labels = labels.clone();
    if let Some(map) = monitor_labels.as_object_mut() {
        for (k, v) in &options.monitor_labels {
            map.insert(k.clone(), json!(v));
        }
    }
    let crd: Value =
        serde_json::to_value(<crate::api::PantheraPlatform as kube::CustomResourceExt>::crd())
            .map_err(|e| crate::render::Error::Spec(format!("cannot encode the CRD: {e}")))?;
    let mut env = Vec::new();
    if !options.env.contains_key("RUST_LOG") {
        env.push(json!({"name": "RUST_LOG", "value": "info"}));
    }
    env.extend(
        options
            .env
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value})),
    );
    let values = json!({
        "env": env,
        "namespace": options.namespace,
        "image": options.image,
        "replicas": options.replicas,
        "watch_namespace": options.watch_namespace,
        "labels": labels,
        "namespace_labels": namespace_labels,
        "rules": rules(),
        "args": args,
        "crd": crd,
        "service_monitor": options.service_monitor,
        "monitor_labels": monitor_labels,
    });
    let mut objects = renderer.render_manifests("operator", &values)?;
    objects.sort_by_key(|o| {
        ORDER
            .iter()
            .position(|k| *k == o.kind())
            .unwrap_or(ORDER.len())
    });
    Ok(objects)
}

/// Apply order: what others refer to first.
const ORDER: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "ServiceAccount",
    "ClusterRole",
    "Role",
    "ClusterRoleBinding",
    "RoleBinding",
    "Service",
    "Deployment",
    "ServiceMonitor",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> InstallOptions {
        InstallOptions {
            namespace: "panthera-system".into(),
            image: "example.com/panthera:1".into(),
            replicas: 2,
            watch_namespace: None,
            args: vec![],
            service_monitor: false,
            monitor_labels: BTreeMap::new(),
            env: BTreeMap::new(),
        }
    }

    #[test]
    fn manifests_are_ordered_and_complete() {
        let objects = manifests(&Renderer::embedded().unwrap(), &options()).unwrap();
        let ids: Vec<String> = objects.iter().map(|o| o.id()).collect();
        assert_eq!(
            ids,
            [
                "Namespace/panthera-system",
                "CustomResourceDefinition/pantheraplatforms.panthera.dev",
                "ServiceAccount/panthera-operator",
                "ClusterRole/panthera-operator",
                "Role/panthera-operator-leader-election",
                "ClusterRoleBinding/panthera-operator",
                "RoleBinding/panthera-operator-leader-election",
                "Service/panthera-operator-metrics",
                "Deployment/panthera-operator",
            ]
        );
    }

    #[test]
    fn rbac_has_no_wildcards_and_never_reads_single_secrets() {
        for rule in rules() {
            let text = rule.to_string();
            assert!(!text.contains('*'), "{text}");
            assert!(!text.contains("\"update\""), "{text}");
            assert!(
                !text.contains("escalate") && !text.contains("bind"),
                "{text}"
            );
            let resources = rule["resources"].as_array().unwrap();
            if resources.iter().any(|r| r == "secrets") {
                assert!(!rule["verbs"].as_array().unwrap().iter().any(|v| v == "get"));
            }
        }
        // Every managed kind is covered.
        let text = serde_json::to_string(&rules()).unwrap();
        for managed in Kind::children() {
            assert!(text.contains(managed.plural), "{} missing", managed.plural);
        }
    }

    #[test]
    fn a_service_monitor_scrapes_the_operator_when_asked() {
        let renderer = Renderer::embedded().unwrap();
        let without = manifests(&renderer, &options()).unwrap();
        assert!(without.iter().all(|o| o.kind() != "ServiceMonitor"));
        let mut o = options();
        o.service_monitor = true;
        o.monitor_labels = BTreeMap::from([("release".into(), "prom".into())]);
        let objects = manifests(&renderer, &o).unwrap();
        let last = objects.last().unwrap();
        assert_eq!(last.id(), "ServiceMonitor/panthera-operator");
        assert_eq!(last.value["metadata"]["labels"]["release"], "prom");
        assert_eq!(
            last.value["spec"]["endpoints"][0]["port"], "http-metrics",
            "the metrics Service's port"
        );
        assert_eq!(last.value["spec"]["endpoints"][0]["honorLabels"], true);
    }

    #[test]
    fn the_operator_gets_the_environment_asked_for_and_its_own() {
        let env_of = |o: &InstallOptions| {
            let objects = manifests(&Renderer::embedded().unwrap(), o).unwrap();
            let deployment = objects.iter().find(|o| o.kind() == "Deployment").unwrap();
            deployment.value["spec"]["template"]["spec"]["containers"][0]["env"].clone()
        };
        let names = |env: &Value| -> Vec<String> {
            env.as_array()
                .unwrap()
                .iter()
                .map(|e| e["name"].as_str().unwrap().to_string())
                .collect()
        };
        let plain = env_of(&options());
        assert_eq!(names(&plain), ["POD_NAME", "POD_NAMESPACE", "RUST_LOG"]);
        let mut o = options();
        o.env = BTreeMap::from([
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                "http://collector:4318".into(),
            ),
            ("RUST_LOG".into(), "debug".into()),
        ]);
        let traced = env_of(&o);
        assert_eq!(
            names(&traced),
            [
                "POD_NAME",
                "POD_NAMESPACE",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "RUST_LOG"
            ]
        );
        assert_eq!(traced[2]["value"], "http://collector:4318");
        assert_eq!(traced[3]["value"], "debug");
    }

    #[test]
    fn watching_one_namespace_binds_the_role_there_only() {
        let mut o = options();
        o.watch_namespace = Some("shop".into());
        let objects = manifests(&Renderer::embedded().unwrap(), &o).unwrap();
        assert!(objects.iter().all(|o| o.kind() != "ClusterRoleBinding"));
        let binding = objects
            .iter()
            .find(|o| o.id() == "RoleBinding/panthera-operator")
            .unwrap();
        assert_eq!(binding.namespace(), Some("shop"));
        let deployment = objects.iter().find(|o| o.kind() == "Deployment").unwrap();
        let args = deployment.value["spec"]["template"]["spec"]["containers"][0]["args"].clone();
        assert_eq!(
            args,
            json!([
                "operator",
                "--qps=200",
                "--burst=400",
                "--watch-namespace=shop"
            ])
        );
    }

    #[test]
    fn the_operator_pod_is_restricted() {
        let objects = manifests(&Renderer::embedded().unwrap(), &options()).unwrap();
        let d = objects.iter().find(|o| o.kind() == "Deployment").unwrap();
        let pod = &d.value["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], json!(true));
        let c = &pod["containers"][0]["securityContext"];
        assert_eq!(c["allowPrivilegeEscalation"], json!(false));
        assert_eq!(c["readOnlyRootFilesystem"], json!(true));
        assert_eq!(c["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(c["seccompProfile"]["type"], json!("RuntimeDefault"));
    }
}
