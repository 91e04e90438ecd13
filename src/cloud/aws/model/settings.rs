//! The settings Panthera manages per service, as the spec wants them or as AWS runs them, and
//! how a plan prints them.

use std::fmt;

use super::{EdgeSettings, OPENSEARCH_TLS_POLICY, Service};

/// The settings Panthera manages, as the spec wants them or as AWS runs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settings {
    Postgres(PostgresSettings),
    Redis(RedisSettings),
    Kafka(KafkaSettings),
    Search(SearchSettings),
    Bucket(BucketSettings),
    Edge(Box<EdgeSettings>),
}

/// An RDS instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostgresSettings {
    pub instance_class: String,
    pub version: String,
    pub storage_gib: i32,
    pub rds: RdsOptions,
}

/// An ElastiCache replication group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisSettings {
    pub node_type: String,
    pub version: String,
    pub copies: RedisCopies,
}

/// An MSK cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaSettings {
    pub instance_type: String,
    pub version: String,
    pub brokers: i32,
    pub storage_gib: i32,
    pub access: MskAccess,
}

/// An OpenSearch Service domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchSettings {
    /// `major.minor` (the domain runs `OpenSearch_<version>`).
    pub version: String,
    pub instance_type: String,
    /// Data nodes.
    pub instance_count: i32,
    /// Availability zones the data nodes are spread over; 1: zone awareness off.
    pub zones: i32,
    pub masters: Option<DedicatedMasters>,
    /// EBS volume of each data node.
    pub storage_gib: i32,
    pub security: DomainSecurity,
}

/// An S3 bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketSettings {
    pub versioning: bool,
    /// Default encryption is set.
    pub encrypted: bool,
    /// SSE-KMS with this key; `None`: SSE-S3.
    pub kms_key: Option<String>,
    /// Block Public Access, all four switches.
    pub public_access_blocked: bool,
    /// The bucket policy denies every request not made over TLS.
    pub tls_only: bool,
    pub lifecycle: BucketLifecycle,
    /// CORS: origins browsers may upload from (`GET`, `PUT`, `POST`, `HEAD`).
    pub cors_origins: Vec<String>,
}

/// The lifecycle rules Panthera writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketLifecycle {
    /// 0: no rule.
    pub noncurrent_days: i32,
    /// 0: no rule.
    pub abort_uploads_days: i32,
    /// `(days, storage class)`.
    pub transitions: Vec<(i32, String)>,
}

impl BucketSettings {
    /// `SSE-S3`, `SSE-KMS <key>` or `none`.
    pub fn encryption(&self) -> String {
        match (&self.kms_key, self.encrypted) {
            (_, false) => "none".to_string(),
            (Some(key), true) => format!("SSE-KMS {key}"),
            (None, true) => "SSE-S3".to_string(),
        }
    }
}

impl fmt::Display for BucketLifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.noncurrent_days > 0 {
            parts.push(format!("old versions {} days", self.noncurrent_days));
        }
        if self.abort_uploads_days > 0 {
            parts.push(format!(
                "unfinished uploads {} days",
                self.abort_uploads_days
            ));
        }
        for (days, class) in &self.transitions {
            parts.push(format!("{class} after {days} days"));
        }
        if parts.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&parts.join(", "))
    }
}

/// Dedicated master nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DedicatedMasters {
    pub instance_type: String,
    pub count: i32,
}

impl fmt::Display for DedicatedMasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} x {}", self.count, self.instance_type)
    }
}

/// How a domain is protected: what Panthera always asks for, or what an adopted domain has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainSecurity {
    pub encryption_at_rest: bool,
    pub node_to_node_encryption: bool,
    /// HTTPS only (`EnforceHTTPS`).
    pub https_only: bool,
    pub tls_policy: String,
    /// Fine-grained access control with the internal user database (the master user's login).
    pub fine_grained: bool,
    /// The access policy is the one Panthera writes: HTTP calls from any principal in the VPC
    /// reach the domain, where fine-grained access control checks the login.
    pub open_to_login: bool,
}

