//! The search engine, for the services that search (the catalog's product search): one
//! OpenSearch node in the cluster, or an Amazon OpenSearch Service domain.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::rules::msg;
use super::{Backend, DeletionPolicy, ResourcesSpec, STORAGE_CLASS, STORAGE_SIZE};

/// OpenSearch, for the services with `search: true`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("!has(self.existingIdentifier) || self.backend == 'aws'").message(msg::EXISTING_NEEDS_AWS).field_path(".existingIdentifier"),
    validation = Rule::new("self.backend == 'aws' || ((!has(self.instanceCount) || self.instanceCount == 1) && (!has(self.availabilityZones) || self.availabilityZones == 1) && !has(self.dedicatedMasters))").message(msg::SEARCH_AWS_ONLY).field_path(".instanceCount"),
    validation = Rule::new("(has(self.instanceCount) ? self.instanceCount : 1) % (has(self.availabilityZones) ? self.availabilityZones : 1) == 0").message(msg::SEARCH_NODES_PER_ZONE).field_path(".instanceCount"),
)]
pub struct SearchSpec {
    /// Where it runs: one OpenSearch node in the cluster, or an Amazon OpenSearch Service domain
    /// in the platform's VPC (`spec.aws`).
    #[serde(default)]
    pub backend: Backend,
    /// OpenSearch version, 2.x: the image tag in the cluster; on AWS the domain runs
    /// `OpenSearch_<major.minor>`. The catalog's queries are tested against 2.19.
    #[serde(default = "default_search_version")]
    #[schemars(length(max = 16), regex(pattern = "^2\\.[0-9]+\\.[0-9]+$"))]
    pub version: String,
    /// Volume size of the index data (on AWS: the EBS volume of each data node, gp3).
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
    /// Container resources (cluster backend). The JVM heap is half the memory limit.
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Instance type of the data nodes (aws backend).
    #[serde(default = "default_search_instance_type")]
    #[schemars(length(max = 64), regex(pattern = "^[a-z0-9]+\\.[a-z0-9]+\\.search$"))]
    pub instance_type: String,
    /// Data nodes (aws backend; the cluster backend runs one node), a multiple of
    /// `availabilityZones`.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    #[schemars(range(min = 1, max = 80))]
    pub instance_count: i32,
    /// Availability zones the data nodes are spread over (aws backend): 2 or 3 turns on zone
    /// awareness (Multi-AZ without standby), and the domain needs a subnet in each zone.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    #[schemars(range(min = 1, max = 3))]
    pub availability_zones: i32,
    /// Dedicated master nodes (aws backend): cluster management off the data nodes, which AWS
    /// recommends for production domains. Unset: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedicated_masters: Option<DedicatedMastersSpec>,
    /// Adopt an existing OpenSearch Service domain of this name (aws backend): Panthera tags it
    /// as its own and manages it from then on. Without it, Panthera never touches a domain it
    /// did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 28), regex(pattern = "^[a-z][a-z0-9-]*$"))]
    pub existing_identifier: Option<String>,
}

/// The dedicated master nodes of an OpenSearch Service domain.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DedicatedMastersSpec {
    /// Instance type of the masters.
    #[serde(default = "default_search_instance_type")]
    #[schemars(length(max = 64), regex(pattern = "^[a-z0-9]+\\.[a-z0-9]+\\.search$"))]
    pub instance_type: String,
    /// How many: 3 (AWS's recommendation) or 5.
    #[serde(default = "three")]
    #[schemars(range(min = 3, max = 5))]
    #[x_kube(validation = Rule::new("self == 3 || self == 5").message(msg::SEARCH_MASTER_COUNT))]
    pub count: i32,
}

fn one() -> i32 {
    1
}

fn is_one(n: &i32) -> bool {
    *n == 1
}

fn three() -> i32 {
    3
}

fn default_search_instance_type() -> String {
    "m7g.large.search".to_string()
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

    /// The engine version of an OpenSearch Service domain: `OpenSearch_2.19`.
    pub fn aws_engine_version(&self) -> String {
        format!("OpenSearch_{}", self.minor_version())
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
        assert_eq!(spec.aws_engine_version(), "OpenSearch_2.19");
        assert_eq!((spec.instance_count, spec.availability_zones), (1, 1));
    }
}
