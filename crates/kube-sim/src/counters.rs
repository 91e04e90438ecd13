//! Request counters by verb, resource and field manager, for tests and benchmarks.

use std::collections::BTreeMap;

use parking_lot::Mutex;

/// `(verb, resource, field_manager)`; resource is `plural` or `plural.group`, the manager is empty
/// for reads and for writes that name none.
pub type CounterKey = (String, String, String);

const WRITE_VERBS: &[&str] = &[
    "create",
    "update",
    "patch",
    "apply",
    "delete",
    "deletecollection",
];

#[derive(Default)]
pub struct Counters {
    inner: Mutex<BTreeMap<CounterKey, u64>>,
}

impl Counters {
    pub fn record(&self, verb: &str, resource: &str, manager: &str) {
        let mut map = self.inner.lock();
        *map.entry((verb.to_owned(), resource.to_owned(), manager.to_owned()))
            .or_insert(0) += 1;
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            by: self.inner.lock().clone(),
        }
    }

    pub fn reset(&self) {
        self.inner.lock().clear();
    }
}

/// Counts at one moment. Verbs: `get`, `list`, `watch`, `create`, `update`, `patch` (merge, JSON,
/// strategic), `apply` (server-side apply), `delete`, `deletecollection`; `/status` writes count
/// under `resource/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub by: BTreeMap<CounterKey, u64>,
}

impl CounterSnapshot {
    pub fn total(&self) -> u64 {
        self.by.values().sum()
    }

    /// Requests that ask to change state (whether or not they changed anything).
    pub fn writes(&self) -> u64 {
        self.by
            .iter()
            .filter(|((verb, _, _), _)| WRITE_VERBS.contains(&verb.as_str()))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn verb(&self, verb: &str) -> u64 {
        self.by
            .iter()
            .filter(|((v, _, _), _)| v == verb)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn get(&self, verb: &str, resource: &str) -> u64 {
        self.by
            .iter()
            .filter(|((v, r, _), _)| v == verb && r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn by_manager(&self, manager: &str) -> u64 {
        self.by
            .iter()
            .filter(|((_, _, m), _)| m == manager)
            .map(|(_, n)| n)
            .sum()
    }
}
