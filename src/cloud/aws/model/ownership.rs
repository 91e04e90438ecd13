//! Ownership: the tags Panthera puts on what it creates (a resource without them is never
//! modified or deleted), and the names derived from a platform and a store.

use std::collections::BTreeMap;

use crate::api::{DeletionPolicy, PantheraPlatform};

use super::{Store, identifier};

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
/// On an instance a restore replaced: the instance the store runs on now. Dereference follows
/// it, so the store moves to the restored instance while the old one is kept.
pub const TAG_SUPERSEDED_BY: &str = "panthera.dev/superseded-by";
/// On a restored instance: the instance it was restored from.
pub const TAG_RESTORED_FROM: &str = "panthera.dev/restored-from";
/// On a bucket whose objects destroy deletes with it (`emptyOnDelete`).
pub const TAG_EMPTY_ON_DELETE: &str = "panthera.dev/empty-on-delete";
/// Every tag Panthera sets; Retain removes them all, so the resource is no longer Panthera's.
pub const PANTHERA_TAGS: &[&str] = &[
    TAG_PLATFORM,
    TAG_NAMESPACE,
    TAG_COMPONENT,
    TAG_DELETION_POLICY,
    TAG_MANAGED_BY,
    TAG_DELETION_REQUESTED,
    TAG_FINAL_SNAPSHOT,
    TAG_SUPERSEDED_BY,
    TAG_RESTORED_FROM,
    TAG_EMPTY_ON_DELETE,
];

/// Tags as Panthera handles them, whatever shape each SDK gives them.
pub type Tags = BTreeMap<String, String>;
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
/// The tags Panthera puts on a store's resources.
pub fn tags(owner: &Owner, store: &Store) -> BTreeMap<String, String> {
    let policy = match store.deletion_policy {
        DeletionPolicy::Snapshot => "Snapshot",
        DeletionPolicy::Retain => "Retain",
        DeletionPolicy::Delete => "Delete",
    };
    let mut tags = BTreeMap::from([
        (TAG_PLATFORM.to_string(), owner.platform.clone()),
        (TAG_NAMESPACE.to_string(), owner.namespace.clone()),
        (TAG_COMPONENT.to_string(), store.component.clone()),
        (TAG_DELETION_POLICY.to_string(), policy.to_string()),
        (TAG_MANAGED_BY.to_string(), crate::api::MANAGER.to_string()),
    ]);
    if store.empty_on_delete {
        tags.insert(TAG_EMPTY_ON_DELETE.to_string(), "true".to_string());
    }
    tags
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

/// Secrets Manager name of a store's credentials. MSK takes SCRAM logins only from secrets
/// whose name starts with `AmazonMSK_`.
pub fn secret_name(owner: &Owner, component: &str) -> String {
    if component == "kafka" {
        return format!("AmazonMSK_panthera_{}_{}", owner.namespace, owner.platform);
    }
    format!(
        "panthera/{}/{}/{}",
        owner.namespace,
        owner.platform,
        component.replace('/', "-")
    )
}

/// A generated password as `service` takes it: OpenSearch Service's master user needs an
/// upper-case letter, a lower-case letter, a digit and a special character, which 32 random
/// alphanumerics do not always have; the suffix adds one of each (the randomness is the rest).
pub fn password_for(service: super::Service, generated: String) -> String {
    match service {
        super::Service::OpenSearch => format!("{generated}-Aa0"),
        _ => generated,
    }
}

/// Final snapshot identifier: `{identifier}-final-{YYYYMMDDHHMMSS}` (unique per deletion).
pub fn final_snapshot_id(identifier: &str, timestamp: &str) -> String {
    let stamp: String = timestamp.chars().filter(char::is_ascii_digit).collect();
    let base = self::identifier(identifier, 255 - 7 - stamp.len());
    format!("{base}-final-{stamp}")
}
