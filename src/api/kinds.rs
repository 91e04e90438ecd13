//! The one table of Kubernetes kinds Panthera knows: what the renderer may produce, what apply
//! lists and prunes, and the order objects are applied in. Static, so an apply needs no
//! discovery round trip.

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

const fn kind(
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    role: Role,
) -> Kind {
    Kind {
        api_version,
        kind,
        plural,
        namespaced,
        role,
    }
}

/// Every kind, in apply order: identities and configuration first, workloads after what they
/// mount, policies and exposure last. Deletion goes the other way.
pub const KINDS: &[Kind] = &[
    kind("v1", "Namespace", "namespaces", false, Role::Install),
    kind(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        Role::Install,
    ),
    kind("v1", "ServiceAccount", "serviceaccounts", true, Role::Child),
    kind(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        "clusterroles",
        false,
        Role::Install,
    ),
    kind(
        "rbac.authorization.k8s.io/v1",
        "Role",
        "roles",
        true,
        Role::Install,
    ),
    kind(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        Role::Install,
    ),
    kind(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rolebindings",
        true,
        Role::Install,
    ),
    kind("v1", "Secret", "secrets", true, Role::Child),
    kind("v1", "ConfigMap", "configmaps", true, Role::Child),
    kind(
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        Role::Data,
    ),
    kind(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        Role::Child,
    ),
    kind("v1", "Service", "services", true, Role::Child),
    kind("apps/v1", "StatefulSet", "statefulsets", true, Role::Child),
    kind("apps/v1", "Deployment", "deployments", true, Role::Child),
    kind("batch/v1", "Job", "jobs", true, Role::Child),
    kind(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        Role::Child,
    ),
    kind(
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        Role::Child,
    ),
    kind(
        "networking.k8s.io/v1",
        "Ingress",
        "ingresses",
        true,
        Role::Child,
    ),
];

/// Pods: read only to find one that cannot start.
pub const POD: Kind = kind("v1", "Pod", "pods", true, Role::Diagnostic);

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
        assert_eq!(children.len(), 11);
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
