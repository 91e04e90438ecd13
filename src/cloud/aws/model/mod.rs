//! The pure half of the AWS backend: identifiers, ownership tags, desired settings from the spec,
//! the comparison of desired and observed state and its classification (create, modify in place,
//! modify with reboot, modify in the maintenance window, replace). No client: unit-tested here.
//!
//! [`ownership`]: the tags that make a resource a platform's, and the names derived from a store.
//! [`changes`]: the differences between spec and AWS, and the plan they make. [`status`]: what
//! AWS's status words mean. [`settings`]: what Panthera manages per service. [`edge`]: the
//! CloudFront distribution, web ACL and records of `spec.edge`.

mod changes;
mod edge;
mod ownership;
mod settings;
mod status;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::{
    Backend, ComponentKind, DeletionPolicy, KafkaClientAuthentication, PantheraPlatform,
};

pub use changes::{Action, Class, Difference, Planned, differences, plan};
pub use edge::{
    EDGE_CACHING, EDGE_TLS_POLICY, EdgePart, EdgeSettings, StaticAssets, WAF_ALLOW_RULE,
    WAF_DENY_RULE, WAF_MANAGED_GROUPS, WAF_RATE_RULE, WafSettings, edge_identifier, edge_part,
    learn_origin, records, waf_rules, waits_for_origin,
};
pub use ownership::{
    Owner, PANTHERA_TAGS, TAG_COMPONENT, TAG_DELETION_POLICY, TAG_DELETION_REQUESTED,
    TAG_EMPTY_ON_DELETE, TAG_FINAL_SNAPSHOT, TAG_MANAGED_BY, TAG_NAMESPACE, TAG_PLATFORM,
    TAG_RESTORED_FROM, TAG_SUPERSEDED_BY, Tags, final_snapshot_id, owner_of, panthera_tags_on,
    password_for, policy_of, secret_name, tags, tags_to_add,
};
pub use settings::*;
pub use status::{Phase, is_deleting, phase, progress};

/// RDS refuses less allocated storage than this (gp3).
pub const RDS_MIN_STORAGE_GIB: i32 = 20;
/// PostgreSQL's port on RDS.
pub const POSTGRES_PORT: u16 = 5432;
/// Redis's port on ElastiCache.
pub const REDIS_PORT: u16 = 6379;
/// An OpenSearch Service domain answers HTTPS on 443 only.
pub const OPENSEARCH_PORT: u16 = crate::api::AWS_HTTPS_PORT;
/// The TLS policy of an OpenSearch Service domain's endpoint: TLS 1.2 and 1.3, forward secrecy
/// only.
pub const OPENSEARCH_TLS_POLICY: &str = "Policy-Min-TLS-1-2-PFS-2023-10";

/// The AWS service a data store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Service {
    Rds,
    ElastiCache,
    Msk,
    OpenSearch,
    S3,
    /// The edge: a CloudFront distribution with its WAF web ACL and Route 53 records.
    CloudFront,
}

impl Service {
    /// Every service, in the order teardown goes through them: the edge first, which may
    /// read from a bucket.
    pub const ALL: [Self; 6] = [
        Self::CloudFront,
        Self::Rds,
        Self::ElastiCache,
        Self::Msk,
        Self::OpenSearch,
        Self::S3,
    ];

    /// The longest identifier the service takes (RDS 63, ElastiCache 40, MSK 64, OpenSearch
    /// Service 28 characters).
    pub const fn max_identifier(self) -> usize {
        match self {
            Self::Rds => 63,
            Self::ElastiCache => 40,
            Self::Msk => 64,
            Self::OpenSearch => 28,
            Self::S3 => 63,
            // Leaves room for the IP sets' `-allow` and `-deny` in an OAC name's 64.
            Self::CloudFront => 50,
        }
    }

