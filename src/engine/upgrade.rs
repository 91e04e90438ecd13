//! Part of step 3, decide (pure): a data store's version change that rolling its StatefulSet
//! cannot carry out is refused before anything is written, in plan and apply alike.
//!
//! - PostgreSQL: a server of one major version cannot open a data directory of another
//!   (`database files are incompatible with server`): a major change up or down would crash-loop
//!   the database. The upgrade path is a new database beside the old one (see the message).
//! - Redis, Apache Kafka and OpenSearch: newer versions read what older ones wrote, so upgrades roll; a
//!   downgrade may not (RDB formats, Kafka's metadata version), so it is refused.
//!
//! Minor versions of PostgreSQL are in the same image tag (`postgres:16` follows 16.x) and roll.
//!
//! A volume's StorageClass cannot change either: a StatefulSet's volume claim templates are
//! immutable, and the server would refuse the whole update with a message about the StatefulSet
//! rather than the store.

use serde_json::Value;

use super::report::plan_component_id;
use super::snapshot::Live;
use crate::api::ComponentKind;
use crate::render::Plan;

/// A version change the platform refuses, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{component}: {change} is refused: {why}; {instead}")]
pub struct UnsafeUpgrade {
    /// `postgres/users`, `redis`, `kafka`.
    pub component: String,
    /// `PostgreSQL 16 -> 17`, `storageClassName "standard" -> "fast"`.
    pub change: String,
    pub why: String,
    pub instead: String,
}

/// Every data store of `plan` whose StatefulSet exists in `live` with another version.
pub fn check(plan: &Plan, live: &Live) -> Result<(), UnsafeUpgrade> {
    for component in &plan.components {
        let Some(kind) = component.kind else { continue };
        for object in component
            .objects
            .iter()
            .filter(|o| o.kind() == "StatefulSet")
        {
            let Some(current) = live.get("StatefulSet", object.name()) else {
                continue;
            };
            let (from_class, to_class) = (storage_class(current), storage_class(&object.value));
            if from_class != to_class {
                let shown = |c: Option<&str>| {
                    c.map_or("the cluster's default".to_string(), |c| format!("\"{c}\""))
                };
                return Err(UnsafeUpgrade {
                    component: plan_component_id(component),
                    change: format!("storageClassName {} -> {}", shown(from_class), shown(to_class)),
                    why: "a StatefulSet's volume claims cannot change, and the data is on the existing volumes".to_string(),
                    instead: "keep storageClassName as it was; to move the data to another class, add a store that names it and copy the data over".to_string(),
                });
            }
            let (Some(from), Some(to)) = (image_tag(current), image_tag(&object.value)) else {
                continue;
            };
            refuse(kind, from, to).map_or(Ok(()), |(engine, why, instead)| {
                Err(UnsafeUpgrade {
                    component: plan_component_id(component),
                    change: format!("{engine} {from} -> {to}"),
                    why,
                    instead,
                })
            })?;
        }
    }
    Ok(())
}

/// Why `from -> to` cannot roll for `kind`, and what to do instead; `None` when it can.
fn refuse(kind: ComponentKind, from: &str, to: &str) -> Option<(&'static str, String, String)> {
    let (old, new) = (Version::parse(from)?, Version::parse(to)?);
    match kind {
        ComponentKind::Postgres if old.major != new.major => Some((
            "PostgreSQL",
            format!(
                "a PostgreSQL {to} server cannot open the data directory PostgreSQL {from} wrote, so the database would crash-loop"
            ),
            format!(
                "keep version \"{from}\"; to move to {to}, add a database with version \"{to}\" under another name, copy the data into it (pg_dump | pg_restore), point the services at it, then remove the old one"
            ),
        )),
        ComponentKind::Redis if new < old => Some((
            "Redis",
            format!("Redis {to} may not read the data files Redis {from} wrote"),
            format!("keep version \"{from}\" or newer"),
        )),
        ComponentKind::Kafka if new < old => Some((
            "Apache Kafka",
            format!("Kafka {to} may not read the logs and metadata Kafka {from} wrote"),
            format!("keep version \"{from}\" or newer"),
        )),
        ComponentKind::Search if new < old => Some((
            "OpenSearch",
            format!("OpenSearch {to} cannot open the indices OpenSearch {from} wrote"),
            format!(
                "keep version \"{from}\" or newer, or remove spec.search with deletionPolicy: Delete and add it back at {to} (the catalog rebuilds its index: panthera-catalog reindex)"
            ),
        )),
        _ => None,
    }
}

