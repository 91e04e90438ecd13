//! Object storage: S3 buckets for the services that store files (the catalog's product images),
//! on AWS for now.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rules::msg;
use super::{Backend, DNS_LABEL, DeletionPolicy, aws_identifier};

/// A bucket, for the services that name it in `buckets`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.backend == oldSelf.backend").message(msg::BACKEND_IMMUTABLE).field_path(".backend"),
    validation = Rule::new("self.backend == 'aws'").message(msg::BUCKET_AWS_ONLY).field_path(".backend"),
    validation = Rule::new("!has(self.emptyOnDelete) || !self.emptyOnDelete || (has(self.deletionPolicy) && self.deletionPolicy == 'Delete')").message(msg::EMPTY_ON_DELETE_NEEDS_DELETE).field_path(".emptyOnDelete"),
)]
pub struct BucketSpec {
    /// DNS-1123 label, unique among the buckets; services name it in `buckets`.
    #[schemars(length(min = 1, max = 30), regex(pattern = DNS_LABEL))]
    pub name: String,
    /// Where it runs. Only `aws` for now (an S3 bucket); the in-cluster S3 server is not
    /// rendered yet.
    #[serde(default)]
    pub backend: Backend,
    /// Adopt an existing bucket of this name: Panthera tags it as its own and manages it from
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
    /// Keep every version of an object (a replaced or deleted object can be brought back).
    #[serde(default = "yes")]
    pub versioning: bool,
    /// Encrypt with this KMS key (SSE-KMS: id, ARN or alias ARN); unset: S3-managed keys
    /// (SSE-S3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub kms_key_id: Option<String>,
    /// Lifecycle rules.
    #[serde(default)]
    pub lifecycle: BucketLifecycleSpec,
    /// Origins browsers may upload from (CORS, `https://app.example.com`); unset: the gateway's
    /// CORS origins, or none.
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

impl BucketSpec {
    /// The bucket's name in S3: `existingIdentifier`, else `{platform}-{namespace}-{name}`
    /// (bucket names are global: the namespace keeps two platforms of one name apart).
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
