//! kube-sim: an in-process Kubernetes API server for tests.
//!
//! It serves the real Kubernetes HTTP API (discovery, CRUD, list/watch, patch and server-side
//! apply) on 127.0.0.1 so the real kube-rs client, `kubectl` and Panthera's binaries can be
//! exercised against it. Where it does not implement something it answers with an explicit
//! error `Status` rather than pretending.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_sim::Error> {
//! let sim = kube_sim::KubeSim::builder()
//!     .ready_delay(std::time::Duration::from_millis(100))
//!     .start()
//!     .await?;
//! let client = sim.client()?;
//! # let _ = client;
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod apply;
mod authz;
mod controllers;
mod counters;
mod crd;
mod defaults;
mod discovery;
mod faults;
mod fieldset;
mod kubeconfig;
mod lifecycle;
mod managed;
mod object;
mod patch;
mod resources;
mod scale;
mod selectors;
mod server;
mod state;
mod status;
mod store;
mod typed;
mod validation;
mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use counters::{CounterKey, CounterSnapshot};
pub use faults::{FaultKind, Faults};
pub use status::ApiError;

use state::{SimConfig, SimState, WorkloadFailure};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to bind the API server to {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("failed to write the kubeconfig to {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to build a kube client for {url}: {source}")]
    Client {
        url: String,
        source: Box<kube::Error>,
    },
    #[error("failed to parse the server URL {url}: {message}")]
    Url { url: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The token of the kubeconfig [`KubeSim`] writes: cluster-admin.
const ADMIN_TOKEN: &str = "kube-sim";

/// How the tokens of [`KubeSim::service_account`] start; an unknown one of this form gets 401.
const SERVICE_ACCOUNT_TOKEN_PREFIX: &str = "sim-sa-";

/// Configures a simulator before starting it.
#[derive(Debug, Clone, Default)]
pub struct KubeSimBuilder {
    config: SimConfig,
    port: u16,
    kubeconfig_path: Option<PathBuf>,
}

impl KubeSimBuilder {
    /// How long simulated controllers wait before reporting workloads ready (default 100 ms).
    pub fn ready_delay(mut self, delay: Duration) -> Self {
        self.config.ready_delay = delay;
        self
    }

    /// Port to listen on; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Write the kubeconfig here (and keep it) instead of a temporary file.
    pub fn kubeconfig_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig_path = Some(path.into());
        self
    }

    /// How many past events a watch can resume from before getting 410 Gone (default 10,000).
    pub fn history_limit(mut self, events: usize) -> Self {
        self.config.history_limit = events;
        self
    }

    /// How often watches that allow bookmarks get one (default 5 s).
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.config.bookmark_interval = every;
        self
    }

    /// Server-side timeout for watches that do not set `timeoutSeconds` (default 30 min).
    pub fn watch_timeout(mut self, timeout: Duration) -> Self {
        self.config.default_watch_timeout = timeout;
        self
    }

    pub async fn start(self) -> Result<KubeSim> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let url = format!("http://{local}");
        let kubeconfig = kubeconfig::write(&url, ADMIN_TOKEN, self.kubeconfig_path.as_deref())?;
        let (state, requests) = SimState::new(self.config);
        let app = server::router(state.clone());
        // Subscribed before the initial namespaces exist, so each gets its default ServiceAccount.
        let controller_events = state.store.listen();
        controllers::create_initial_namespaces(&state);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "kube-sim server stopped");
            }
        });
        let controllers =
            tokio::spawn(controllers::run(state.clone(), requests, controller_events));
        tracing::debug!(%url, "kube-sim started");
        Ok(KubeSim {
            state,
            url,
            kubeconfig,
            server,
            controllers,
        })
    }
}

/// A running simulated API server. Dropping it stops serving.
pub struct KubeSim {
    state: Arc<SimState>,
    url: String,
    kubeconfig: kubeconfig::KubeconfigFile,
    server: JoinHandle<()>,
    controllers: JoinHandle<()>,
}

impl KubeSim {
    pub fn builder() -> KubeSimBuilder {
        KubeSimBuilder::default()
    }

