//! The pure half of the AWS backend: identifiers, ownership tags, desired settings from the spec,
//! the comparison of desired and observed state and its classification (create, modify in place,
//! modify with reboot, modify in the maintenance window, replace). No client: unit-tested here.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::api::{Backend, ComponentKind, DeletionPolicy, PantheraPlatform};

/// Name of the platform that owns a resource.
pub const TAG_PLATFORM: &str = "panthera.dev/platform";
/// Namespace of the platform that owns a resource.
pub const TAG_NAMESPACE: &str = "panthera.dev/namespace";
/// Component of the platform (`postgres/users`, `redis`, `kafka`).
pub const TAG_COMPONENT: &str = "panthera.dev/component";
/// Deletion policy, so that destroy needs no spec.
pub const TAG_DELETION_POLICY: &str = crate::api::DELETION_POLICY;
/// `panthera`, like the Kubernetes children.
pub const TAG_MANAGED_BY: &str = crate::api::LABEL_MANAGED_BY;
/// RFC 3339 time destroy asked AWS to delete the resource (for "waiting for 2m10s").
pub const TAG_DELETION_REQUESTED: &str = "panthera.dev/deletion-requested";
/// Final snapshot destroy asked for.
pub const TAG_FINAL_SNAPSHOT: &str = "panthera.dev/final-snapshot";
/// Every tag Panthera sets; Retain removes them all, so the resource is no longer Panthera's.
pub const PANTHERA_TAGS: &[&str] = &[
    TAG_PLATFORM,
    TAG_NAMESPACE,
    TAG_COMPONENT,
    TAG_DELETION_POLICY,
    TAG_MANAGED_BY,
    TAG_DELETION_REQUESTED,
    TAG_FINAL_SNAPSHOT,
];
/// RDS refuses less allocated storage than this (gp3).
pub const RDS_MIN_STORAGE_GIB: i32 = 20;
/// PostgreSQL's port on RDS.
pub const POSTGRES_PORT: u16 = 5432;
/// Redis's port on ElastiCache.
pub const REDIS_PORT: u16 = 6379;

/// The platform a resource belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub platform: String,
    pub namespace: String,
}

impl Owner {
    pub fn new(platform: &str, namespace: &str) -> Self {
        Self {
            platform: platform.to_string(),
            namespace: namespace.to_string(),
        }
    }

    pub fn of(platform: &PantheraPlatform) -> Self {
        let (name, namespace) = platform.ids();
        Self::new(&name, &namespace)
    }

    /// Whether `tags` say the resource is this platform's.
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(TAG_PLATFORM) == Some(&self.platform)
            && tags.get(TAG_NAMESPACE) == Some(&self.namespace)
    }
}

/// Who owns a resource according to its tags, for error messages.
pub fn owner_of(tags: &BTreeMap<String, String>) -> Option<String> {
    let platform = tags.get(TAG_PLATFORM)?;
    Some(match tags.get(TAG_NAMESPACE) {
        Some(ns) => format!("platform {platform} in namespace {ns}"),
        None => format!("platform {platform}"),
    })
}

/// The AWS service a data store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Service {
    Rds,
    ElastiCache,
    Msk,
}

impl Service {
    /// What the resource is called in output.
    pub fn resource(self) -> &'static str {
        match self {
            Self::Rds => "RDS instance",
            Self::ElastiCache => "ElastiCache replication group",
            Self::Msk => "MSK cluster",
        }
    }

    pub fn kind(self) -> ComponentKind {
        match self {
            Self::Rds => ComponentKind::Postgres,
            Self::ElastiCache => ComponentKind::Redis,
            Self::Msk => ComponentKind::Kafka,
        }
    }
}

/// The settings Panthera manages, as the spec wants them or as AWS runs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settings {
    Postgres {
        instance_class: String,
        version: String,
        storage_gib: i32,
    },
    Redis {
        node_type: String,
        version: String,
    },
    Kafka {
        instance_type: String,
        version: String,
        brokers: i32,
        storage_gib: i32,
    },
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres {
                instance_class,
                version,
                storage_gib,
            } => write!(
                f,
                "{instance_class}, PostgreSQL {version}, {storage_gib} GiB"
            ),
            Self::Redis { node_type, version } => write!(f, "{node_type}, Redis {version}"),
            Self::Kafka {
                instance_type,
                version,
                brokers,
                storage_gib,
            } => write!(
                f,
                "{brokers} x {instance_type}, Kafka {version}, {storage_gib} GiB per broker"
            ),
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
    /// Master user name (PostgreSQL): the database name with `-` as `_`, like the cluster backend.
    pub username: String,
}

