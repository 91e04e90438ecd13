//! The data stores: PostgreSQL databases, Redis and Kafka, in the cluster or on AWS.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::msg;
use super::{DNS_LABEL, ResourcesSpec, STORAGE_CLASS, STORAGE_SIZE};

/// Where a data store runs.
#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Backend {
    /// A StatefulSet in the platform's namespace.
    #[default]
    Cluster,
    /// An AWS managed service (RDS, ElastiCache, MSK).
    Aws,
}

impl Backend {
    /// Lowercase name used in labels and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cluster => "cluster",
            Self::Aws => "aws",
        }
    }
}

/// What happens to a data store's data when it is removed from the spec or the platform is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub enum DeletionPolicy {
    /// Keep a final snapshot (aws) / keep the volumes (cluster), then remove the store.
    #[default]
    Snapshot,
    /// Leave the data and the store's volumes or AWS resource in place.
    Retain,
    /// Delete the data.
    Delete,
}

/// A PostgreSQL database.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::DATABASE_BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("self.backend != 'cluster' || self.storage == oldSelf.storage").message(msg::DATABASE_STORAGE_IMMUTABLE).field_path(".storage"),
    validation = Rule::new("self.backend != 'cluster' || self.version == oldSelf.version").message(msg::DATABASE_VERSION_IMMUTABLE).field_path(".version"),
    validation = Rule::new("!has(self.existingIdentifier) || self.backend == 'aws'").message(msg::EXISTING_NEEDS_AWS).field_path(".existingIdentifier"),
    validation = Rule::new("!has(self.backup) || !has(self.backup.retentionDays) || self.backup.retentionDays != 0 || (has(self.deletionPolicy) && self.deletionPolicy == 'Delete')").message(msg::NO_BACKUPS_NEEDS_DELETE).field_path(".backup.retentionDays"),
    validation = Rule::new("self.backend == 'aws' || ((!has(self.highAvailability) || !self.highAvailability) && !has(self.maxStorage) && !has(self.maintenanceWindow) && (!has(self.backup) || !has(self.backup.window)))").message(msg::DATABASE_AWS_ONLY).field_path(".backend"),
)]
pub struct DatabaseSpec {
    /// DNS-1123 label, unique in the platform; also the database name.
    #[schemars(length(min = 1, max = 24), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// Where it runs.
    #[serde(default)]
    pub backend: Backend,
    /// PostgreSQL major version.
    #[serde(default = "default_postgres_version")]
    pub version: PostgresVersion,
    /// Volume size (cluster) or allocated storage (aws).
    #[serde(default = "default_database_storage")]
    // maxLength bounds the cost the API server estimates for the CEL rules comparing it.
    #[schemars(regex(pattern = STORAGE_SIZE), length(max = 8))]
    pub storage: String,
    /// StorageClass of the volume (cluster backend); unset: the platform's
    /// `storageClassName`, else the cluster's default class. A volume's class cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = STORAGE_CLASS))]
    pub storage_class_name: Option<String>,
    /// RDS instance class (aws backend).
    #[serde(default = "default_instance_class")]
    #[schemars(length(max = 64), regex(pattern = "^db\\.[a-z0-9]+\\.[a-z0-9]+$"))]
    pub instance_class: String,
    /// Adopt an existing RDS DB instance of this name (aws backend): Panthera tags it as its own and
    /// manages it from then on. Without it, Panthera never touches a resource it did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = "^[a-zA-Z][a-zA-Z0-9-]*$"))]
    pub existing_identifier: Option<String>,
    /// What happens to the data on removal.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Container resources (cluster backend).
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Multi-AZ (aws backend): a synchronous standby in another availability zone that RDS fails
    /// over to on its own.
    #[serde(default, skip_serializing_if = "is_false")]
    pub high_availability: bool,
    /// Automated backups and point-in-time restore (aws backend).
    #[serde(default, skip_serializing_if = "BackupSpec::is_default")]
    pub backup: BackupSpec,
    /// Weekly maintenance window (aws backend), `ddd:hh24:mi-ddd:hh24:mi` in UTC, at least 30
    /// minutes, not overlapping `backup.window`. Unset: AWS picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = MAINTENANCE_WINDOW))]
    pub maintenance_window: Option<String>,
    /// Storage autoscaling (aws backend): RDS grows the storage up to this size, never beyond.
    /// Unset: no autoscaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = STORAGE_SIZE), length(max = 8))]
    pub max_storage: Option<String>,
    /// RDS refuses to delete the instance while this is on (aws backend). `destroy` and prune
    /// lift it only when the deletionPolicy deletes the instance.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub deletion_protection: bool,
}

/// `ddd:hh24:mi-ddd:hh24:mi`, as RDS and ElastiCache take a maintenance window.
const MAINTENANCE_WINDOW: &str = "^(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]-(mon|tue|wed|thu|fri|sat|sun):([01][0-9]|2[0-3]):[0-5][0-9]$";
/// `hh24:mi-hh24:mi`, as RDS and ElastiCache take a daily backup window.
const DAILY_WINDOW: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$";