    /// Starts with defaults on a random port.
    pub async fn start() -> Result<KubeSim> {
        Self::builder().start().await
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The kubeconfig written for this server (a temporary file removed on drop unless a path
    /// was given to the builder).
    pub fn kubeconfig_path(&self) -> &Path {
        self.kubeconfig.path()
    }

    /// A kube client for this server, as cluster-admin.
    pub fn client(&self) -> Result<kube::Client> {
        client(&self.url, None)
    }

    /// Credentials of the ServiceAccount `namespace/name`: its requests are authorized by the
    /// RBAC objects stored in the simulator, as a real apiserver does (see the `authz` module).
    pub fn service_account(&self, namespace: &str, name: &str) -> Result<ServiceAccountAccess> {
        let token = format!(
            "{SERVICE_ACCOUNT_TOKEN_PREFIX}{namespace}-{name}-{}",
            self.state.tokens.read().len()
        );
        self.state.tokens.write().insert(
            token.clone(),
            authz::Identity::service_account(namespace, name),
        );
        let kubeconfig = kubeconfig::write(&self.url, &token, None)?;
        Ok(ServiceAccountAccess {
            url: self.url.clone(),
            token,
            kubeconfig,
        })
    }

    pub fn counters(&self) -> CounterSnapshot {
        self.state.counters.snapshot()
    }

    pub fn reset_counters(&self) {
        self.state.counters.reset();
    }

    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Makes a Deployment, StatefulSet, Job or PersistentVolumeClaim fail the way a real cluster
    /// shows it: e.g. reason `ImagePullBackOff` leaves a Deployment with Available=False and
    /// Progressing=False/ProgressDeadlineExceeded, and a pod waiting with that reason.
    pub fn fail_workload(&self, ns: &str, kind: &str, name: &str, reason: &str, message: &str) {
        self.state.failures.lock().insert(
            (ns.to_owned(), kind.to_owned(), name.to_owned()),
            WorkloadFailure {
                reason: reason.to_owned(),
                message: message.to_owned(),
            },
        );
        self.request_reconcile(ns, kind, name);
    }

    /// Undoes [`KubeSim::fail_workload`]: the workload becomes ready again after the delay.
    pub fn recover_workload(&self, ns: &str, kind: &str, name: &str) {
        self.state
            .failures
            .lock()
            .remove(&(ns.to_owned(), kind.to_owned(), name.to_owned()));
        self.request_reconcile(ns, kind, name);
    }

    fn request_reconcile(&self, ns: &str, kind: &str, name: &str) {
        let gr = match kind {
            "Deployment" => ("apps", "deployments"),
            "StatefulSet" => ("apps", "statefulsets"),
            "Job" => ("batch", "jobs"),
            "PersistentVolumeClaim" => ("", "persistentvolumeclaims"),
            _ => return,
        };
        let gr = resources::GroupResource {
            group: gr.0.into(),
            resource: gr.1.into(),
        };
        // The controller task lives as long as the simulator.
        let _ = self
            .state
            .reconcile
            .send((gr, ns.to_owned(), name.to_owned()));
    }

    /// Drops all watch history, like etcd compaction: watches from older resourceVersions get 410.
    pub fn compact(&self) {
        self.state.store.compact();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.state.store.current_resource_version()
    }

    /// Number of stored objects of a resource (`plural`, `group`).
    pub fn object_count(&self, group: &str, plural: &str) -> usize {
        self.state.store.count(&resources::GroupResource {
            group: group.into(),
            resource: plural.into(),
        })
    }

    pub async fn shutdown(mut self) {
        self.server.abort();
        self.controllers.abort();
        let _ = (&mut self.server).await;
        let _ = (&mut self.controllers).await;
    }
}

/// A ServiceAccount's way in: a kubeconfig (removed on drop) and clients with its token.
pub struct ServiceAccountAccess {
    url: String,
    token: String,
    kubeconfig: kubeconfig::KubeconfigFile,
}

impl ServiceAccountAccess {
    pub fn kubeconfig_path(&self) -> &Path {
        self.kubeconfig.path()
    }

    /// A kube client that authenticates as the ServiceAccount.
    pub fn client(&self) -> Result<kube::Client> {
        client(&self.url, Some(&self.token))
    }
}

fn client(url: &str, token: Option<&str>) -> Result<kube::Client> {
    let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| Error::Url {
        url: url.to_owned(),
        message: e.to_string(),
    })?;
    let mut config = kube::Config::new(uri);
    config.auth_info.token = token.map(|t| t.to_owned().into());
    kube::Client::try_from(config).map_err(|e| Error::Client {
        url: url.to_owned(),
        source: Box::new(e),
    })
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        self.server.abort();
        self.controllers.abort();
    }
}