impl Store {
    /// Whether the store has a generated password (kept in Secrets Manager).
    pub fn has_password(&self) -> bool {
        !matches!(self.service, Service::Msk)
    }
}

/// Subnets and security groups of the platform's stores.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Network {
    pub region: Option<String>,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
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
    let mut out = Vec::new();
    for db in spec.databases.iter().filter(|d| d.backend == Backend::Aws) {
        out.push(Store {
            component: format!("postgres/{}", db.name),
            name: db.name.clone(),
            service: Service::Rds,
            identifier: db
                .existing_identifier
                .clone()
                .unwrap_or_else(|| identifier(&format!("{}-{}", owner.platform, db.name), 63)),
            adopt: db.existing_identifier.is_some(),
            deletion_policy: db.deletion_policy,
            settings: Settings::Postgres {
                instance_class: db.instance_class.clone(),
                version: db.version.as_str().to_string(),
                storage_gib: storage_gib(&db.storage).max(RDS_MIN_STORAGE_GIB),
            },
            username: db.name.replace('-', "_"),
        });
    }
    if let Some(redis) = spec.redis.as_ref().filter(|r| r.backend == Backend::Aws) {
        out.push(Store {
            component: "redis".into(),
            name: "redis".into(),
            service: Service::ElastiCache,
            identifier: redis
                .existing_identifier
                .clone()
                .unwrap_or_else(|| identifier(&format!("{}-redis", owner.platform), 40)),
            adopt: redis.existing_identifier.is_some(),
            deletion_policy: redis.deletion_policy,
            settings: Settings::Redis {
                node_type: redis.node_type.clone(),
                version: redis.version.clone(),
            },
            username: String::new(),
        });
    }
    if let Some(kafka) = spec.kafka.as_ref().filter(|k| k.backend == Backend::Aws) {
        out.push(Store {
            component: "kafka".into(),
            name: "kafka".into(),
            service: Service::Msk,
            identifier: kafka
                .existing_identifier
                .clone()
                .unwrap_or_else(|| identifier(&format!("{}-kafka", owner.platform), 64)),
            adopt: kafka.existing_identifier.is_some(),
            deletion_policy: kafka.deletion_policy,
            settings: Settings::Kafka {
                instance_type: kafka.instance_type.clone(),
                version: kafka.version.clone(),
                brokers: kafka.brokers,
                storage_gib: storage_gib(&kafka.storage),
            },
            username: String::new(),
        });
    }
    out
}

/// An AWS identifier from `raw`: lowercase letters, digits and single hyphens, starting with a
/// letter, at most `max` characters, not ending with a hyphen (the strictest of RDS, ElastiCache
/// and MSK's rules).
pub fn identifier(raw: &str, max: usize) -> String {
    let mut out = String::new();
    for c in raw.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        if out.is_empty() && !c.is_ascii_alphabetic() {
            out.push('p');
        }
        out.push(c);
    }
    out.truncate(max);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

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

/// The tags Panthera puts on a store's resources.
pub fn tags(owner: &Owner, store: &Store) -> BTreeMap<String, String> {
    let policy = match store.deletion_policy {
        DeletionPolicy::Snapshot => "Snapshot",
        DeletionPolicy::Retain => "Retain",
        DeletionPolicy::Delete => "Delete",
    };
    BTreeMap::from([
        (TAG_PLATFORM.to_string(), owner.platform.clone()),
        (TAG_NAMESPACE.to_string(), owner.namespace.clone()),
        (TAG_COMPONENT.to_string(), store.component.clone()),
        (TAG_DELETION_POLICY.to_string(), policy.to_string()),
        (
            TAG_MANAGED_BY.to_string(),
            crate::api::MANAGER.to_string(),
        ),
    ])
}