// The skipped defaults keep a platform serialized as before when it does not use the new
// fields (hashes and golden files of the cluster backend stay the same).
fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

/// Automated backups of an RDS instance.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackupSpec {
    /// Days RDS keeps automated backups, the span of point-in-time restore. 0 turns backups off
    /// and needs `deletionPolicy: Delete`.
    #[serde(default = "default_backup_retention")]
    #[schemars(range(min = 0, max = 35))]
    pub retention_days: i32,
    /// Daily backup window, `hh24:mi-hh24:mi` in UTC, at least 30 minutes. Unset: AWS picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DAILY_WINDOW))]
    pub window: Option<String>,
}

impl Default for BackupSpec {
    fn default() -> Self {
        Self {
            retention_days: default_backup_retention(),
            window: None,
        }
    }
}

impl BackupSpec {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_backup_retention() -> i32 {
    7
}

/// Automatic snapshots of an ElastiCache replication group.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotSpec {
    /// Days ElastiCache keeps automatic snapshots; 0 turns them off.
    #[serde(default = "default_snapshot_retention")]
    #[schemars(range(min = 0, max = 35))]
    pub retention_days: i32,
    /// Daily snapshot window, `hh24:mi-hh24:mi` in UTC, at least 60 minutes. Unset: AWS picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DAILY_WINDOW))]
    pub window: Option<String>,
}

impl Default for SnapshotSpec {
    fn default() -> Self {
        Self {
            retention_days: default_snapshot_retention(),
            window: None,
        }
    }
}

impl SnapshotSpec {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn default_snapshot_retention() -> i32 {
    1
}

/// How Kafka clients authenticate to MSK. Both go over TLS only: MSK keeps no plaintext
/// listener open.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum KafkaClientAuthentication {
    /// SASL/SCRAM-SHA-512 over TLS (port 9096), the login in a Secrets Manager secret
    /// associated with the cluster.
    #[default]
    Scram,
    /// TLS (port 9094) without client authentication: any client the security groups admit.
    Unauthenticated,
}

/// Supported PostgreSQL major versions.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PostgresVersion {
    #[serde(rename = "15")]
    V15,
    #[serde(rename = "16")]
    V16,
    #[serde(rename = "17")]
    V17,
}

impl PostgresVersion {
    /// The major version as written in image tags.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V15 => "15",
            Self::V16 => "16",
            Self::V17 => "17",
        }
    }
}

fn default_postgres_version() -> PostgresVersion {
    PostgresVersion::V16
}

fn default_database_storage() -> String {
    "10Gi".to_string()
}

fn default_instance_class() -> String {
    "db.t4g.micro".to_string()
}

