//! Object storage: buckets for the services that store files (the catalog's product images), on
//! S3 or on one S3-compatible server in the cluster (versitygw) shared by the platform's cluster
//! buckets.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::msg;
use super::{
    Backend, DNS_LABEL, DeletionPolicy, ResourcesSpec, STORAGE_CLASS, STORAGE_SIZE, aws_identifier,
};

/// A bucket, for the services that name it in `buckets`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("!has(self.existingIdentifier) || self.backend == 'aws'").message(msg::EXISTING_NEEDS_AWS).field_path(".existingIdentifier"),
    validation = Rule::new("self.backend == 'aws' || (!has(self.kmsKeyId) && (!has(self.lifecycle) || !has(self.lifecycle.transitions) || size(self.lifecycle.transitions) == 0))").message(msg::BUCKET_AWS_SETTINGS).field_path(".kmsKeyId"),
    validation = Rule::new("!has(self.emptyOnDelete) || !self.emptyOnDelete || (has(self.deletionPolicy) && self.deletionPolicy == 'Delete')").message(msg::EMPTY_ON_DELETE_NEEDS_DELETE).field_path(".emptyOnDelete"),
)]
pub struct BucketSpec {
    /// DNS-1123 label, unique among the buckets; services name it in `buckets`.
    #[schemars(length(min = 1, max = 30), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// Where it runs: `cluster`, a bucket of the platform's S3-compatible server in the cluster
    /// (versitygw, `{platform}-objects`, see `spec.objectStore`), with an access key of its own
    /// that reaches this bucket only; or `aws`, an S3 bucket.
    #[serde(default)]
    pub backend: Backend,
    /// aws backend: adopt an existing bucket of this name: Panthera tags it as its own and manages it from
    /// then on. Without it the bucket is `{platform}-{namespace}-{name}` (bucket names are
    /// global across AWS accounts: a name another account holds is refused by S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = "^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    )]
    pub existing_identifier: Option<String>,
    /// What happens to the objects on removal. S3 keeps no snapshot: `Snapshot` keeps the
    /// bucket like `Retain`; `Delete` refuses a bucket that still holds objects unless
    /// `emptyOnDelete` is set.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// With `deletionPolicy: Delete`: delete every object and version first, then the bucket.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_on_delete: bool,
    /// Keep every version of an object (a replaced or deleted object can be brought back). aws
    /// backend; the cluster server keeps the current version only.
    #[serde(default = "yes")]
    pub versioning: bool,
    /// Encrypt with this KMS key (SSE-KMS: id, ARN or alias ARN); unset: S3-managed keys
    /// (SSE-S3). aws backend only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key_id: Option<String>,
    /// Lifecycle rules (aws backend; the cluster server has none, and refuses `transitions`).
    #[serde(default)]
    pub lifecycle: BucketLifecycleSpec,
    /// Origins browsers may upload from (CORS, `https://app.example.com`); unset: the gateway's
    /// CORS origins, or none. aws backend: the cluster server is reachable from inside the
    /// cluster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub cors_origins: Option<Vec<String>>,
}

/// What S3 removes on its own.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketLifecycleSpec {
    /// Days a replaced or deleted object's old version is kept; 0: kept for ever.
    #[serde(default = "thirty")]
    #[schemars(range(min = 0, max = 3650))]
    pub noncurrent_version_expiration_days: i32,
    /// Days an unfinished multipart upload is kept before S3 aborts it; 0: kept.
    #[serde(default = "seven")]
    #[schemars(range(min = 0, max = 365))]
    pub abort_incomplete_uploads_days: i32,
    /// Moves of current objects to cheaper storage classes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub transitions: Vec<BucketTransitionSpec>,
}

impl Default for BucketLifecycleSpec {
    fn default() -> Self {
        Self {
            noncurrent_version_expiration_days: thirty(),
            abort_incomplete_uploads_days: seven(),
            transitions: Vec::new(),
        }
    }
}

/// A move of objects to another storage class after some days.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketTransitionSpec {
    #[schemars(range(min = 0, max = 3650))]
    pub days: i32,
    /// `STANDARD_IA`, `ONEZONE_IA`, `INTELLIGENT_TIERING`, `GLACIER_IR`, `GLACIER` or
    /// `DEEP_ARCHIVE`.
    #[schemars(regex(
        pattern = "^(STANDARD_IA|ONEZONE_IA|INTELLIGENT_TIERING|GLACIER_IR|GLACIER|DEEP_ARCHIVE)$"
    ))]
    pub storage_class: String,
}

/// The server of the `backend: cluster` buckets: one versitygw StatefulSet per platform.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectStoreSpec {
    /// Volume size of the objects of every cluster bucket; unset: 10Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = STORAGE_SIZE), length(max = 8))]
    pub storage: Option<String>,
    /// StorageClass of the volume; unset: the platform's `storageClassName`, else the cluster's
    /// default class. A volume's class cannot change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = STORAGE_CLASS))]
    pub storage_class_name: Option<String>,
    /// Container resources of the server.
    #[serde(default)]
    pub resources: ResourcesSpec,
}

impl ObjectStoreSpec {
    pub const DEFAULT_STORAGE: &str = "10Gi";

    pub fn storage(&self) -> &str {
        self.storage.as_deref().unwrap_or(Self::DEFAULT_STORAGE)
    }
}

impl BucketSpec {
    /// The bucket's name in S3: `existingIdentifier`, else `{platform}-{namespace}-{name}`
    /// (bucket names are global: the namespace keeps two platforms of one name apart). The
    /// cluster server uses the same name, so a bucket reads alike on both backends.
    pub fn bucket_name(&self, platform: &str, namespace: &str) -> String {
        match &self.existing_identifier {
            Some(id) => id.clone(),
            None => aws_identifier(&format!("{platform}-{namespace}-{}", self.name), 63),
        }
    }
}

fn yes() -> bool {
    true
}

fn thirty() -> i32 {
    30
}

fn seven() -> i32 {
    7
}
