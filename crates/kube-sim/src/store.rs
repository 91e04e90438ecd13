//! The object store: every object as JSON, a global resourceVersion counter, and the event history
//! that lets a watch resume from a resourceVersion.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::object::{meta_str, owner_uids, set_resource_version};
use crate::resources::GroupResource;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, shared by the history and every watcher.
#[derive(Debug)]
pub struct WatchEvent {
    pub resource_version: u64,
    pub event_type: EventType,
    pub resource: GroupResource,
    pub namespace: String,
    pub object: Arc<Value>,
    /// The object before a MODIFIED change, so selector watches can turn it into ADDED/DELETED.
    pub previous: Option<Arc<Value>>,
    /// The encoded watch frame, built once however many watchers receive it.
    encoded: OnceLock<Bytes>,
}

impl WatchEvent {
    pub fn frame(&self) -> Bytes {
        self.encoded
            .get_or_init(|| encode_frame(self.event_type.as_str(), &self.object))
            .clone()
    }
}

pub fn encode_frame(event_type: &str, object: &Value) -> Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"{\"type\":\"");
    buf.extend_from_slice(event_type.as_bytes());
    buf.extend_from_slice(b"\",\"object\":");
    // Serialising a serde_json::Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut buf, object);
    buf.extend_from_slice(b"}\n");
    Bytes::from(buf)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to create object: it already exists")]
    AlreadyExists,
    #[error("failed to find object")]
    NotFound,
    #[error("failed to update object: resourceVersion {expected} is stale (current {current})")]
    Conflict { expected: u64, current: u64 },
    #[error("failed to watch: too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Default)]
struct Inner {
    resource_version: u64,
    objects: HashMap<GroupResource, BTreeMap<ObjectKey, Arc<Value>>>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Events with a resourceVersion at or below this are gone from the history.
    compacted: u64,
    /// owner uid -> dependents, for garbage collection.
    dependents: HashMap<String, BTreeSet<(GroupResource, ObjectKey)>>,
}

pub struct Store {
    inner: Mutex<Inner>,
    history_limit: usize,
    events: broadcast::Sender<Arc<WatchEvent>>,
}

