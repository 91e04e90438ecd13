//! The operator's watch caches of the platforms' children, indexed by namespace: the engine's
//! dereference step reads a platform's children here instead of listing every kind, so a
//! resync that finds nothing to do makes no API request, as informer-backed controllers do.
//!
//! Memory is what keeps an operator with thousands of platforms small, so objects are held as
//! compact JSON text (parsed again only when their platform is reconciled), without
//! `managedFields`. Objects that are not a platform's (no `panthera.dev/platform` label) are
//! kept only as what the engine checks of them: that the name is taken, and for Secrets which
//! keys are set — never another owner's secret values.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use kube::api::DynamicObject;
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::api::{Kind, LABEL_PLATFORM};
use crate::engine::ChildCache;

/// name -> compact JSON
type Objects = BTreeMap<String, Arc<str>>;

#[derive(Default)]
struct KindCache {
    /// namespace -> objects; `None` until the first list is complete.
    synced: Option<HashMap<String, Objects>>,
    /// The list being received (a watch (re)start): swapped in when complete, so that readers
    /// keep the previous state meanwhile.
    relisting: HashMap<String, Objects>,
}

/// Children of every watched kind.
#[derive(Default)]
pub struct Children {
    kinds: HashMap<&'static str, RwLock<KindCache>>,
}

impl Children {
    /// A cache for every child kind.
    pub fn new() -> Self {
        Self {
            kinds: Kind::children()
                .map(|k| (k.kind, RwLock::new(KindCache::default())))
                .collect(),
        }
    }

    /// Apply one watch event of `kind`.
    pub fn apply(&self, kind: &Kind, event: &watcher::Event<DynamicObject>) {
        let Some(cache) = self.kinds.get(kind.kind) else {
            return;
        };
        let Ok(mut cache) = cache.write() else {
            return;
        };
        match event {
            watcher::Event::Init => cache.relisting.clear(),
            watcher::Event::InitApply(o) => {
                if let Some((ns, name, text)) = compact(kind, o) {
                    cache.relisting.entry(ns).or_default().insert(name, text);
                }
            }
            watcher::Event::InitDone => {
                let fresh = std::mem::take(&mut cache.relisting);
                cache.synced = Some(fresh);
            }
            watcher::Event::Apply(o) => {
                if let (Some((ns, name, text)), Some(synced)) =
                    (compact(kind, o), &mut cache.synced)
                {
                    synced.entry(ns).or_default().insert(name, text);
                }
            }
            watcher::Event::Delete(o) => {
                if let (Some(ns), Some(name), Some(synced)) = (
                    o.metadata.namespace.as_ref(),
                    o.metadata.name.as_ref(),
                    &mut cache.synced,
                ) && let Some(objects) = synced.get_mut(ns)
                {
                    objects.remove(name);
                    if objects.is_empty() {
                        synced.remove(ns);
                    }
                }
            }
        }
    }

    /// How many objects are cached (all kinds).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.kinds
            .values()
            .filter_map(|c| c.read().ok())
            .filter_map(|c| {
                c.synced
                    .as_ref()
                    .map(|m| m.values().map(BTreeMap::len).sum::<usize>())
            })
            .sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ChildCache for Children {
    fn objects(&self, kind: &Kind, namespace: &str) -> Option<Vec<Value>> {
        let cache = self.kinds.get(kind.kind)?.read().ok()?;
        let synced = cache.synced.as_ref()?;
        Some(
            synced
                .get(namespace)
                .into_iter()
                .flat_map(BTreeMap::values)
                .filter_map(|text| serde_json::from_str(text).ok())
                .collect(),
        )
    }
}

/// (namespace, name, compact JSON) of a watched object.
fn compact(kind: &Kind, o: &DynamicObject) -> Option<(String, String, Arc<str>)> {
    let namespace = o.metadata.namespace.clone()?;
    let name = o.metadata.name.clone()?;
    let owned = o
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(LABEL_PLATFORM));
    let value = if owned {
        let mut value = serde_json::to_value(o).ok()?;
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            // Who owns which field is the server's business; it is most of an object's size.
            meta.remove("managedFields");
        }
        value
    } else {
        let mut stub = json!({"metadata": {"name": name, "namespace": namespace}});
        if let Some(labels) = &o.metadata.labels {
            stub["metadata"]["labels"] = json!(labels);
        }
        if kind.kind == "Secret"
            && let Some(data) = o.data.get("data").and_then(Value::as_object)
        {
            // Which keys hold something, not what.
            let keys: serde_json::Map<String, Value> = data
                .iter()
                .map(|(k, v)| {
                    let set = v.as_str().is_some_and(|s| !s.is_empty());
                    (k.clone(), json!(if set { "c2V0" } else { "" }))
                })
                .collect();
            stub["data"] = Value::Object(keys);
        }
        stub
    };
    Some((namespace, name, Arc::from(value.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, name: &str, platform: Option<&str>, data: Value) -> DynamicObject {
        let mut labels = serde_json::Map::new();
        if let Some(p) = platform {
            labels.insert(LABEL_PLATFORM.into(), json!(p));
        }
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "labels": labels,
                         "managedFields": [{"manager": "panthera"}]},
            "data": data,
        }))
        .unwrap()
    }

    #[test]
    fn nothing_is_served_before_the_first_list_completes() {
        let children = Children::new();
        let secrets = Kind::named("Secret").unwrap();
        assert_eq!(children.objects(secrets, "shop"), None);
        children.apply(secrets, &watcher::Event::Init);
        children.apply(
            secrets,
            &watcher::Event::InitApply(object("Secret", "a", Some("shop"), json!({"k": "dg=="}))),
        );
        assert_eq!(children.objects(secrets, "shop"), None);
        children.apply(secrets, &watcher::Event::InitDone);
        let objects = children.objects(secrets, "shop").unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0]["data"]["k"], "dg==");
        assert!(objects[0]["metadata"].get("managedFields").is_none());
        assert_eq!(children.objects(secrets, "elsewhere"), Some(vec![]));
    }

    #[test]
    fn another_owners_secret_is_held_without_its_values() {
        let children = Children::new();
        let secrets = Kind::named("Secret").unwrap();
        children.apply(secrets, &watcher::Event::Init);
        children.apply(secrets, &watcher::Event::InitDone);
        let theirs = object(
            "Secret",
            "jwt",
            None,
            json!({"key": "c2VjcmV0", "empty": ""}),
        );
        children.apply(secrets, &watcher::Event::Apply(theirs.clone()));
        let cached = &children.objects(secrets, "shop").unwrap()[0];
        assert!(!cached.to_string().contains("c2VjcmV0"), "{cached}");
        assert_ne!(cached["data"]["key"], "");
        assert_eq!(cached["data"]["empty"], "");
        children.apply(secrets, &watcher::Event::Delete(theirs));
        assert_eq!(children.objects(secrets, "shop"), Some(vec![]));
        assert!(children.is_empty());
    }
}
