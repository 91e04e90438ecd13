//! State shared by the HTTP server, the simulated controllers and the test-facing handle.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;

use crate::authz::Identity;
use crate::counters::Counters;
use crate::faults::Faults;
use crate::resources::{GroupResource, Registry, ResourceType};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub ready_delay: Duration,
    pub bookmark_interval: Duration,
    pub default_watch_timeout: Duration,
    pub history_limit: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            ready_delay: Duration::from_millis(100),
            bookmark_interval: Duration::from_secs(5),
            default_watch_timeout: Duration::from_secs(1800),
            history_limit: 10_000,
        }
    }
}

/// A workload a test made fail: the simulated controller reports this instead of readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadFailure {
    pub reason: String,
    pub message: String,
}

/// `(group, plural, namespace, name)` of an object the controllers should look at again.
pub type ReconcileRequest = (GroupResource, String, String);

pub struct SimState {
    pub store: Store,
    pub registry: RwLock<Registry>,
    pub counters: Counters,
    pub faults: Faults,
    pub config: SimConfig,
    /// keyed by `(namespace, kind, name)`
    pub failures: Mutex<HashMap<(String, String, String), WorkloadFailure>>,
    pub reconcile: mpsc::UnboundedSender<ReconcileRequest>,
    /// Bearer tokens whose requests go through RBAC; any other caller is cluster-admin.
    pub tokens: RwLock<HashMap<String, Identity>>,
}

impl SimState {
    pub fn new(config: SimConfig) -> (Arc<Self>, mpsc::UnboundedReceiver<ReconcileRequest>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(Self {
            store: Store::new(config.history_limit),
            registry: RwLock::new(Registry::with_builtins()),
            counters: Counters::default(),
            faults: Faults::default(),
            config,
            failures: Mutex::new(HashMap::new()),
            reconcile: tx,
            tokens: RwLock::new(HashMap::new()),
        });
        (state, rx)
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.registry.read().lookup(group, version, plural)
    }

    pub fn type_of(&self, gr: &GroupResource) -> Option<Arc<ResourceType>> {
        self.registry.read().any_version(gr)
    }

    pub fn core(&self, plural: &str) -> Option<Arc<ResourceType>> {
        self.lookup("", "v1", plural)
    }
}
