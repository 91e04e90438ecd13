//! The one table of Kubernetes kinds Panthera knows: what the renderer may produce, what apply
//! lists and prunes, and the order objects are applied in. Static, so an apply needs no
//! discovery round trip.

use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    autoscaling::v2::HorizontalPodAutoscaler,
    batch::v1::Job,
    core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount},
    networking::v1::{Ingress, NetworkPolicy},
    policy::v1::PodDisruptionBudget,
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role as RbacRole, RoleBinding},
    storage::v1::StorageClass,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::{ApiResource, GroupVersionKind};

/// What Panthera does with objects of a kind in a platform's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A child of a platform: listed by apply, plan and status, pruned when the plan drops it.
    Child,
    /// Data (PersistentVolumeClaims): listed for status and destroy, deleted only as the store's
    /// deletion policy says, never pruned.
    Data,
    /// Rendered for the operator's install (namespace, RBAC, CRD); never listed per platform.
    Install,
    /// Never rendered; read to say why a workload does not start (pods).
    Diagnostic,
}

/// A kind Panthera renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub role: Role,
}

/// Whether a k8s-openapi scope type is namespaced.
trait Scope {
    const NAMESPACED: bool;
}

impl Scope for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl Scope for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// The kind of the k8s-openapi type `K`: its identity comes from the type itself.
const fn kind<K>(role: Role) -> Kind
where
    K: k8s_openapi::Resource,
    K::Scope: Scope,
{
    Kind {
        api_version: K::API_VERSION,
        kind: K::KIND,
        plural: K::URL_PATH_SEGMENT,
        namespaced: <K::Scope as Scope>::NAMESPACED,
        role,
    }
}

/// Every kind, in apply order: identities and configuration first, workloads after what they
/// mount, policies and exposure last. Deletion goes the other way.
pub const KINDS: &[Kind] = &[
    kind::<Namespace>(Role::Install),
    kind::<CustomResourceDefinition>(Role::Install),
    kind::<ServiceAccount>(Role::Child),
    kind::<ClusterRole>(Role::Install),
    kind::<RbacRole>(Role::Install),
    kind::<ClusterRoleBinding>(Role::Install),
    kind::<RoleBinding>(Role::Install),
    kind::<Secret>(Role::Child),
    kind::<ConfigMap>(Role::Child),
    PERSISTENT_VOLUME_CLAIM,
    kind::<NetworkPolicy>(Role::Child),
    kind::<Service>(Role::Child),
    kind::<StatefulSet>(Role::Child),
    kind::<Deployment>(Role::Child),
    kind::<Job>(Role::Child),
    kind::<HorizontalPodAutoscaler>(Role::Child),
    kind::<PodDisruptionBudget>(Role::Child),
    kind::<Ingress>(Role::Child),
    SERVICE_MONITOR,
    PROMETHEUS_RULE,
];

/// The Prometheus operator's API: served only where it is installed, so its kinds are listed,
/// watched and rendered only where discovery finds it.
pub const MONITORING_API_VERSION: &str = "monitoring.coreos.com/v1";

/// Where the Prometheus operator scrapes a platform's workloads.
pub const SERVICE_MONITOR: Kind = Kind {
    api_version: MONITORING_API_VERSION,
    kind: "ServiceMonitor",
    plural: "servicemonitors",
    namespaced: true,
    role: Role::Child,
};

/// A platform's alerts.
pub const PROMETHEUS_RULE: Kind = Kind {
    api_version: MONITORING_API_VERSION,
    kind: "PrometheusRule",
    plural: "prometheusrules",
    namespaced: true,
    role: Role::Child,
};

/// Volume claims, the data of the stores.
pub const PERSISTENT_VOLUME_CLAIM: Kind = kind::<PersistentVolumeClaim>(Role::Data);

/// Pods: read only to find one that cannot start.
pub const POD: Kind = kind::<Pod>(Role::Diagnostic);

/// StorageClasses: read only to tell a claim that waits for a class that does not exist.
pub const STORAGE_CLASS: Kind = kind::<StorageClass>(Role::Diagnostic);

impl Kind {
    /// The kind of `api_version`/`kind`, if Panthera renders it.
    pub fn find(api_version: &str, kind: &str) -> Option<&'static Kind> {
        KINDS
            .iter()
            .find(|k| k.api_version == api_version && k.kind == kind)
    }

    /// A kind by name alone; Panthera uses one version per kind.
    pub fn named(kind: &str) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.kind == kind)
    }

    /// The children's kinds (what apply lists and prune may delete), in apply order.
    pub fn children() -> impl DoubleEndedIterator<Item = &'static Kind> + Clone {
        KINDS.iter().filter(|k| k.role == Role::Child)
    }

    /// The kinds listed in a platform's namespace: the children, plus PVCs with `with_data`.
    pub fn listed(with_data: bool) -> impl Iterator<Item = &'static Kind> {
        KINDS
            .iter()
            .filter(move |k| k.role == Role::Child || with_data && k.role == Role::Data)
    }

    /// Position in apply order (unknown kinds last).
    pub fn rank(kind: &str) -> usize {
        KINDS
            .iter()
            .position(|k| k.kind == kind)
            .unwrap_or(KINDS.len())
    }

    /// Whether the kind belongs to an API the cluster may not serve (the Prometheus operator's):
    /// such kinds are listed and rendered only where discovery finds them.
    pub fn optional(&self) -> bool {
        self.api_version == MONITORING_API_VERSION
    }

    /// API group: empty for the core group.
    pub fn group(&self) -> &'static str {
        self.api_version
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or_default()
    }

    pub fn api_resource(&self) -> ApiResource {
        let version = self
            .api_version
            .split_once('/')
            .map(|(_, v)| v)
            .unwrap_or(self.api_version);
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group(), version, self.kind),
            self.plural,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_come_after_what_they_mount_and_exposure_last() {
        let rank = Kind::rank;
        assert!(rank("ServiceAccount") < rank("Secret"));
        assert!(rank("Secret") < rank("Deployment"));
        assert!(rank("ConfigMap") < rank("StatefulSet"));
        assert!(rank("Deployment") < rank("Ingress"));
        assert_eq!(rank("Unknown"), KINDS.len());
    }

    #[test]
    fn children_exclude_data_and_install_kinds() {
        let children: Vec<&str> = Kind::children().map(|k| k.kind).collect();
        assert_eq!(children.len(), 13);
        assert_eq!(
            Kind::children().filter(|k| k.optional()).count(),
            2,
            "only the Prometheus operator's kinds are optional"
        );
        assert!(!children.contains(&"PersistentVolumeClaim"));
        assert!(!children.contains(&"Namespace"));
        assert!(Kind::listed(true).any(|k| k.kind == "PersistentVolumeClaim"));
        assert_eq!(Kind::named("Deployment").map(|k| k.group()), Some("apps"));
        assert_eq!(
            Kind::find("v1", "Secret").map(|k| k.plural),
            Some("secrets")
        );
    }
}