    /// Whether the service takes a final snapshot of what it deletes. MSK keeps none, and an
    /// OpenSearch Service domain's automated snapshots go with it: keeping their data means
    /// keeping the resource.
    pub const fn final_snapshots(self) -> bool {
        matches!(self, Self::Rds | Self::ElastiCache)
    }

    /// Whether the resource holds the platform's data: what keeping data keeps. The edge holds
    /// none, and goes whenever the platform or its `spec.edge` does.
    pub const fn holds_data(self) -> bool {
        !matches!(self, Self::CloudFront)
    }

    /// What the resource is called in output.
    pub fn resource(self) -> &'static str {
        match self {
            Self::Rds => "RDS instance",
            Self::ElastiCache => "ElastiCache replication group",
            Self::Msk => "MSK cluster",
            Self::OpenSearch => "OpenSearch Service domain",
            Self::S3 => "S3 bucket",
            Self::CloudFront => "CloudFront distribution",
        }
    }

    pub fn kind(self) -> ComponentKind {
        match self {
            Self::Rds => ComponentKind::Postgres,
            Self::ElastiCache => ComponentKind::Redis,
            Self::Msk => ComponentKind::Kafka,
            Self::OpenSearch => ComponentKind::Search,
            Self::S3 => ComponentKind::Bucket,
            Self::CloudFront => ComponentKind::Edge,
        }
    }
}

/// One data store with `backend: aws`, as the spec wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    /// How status and errors name it: `postgres/users`, `redis`, `kafka`.
    pub component: String,
    /// Component name in the rendered plan: the database name, `redis` or `kafka`.
    pub name: String,
    pub service: Service,
    /// DB instance identifier, replication group id or MSK cluster name.
    pub identifier: String,
    /// The spec names an existing resource (`existingIdentifier`) that Panthera may take over.
    pub adopt: bool,
    pub deletion_policy: DeletionPolicy,
    pub settings: Settings,
    /// Master user name (PostgreSQL): the database name with `-` as `_`, like the cluster
    /// backend; the SCRAM user of MSK; the master user of an OpenSearch Service domain.
    pub username: String,
    /// The KMS key of MSK's SCRAM secret.
    pub kms_key: Option<String>,
    /// A bucket's objects are deleted with it (`emptyOnDelete`), recorded in a tag so destroy
    /// needs no spec.
    pub empty_on_delete: bool,
}

impl Store {
    /// Whether the store has a generated password (kept in Secrets Manager): the master
    /// password, the AUTH token, MSK's SCRAM login.
    pub fn has_password(&self) -> bool {
        match &self.settings {
            Settings::Kafka(KafkaSettings { access, .. }) => *access == MskAccess::Scram,
            // The services reach a bucket with their own AWS identity (IRSA), not a password.
            // Nor does the edge have one.
            Settings::Bucket(_) | Settings::Edge(_) => false,
            _ => true,
        }
    }
}

/// Subnets and security groups of the platform's stores.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    pub region: Option<String>,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
}

impl Network {
    /// The subnet group a store named `name` is created in: its own, when there are subnets.
    pub fn subnet_group(&self, name: &str) -> Option<String> {
        (!self.subnet_ids.is_empty()).then(|| name.to_string())
    }

    /// The subnets a store runs in: all of them, but for an OpenSearch Service domain, which
    /// takes one per availability zone (the first ones).
    pub fn subnets_of(&self, store: &Store) -> Vec<String> {
        let take = match &store.settings {
            Settings::Search(search) => usize::try_from(search.zones.max(1)).unwrap_or(1),
            _ => self.subnet_ids.len(),
        };
        self.subnet_ids.iter().take(take).cloned().collect()
    }

    /// The security groups a store is created with, when the spec names any (else the VPC's
    /// default).
    pub fn security_groups(&self) -> Option<Vec<String>> {
        (!self.security_group_ids.is_empty()).then(|| self.security_group_ids.clone())
    }
}

