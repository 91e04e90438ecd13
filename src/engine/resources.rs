//! The API resources Panthera manages, known statically: no discovery round trip per apply.

use kube::core::{ApiResource, GroupVersionKind};

/// A kind Panthera renders: how to address it and whether pruning may ever delete it.
#[derive(Clone, Copy, Debug)]
pub struct Managed {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

/// Every kind the renderer may produce and prune may delete, in apply order.
pub const MANAGED: &[Managed] = &[
    Managed {
        api_version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
    },
    Managed {
        api_version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
    },
    Managed {
        api_version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
    },
    Managed {
        api_version: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        plural: "networkpolicies",
        namespaced: true,
    },
    Managed {
        api_version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
    },
    Managed {
        api_version: "apps/v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        namespaced: true,
    },
    Managed {
        api_version: "apps/v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
    },
    Managed {
        api_version: "batch/v1",
        kind: "Job",
        plural: "jobs",
        namespaced: true,
    },
    Managed {
        api_version: "autoscaling/v2",
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        namespaced: true,
    },
    Managed {
        api_version: "policy/v1",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        namespaced: true,
    },
    Managed {
        api_version: "networking.k8s.io/v1",
        kind: "Ingress",
        plural: "ingresses",
        namespaced: true,
    },
];

/// PersistentVolumeClaims hold data: listed for status, never pruned (see deletion policies).
pub const PVC: Managed = Managed {
    api_version: "v1",
    kind: "PersistentVolumeClaim",
    plural: "persistentvolumeclaims",
    namespaced: true,
};

impl Managed {
    /// Every kind Panthera reads: the managed ones and PVCs.
    fn all() -> impl Iterator<Item = &'static Managed> {
        MANAGED.iter().chain(std::iter::once(&PVC))
    }

    /// The kind of `api_version`/`kind`, if Panthera manages it.
    pub fn find(api_version: &str, kind: &str) -> Option<&'static Managed> {
        Self::all().find(|m| m.api_version == api_version && m.kind == kind)
    }

    /// A managed kind (or PVC) by kind name alone; Panthera uses one version per kind.
    pub fn by_kind(kind: &str) -> Option<&'static Managed> {
        Self::all().find(|m| m.kind == kind)
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
