//! Services roll when an AWS store they use moves (a restore into a new instance, a replace):
//! environment variables from a Secret are read once at container start, so a Deployment whose
//! pod template does not change would keep talking to the old endpoint until its pods die.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Names, Plan, short_hash};
use crate::api::{ComponentKind, PantheraPlatform};

/// Pod-template annotation: a short hash of the AWS endpoints the service's pods connect to.
pub const ENDPOINTS_ANNOTATION: &str = "panthera.dev/store-endpoints";

/// Annotate the pod template of every service that uses one of `endpoints` (by store kind and
/// name: `(Postgres, "users")`, `(Redis, "redis")`, `(Kafka, "kafka")`) with a hash of those it
/// uses. Endpoints are host names, never secrets; a service that uses no AWS store is untouched,
/// so the cluster backend renders exactly as before.
pub fn annotate_store_endpoints(
    plan: &mut Plan,
    platform: &PantheraPlatform,
    endpoints: &BTreeMap<(ComponentKind, String), String>,
) {
    let (platform_name, namespace) = platform.ids();
    let names = Names {
        platform: platform_name,
        namespace,
    };
    for service in &platform.spec.services {
        let mut used = Vec::new();
        let mut uses = |kind: ComponentKind, store: &str| {
            if let Some(endpoint) = endpoints.get(&(kind, store.to_string())) {
                used.push(format!("{}/{store}={endpoint}", kind.as_str()));
            }
        };
        if let Some(db) = &service.database {
            uses(ComponentKind::Postgres, db);
        }
        if service.cache {
            uses(ComponentKind::Redis, "redis");
        }
        if !service.topics.is_empty() {
            uses(ComponentKind::Kafka, "kafka");
        }
        if service.search {
            uses(ComponentKind::Search, "search");
        }
        for bucket in &service.buckets {
            uses(ComponentKind::Bucket, bucket);
        }
        if used.is_empty() {
            continue;
        }
        let hash = short_hash(&used.join(","));
        let deployment = names.service(&service.name);
        let Some(object) = plan
            .components
            .iter_mut()
            .flat_map(|c| c.objects.iter_mut())
            .find(|o| o.kind() == "Deployment" && o.name() == deployment)
        else {
            continue;
        };
        if let Some(metadata) = object
            .value
            .pointer_mut("/spec/template/metadata")
            .and_then(Value::as_object_mut)
        {
            let annotations = metadata
                .entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(map) = annotations.as_object_mut() {
                map.insert(ENDPOINTS_ANNOTATION.to_string(), Value::from(hash));
            }
        }
    }
}