/// Deletion policy recorded in a resource's tags (Snapshot when missing: the safe default).
pub fn policy_of(tags: &BTreeMap<String, String>) -> DeletionPolicy {
    match tags.get(TAG_DELETION_POLICY).map(String::as_str) {
        Some("Retain") => DeletionPolicy::Retain,
        Some("Delete") => DeletionPolicy::Delete,
        _ => DeletionPolicy::Snapshot,
    }
}

/// Tags of `desired` that `actual` lacks or has with another value.
pub fn tags_to_add(
    desired: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Panthera's tags present on a resource (what Retain removes).
pub fn panthera_tags_on(actual: &BTreeMap<String, String>) -> Vec<String> {
    PANTHERA_TAGS
        .iter()
        .filter(|k| actual.contains_key(**k))
        .map(|k| k.to_string())
        .collect()
}

/// Secrets Manager name of a store's master credentials.
pub fn secret_name(owner: &Owner, component: &str) -> String {
    format!(
        "panthera/{}/{}/{}",
        owner.namespace,
        owner.platform,
        component.replace('/', "-")
    )
}

/// Final snapshot identifier: `{identifier}-final-{YYYYMMDDHHMMSS}` (unique per deletion).
pub fn final_snapshot_id(identifier: &str, timestamp: &str) -> String {
    let stamp: String = timestamp.chars().filter(char::is_ascii_digit).collect();
    let base = self::identifier(identifier, 255 - 7 - stamp.len());
    format!("{base}-final-{stamp}")
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

/// How disruptive a difference is to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Class {
    /// Applied online.
    InPlace,
    /// Applied now, with a restart (minutes of downtime).
    Reboot,
    /// Applied by AWS in the resource's maintenance window.
    MaintenanceWindow,
    /// Cannot be modified: the store must be deleted (by its deletion policy) and created again.
    Replace,
}

/// One setting that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub field: &'static str,
    pub from: String,
    pub to: String,
    pub class: Class,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.field, self.from, self.to)?;
        match self.class {
            Class::InPlace => Ok(()),
            Class::Reboot => f.write_str(" (reboot)"),
            Class::MaintenanceWindow => f.write_str(" (maintenance window)"),
            Class::Replace => f.write_str(" (replace)"),
        }
    }
}

fn version_parts(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// Compare versions on the parts the spec gives (`16` matches `16.4`, `7.1` matches `7.1.0`).
fn version_cmp(desired: &str, actual: &str) -> std::cmp::Ordering {
    let d = version_parts(desired);
    let a = version_parts(actual);
    let a: Vec<u32> = (0..d.len())
        .map(|i| a.get(i).copied().unwrap_or(0))
        .collect();
    d.cmp(&a)
}

fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
}

