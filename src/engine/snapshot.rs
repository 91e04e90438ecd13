//! Step 1, dereference: everything the later steps need to know about the world, read once
//! before anything is decided or written. One [`Snapshot`]: the children in the platform's
//! namespace (listed from the API server, or read from a controller's watch caches) and the
//! platform's AWS data stores.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine as _;
use serde_json::{Value, json};

use super::error::{Result, classify};
use super::retry;
use crate::api::{Kind, LABEL_PLATFORM};
use crate::cloud::aws::Observation;

/// Objects of the platform's namespace, by kind, as the cluster has them. Unlabelled objects
/// are kept too, to refuse taking over an object someone else created under the same name.
#[derive(Clone, Debug, Default)]
pub struct Live {
    /// kind -> name -> object
    objects: HashMap<&'static str, BTreeMap<String, Value>>,
    /// Optional kinds (the Prometheus operator's) the cluster does not serve: not listed, and
    /// not rendered either.
    unserved: BTreeSet<&'static str>,
}

impl Live {
    /// Whether the cluster serves `kind` (every kind, unless discovery found it missing).
    pub fn serves(&self, kind: &str) -> bool {
        !self.unserved.contains(kind)
    }

    /// Record that the cluster does not serve `kind`.
    pub fn mark_unserved(&mut self, kind: &'static str) {
        self.unserved.insert(kind);
    }

    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects.get(kind).and_then(|m| m.get(name))
    }

    /// Record every object of `kind` as listed (lists omit kind/apiVersion on items; readiness
    /// and diffs need them).
    pub fn insert_listed(&mut self, kind: &'static Kind, items: impl IntoIterator<Item = Value>) {
        let by_name = self.objects.entry(kind.kind).or_default();
        for mut value in items {
            value["kind"] = json!(kind.kind);
            value["apiVersion"] = json!(kind.api_version);
            by_name.insert(name_of(&value).to_string(), value);
        }
    }

    /// Record an object as the server answered a write of it.
    pub fn insert(&mut self, kind: &str, object: Value) {
        if let Some(kind) = Kind::named(kind) {
            self.objects
                .entry(kind.kind)
                .or_default()
                .insert(name_of(&object).to_string(), object);
        }
    }

    /// The objects labelled as `platform`'s.
    pub fn owned_by<'a>(
        &'a self,
        platform: &'a str,
    ) -> impl Iterator<Item = (&'static str, &'a Value)> + 'a {
        self.objects.iter().flat_map(move |(kind, objects)| {
            objects
                .values()
                .filter(move |o| platform_of(o) == Some(platform))
                .map(move |o| (*kind, o))
        })
    }

    /// The decoded values of the Secrets `platform` generated, by (Secret, key): rendering
    /// with them keeps passwords from being rotated.
    pub fn generated_secrets(&self, platform: &str) -> BTreeMap<(String, String), String> {
        let mut known = BTreeMap::new();
        for secret in self
            .objects
            .get("Secret")
            .into_iter()
            .flat_map(BTreeMap::values)
            .filter(|s| platform_of(s) == Some(platform))
        {
            for (key, value) in secret
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(decoded) = value.as_str().and_then(decode) {
                    known.insert((name_of(secret).to_string(), key.clone()), decoded);
                }
            }
        }
        known
    }
}

/// A Secret's `data` value as text.
pub fn decode(base64: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(base64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

pub fn platform_of(o: &Value) -> Option<&str> {
    label(o, LABEL_PLATFORM)
}

pub fn label<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1")))
        .and_then(Value::as_str)
}

pub fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
        .and_then(Value::as_str)
}