/// `spec.aws`, or nothing.
pub fn network(platform: &PantheraPlatform) -> Network {
    platform
        .spec
        .aws
        .as_ref()
        .map(|a| Network {
            region: a.region.clone(),
            subnet_ids: a.subnet_ids.clone(),
            security_group_ids: a.security_group_ids.clone(),
        })
        .unwrap_or_default()
}

/// Every data store of `platform` with `backend: aws`, in apply order.
pub fn stores(platform: &PantheraPlatform) -> Vec<Store> {
    let owner = Owner::of(platform);
    let spec = &platform.spec;
    // A store of the service its settings are for, on the resource it adopts or on one named
    // after the platform and the store.
    let store = |name: &str, existing: &Option<String>, deletion_policy, settings: Settings| {
        let service = settings.service();
        let (identifier, adopt) = match existing {
            Some(id) => (id.clone(), true),
            None => {
                let own = format!("{}-{name}", owner.platform);
                (identifier(&own, service.max_identifier()), false)
            }
        };
        Store {
            component: match service {
                Service::Rds => format!("postgres/{name}"),
                _ => name.to_string(),
            },
            name: name.to_string(),
            service,
            identifier,
            adopt,
            deletion_policy,
            settings,
            username: String::new(),
            kms_key: None,
            empty_on_delete: false,
        }
    };
    let mut out = Vec::new();
    for db in spec.databases.iter().filter(|d| d.backend == Backend::Aws) {
        let settings = Settings::Postgres(PostgresSettings {
            instance_class: db.instance_class.clone(),
            version: db.version.as_str().to_string(),
            storage_gib: storage_gib(&db.storage).max(RDS_MIN_STORAGE_GIB),
            rds: RdsOptions {
                multi_az: db.high_availability,
                backup_retention_days: db.backup.retention_days,
                backup_window: db.backup.window.clone(),
                maintenance_window: db.maintenance_window.clone(),
                max_storage_gib: db.max_storage.as_deref().map(storage_gib),
                deletion_protection: db.deletion_protection,
            },
        });
        out.push(Store {
            // The master user: the database name with `-` as `_`.
            username: db.name.replace('-', "_"),
            ..store(
                &db.name,
                &db.existing_identifier,
                db.deletion_policy,
                settings,
            )
        });
    }
    if let Some(redis) = spec.redis.as_ref().filter(|r| r.backend == Backend::Aws) {
        let settings = Settings::Redis(RedisSettings {
            node_type: redis.node_type.clone(),
            version: redis.version.clone(),
            copies: RedisCopies {
                replicas: redis.replicas,
                failover: redis.replicas > 0,
                snapshot_retention_days: redis.snapshot.retention_days,
                snapshot_window: redis.snapshot.window.clone(),
            },
        });
        let existing = &redis.existing_identifier;
        out.push(store("redis", existing, redis.deletion_policy, settings));
    }
    if let Some(kafka) = spec.kafka.as_ref().filter(|k| k.backend == Backend::Aws) {
        let settings = Settings::Kafka(KafkaSettings {
            instance_type: kafka.instance_type.clone(),
            version: kafka.version.clone(),
            brokers: kafka.brokers,
            storage_gib: storage_gib(&kafka.storage),
            access: match kafka.client_authentication() {
                KafkaClientAuthentication::Scram => MskAccess::Scram,
                KafkaClientAuthentication::Unauthenticated => MskAccess::Tls,
            },
        });
        out.push(Store {
            username: crate::api::MSK_SCRAM_USERNAME.to_string(),
            kms_key: kafka.scram_kms_key.clone(),
            ..store(
                "kafka",
                &kafka.existing_identifier,
                kafka.deletion_policy,
                settings,
            )
        });
    }
    if let Some(search) = spec.search.as_ref().filter(|s| s.backend == Backend::Aws) {
        let settings = Settings::Search(SearchSettings {
            version: search.minor_version().to_string(),
            instance_type: search.instance_type.clone(),
            instance_count: search.instance_count,
            zones: search.availability_zones,
            masters: search.dedicated_masters.as_ref().map(|m| DedicatedMasters {
                instance_type: m.instance_type.clone(),
                count: m.count,
            }),
            storage_gib: storage_gib(&search.storage),
            security: DomainSecurity::default(),
        });
        out.push(Store {
            username: crate::api::OPENSEARCH_MASTER_USERNAME.to_string(),
            ..store(
                "search",
                &search.existing_identifier,
                search.deletion_policy,
                settings,
            )
        });
    }
    let cors_default = spec
        .gateway
        .as_ref()
        .and_then(|g| g.cors.as_ref())
        .map(|c| c.allowed_origins.clone())
        .unwrap_or_default();
    for bucket in spec.buckets.iter().filter(|b| b.backend == Backend::Aws) {
        let settings = Settings::Bucket(BucketSettings {
            versioning: bucket.versioning,
            encrypted: true,
            kms_key: bucket.kms_key_id.clone(),
            public_access_blocked: true,
            tls_only: true,
            lifecycle: BucketLifecycle {
                noncurrent_days: bucket.lifecycle.noncurrent_version_expiration_days,
                abort_uploads_days: bucket.lifecycle.abort_incomplete_uploads_days,
                transitions: bucket
                    .lifecycle
                    .transitions
                    .iter()
                    .map(|t| (t.days, t.storage_class.clone()))
                    .collect(),
            },
            cors_origins: bucket
                .cors_origins
                .clone()
                .unwrap_or_else(|| cors_default.clone()),
        });
        let identifier = bucket.bucket_name(&owner.platform, &owner.namespace);
        let adopt = bucket.existing_identifier.is_some();
        out.push(Store {
            component: format!("bucket/{}", bucket.name),
            name: bucket.name.clone(),
            service: Service::S3,
            identifier,
            adopt,
            deletion_policy: bucket.deletion_policy,
            settings,
            username: String::new(),
            kms_key: None,
            empty_on_delete: bucket.empty_on_delete,
        });
    }
    out.extend(edge::edge(platform, &owner));
    out
}

