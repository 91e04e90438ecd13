//! The operator's watch caches of the platforms' children, indexed by namespace: the engine's
//! dereference step reads a platform's children here instead of listing every kind, so a
//! resync that finds nothing to do makes no API request, as informer-backed controllers do.
//!
//! Memory is what keeps an operator with thousands of platforms small, so objects are held as
//! compact JSON text without `managedFields`, compressed, and parsed again only when their
//! platform is reconciled. Platforms render from the same templates, so the children of one kind
//! differ mostly in names: each kind compresses its objects with the first object it held as
//! the dictionary (LZ4 block format), which stores a child in a tenth of its text. Objects that
//! are not a platform's (no `panthera.dev/platform` label) are kept only as what the engine
//! checks of them: that the name is taken, and for Secrets which keys are set — never another
//! owner's secret values.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use kube::api::DynamicObject;
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::api::{Kind, LABEL_PLATFORM};
use crate::engine::ChildCache;

/// name -> object
type Objects = BTreeMap<String, Stored>;

/// One cached object.
enum Stored {
    /// A platform's child: compact JSON compressed against the kind's dictionary.
    Packed(Box<[u8]>),
    /// What is kept of anyone else's object (a few names and keys): compact JSON.
    Stub(Box<str>),
}

/// LZ4 looks back at most 64 KiB, so a longer dictionary would be dead weight.
const DICTIONARY_MAX: usize = 64 * 1024;

#[derive(Default)]
struct KindCache {
    /// namespace -> objects; `None` until the first list is complete.
    synced: Option<HashMap<String, Objects>>,
    /// The list being received (a watch (re)start): swapped in when complete, so that readers
    /// keep the previous state meanwhile.
    relisting: HashMap<String, Objects>,
    /// The first platform child this kind held, as text: every child of the kind is
    /// compressed against it. Never replaced, so that what is stored can always be read back.
    dictionary: Option<Box<[u8]>>,
}

impl KindCache {
    fn store(&mut self, compact: Compact) -> Stored {
        if !compact.owned {
            return Stored::Stub(compact.text.into_boxed_str());
        }
        let text = compact.text.as_bytes();
        let dictionary = self
            .dictionary
            .get_or_insert_with(|| text[text.len().saturating_sub(DICTIONARY_MAX)..].into());
        Stored::Packed(
            lz4_flex::block::compress_prepend_size_with_dict(text, dictionary).into_boxed_slice(),
        )
    }

    fn load(&self, stored: &Stored) -> Option<Value> {
        match stored {
            Stored::Stub(text) => serde_json::from_str(text).ok(),
            Stored::Packed(packed) => {
                let dictionary = self.dictionary.as_deref().unwrap_or_default();
                let text = lz4_flex::block::decompress_size_prepended_with_dict(packed, dictionary)
                    .ok()?;
                serde_json::from_slice(&text).ok()
            }
        }
    }
}

/// Children of every watched kind.
#[derive(Default)]
pub struct Children {
    kinds: HashMap<&'static str, RwLock<KindCache>>,
    /// Whether the cluster served the optional kinds when the operator started; `None`:
    /// unknown (discovery failed), the engine asks at each reconcile.
    optional_served: Option<bool>,
}

impl Children {
    /// A cache for every child kind.
    pub fn new() -> Self {
        Self {
            kinds: Kind::children()
                .map(|k| (k.kind, RwLock::new(KindCache::default())))
                .collect(),
            optional_served: None,
        }
    }