pub fn name_of(o: &Value) -> &str {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Where dereference reads a namespace's children from when not from the API server: the watch
/// caches of a controller, which already hold them (as informer-backed controllers read theirs).
pub trait ChildCache: Send + Sync {
    /// Every object of `kind` in `namespace`, or `None` when the cache does not hold that kind
    /// (or is not synced yet): then the engine lists it.
    fn objects(&self, kind: &Kind, namespace: &str) -> Option<Vec<Value>>;

    /// Whether the cluster serves an optional kind, if the cache knows (the operator discovers
    /// it once at start); `None`: the engine asks the API server's discovery.
    fn served(&self, _kind: &Kind) -> Option<bool> {
        None
    }
}

/// Everything the later steps read.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub live: Live,
    /// The platform's AWS data stores, as AWS and Secrets Manager have them.
    pub aws: Vec<Observation>,
}

/// List (or read from `cache`) every child kind of `namespace`, plus PVCs with `with_data`.
pub(super) async fn children(
    client: &kube::Client,
    limiter: &retry::Limiter,
    cache: Option<&dyn ChildCache>,
    namespace: &str,
    with_data: bool,
) -> Result<Live> {
    let mut live = Live::default();
    // One discovery request per optional API version, and none when the cache knows.
    let mut discovered: BTreeMap<&str, bool> = BTreeMap::new();
    for kind in Kind::listed(with_data) {
        if kind.optional() {
            let served = match cache.and_then(|c| c.served(kind)) {
                Some(served) => served,
                None => match discovered.get(kind.api_version) {
                    Some(served) => *served,
                    None => {
                        let served = serves(client, limiter, kind).await?;
                        discovered.insert(kind.api_version, served);
                        served
                    }
                },
            };
            if !served {
                live.mark_unserved(kind.kind);
                continue;
            }
        }
        if let Some(objects) = cache.and_then(|c| c.objects(kind, namespace)) {
            live.insert_listed(kind, objects);
            continue;
        }
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(client.clone(), namespace, &kind.api_resource());
        let params = kube::api::ListParams::default();
        let list = retry::call(limiter, || api.list(&params))
            .await
            .map_err(|e| {
                let id = format!("{} {}", kind.api_version, kind.kind);
                classify(e, "list", kind.plural, namespace, &id)
            })?;
        live.insert_listed(
            kind,
            list.items
                .iter()
                .map(|item| serde_json::to_value(item).unwrap_or(Value::Null)),
        );
    }
    Ok(live)
}

/// Whether the API server serves `kind`: its group version is discovered and lists its plural.
/// A group the cluster does not have answers 404.
pub async fn serves(client: &kube::Client, limiter: &retry::Limiter, kind: &Kind) -> Result<bool> {
    let listed = retry::call(limiter, || {
        client.list_api_group_resources(kind.api_version)
    })
    .await;
    match listed {
        Ok(resources) => Ok(resources.resources.iter().any(|r| r.name == kind.plural)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(classify(e, "discover", kind.plural, "", kind.api_version)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, platform: Option<&str>, data: Value) -> Value {
        let mut s = json!({"metadata": {"name": name, "labels": {}}, "data": data});
        if let Some(p) = platform {
            s["metadata"]["labels"][LABEL_PLATFORM] = json!(p);
        }
        s
    }

    #[test]
    fn generated_secrets_are_the_platforms_only_decoded() {
        let mut live = Live::default();
        let kind = Kind::named("Secret").unwrap();
        live.insert_listed(
            kind,
            [
                secret(
                    "shop-db-users",
                    Some("shop"),
                    json!({"password": "c2VjcmV0"}),
                ),
                secret("jwt", None, json!({"key": "a2V5"})),
                secret("other-db", Some("other"), json!({"password": "eA=="})),
            ],
        );
        let known = live.generated_secrets("shop");
        assert_eq!(known.len(), 1);
        assert_eq!(
            known[&("shop-db-users".to_string(), "password".to_string())],
            "secret"
        );
        assert_eq!(live.get("Secret", "jwt").unwrap()["kind"], "Secret");
        assert_eq!(live.owned_by("other").count(), 1);
    }
}
