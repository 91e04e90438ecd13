//! Status contract read by Argo CD, Flux, `kubectl wait` and `panthera status` (see DESIGN.md).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Backend, ComponentKind};

/// Now, as the status fields write a time: RFC 3339 in UTC, to the second (as Kubernetes
/// writes `lastTransitionTime`).
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Observed state of a platform. Never carries a secret.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PantheraPlatformStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// kstatus conditions keyed by type: `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// One entry per rendered component. Keyed by kind and name: a service and its database
    /// may share a name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["kind", "name"]))]
    pub components: Vec<ComponentStatus>,
    /// External endpoint of the gateway (host or load balancer address), for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_endpoint: Option<String>,
}

/// A kstatus-compatible condition.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// One CamelCase word a machine can switch on.
    #[serde(default)]
    pub reason: String,
    /// What a person needs to know.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the last change of `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation this condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Value of a condition.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// Observed state of one component.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Component name (a service or database name, or `gateway`, `redis`, `kafka`).
    pub name: String,
    /// What the component is.
    pub kind: ComponentKind,
    /// Where it runs.
    pub backend: Backend,
    /// Whether it is serving.
    pub ready: bool,
    /// Progress or the reason it is not ready.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// `host:port` or an ARN; never a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}
