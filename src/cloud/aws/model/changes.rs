//! The differences between what the spec wants and what AWS runs, classified by how AWS applies
//! them, and the plan of one store they make.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{
    Network, Observed, Owner, Service, Settings, Store, is_deleting, owner_of, tags, tags_to_add,
};

/// How disruptive a difference is to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Class {
    /// Applied online.
    InPlace,
    /// Applied online by a blue/green deployment (OpenSearch Service): AWS builds the domain
    /// again beside the old one and moves the data over, which takes from minutes to hours.
    BlueGreen,
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
            Class::BlueGreen => f.write_str(" (blue/green)"),
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
fn version_cmp(desired: &str, actual: &str) -> Ordering {
    let d = version_parts(desired);
    let a = version_parts(actual);
    let a: Vec<u32> = (0..d.len())
        .map(|i| a.get(i).copied().unwrap_or(0))
        .collect();
    d.cmp(&a)
}

/// How a version change applies: an upgrade by `upgrade`, a downgrade only by replacing the
/// store. An unknown (empty) actual version is no change.
fn version_change(desired: &str, actual: &str, upgrade: Class) -> Option<Class> {
    match version_cmp(desired, actual) {
        _ if actual.is_empty() => None,
        Ordering::Greater => Some(upgrade),
        Ordering::Less => Some(Class::Replace),
        Ordering::Equal => None,
    }
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
    let mut out = Vec::new();
    // A setting differs when it reads differently (numbers, switches and names alike).
    let mut push = |field: &'static str, from: &dyn fmt::Display, to: &dyn fmt::Display, class| {
        let (from, to) = (from.to_string(), to.to_string());
        if from != to {
            out.push(Difference {
                field,
                from,
                to,
                class,
            })
        }
    };
    let grow = |d: i32, a: i32| {
        if d > a {
            Class::InPlace
        } else {
            Class::Replace
        }
    };
    // `push` each setting named by its path in both settings (the running one first), with its
    // class: a `Class`, or an `Option<Class>` where `None` is no change (a version that matches).
    macro_rules! compare {
        ($has:ident -> $want:ident: $($name:literal $($field:ident).+ => $class:expr),+ $(,)?) => {
            $(if let Some(class) = Option::<Class>::from($class) {
                push($name, &$has.$($field).+, &$want.$($field).+, class);
            })+
        };
    }
    match (&store.settings, &observed.settings) {
        (Settings::Postgres(want), Some(Settings::Postgres(has))) => {
            let (rds, ar) = (&want.rds, &has.rds);
            // Turning backups on or off restarts the instance; other values do not.
            let restart = (rds.backup_retention_days == 0) != (ar.backup_retention_days == 0);
            let backups = if restart {
                Class::Reboot
            } else {
                Class::InPlace
            };
            compare!(has -> want:
                "instanceClass" instance_class => Class::Reboot,
                "version" version => version_change(&want.version, &has.version, Class::MaintenanceWindow),
                "storage" storage_gib => grow(want.storage_gib, has.storage_gib),
                "highAvailability" rds.multi_az => Class::InPlace,
                "backupRetentionDays" rds.backup_retention_days => backups,
            );
            // A window the spec leaves to AWS is whatever AWS chose.
            let window = |d: &Option<String>, a: &Option<String>| {
                d.as_ref()
                    .map(|d| (a.clone().unwrap_or_else(|| "none".into()), d.clone()))
            };
            if let Some((from, to)) = window(&rds.backup_window, &ar.backup_window) {
                push("backupWindow", &from, &to, Class::InPlace);
            }
            if let Some((from, to)) = window(&rds.maintenance_window, &ar.maintenance_window) {
                push("maintenanceWindow", &from, &to, Class::InPlace);
            }
            // AWS reports no ceiling when autoscaling is off (or the ceiling is the size).
            let ceiling = |c: Option<i32>, size: i32| {
                c.filter(|c| *c > size)
                    .map_or("off".to_string(), |c| c.to_string())
            };
            let wanted = ceiling(rds.max_storage_gib, want.storage_gib);
            let had = ceiling(ar.max_storage_gib, has.storage_gib);
            push("maxStorage", &had, &wanted, Class::InPlace);
            compare!(has -> want: "deletionProtection" rds.deletion_protection => Class::InPlace);
        }
        (Settings::Redis(want), Some(Settings::Redis(has))) => {
            compare!(has -> want:
                "nodeType" node_type => Class::InPlace,
                "version" version => version_change(&want.version, &has.version, Class::InPlace),
                "replicas" copies.replicas => Class::InPlace,
                "automaticFailover" copies.failover => Class::InPlace,
                "snapshotRetentionDays" copies.snapshot_retention_days => Class::InPlace,
            );
            if let Some(w) = &want.copies.snapshot_window {
                let from = has.copies.snapshot_window.clone();
                push(
                    "snapshotWindow",
                    &from.unwrap_or_else(|| "none".into()),
                    w,
                    Class::InPlace,
                );
            }
        }
        (Settings::Search(want), Some(Settings::Search(has))) => {
            search_differences(want, has, &mut push);
        }
        (Settings::Edge(want), Some(Settings::Edge(has))) => {
            super::edge::edge_differences(want, has, &mut push);
        }
        // Every bucket setting changes online, one call each.
        (Settings::Bucket(want), Some(Settings::Bucket(has))) => {
            let on = |b: bool| if b { "on" } else { "off" };
            let origins = |o: &[String]| format!("[{}]", o.join(", "));
            push(
                "publicAccessBlock",
                &on(has.public_access_blocked),
                &on(want.public_access_blocked),
                Class::InPlace,
            );
            push(
                "encryption",
                &has.encryption(),
                &want.encryption(),
                Class::InPlace,
            );
            push(
                "versioning",
                &on(has.versioning),
                &on(want.versioning),
                Class::InPlace,
            );
            push("lifecycle", &has.lifecycle, &want.lifecycle, Class::InPlace);
            push(
                "corsOrigins",
                &origins(&has.cors_origins),
                &origins(&want.cors_origins),
                Class::InPlace,
            );
            push(
                "tlsOnly",
                &on(has.tls_only),
                &on(want.tls_only),
                Class::InPlace,
            );
        }
        (Settings::Kafka(want), Some(Settings::Kafka(has))) => {
            compare!(has -> want:
                "instanceType" instance_type => Class::InPlace,
                "version" version => version_change(&want.version, &has.version, Class::InPlace),
                "brokers" brokers => grow(want.brokers, has.brokers),
                "storage" storage_gib => grow(want.storage_gib, has.storage_gib),
                "clientAuthentication" access => Class::InPlace,
            );
        }
        _ => {}
    }
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    // MSK brokers cannot move subnets or security groups; an RDS subnet group can be edited,
    // and the security groups of an instance or replication group changed in place.
    let class = match store.service {
        Service::Msk => Class::Replace,
        // Other subnets or security groups: the domain moves by a blue/green deployment.
        Service::OpenSearch => Class::BlueGreen,
        _ => Class::InPlace,
    };
    let subnets = network.subnets_of(store);
    let placement = [
        ("subnetIds", &subnets, &observed.subnet_ids),
        (
            "securityGroupIds",
            &network.security_group_ids,
            &observed.security_group_ids,
        ),
    ];
    for (field, wanted, has) in placement {
        // Empty on either side: the spec leaves it to AWS, or AWS did not say.
        if !wanted.is_empty() && !has.is_empty() && !same_set(wanted, has) {
            push(field, &list(has), &list(wanted), class);
        }
    }
    out
}