/// Redis.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("!has(self.existingIdentifier) || self.backend == 'aws'").message(msg::EXISTING_NEEDS_AWS).field_path(".existingIdentifier"),
    validation = Rule::new("self.backend == 'aws' || ((!has(self.replicas) || self.replicas == 0) && (!has(self.snapshot) || !has(self.snapshot.window)))").message(msg::REDIS_AWS_ONLY).field_path(".replicas"),
)]
pub struct RedisSpec {
    /// Where it runs.
    #[serde(default)]
    pub backend: Backend,
    /// Redis version (image tag / ElastiCache engine version).
    #[serde(default = "default_redis_version")]
    #[schemars(regex(pattern = "^[0-9]+\\.[0-9]+$"))]
    pub version: String,
    /// Volume size (cluster backend).
    #[serde(default = "default_redis_storage")]
    // maxLength bounds the cost the API server estimates for the CEL rules comparing it.
    #[schemars(regex(pattern = STORAGE_SIZE), length(max = 8))]
    pub storage: String,
    /// StorageClass of the volume (cluster backend); unset: the platform's
    /// `storageClassName`, else the cluster's default class. A volume's class cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = STORAGE_CLASS))]
    pub storage_class_name: Option<String>,
    /// ElastiCache node type (aws backend).
    #[serde(default = "default_redis_node_type")]
    #[schemars(length(max = 64), regex(pattern = "^cache\\.[a-z0-9]+\\.[a-z0-9]+$"))]
    pub node_type: String,
    /// Adopt an existing ElastiCache replication group of this name (aws backend): Panthera tags it as its own and
    /// manages it from then on. Without it, Panthera never touches a resource it did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 40), regex(pattern = "^[a-zA-Z][a-zA-Z0-9-]*$"))]
    pub existing_identifier: Option<String>,
    /// What happens to the data on removal.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Container resources (cluster backend).
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Read replicas next to the primary (aws backend), 0 to 5. With 1 or more, ElastiCache
    /// fails over to a replica on its own (automatic failover) and spreads them over
    /// availability zones (Multi-AZ).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0, max = 5))]
    pub replicas: i32,
    /// Automatic snapshots (aws backend).
    #[serde(default, skip_serializing_if = "SnapshotSpec::is_default")]
    pub snapshot: SnapshotSpec,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn default_redis_version() -> String {
    "7.2".to_string()
}

fn default_redis_storage() -> String {
    "1Gi".to_string()
}

fn default_redis_node_type() -> String {
    "cache.t4g.micro".to_string()
}

/// Kafka (KRaft).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.topics.all(t, self.topics[t].replicationFactor <= self.brokers)").message(msg::REPLICATION_LE_BROKERS).field_path(".topics"),
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("!has(self.existingIdentifier) || self.backend == 'aws'").message(msg::EXISTING_NEEDS_AWS).field_path(".existingIdentifier"),
    validation = Rule::new("self.backend == 'aws' || (!has(self.clientAuthentication) && !has(self.scramKmsKey))").message(msg::KAFKA_AWS_ONLY).field_path(".clientAuthentication"),
    validation = Rule::new("self.backend != 'aws' || (has(self.clientAuthentication) && self.clientAuthentication == 'unauthenticated') || has(self.scramKmsKey)").message(msg::SCRAM_NEEDS_KMS_KEY).field_path(".scramKmsKey"),
)]
pub struct KafkaSpec {
    /// Where it runs.
    #[serde(default)]
    pub backend: Backend,
    /// Number of brokers (combined broker+controller nodes in the cluster backend).
    #[serde(default = "default_kafka_brokers")]
    #[schemars(range(min = 1, max = 15))]
    pub brokers: i32,
    /// Kafka version.
    #[serde(default = "default_kafka_version")]
    #[schemars(regex(pattern = "^[0-9]+\\.[0-9]+\\.[0-9]+$"))]
    pub version: String,
    /// Volume size per broker.
    #[serde(default = "default_kafka_storage")]
    // maxLength bounds the cost the API server estimates for the CEL rules comparing it.
    #[schemars(regex(pattern = STORAGE_SIZE), length(max = 8))]
    pub storage: String,
    /// StorageClass of the volume (cluster backend); unset: the platform's
    /// `storageClassName`, else the cluster's default class. A volume's class cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = STORAGE_CLASS))]
    pub storage_class_name: Option<String>,
    /// MSK broker instance type (aws backend).
    #[serde(default = "default_kafka_instance_type")]
    #[schemars(length(max = 64), regex(pattern = "^kafka\\.[a-z0-9]+\\.[a-z0-9]+$"))]
    pub instance_type: String,
    /// Adopt an existing MSK cluster of this name (aws backend): Panthera tags it as its own and
    /// manages it from then on. Without it, Panthera never touches a resource it did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = "^[a-zA-Z0-9][a-zA-Z0-9-]*$")
    )]
    pub existing_identifier: Option<String>,
    /// What happens to the data on removal.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Topics created and kept in shape, by name. A map rather than a list so that "a service's
    /// topic must exist" is a key lookup: the API server refuses CEL rules whose estimated cost
    /// (services x topics x kafka topics) is too high.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 50))]
    #[x_kube(validation = Rule::new("self.all(k, size(k) <= 100 && k.matches('^[a-zA-Z0-9._-]+$'))").message(msg::TOPIC_NAME))]
    pub topics: BTreeMap<String, KafkaTopicSpec>,
    /// Container resources (cluster backend).
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// How clients authenticate to MSK (aws backend); `scram` when unset. MSK listens over TLS
    /// only either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_authentication: Option<KafkaClientAuthentication>,
    /// The customer managed KMS key (key id, ARN or `alias/...`) that encrypts the Secrets
    /// Manager secret holding the SCRAM login: MSK refuses secrets under the default key.
    /// Required with `scram` on the aws backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), regex(pattern = "^[a-zA-Z0-9:/_-]+$"))]
    pub scram_kms_key: Option<String>,
}

impl KafkaSpec {
    /// How clients authenticate to MSK, the default applied.
    pub fn client_authentication(&self) -> KafkaClientAuthentication {
        self.client_authentication.unwrap_or_default()
    }
}

fn default_kafka_brokers() -> i32 {
    3
}

fn default_kafka_version() -> String {
    "3.9.0".to_string()
}

fn default_kafka_storage() -> String {
    "20Gi".to_string()
}

fn default_kafka_instance_type() -> String {
    "kafka.t3.small".to_string()
}

/// A Kafka topic.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.partitions >= oldSelf.partitions").message(msg::PARTITIONS_NOT_DECREASED).field_path(".partitions"))]
pub struct KafkaTopicSpec {
    /// Partitions.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 1, max = 1000))]
    pub partitions: i32,
    /// Copies of each partition.
    #[serde(default = "default_replication")]
    #[schemars(range(min = 1, max = 15))]
    pub replication_factor: i32,
    /// Retention in hours; -1 keeps forever.
    #[serde(default = "default_retention")]
    #[schemars(range(min = -1, max = 87600))]
    pub retention_hours: i32,
}

fn default_partitions() -> i32 {
    3
}

fn default_replication() -> i32 {
    3
}

fn default_retention() -> i32 {
    168
}
