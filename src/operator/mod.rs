//! `panthera operator`: the in-cluster controller GitOps tools rely on. Same engine as the CLI;
//! leader election on a Lease, `/metrics`, `/healthz`, `/readyz`, graceful shutdown.

mod cache;
pub mod controller;
pub mod install;
pub mod metrics;
mod outcome;
pub mod status;
mod watchers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use crate::engine::Engine;
pub use controller::{FINALIZER, PAUSE_ANNOTATION, STATUS_MANAGER, Settings};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot serve metrics on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up leader election on Lease {namespace}/{name}: {source}")]
    Lease {
        namespace: String,
        name: String,
        source: kube_lease_manager::LeaseManagerError,
    },
    #[error("lost the leader lease {0}; exiting so that a fresh replica takes over")]
    LostLease(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Leader election on a coordination.k8s.io Lease.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub lease_name: String,
    pub lease_namespace: String,
    /// Unique per replica: the pod name.
    pub identity: String,
    /// A lease not renewed for this long may be taken over.
    pub duration: Duration,
    /// The holder renews this long before the lease would expire.
    pub grace: Duration,
}

/// How to run.
pub struct Options {
    pub settings: Settings,
    pub metrics_addr: SocketAddr,
    /// `None`: run without leader election (one replica only).
    pub leader_election: Option<LeaderElection>,
}

/// Run until SIGTERM or Ctrl-C.
pub async fn run(client: Client, engine: Engine, options: Options) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });

    let metrics = Arc::new(metrics::Metrics::default());
    let identity = options
        .leader_election
        .as_ref()
        .map(|l| l.identity.clone())
        .unwrap_or_else(default_identity);
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "panthera-operator".into(),
            instance: Some(identity),
        },
    );
    let (reader, platforms) = watchers::platforms(&client, &options.settings);
    let pending_reader = reader.clone();
    let health = Arc::new(metrics::Health {
        metrics: metrics.clone(),
        ready: false.into(),
        pending: Box::new(move || {
            pending_reader
                .state()
                .iter()
                .filter(|p| match &p.0 {
                    Ok(p) => {
                        p.status.as_ref().and_then(|s| s.observed_generation)
                            != p.metadata.generation
                    }
                    Err(_) => false,
                })
                .count() as i64
        }),
    });
    let server = tokio::spawn(metrics::serve(
        options.metrics_addr,
        health.clone(),
        stopped(stop_rx.clone()),
    ));

    let mut leader = match &options.leader_election {
        Some(election) => Some(elect(&client, election).await?),
        None => None,
    };
    health.ready.store(true, Ordering::Relaxed);

    // Once, at start: a Prometheus operator installed later is picked up by a restart.
    let monitoring = match crate::engine::snapshot::serves(
        &client,
        &crate::engine::retry::Limiter::unlimited(),
        &crate::api::kinds::SERVICE_MONITOR,
    )
    .await
    {
        Ok(served) => {
            tracing::info!(
                served,
                api = crate::api::kinds::MONITORING_API_VERSION,
                "Prometheus operator API discovered"
            );
            Some(served)
        }
        Err(error) => {
            tracing::warn!(%error, "discovering the Prometheus operator API failed; each reconcile asks again");
            None
        }
    };
    let children = Arc::new(cache::Children::new().with_optional_served(monitoring));
    let ctx = Arc::new(controller::Context::new(
        client.clone(),
        engine.with_cache(children.clone()),
        recorder,
        metrics.clone(),
        options.settings.clone(),
    ));
    let elected = match leader.as_mut() {
        Some((rx, _)) => {
            tracing::info!("waiting to become the leader");
            wait_for(rx, true, stop_rx.clone()).await
        }
        None => true,
    };
    if elected {
        tracing::info!("reconciling");
        metrics.leader.set(1);
        // A replica that loses the lease stops and exits (the pod restarts and joins as a
        // follower): a fresh process is the simplest way to drop every decision of the old term.
        let lost = leader.as_ref().map(|(rx, _)| rx.clone());
        let stop = stop_rx.clone();
        let until = async move {
            match lost {
                Some(mut rx) => {
                    tokio::select! {
                        _ = wait_for(&mut rx, false, stop.clone()) => {}
                        _ = stopped(stop) => {}
                    }
                }
                None => stopped(stop).await,
            }
        };
        watchers::build(&client, &options.settings, children, reader, platforms)
            .graceful_shutdown_on(until)
            .run(controller::reconcile, controller::error_policy, ctx)
            .for_each(|result| async move {
                match result {
                    Ok((platform, _)) => tracing::debug!(%platform, "reconciled"),
                    Err(e) => tracing::debug!(error = %e, "reconcile not run"),
                }
            })
            .await;
        metrics.leader.set(0);
    }
    health.ready.store(false, Ordering::Relaxed);
    if let Some((rx, task)) = leader {
        // Closing the channel makes the lease manager release the lease: the next leader
        // takes over at once instead of after the lease expires.
        drop(rx);
        match task.await {
            Ok(Ok(_)) => tracing::info!("released the leader lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the leader lease"),
            Err(e) => tracing::warn!(error = %e, "lease task failed"),
        }
    }
    let _ = server.await;
    match (&options.leader_election, *stop_rx.borrow()) {
        (Some(l), false) => Err(Error::LostLease(format!(
            "{}/{}",
            l.lease_namespace, l.lease_name
        ))),
        _ => Ok(()),
    }
}

type Leader = (
    watch::Receiver<bool>,
    tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
);

async fn elect(client: &Client, election: &LeaderElection) -> Result<Leader> {
    let manager = LeaseManagerBuilder::new(client.clone(), &election.lease_name)
        .with_namespace(&election.lease_namespace)
        .with_identity(&election.identity)
        .with_duration(election.duration.as_secs().max(2))
        .with_grace(election.grace.as_secs().max(1))
        .with_field_manager(format!("panthera-operator/{}", election.identity))
        .build()
        .await
        .map_err(|source| Error::Lease {
            namespace: election.lease_namespace.clone(),
            name: election.lease_name.clone(),
            source,
        })?;
    Ok(manager.watch().await)
}

/// Wait until the leader flag is `want`; false if asked to stop first.
async fn wait_for(rx: &mut watch::Receiver<bool>, want: bool, stop: watch::Receiver<bool>) -> bool {
    let wait = async {
        loop {
            if *rx.borrow_and_update() == want {
                return true;
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    };
    tokio::select! {
        reached = wait => reached,
        _ = stopped(stop) => false,
    }
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The pod name when running in a cluster, else host name and process id.
pub fn default_identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "panthera".into());
        format!("{host}-{}", std::process::id())
    })
}