impl Default for DomainSecurity {
    fn default() -> Self {
        Self {
            encryption_at_rest: true,
            node_to_node_encryption: true,
            https_only: true,
            tls_policy: OPENSEARCH_TLS_POLICY.to_string(),
            fine_grained: true,
            open_to_login: true,
        }
    }
}

/// An RDS instance's availability, backups and protection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdsOptions {
    pub multi_az: bool,
    pub backup_retention_days: i32,
    /// `None` in the spec: whatever AWS chose is fine.
    pub backup_window: Option<String>,
    pub maintenance_window: Option<String>,
    /// Storage autoscaling ceiling; `None`: no autoscaling.
    pub max_storage_gib: Option<i32>,
    pub deletion_protection: bool,
}

/// An ElastiCache group's replicas and snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisCopies {
    pub replicas: i32,
    /// Automatic failover and Multi-AZ, which AWS allows only with a replica.
    pub failover: bool,
    pub snapshot_retention_days: i32,
    /// `None` in the spec: whatever AWS chose is fine.
    pub snapshot_window: Option<String>,
}

/// How clients reach an MSK cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MskAccess {
    /// A plaintext listener next to TLS (how Panthera created clusters before TLS only).
    TlsPlaintext,
    /// TLS only, without client authentication.
    Tls,
    /// TLS only, SASL/SCRAM.
    #[default]
    Scram,
}

impl fmt::Display for MskAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TlsPlaintext => "tls+plaintext",
            Self::Tls => "tls",
            Self::Scram => "scram",
        })
    }
}

impl Settings {
    /// The service that runs a store of these settings.
    pub fn service(&self) -> Service {
        match self {
            Self::Postgres(_) => Service::Rds,
            Self::Redis(_) => Service::ElastiCache,
            Self::Kafka(_) => Service::Msk,
            Self::Search(_) => Service::OpenSearch,
            Self::Bucket(_) => Service::S3,
            Self::Edge(_) => Service::CloudFront,
        }
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres(pg) => write!(
                f,
                "{}, PostgreSQL {}, {} GiB{}, backups {} days{}",
                pg.instance_class,
                pg.version,
                pg.storage_gib,
                if pg.rds.multi_az { ", Multi-AZ" } else { "" },
                pg.rds.backup_retention_days,
                if pg.rds.deletion_protection {
                    ", deletion protection"
                } else {
                    ""
                }
            ),
            Self::Redis(redis) => write!(
                f,
                "{}, Redis {}, {} replica(s){}, snapshots {} days",
                redis.node_type,
                redis.version,
                redis.copies.replicas,
                if redis.copies.failover {
                    ", automatic failover, Multi-AZ"
                } else {
                    ""
                },
                redis.copies.snapshot_retention_days
            ),
            Self::Kafka(kafka) => write!(
                f,
                "{} x {}, Kafka {}, {} GiB per broker, {}",
                kafka.brokers, kafka.instance_type, kafka.version, kafka.storage_gib, kafka.access
            ),
            Self::Search(search) => {
                write!(
                    f,
                    "{} x {}, OpenSearch {}, {} GiB per node",
                    search.instance_count, search.instance_type, search.version, search.storage_gib
                )?;
                if search.zones > 1 {
                    write!(f, ", {} zones", search.zones)?;
                }
                if let Some(masters) = &search.masters {
                    write!(f, ", dedicated masters {masters}")?;
                }
                f.write_str(", encrypted, HTTPS only, fine-grained access control")
            }
            Self::Edge(edge) => write!(f, "{edge}"),
            Self::Bucket(bucket) => write!(
                f,
                "{}, versioning {}, lifecycle: {}, public access blocked, TLS only",
                bucket.encryption(),
                if bucket.versioning { "on" } else { "off" },
                bucket.lifecycle
            ),
        }
    }
}