/// A new watcher: the events after the requested resourceVersion, then the live feed.
pub struct Subscription {
    pub backlog: Vec<Arc<WatchEvent>>,
    pub live: broadcast::Receiver<Arc<WatchEvent>>,
    pub resource_version: u64,
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        // Watchers that fall this far behind are closed and must re-watch, like the apiserver
        // dropping a slow watcher.
        let (events, _) = broadcast::channel(16_384);
        Self {
            inner: Mutex::new(Inner::default()),
            history_limit: history_limit.max(1),
            events,
        }
    }

    pub fn current_resource_version(&self) -> u64 {
        self.inner.lock().resource_version
    }

    pub fn get(&self, gr: &GroupResource, ns: &str, name: &str) -> Option<Arc<Value>> {
        let inner = self.inner.lock();
        inner
            .objects
            .get(gr)?
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Objects ordered by namespace then name, with the resourceVersion the list is current at.
    pub fn list(&self, gr: &GroupResource, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.inner.lock();
        let items = match inner.objects.get(gr) {
            None => Vec::new(),
            Some(m) => match ns {
                None => m.values().cloned().collect(),
                Some(ns) => m
                    .range((ns.to_owned(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| v.clone())
                    .collect(),
            },
        };
        (items, inner.resource_version)
    }

    pub fn count(&self, gr: &GroupResource) -> usize {
        self.inner.lock().objects.get(gr).map_or(0, BTreeMap::len)
    }

    pub fn namespaces_in_use(&self, ns: &str) -> Vec<(GroupResource, String)> {
        let inner = self.inner.lock();
        let mut out = Vec::new();
        for (gr, objs) in &inner.objects {
            for ((n, name), _) in objs.range((ns.to_owned(), String::new())..) {
                if n != ns {
                    break;
                }
                out.push((gr.clone(), name.clone()));
            }
        }
        out
    }

    pub fn dependents_of(&self, owner_uid: &str) -> Vec<(GroupResource, ObjectKey)> {
        let inner = self.inner.lock();
        inner
            .dependents
            .get(owner_uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn create(&self, gr: &GroupResource, mut obj: Value) -> Result<Arc<Value>> {
        let key = (
            meta_str(&obj, "namespace").to_owned(),
            meta_str(&obj, "name").to_owned(),
        );
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let objs = inner.objects.entry(gr.clone()).or_default();
        if objs.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        inner.resource_version += 1;
        let rv = inner.resource_version;
        set_resource_version(&mut obj, rv);
        let obj = Arc::new(obj);
        objs.insert(key.clone(), obj.clone());
        index_owners(&mut inner.dependents, gr, &key, None, &obj);
        self.record(inner, gr, &key.0, EventType::Added, obj.clone(), None, rv);
        Ok(obj)
    }

    /// Replaces an object only if it is still at `expected` resourceVersion.
    pub fn update(&self, gr: &GroupResource, expected: u64, mut obj: Value) -> Result<Arc<Value>> {
        let key = (
            meta_str(&obj, "namespace").to_owned(),
            meta_str(&obj, "name").to_owned(),
        );
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let current = inner
            .objects
            .get(gr)
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or(StoreError::NotFound)?;
        let current_rv = crate::object::resource_version(&current);
        if current_rv != expected {
            return Err(StoreError::Conflict {
                expected,
                current: current_rv,
            });
        }
        inner.resource_version += 1;
        let rv = inner.resource_version;
        set_resource_version(&mut obj, rv);
        let obj = Arc::new(obj);
        if let Some(m) = inner.objects.get_mut(gr) {
            m.insert(key.clone(), obj.clone());
        }
        index_owners(&mut inner.dependents, gr, &key, Some(&current), &obj);
        self.record(
            inner,
            gr,
            &key.0,
            EventType::Modified,
            obj.clone(),
            Some(current),
            rv,
        );
        Ok(obj)
    }

    /// Removes an object for good; `expected` guards against racing writers.
    pub fn remove(
        &self,
        gr: &GroupResource,
        ns: &str,
        name: &str,
        expected: Option<u64>,
    ) -> Result<Arc<Value>> {
        let key = (ns.to_owned(), name.to_owned());
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let current = inner
            .objects
            .get(gr)
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or(StoreError::NotFound)?;
        let current_rv = crate::object::resource_version(&current);
        if let Some(expected) = expected
            && expected != current_rv
        {
            return Err(StoreError::Conflict {
                expected,
                current: current_rv,
            });
        }
        if let Some(m) = inner.objects.get_mut(gr) {
            m.remove(&key);
        }
        for uid in owner_uids(&current) {
            if let Some(set) = inner.dependents.get_mut(&uid) {
                set.remove(&(gr.clone(), key.clone()));
                if set.is_empty() {
                    inner.dependents.remove(&uid);
                }
            }
        }
        inner.resource_version += 1;
        let rv = inner.resource_version;
        let mut gone = (*current).clone();
        set_resource_version(&mut gone, rv);
        let gone = Arc::new(gone);
        self.record(inner, gr, ns, EventType::Deleted, gone.clone(), None, rv);
        Ok(gone)
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        inner: &mut Inner,
        gr: &GroupResource,
        ns: &str,
        event_type: EventType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
        rv: u64,
    ) {
        let event = Arc::new(WatchEvent {
            resource_version: rv,
            event_type,
            resource: gr.clone(),
            namespace: ns.to_owned(),
            object,
            previous,
            encoded: OnceLock::new(),
        });
        inner.history.push_back(event.clone());
        while inner.history.len() > self.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted = old.resource_version;
            }
        }
        // No receivers is normal: nobody is watching.
        let _ = self.events.send(event);
    }

    /// Forgets all history, as etcd compaction does: watches from an older resourceVersion get 410.
    pub fn compact(&self) {
        let mut inner = self.inner.lock();
        inner.history.clear();
        inner.compacted = inner.resource_version;
    }

    /// Subscribes to changes after `from` (`None`: only future changes).
    pub fn subscribe(&self, from: Option<u64>) -> Result<Subscription> {
        let inner = self.inner.lock();
        let live = self.events.subscribe();
        let backlog = match from {
            None => Vec::new(),
            Some(rv) => {
                if rv < inner.compacted {
                    return Err(StoreError::Expired {
                        requested: rv,
                        oldest: inner.compacted + 1,
                    });
                }
                let start = inner.history.partition_point(|e| e.resource_version <= rv);
                inner.history.iter().skip(start).cloned().collect()
            }
        };
        Ok(Subscription {
            backlog,
            live,
            resource_version: inner.resource_version,
        })
    }

    /// The objects at this moment and a subscription to every later change, taken atomically so
    /// a watch that starts with synthetic ADDED events neither misses nor repeats a change.
    pub fn snapshot_and_subscribe(
        &self,
        gr: &GroupResource,
        ns: Option<&str>,
    ) -> (Vec<Arc<Value>>, Subscription) {
        let inner = self.inner.lock();
        let live = self.events.subscribe();
        let items = match inner.objects.get(gr) {
            None => Vec::new(),
            Some(m) => m
                .iter()
                .filter(|((n, _), _)| ns.is_none_or(|ns| ns == n))
                .map(|(_, v)| v.clone())
                .collect(),
        };
        (
            items,
            Subscription {
                backlog: Vec::new(),
                live,
                resource_version: inner.resource_version,
            },
        )
    }

    /// Listens to every change (for the simulated controllers).
    pub fn listen(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.events.subscribe()
    }

    pub fn oldest_resource_version(&self) -> u64 {
        self.inner.lock().compacted
    }
}

fn index_owners(
    dependents: &mut HashMap<String, BTreeSet<(GroupResource, ObjectKey)>>,
    gr: &GroupResource,
    key: &ObjectKey,
    old: Option<&Value>,
    new: &Value,
) {
    let entry = (gr.clone(), key.clone());
    if let Some(old) = old {
        for uid in owner_uids(old) {
            if let Some(set) = dependents.get_mut(&uid) {
                set.remove(&entry);
                if set.is_empty() {
                    dependents.remove(&uid);
                }
            }
        }
    }
    for uid in owner_uids(new) {
        dependents.entry(uid).or_default().insert(entry.clone());
    }
}
