//! The search engine: one OpenSearch node in the cluster, for the services that search (the
//! catalog's product search).

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::rules::msg;
use super::{Backend, DeletionPolicy, ResourcesSpec, STORAGE_CLASS, STORAGE_SIZE};

/// OpenSearch, for the services with `search: true`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("self.backend == 'cluster'").message(msg::SEARCH_CLUSTER_ONLY).field_path(".backend"),
)]
pub struct SearchSpec {
    /// Where it runs. Only `cluster` for now: an Amazon OpenSearch Service domain is not
    /// provisioned yet.
    #[serde(default)]
    pub backend: Backend,
    /// OpenSearch version (the image tag), 2.x: the catalog's queries are tested against 2.19.
    #[serde(default = "default_search_version")]
    #[schemars(length(max = 16), regex(pattern = "^2\\.[0-9]+\\.[0-9]+$"))]
    pub version: String,
    /// Volume size of the index data.
    #[serde(default = "default_search_storage")]
    #[schemars(regex(pattern = STORAGE_SIZE), length(max = 8))]
    pub storage: String,
    /// StorageClass of the volume; unset: the platform's `storageClassName`, else the cluster's
    /// default class. A volume's class cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = STORAGE_CLASS))]
    pub storage_class_name: Option<String>,
    /// What happens to the index data on removal. The index is rebuilt from the catalog's
    /// database (`panthera-catalog reindex`), so `Delete` loses nothing that cannot be rebuilt.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Container resources. The JVM heap is half the memory limit.
    #[serde(default)]
    pub resources: ResourcesSpec,
}

fn default_search_version() -> String {
    "2.19.1".to_string()
}

fn default_search_storage() -> String {
    "10Gi".to_string()
}

impl SearchSpec {
    /// The `major.minor` of the version.
    pub fn minor_version(&self) -> &str {
        let mut dots = self.version.match_indices('.');
        match dots.nth(1) {
            Some((at, _)) => &self.version[..at],
            None => &self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minor_version_drops_the_patch() {
        let spec: SearchSpec = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(spec.version, "2.19.1");
        assert_eq!(spec.minor_version(), "2.19");
    }
}