pub use crate::api::aws_identifier as identifier;

/// A storage size of the spec (`20Gi`, `1Ti`, `512Mi`) in whole GiB, rounded up.
pub fn storage_gib(size: &str) -> i32 {
    let digits: String = size.chars().take_while(char::is_ascii_digit).collect();
    let n: i64 = digits.parse().unwrap_or(0);
    let gib = match &size[digits.len()..] {
        "Ti" => n * 1024,
        "Mi" => (n + 1023) / 1024,
        _ => n,
    };
    i32::try_from(gib.max(1)).unwrap_or(i32::MAX)
}
/// What AWS has for a store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub arn: String,
    /// AWS's own status word (`available`, `creating`, `CREATING`, ...).
    pub status: String,
    /// `host:port`, or the bootstrap broker list for MSK, once AWS publishes it.
    pub endpoint: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// As it runs, with pending modifications counted as done (they will be).
    pub settings: Option<Settings>,
    /// Empty when AWS did not say.
    pub subnet_ids: Vec<String>,
    /// Empty when AWS did not say.
    pub security_group_ids: Vec<String>,
    /// Modifications AWS has accepted but not applied yet.
    pub pending: Vec<String>,
    /// Clients must use TLS (ElastiCache in-transit encryption).
    pub tls: bool,
    /// Password authentication is on (ElastiCache AUTH token).
    pub auth: bool,
    /// MSK cluster version, needed by every MSK update.
    pub current_version: Option<String>,
    /// DB subnet group (RDS).
    pub subnet_group: Option<String>,
}

impl Observed {
    /// AWS refuses to delete the resource until this is lifted (RDS deletion protection).
    pub fn deletion_protection(&self) -> bool {
        matches!(&self.settings, Some(Settings::Postgres(PostgresSettings { rds, .. })) if rds.deletion_protection)
    }
}