/// The StorageClass the first volume claim template names, if any.
fn storage_class(object: &Value) -> Option<&str> {
    object
        .pointer("/spec/volumeClaimTemplates/0/spec/storageClassName")?
        .as_str()
}

/// The tag of the first container's image (`docker.io/library/postgres:16` -> `16`).
fn image_tag(object: &Value) -> Option<&str> {
    let image = object
        .pointer("/spec/template/spec/containers/0/image")?
        .as_str()?;
    let (_, tag) = image.rsplit_once(':')?;
    // `registry:5000/postgres` has a port, not a tag.
    (!tag.contains('/')).then_some(tag)
}

/// `major.minor` of a version tag; missing parts count as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Version {
    major: u32,
    minor: u32,
}

impl Version {
    fn parse(tag: &str) -> Option<Self> {
        let mut parts = tag.split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        Some(Self { major, minor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_majors_never_roll_and_other_stores_never_go_back() {
        let cases = [
            (ComponentKind::Postgres, "15", "16", true),
            (ComponentKind::Postgres, "16", "15", true),
            (ComponentKind::Postgres, "16", "16", false),
            (ComponentKind::Search, "2.19.1", "2.17.0", true),
            (ComponentKind::Search, "2.17.0", "2.19.1", false),
            (ComponentKind::Redis, "7.0", "7.2", false),
            (ComponentKind::Redis, "7.2", "7.0", true),
            (ComponentKind::Redis, "6.2", "7.2", false),
            (ComponentKind::Kafka, "3.9.0", "4.1.2", false),
            (ComponentKind::Kafka, "4.1.2", "3.9.0", true),
            (ComponentKind::Kafka, "4.1.2", "4.1.0", false),
            // Unparseable tags are not this check's business.
            (ComponentKind::Postgres, "latest", "16", false),
        ];
        for (kind, from, to, refused) in cases {
            assert_eq!(
                refuse(kind, from, to).is_some(),
                refused,
                "{kind:?} {from} -> {to}"
            );
        }
    }

    #[test]
    fn a_volume_class_never_changes() {
        use crate::render::{ComponentPlan, Object};
        let sts = |class: Option<&str>| {
            let mut v = serde_json::json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "demo-db-users"},
                "spec": {"template": {"spec": {"containers": [{"image": "postgres:16"}]}},
                         "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}]}});
            if let Some(class) = class {
                v["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = class.into();
            }
            v
        };
        let plan = |class| Plan {
            platform: "demo".into(),
            namespace: "demo".into(),
            components: vec![ComponentPlan {
                name: "users".into(),
                kind: Some(ComponentKind::Postgres),
                backend: crate::api::Backend::Cluster,
                objects: vec![Object {
                    template: "postgres/statefulset.yaml".into(),
                    value: sts(class),
                }],
                external: None,
            }],
        };
        let mut live = Live::default();
        live.insert("StatefulSet", sts(None));
        assert_eq!(check(&plan(None), &live), Ok(()));
        let refused = check(&plan(Some("fast")), &live).unwrap_err();
        assert_eq!(
            refused.change,
            "storageClassName the cluster's default -> \"fast\""
        );
        assert_eq!(refused.component, "postgres/users");
    }

    #[test]
    fn the_tag_is_after_the_last_colon_unless_that_is_a_port() {
        let with = |image: &str| serde_json::json!({"spec": {"template": {"spec": {"containers": [{"image": image}]}}}});
        assert_eq!(
            image_tag(&with("docker.io/library/postgres:16")),
            Some("16")
        );
        assert_eq!(image_tag(&with("registry:5000/postgres")), None);
        assert_eq!(image_tag(&with("postgres")), None);
    }
}