/// The settings of `store` that `observed` does not have, each classified.
pub fn differences(store: &Store, network: &Network, observed: &Observed) -> Vec<Difference> {
    use std::cmp::Ordering::{Greater, Less};
    let mut out = Vec::new();
    let mut push = |field: &'static str, from: &dyn fmt::Display, to: &dyn fmt::Display, class| {
        out.push(Difference {
            field,
            from: from.to_string(),
            to: to.to_string(),
            class,
        })
    };
    let grow = |d: i32, a: i32| {
        if d > a {
            Class::InPlace
        } else {
            Class::Replace
        }
    };
    match (&store.settings, &observed.settings) {
        (
            Settings::Postgres {
                instance_class,
                version,
                storage_gib,
            },
            Some(Settings::Postgres {
                instance_class: ai,
                version: av,
                storage_gib: asg,
            }),
        ) => {
            if instance_class != ai {
                push("instanceClass", ai, instance_class, Class::Reboot);
            }
            match version_cmp(version, av) {
                _ if av.is_empty() => {}
                Greater => push("version", av, version, Class::MaintenanceWindow),
                Less => push("version", av, version, Class::Replace),
                _ => {}
            }
            if storage_gib != asg {
                push("storage", asg, storage_gib, grow(*storage_gib, *asg));
            }
        }
        (
            Settings::Redis { node_type, version },
            Some(Settings::Redis {
                node_type: an,
                version: av,
            }),
        ) => {
            if node_type != an {
                push("nodeType", an, node_type, Class::InPlace);
            }
            match version_cmp(version, av) {
                _ if av.is_empty() => {}
                Greater => push("version", av, version, Class::InPlace),
                Less => push("version", av, version, Class::Replace),
                _ => {}
            }
        }
        (
            Settings::Kafka {
                instance_type,
                version,
                brokers,
                storage_gib,
            },
            Some(Settings::Kafka {
                instance_type: ai,
                version: av,
                brokers: ab,
                storage_gib: asg,
            }),
        ) => {
            if instance_type != ai {
                push("instanceType", ai, instance_type, Class::InPlace);
            }
            match version_cmp(version, av) {
                _ if av.is_empty() => {}
                Greater => push("version", av, version, Class::InPlace),
                Less => push("version", av, version, Class::Replace),
                _ => {}
            }
            if brokers != ab {
                push("brokers", ab, brokers, grow(*brokers, *ab));
            }
            if storage_gib != asg {
                push("storage", asg, storage_gib, grow(*storage_gib, *asg));
            }
        }
        _ => {}
    }
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    if !network.subnet_ids.is_empty()
        && !observed.subnet_ids.is_empty()
        && !same_set(&network.subnet_ids, &observed.subnet_ids)
    {
        // MSK brokers cannot move subnets; an RDS subnet group can be edited.
        let class = match store.service {
            Service::Msk => Class::Replace,
            _ => Class::InPlace,
        };
        push(
            "subnetIds",
            &list(&observed.subnet_ids),
            &list(&network.subnet_ids),
            class,
        );
    }
    if !network.security_group_ids.is_empty()
        && !observed.security_group_ids.is_empty()
        && !same_set(&network.security_group_ids, &observed.security_group_ids)
    {
        let class = match store.service {
            Service::Msk => Class::Replace,
            _ => Class::InPlace,
        };
        push(
            "securityGroupIds",
            &list(&observed.security_group_ids),
            &list(&network.security_group_ids),
            class,
        );
    }
    out
}

/// What apply will do to a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Create,
    /// Take over the existing resource the spec names (tag it), then modify what differs.
    Adopt,
    Unchanged,
    /// Online modification (also: only tags differ).
    Modify,
    Reboot,
    MaintenanceWindow,
    Replace,
    /// The resource is being deleted (e.g. a replace in progress); created again once gone.
    WaitDeleted,
}

impl Action {
    /// How `plan` says it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Adopt => "adopt",
            Self::Unchanged => "no change",
            Self::Modify => "modify in place",
            Self::Reboot => "modify in place with reboot",
            Self::MaintenanceWindow => "modify in the maintenance window",
            Self::Replace => "replace",
            Self::WaitDeleted => "wait for deletion, then create",
        }
    }

    /// Sign in plan output.
    pub fn sign(self) -> &'static str {
        match self {
            Self::Create | Self::WaitDeleted => "+",
            Self::Unchanged => " ",
            Self::Replace => "-/+",
            _ => "~",
        }
    }
}

/// One store's plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    pub component: String,
    pub resource: &'static str,
    pub identifier: String,
    pub action: Action,
    pub changes: Vec<Difference>,
    /// Tags to add (ownership, deletion policy).
    pub tags: BTreeMap<String, String>,
    /// AWS status of an existing resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// One line for people.
    pub summary: String,
}

impl Planned {
    /// Whether apply writes to AWS for this store.
    pub fn writes(&self) -> bool {
        self.action != Action::Unchanged
    }
}