    /// Remember what discovery said of the optional kinds (the Prometheus operator's): the
    /// watches and every reconcile follow it, with no discovery request per reconcile.
    pub fn with_optional_served(mut self, served: Option<bool>) -> Self {
        self.optional_served = served;
        self
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
                if let Some(compact) = compact(kind, o) {
                    let (ns, name) = (compact.namespace.clone(), compact.name.clone());
                    let stored = cache.store(compact);
                    cache.relisting.entry(ns).or_default().insert(name, stored);
                }
            }
            watcher::Event::InitDone => {
                let fresh = std::mem::take(&mut cache.relisting);
                cache.synced = Some(fresh);
            }
            watcher::Event::Apply(o) => {
                if cache.synced.is_some()
                    && let Some(compact) = compact(kind, o)
                {
                    let (ns, name) = (compact.namespace.clone(), compact.name.clone());
                    let stored = cache.store(compact);
                    if let Some(synced) = &mut cache.synced {
                        synced.entry(ns).or_default().insert(name, stored);
                    }
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

    /// Bytes held for the objects (all kinds), and the bytes of their JSON text.
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        let mut sizes = (0, 0);
        for cache in self.kinds.values().filter_map(|c| c.read().ok()) {
            for stored in cache
                .synced
                .iter()
                .flat_map(HashMap::values)
                .flat_map(BTreeMap::values)
            {
                let held = match stored {
                    Stored::Packed(packed) => packed.len(),
                    Stored::Stub(text) => text.len(),
                };
                sizes.0 += held;
                sizes.1 += cache.load(stored).map_or(0, |v| v.to_string().len());
            }
        }
        sizes
    }
}

impl ChildCache for Children {
    fn served(&self, kind: &Kind) -> Option<bool> {
        if kind.optional() {
            self.optional_served
        } else {
            Some(true)
        }
    }

    fn objects(&self, kind: &Kind, namespace: &str) -> Option<Vec<Value>> {
        let cache = self.kinds.get(kind.kind)?.read().ok()?;
        let synced = cache.synced.as_ref()?;
        Some(
            synced
                .get(namespace)
                .into_iter()
                .flat_map(BTreeMap::values)
                .filter_map(|stored| cache.load(stored))
                .collect(),
        )
    }
}

/// A watched object as it is cached.
struct Compact {
    namespace: String,
    name: String,
    /// Compact JSON.
    text: String,
    /// A platform's child (labelled), rather than a stub of someone else's object.
    owned: bool,
}

fn compact(kind: &Kind, o: &DynamicObject) -> Option<Compact> {
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
    Some(Compact {
        namespace,
        name,
        text: value.to_string(),
        owned,
    })
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

    /// Caches whose first list of `kind` found nothing.
    fn listed(kind: &str) -> (Children, &'static Kind) {
        let children = Children::new();
        let kind = Kind::named(kind).unwrap();
        children.apply(kind, &watcher::Event::Init);
        children.apply(kind, &watcher::Event::InitDone);
        (children, kind)
    }

    /// A platform's Deployment as the API server has it, with its names.
    fn deployment(platform: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": format!("{platform}-users"), "namespace": platform,
                "uid": format!("0b5c{platform}-6f1e-4e8a-9d3c-5a7e1f2b3c4d"),
                "resourceVersion": "1234", "generation": 1,
                "labels": {LABEL_PLATFORM: platform, "app.kubernetes.io/instance": format!("{platform}-users"),
                           "app.kubernetes.io/managed-by": "panthera", "app.kubernetes.io/part-of": platform},
                "annotations": {"panthera.dev/applied-hash": "647fad0c"},
                "managedFields": [{"manager": "panthera", "operation": "Apply"}],
            },
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/instance": format!("{platform}-users")}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/instance": format!("{platform}-users")}},
                    "spec": {"serviceAccountName": format!("{platform}-users"), "automountServiceAccountToken": false,
                        "containers": [{"name": "users", "image": "ghcr.io/panthera-dev/panthera-users:0.1.0",
                            "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": format!("{platform}-db-users"), "key": "url"}}}],
                            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
                            "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}}]}}},
            "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1, "availableReplicas": 1},
        }))
        .unwrap()
    }

    #[test]
    fn children_of_one_kind_are_stored_compressed_and_read_back_whole() {
        let (children, deployments) = listed("Deployment");
        let platforms: Vec<String> = (0..200).map(|i| format!("p{i:04}")).collect();
        for p in &platforms {
            children.apply(deployments, &watcher::Event::Apply(deployment(p)));
        }
        for p in &platforms {
            let cached = children.objects(deployments, p).unwrap();
            let mut expected = serde_json::to_value(deployment(p)).unwrap();
            expected["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("managedFields");
            assert_eq!(cached, vec![expected]);
        }
        let (stored, text) = children.sizes();
        assert!(
            stored * 4 < text,
            "{stored} bytes stored for {text} bytes of JSON"
        );
    }

    #[test]
    fn another_owners_secret_is_held_without_its_values() {
        let (children, secrets) = listed("Secret");
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