/// The differences of an OpenSearch Service domain, as AWS applies them: most by a blue/green
/// deployment; the node counts online when the domain has dedicated masters, a volume online
/// when it grows to at most 3 TiB per node; the endpoint's TLS and the access policy online.
fn search_differences(
    want: &super::SearchSettings,
    has: &super::SearchSettings,
    push: &mut impl FnMut(&'static str, &dyn fmt::Display, &dyn fmt::Display, Class),
) {
    /// Up to this size per data node, a volume grows without a blue/green deployment.
    const ONLINE_VOLUME_GIB: i32 = 3 * 1024;
    let with_masters = want.masters.is_some() && has.masters.is_some();
    let online_with_masters = if with_masters {
        Class::InPlace
    } else {
        Class::BlueGreen
    };
    let version = version_change(&want.version, &has.version, Class::BlueGreen);
    if let Some(class) = version {
        push("version", &has.version, &want.version, class);
    }
    push(
        "instanceType",
        &has.instance_type,
        &want.instance_type,
        Class::BlueGreen,
    );
    push(
        "instanceCount",
        &has.instance_count,
        &want.instance_count,
        online_with_masters,
    );
    push(
        "availabilityZones",
        &has.zones,
        &want.zones,
        Class::BlueGreen,
    );
    let masters = |m: &Option<super::DedicatedMasters>| {
        m.as_ref().map_or("none".to_string(), ToString::to_string)
    };
    push(
        "dedicatedMasters",
        &masters(&has.masters),
        &masters(&want.masters),
        online_with_masters,
    );
    let volume = if want.storage_gib > has.storage_gib && want.storage_gib <= ONLINE_VOLUME_GIB {
        Class::InPlace
    } else {
        Class::BlueGreen
    };
    push("storage", &has.storage_gib, &want.storage_gib, volume);
    let (w, h) = (&want.security, &has.security);
    let on = |b: bool| if b { "on" } else { "off" };
    // Turning encryption or fine-grained access control on is a blue/green deployment (and
    // none of them can be turned off again, which Panthera never asks).
    for (field, wanted, had) in [
        (
            "encryptionAtRest",
            w.encryption_at_rest,
            h.encryption_at_rest,
        ),
        (
            "nodeToNodeEncryption",
            w.node_to_node_encryption,
            h.node_to_node_encryption,
        ),
        ("fineGrainedAccessControl", w.fine_grained, h.fine_grained),
    ] {
        push(field, &on(had), &on(wanted), Class::BlueGreen);
    }
    let endpoint = |s: &super::DomainSecurity| {
        format!(
            "{} {}",
            if s.https_only { "https-only" } else { "http" },
            s.tls_policy
        )
    };
    push("endpointTls", &endpoint(h), &endpoint(w), Class::InPlace);
    let policy = |open: bool| if open { "login" } else { "custom" };
    push(
        "accessPolicy",
        &policy(h.open_to_login),
        &policy(w.open_to_login),
        Class::InPlace,
    );
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
    /// Online, by a blue/green deployment (OpenSearch Service).
    BlueGreen,
    Reboot,
    MaintenanceWindow,
    Replace,
    /// The resource is being deleted (e.g. a replace in progress); created again once gone.
    WaitDeleted,
    /// The edge waits for the gateway's public address (its load balancer's host name).
    WaitOrigin,
}

impl Action {
    /// How `plan` says it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Adopt => "adopt",
            Self::Unchanged => "no change",
            Self::Modify => "modify in place",
            Self::BlueGreen => "modify by a blue/green deployment",
            Self::Reboot => "modify in place with reboot",
            Self::MaintenanceWindow => "modify in the maintenance window",
            Self::Replace => "replace",
            Self::WaitDeleted => "wait for deletion, then create",
            Self::WaitOrigin => "wait for the gateway's load balancer, then create",
        }
    }

    /// Sign in plan output.
    pub fn sign(self) -> &'static str {
        match self {
            Self::Create | Self::WaitDeleted => "+",
            Self::Unchanged | Self::WaitOrigin => " ",
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
        !matches!(self.action, Action::Unchanged | Action::WaitOrigin)
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
        if super::waits_for_origin(store) {
            return Ok(Planned {
                component: store.component.clone(),
                resource,
                identifier: store.identifier.clone(),
                action: Action::WaitOrigin,
                changes: Vec::new(),
                tags: BTreeMap::new(),
                status: None,
                summary: format!(
                    "create {resource} {} once the gateway's Ingress publishes its load balancer's host name (the origin)",
                    store.identifier
                ),
            });
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
            Some(Class::BlueGreen) => Action::BlueGreen,
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