/// Plan one store against what AWS has. `Err` (with what to do) when the resource exists but is
/// not this platform's and the spec does not ask to adopt it.
pub fn plan(
    owner: &Owner,
    store: &Store,
    network: &Network,
    observed: Option<&Observed>,
) -> Result<Planned, String> {
    let resource = store.service.resource();
    let desired_tags = tags(owner, store);
    let Some(observed) = observed else {
        if store.adopt {
            return Err(format!(
                "{resource} {} named by existingIdentifier does not exist; remove existingIdentifier to create one",
                store.identifier
            ));
        }
        return Ok(Planned {
            component: store.component.clone(),
            resource,
            identifier: store.identifier.clone(),
            action: Action::Create,
            changes: Vec::new(),
            tags: desired_tags,
            status: None,
            summary: format!(
                "create {resource} {} ({})",
                store.identifier, store.settings
            ),
        });
    };
    let owned = owner.owns(&observed.tags);
    if !owned {
        if let Some(other) = owner_of(&observed.tags) {
            return Err(format!(
                "{resource} {} belongs to {other}; Panthera does not take over another platform's resources",
                store.identifier
            ));
        }
        if !store.adopt {
            return Err(format!(
                "{resource} {} already exists and was not created by Panthera; name it in existingIdentifier to adopt it, or choose another platform name",
                store.identifier
            ));
        }
    }
    let status = Some(observed.status.clone());
    if is_deleting(store.service, &observed.status) {
        return Ok(Planned {
            component: store.component.clone(),
            resource,
            identifier: store.identifier.clone(),
            action: Action::WaitDeleted,
            changes: Vec::new(),
            tags: BTreeMap::new(),
            status,
            summary: format!(
                "{resource} {} is being deleted; created again once it is gone",
                store.identifier
            ),
        });
    }
    let changes = differences(store, network, observed);
    let tags = tags_to_add(&desired_tags, &observed.tags);
    let action = if !owned {
        Action::Adopt
    } else {
        match changes.iter().map(|d| d.class).max() {
            Some(Class::Replace) => Action::Replace,
            Some(Class::MaintenanceWindow) => Action::MaintenanceWindow,
            Some(Class::Reboot) => Action::Reboot,
            Some(Class::InPlace) => Action::Modify,
            None if !tags.is_empty() => Action::Modify,
            None => Action::Unchanged,
        }
    };
    let mut what: Vec<String> = changes.iter().map(ToString::to_string).collect();
    if !tags.is_empty() && owned {
        what.push(format!(
            "tags {}",
            tags.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    let summary = match action {
        Action::Unchanged => format!("{resource} {} unchanged", store.identifier),
        Action::Adopt => format!(
            "adopt {resource} {} (tag it as this platform's){}",
            store.identifier,
            if what.is_empty() {
                String::new()
            } else {
                format!(", then modify: {}", what.join("; "))
            }
        ),
        _ => format!(
            "{} {resource} {}: {}",
            action.describe(),
            store.identifier,
            what.join("; ")
        ),
    };
    Ok(Planned {
        component: store.component.clone(),
        resource,
        identifier: store.identifier.clone(),
        action,
        changes,
        tags,
        status,
        summary,
    })
}

/// Where a resource is in its life, from AWS's status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Available,
    Creating,
    Modifying,
    Deleting,
    /// Cannot recover by waiting: the message says why.
    Failed,
    /// Stopped or another state that needs a person.
    Other,
}

/// The phase of an AWS status word.
pub fn phase(service: Service, status: &str) -> Phase {
    let s = status.to_ascii_lowercase();
    match service {
        Service::Rds => match s.as_str() {
            "available" | "backing-up" | "storage-optimization" => Phase::Available,
            s if s.starts_with("configuring-") => Phase::Available,
            "creating" => Phase::Creating,
            "modifying"
            | "upgrading"
            | "rebooting"
            | "resetting-master-credentials"
            | "renaming"
            | "moving-to-vpc"
            | "maintenance"
            | "starting" => Phase::Modifying,
            "deleting" => Phase::Deleting,
            "failed" | "restore-error" | "storage-full" | "insufficient-capacity" => Phase::Failed,
            s if s.starts_with("incompatible-") || s.starts_with("inaccessible-") => Phase::Failed,
            _ => Phase::Other,
        },
        Service::ElastiCache => match s.as_str() {
            "available" | "snapshotting" => Phase::Available,
            "creating" => Phase::Creating,
            "modifying" => Phase::Modifying,
            "deleting" => Phase::Deleting,
            "create-failed" => Phase::Failed,
            _ => Phase::Other,
        },
        Service::Msk => match s.as_str() {
            "active" => Phase::Available,
            "creating" => Phase::Creating,
            "updating" | "maintenance" | "rebooting_broker" | "healing" => Phase::Modifying,
            "deleting" => Phase::Deleting,
            "failed" => Phase::Failed,
            _ => Phase::Other,
        },
    }
}

pub fn is_deleting(service: Service, status: &str) -> bool {
    phase(service, status) == Phase::Deleting
}

/// Readiness and the status message of an existing resource: `available`, `creating`,
/// `modifying`, ... with AWS's word and pending changes when they add something.
pub fn progress(service: Service, observed: &Observed) -> (bool, String) {
    let phase = phase(service, &observed.status);
    let word = match phase {
        Phase::Available => "available",
        Phase::Creating if service == Service::Msk => "creating (MSK cluster provisioning)",
        Phase::Creating => "creating",
        Phase::Modifying => "modifying",
        Phase::Deleting => "deleting",
        Phase::Failed => "failed",
        Phase::Other => "not available",
    };
    let mut message = word.to_string();
    if !observed
        .status
        .eq_ignore_ascii_case(word.split(' ').next().unwrap_or(word))
    {
        message.push_str(&format!(
            " ({} status {})",
            service.resource(),
            observed.status
        ));
    }
    if !observed.pending.is_empty() {
        message.push_str(&format!("; pending: {}", observed.pending.join(", ")));
    }
    let ready = phase == Phase::Available && observed.endpoint.is_some();
    if phase == Phase::Available && observed.endpoint.is_none() {
        message = format!("{message}; endpoint not published yet");
    }
    (ready, message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn platform(yaml: &str) -> PantheraPlatform {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn aws_example() -> PantheraPlatform {
        platform(include_str!("../../../examples/aws.yaml"))
    }

    fn observed_like(store: &Store, network: &Network, owner: &Owner) -> Observed {
        Observed {
            arn: "arn:aws:rds:us-east-1:123456789012:db:x".into(),
            status: "available".into(),
            endpoint: Some("x.rds.amazonaws.com:5432".into()),
            tags: tags(owner, store),
            settings: Some(store.settings.clone()),
            subnet_ids: network.subnet_ids.clone(),
            security_group_ids: network.security_group_ids.clone(),
            ..Observed::default()
        }
    }

    #[test]
    fn the_aws_example_has_one_store_per_managed_service() {
        let p = aws_example();
        let stores = stores(&p);
        let ids: Vec<(&str, &str, Service)> = stores
            .iter()
            .map(|s| (s.component.as_str(), s.identifier.as_str(), s.service))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("postgres/users", "shop-aws-users", Service::Rds),
                ("postgres/orders", "shop-aws-orders", Service::Rds),
                ("redis", "shop-aws-redis", Service::ElastiCache),
                ("kafka", "shop-aws-kafka", Service::Msk),
            ]
        );
        assert_eq!(
            stores[0].settings,
            Settings::Postgres {
                instance_class: "db.t4g.medium".into(),
                version: "16".into(),
                storage_gib: 20
            }
        );
        assert_eq!(network(&p).subnet_ids.len(), 3);
    }

    #[test]
    fn identifiers_follow_the_strictest_aws_rules() {
        assert_eq!(identifier("shop--a-users", 63), "shop-a-users");
        assert_eq!(identifier("Shop_A", 63), "shop-a");
        assert_eq!(identifier("9lives", 63), "p9lives");
        assert_eq!(identifier("abcdef-ghij", 7), "abcdef");
        assert!(identifier(&"a".repeat(100), 40).len() <= 40);
        let snap = final_snapshot_id("shop-users", "2026-11-25T01:02:03Z");
        assert_eq!(snap, "shop-users-final-20261125010203");
    }

    #[test]
    fn storage_sizes_round_up_to_gib() {
        assert_eq!(storage_gib("20Gi"), 20);
        assert_eq!(storage_gib("1Ti"), 1024);
        assert_eq!(storage_gib("512Mi"), 1);
        assert_eq!(storage_gib("1025Mi"), 2);
        // RDS has a floor.
        let p = platform(
            "apiVersion: panthera.dev/v1alpha1\nkind: PantheraPlatform\nmetadata: {name: p, namespace: n}\nspec:\n  aws: {subnetIds: [subnet-00000001, subnet-00000002]}\n  databases: [{name: d, backend: aws, storage: 5Gi}]\n",
        );
        assert!(matches!(
            stores(&p)[0].settings,
            Settings::Postgres {
                storage_gib: 20,
                ..
            }
        ));
    }

    #[test]
    fn tags_name_the_owner_and_the_policy() {
        let p = aws_example();
        let owner = Owner::of(&p);
        let t = tags(&owner, &stores(&p)[0]);
        assert_eq!(t[TAG_PLATFORM], "shop-aws");
        assert_eq!(t[TAG_NAMESPACE], "shop-aws");
        assert_eq!(t[TAG_COMPONENT], "postgres/users");
        assert_eq!(t[TAG_DELETION_POLICY], "Snapshot");
        assert_eq!(t[TAG_MANAGED_BY], "panthera");
        assert!(owner.owns(&t));
        assert!(!Owner::new("shop-aws", "other").owns(&t));
        assert_eq!(policy_of(&t), DeletionPolicy::Snapshot);
        let mut extra = t.clone();
        extra.insert("team".into(), "x".into());
        assert!(tags_to_add(&t, &extra).is_empty(), "foreign tags are left");
        assert_eq!(panthera_tags_on(&extra).len(), 5);
        assert_eq!(
            secret_name(&owner, "postgres/users"),
            "panthera/shop-aws/shop-aws/postgres-users"
        );
    }

    #[test]
    fn missing_resources_are_created_and_matching_ones_unchanged() {
        let p = aws_example();
        let (owner, net) = (Owner::of(&p), network(&p));
        for store in stores(&p) {
            let planned = plan(&owner, &store, &net, None).unwrap();
            assert_eq!(planned.action, Action::Create);
            assert!(
                planned.summary.starts_with("create "),
                "{}",
                planned.summary
            );
            let o = observed_like(&store, &net, &owner);
            let planned = plan(&owner, &store, &net, Some(&o)).unwrap();
            assert_eq!(planned.action, Action::Unchanged, "{planned:?}");
            assert!(!planned.writes());
        }
    }

    #[test]
    fn changes_are_classified_by_how_aws_applies_them() {
        let p = aws_example();
        let (owner, net) = (Owner::of(&p), network(&p));
        let stores = stores(&p);
        let class_of = |store: &Store, observed: Settings| {
            let mut o = observed_like(store, &net, &owner);
            o.settings = Some(observed);
            plan(&owner, store, &net, Some(&o)).unwrap()
        };
        let pg = |class: &str, version: &str, gib| Settings::Postgres {
            instance_class: class.into(),
            version: version.into(),
            storage_gib: gib,
        };
        let planned = class_of(&stores[0], pg("db.t4g.micro", "16.4", 20));
        assert_eq!(planned.action, Action::Reboot);
        assert_eq!(
            planned.summary,
            "modify in place with reboot RDS instance shop-aws-users: instanceClass db.t4g.micro -> db.t4g.medium (reboot)"
        );
        assert_eq!(
            class_of(&stores[0], pg("db.t4g.medium", "15.7", 20)).action,
            Action::MaintenanceWindow
        );
        assert_eq!(
            class_of(&stores[0], pg("db.t4g.medium", "17.1", 20)).action,
            Action::Replace
        );
        assert_eq!(
            class_of(&stores[0], pg("db.t4g.medium", "16", 10)).action,
            Action::Modify
        );
        assert_eq!(
            class_of(&stores[0], pg("db.t4g.medium", "16", 30)).action,
            Action::Replace,
            "storage never shrinks"
        );
        let redis = |node: &str, v: &str| Settings::Redis {
            node_type: node.into(),
            version: v.into(),
        };
        assert_eq!(
            class_of(&stores[2], redis("cache.t4g.small", "7.1.0")).action,
            Action::Unchanged
        );
        assert_eq!(
            class_of(&stores[2], redis("cache.t4g.micro", "7.1")).action,
            Action::Modify
        );
        assert_eq!(
            class_of(&stores[2], redis("cache.t4g.small", "7.2")).action,
            Action::Replace
        );
        let kafka = |brokers, gib| Settings::Kafka {
            instance_type: "kafka.t3.small".into(),
            version: "3.9.0".into(),
            brokers,
            storage_gib: gib,
        };
        assert_eq!(
            class_of(&stores[3], kafka(3, 100)).action,
            Action::Unchanged
        );
        assert_eq!(class_of(&stores[3], kafka(2, 100)).action, Action::Modify);
        assert_eq!(class_of(&stores[3], kafka(6, 100)).action, Action::Replace);
        assert_eq!(class_of(&stores[3], kafka(3, 200)).action, Action::Replace);
    }

    #[test]
    fn subnets_and_security_groups_are_compared_as_sets() {
        let p = aws_example();
        let (owner, net) = (Owner::of(&p), network(&p));
        let stores = stores(&p);
        let mut o = observed_like(&stores[0], &net, &owner);
        o.subnet_ids.reverse();
        assert!(differences(&stores[0], &net, &o).is_empty());
        o.subnet_ids.pop();
        let d = differences(&stores[0], &net, &o);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].class, Class::InPlace);
        let mut o = observed_like(&stores[3], &net, &owner);
        o.subnet_ids.pop();
        assert_eq!(differences(&stores[3], &net, &o)[0].class, Class::Replace);
        // Unknown (empty) observed lists are not a difference.
        let mut o = observed_like(&stores[2], &net, &owner);
        o.security_group_ids.clear();
        assert!(differences(&stores[2], &net, &o).is_empty());
    }

    #[test]
    fn foreign_resources_are_refused_unless_adopted() {
        let p = aws_example();
        let (owner, net) = (Owner::of(&p), network(&p));
        let mut store = stores(&p).remove(0);
        let mut o = observed_like(&store, &net, &owner);
        o.tags = BTreeMap::from([("team".to_string(), "data".to_string())]);
        let err = plan(&owner, &store, &net, Some(&o)).unwrap_err();
        assert!(err.contains("not created by Panthera"), "{err}");
        o.tags = tags(&Owner::new("other", "ns"), &store);
        let err = plan(&owner, &store, &net, Some(&o)).unwrap_err();
        assert!(
            err.contains("belongs to platform other in namespace ns"),
            "{err}"
        );
        // Adoption: only when the spec names it, and never from another platform.
        store.adopt = true;
        assert!(plan(&owner, &store, &net, Some(&o)).is_err());
        o.tags = BTreeMap::new();
        let planned = plan(&owner, &store, &net, Some(&o)).unwrap();
        assert_eq!(planned.action, Action::Adopt);
        assert_eq!(planned.tags.len(), 5);
        assert!(
            plan(&owner, &store, &net, None).is_err(),
            "adopting nothing"
        );
    }

    #[test]
    fn a_deleting_resource_is_waited_for() {
        let p = aws_example();
        let (owner, net) = (Owner::of(&p), network(&p));
        let store = stores(&p).remove(0);
        let mut o = observed_like(&store, &net, &owner);
        o.status = "deleting".into();
        let planned = plan(&owner, &store, &net, Some(&o)).unwrap();
        assert_eq!(planned.action, Action::WaitDeleted);
    }

    #[test]
    fn progress_reads_each_services_status_words() {
        let o = |status: &str, endpoint: Option<&str>| Observed {
            status: status.into(),
            endpoint: endpoint.map(String::from),
            ..Observed::default()
        };
        assert_eq!(
            progress(Service::Rds, &o("available", Some("h:5432"))),
            (true, "available".into())
        );
        assert_eq!(
            progress(Service::Rds, &o("creating", None)),
            (false, "creating".into())
        );
        let (ready, msg) = progress(Service::Msk, &o("CREATING", None));
        assert!(!ready);
        assert!(msg.contains("provisioning"), "{msg}");
        assert_eq!(phase(Service::Rds, "incompatible-network"), Phase::Failed);
        assert_eq!(phase(Service::ElastiCache, "create-failed"), Phase::Failed);
        assert_eq!(phase(Service::Msk, "UPDATING"), Phase::Modifying);
        let (ready, msg) = progress(Service::Rds, &o("available", None));
        assert!(!ready);
        assert!(msg.contains("endpoint not published"), "{msg}");
    }
}
