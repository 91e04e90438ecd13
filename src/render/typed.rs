//! Every rendered object goes through its k8s-openapi type and back. k8s-openapi ignores fields
//! it does not know, so whatever the round trip drops is a typo or a field of another API version
//! that the API server would silently discard: an error, named by its field path.

use k8s_openapi::Resource;
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    autoscaling::v2::HorizontalPodAutoscaler,
    batch::v1::Job,
    core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount},
    networking::v1::{Ingress, NetworkPolicy},
    policy::v1::PodDisruptionBudget,
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Round-trip `value` through the type of its kind; Err names the problem and the field path.
pub fn check(value: &Value) -> Result<(), String> {
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(typed) = typed_round_trip(api_version, kind, value) else {
        let known: Vec<String> = crate::api::KINDS
            .iter()
            .map(|k| format!("{}/{}", k.api_version, k.kind))
            .collect();
        return Err(format!(
            "apiVersion {api_version:?} kind {kind:?} is not a kind Panthera renders (known: {})",
            known.join(", ")
        ));
    };
    let typed = typed?;
    let mut dropped = Vec::new();
    find_dropped(value, &typed, "", &mut dropped);
    match dropped.first() {
        None => Ok(()),
        Some(_) => Err(format!(
            "unknown field(s) for {api_version} {kind}: {} (the typed Kubernetes API would drop them)",
            dropped.join(", ")
        )),
    }
}

/// The round trip of `value` through the k8s-openapi type whose own `API_VERSION` and `KIND`
/// are `api_version` and `kind`; `None` for a kind Panthera does not render.
fn typed_round_trip(api_version: &str, kind: &str, value: &Value) -> Option<Result<Value, String>> {
    macro_rules! first_of {
        ($($type:ty),* $(,)?) => {
            $(
                if api_version == <$type as Resource>::API_VERSION
                    && kind == <$type as Resource>::KIND
                {
                    return Some(round_trip::<$type>(value));
                }
            )*
        };
    }
    if api_version == crate::api::kinds::MONITORING_API_VERSION {
        return match kind {
            "ServiceMonitor" => Some(round_trip::<monitoring::ServiceMonitor>(value)),
            "PrometheusRule" => Some(round_trip::<monitoring::PrometheusRule>(value)),
            _ => None,
        };
    }
    first_of!(
        Namespace,
        ServiceAccount,
        Secret,
        ConfigMap,
        PersistentVolumeClaim,
        Service,
        Deployment,
        StatefulSet,
        Job,
        HorizontalPodAutoscaler,
        PodDisruptionBudget,
        Ingress,
        NetworkPolicy,
        Role,
        RoleBinding,
        ClusterRole,
        ClusterRoleBinding,
        CustomResourceDefinition,
    );
    None
}

/// The Prometheus operator's kinds, as far as Panthera writes them (k8s-openapi has no types for
/// them): a field outside these is reported like any other dropped field.
mod monitoring {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceMonitor {
        api_version: String,
        kind: String,
        metadata: ObjectMeta,
        spec: ServiceMonitorSpec,
    }

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ServiceMonitorSpec {
        selector: LabelSelector,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace_selector: Option<NamespaceSelector>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_label: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pod_target_labels: Vec<String>,
        endpoints: Vec<Endpoint>,
    }

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct NamespaceSelector {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        match_names: Vec<String>,
    }

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Endpoint {
        port: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interval: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scrape_timeout: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        honor_labels: Option<bool>,
    }

    #[derive(Deserialize, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct PrometheusRule {
        api_version: String,
        kind: String,
        metadata: ObjectMeta,
        spec: PrometheusRuleSpec,
    }

    #[derive(Deserialize, Serialize)]
    struct PrometheusRuleSpec {
        groups: Vec<RuleGroup>,
    }

    #[derive(Deserialize, Serialize)]
    struct RuleGroup {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interval: Option<String>,
        rules: Vec<Rule>,
    }

    #[derive(Deserialize, Serialize)]
    struct Rule {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alert: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<String>,
        expr: String,
        #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
        for_: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        annotations: BTreeMap<String, String>,
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, String> {
    let typed: T = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        format!("field {path}: {}", e.inner())
    })?;
    serde_json::to_value(&typed).map_err(|e| format!("cannot re-serialize: {e}"))
}

/// Paths present (non-null) in `original` but missing in `typed`.
fn find_dropped(original: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match b.get(key) {
                    Some(t) => find_dropped(value, t, &child, out),
                    None if value.is_null() => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                find_dropped(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn accepts_a_known_object_and_names_a_dropped_field() {
        let ok = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
        assert_eq!(check(&ok), Ok(()));
        let typo = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "imagePullPolicyy": "Always"}]}}}});
        let err = check(&typo).unwrap_err();
        assert!(
            err.contains("spec.template.spec.containers[0].imagePullPolicyy"),
            "{err}"
        );
    }

    #[test]
    fn reports_a_wrong_type_with_its_path() {
        let bad = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
            "spec": {"ports": [{"port": "http"}]}});
        let err = check(&bad).unwrap_err();
        assert!(err.contains("spec.ports[0].port"), "{err}");
    }

    #[test]
    fn rejects_unknown_kinds() {
        let err = check(&json!({"apiVersion": "v1", "kind": "Pod"})).unwrap_err();
        assert!(err.contains("not a kind Panthera renders"), "{err}");
    }
}
