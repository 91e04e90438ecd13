//! The PantheraPlatform controller's reconcile: per platform, behind a finalizer, validate and
//! run the engine's pipeline (dereference from the watch caches, render, decide, apply), then
//! write what it found (see `outcome`); on deletion, tear the children down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use tracing::Instrument;

use super::metrics::Metrics;
use super::outcome::{Occurrence, publish, stall_undecodable, summarize, write_status};
use super::status::{self, Outcome};
use crate::api::PantheraPlatform;
use crate::engine::{self, ApplyOptions, Engine};

/// Finalizer that holds a platform until its children are torn down.
pub const FINALIZER: &str = "panthera.dev/teardown";
/// Annotation that pauses reconciliation like `spec.paused`.
pub const PAUSE_ANNOTATION: &str = "panthera.dev/paused";
/// Field manager of the status subresource.
pub const STATUS_MANAGER: &str = "panthera-operator";

/// A platform as watched: one that does not deserialize is still delivered, so that it gets a
/// Stalled status instead of breaking the watch for every other platform.
pub type Guarded = DeserializeGuard<PantheraPlatform>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error("cannot write the status of {id}: {source}")]
    Status { id: String, source: kube::Error },
    #[error("finalizer {FINALIZER}: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Teardown is waiting for AWS to finish deleting; the finalizer stays.
    #[error("waiting for AWS to delete: {0}")]
    DeletionPending(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The metrics label for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Engine(e) => engine_reason(e),
            Error::Status { .. } => "StatusWriteFailed",
            Error::DeletionPending(_) => "DeletionPending",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.reason(),
                _ => "FinalizerFailed",
            },
        }
    }
}

fn engine_reason(e: &engine::Error) -> &'static str {
    match e {
        engine::Error::Unreachable { .. } => "Unreachable",
        engine::Error::UnsupportedServer { .. } => "UnsupportedServer",
        engine::Error::MissingApi { .. } => "MissingApi",
        engine::Error::Forbidden { .. } => "Forbidden",
        engine::Error::Conflict { .. } => "Conflict",
        engine::Error::Foreign { .. } => "ForeignObject",
        engine::Error::Unmanaged { .. } => "UnmanagedKind",
        engine::Error::Api { .. } => "ApiError",
        engine::Error::Render(_) => "RenderFailed",
        engine::Error::Stalled { .. } => "WorkloadStalled",
        engine::Error::MissingSecrets(_) => "SecretMissing",
        engine::Error::UnsafeUpgrade(_) => "UnsafeUpgrade",
        engine::Error::Timeout { .. } => "Timeout",
        engine::Error::Aws { terminal: true, .. } => "AwsRejected",
        engine::Error::Aws { .. } => "AwsError",
    }
}

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Watch one namespace instead of the whole cluster.
    pub namespace: Option<String>,
    /// Re-check a Ready platform this often (makes no writes when nothing drifted).
    pub resync: Duration,
    /// Platforms reconciled at once.
    pub concurrency: u16,
    /// Collect child events for this long before reconciling their platform once.
    pub debounce: Duration,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub engine: Engine,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Consecutive failures per platform, for the backoff.
    failures: Mutex<HashMap<ObjectRef<Guarded>, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        engine: Engine,
        recorder: Recorder,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        Self {
            client,
            engine,
            recorder,
            metrics,
            settings,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

/// One reconcile of one platform.
pub async fn reconcile(guarded: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action> {
    let timer = ctx.metrics.reconcile();
    let key = ObjectRef::from_obj(guarded.as_ref());
    // The root of the reconcile's trace; the pipeline's steps are its children.
    let span = tracing::info_span!(
        "reconcile",
        otel.name = "reconcile",
        otel.status_code = tracing::field::Empty,
        panthera.platform = key.name.as_str(),
        k8s.namespace.name = key.namespace.as_deref().unwrap_or(""),
        error.type = tracing::field::Empty,
    );
    let result = match &guarded.0 {
        Ok(platform) => {
            reconcile_platform(platform, &ctx)
                .instrument(span.clone())
                .await
        }
        Err(invalid) => {
            stall_undecodable(&guarded, &invalid.error, &ctx)
                .instrument(span.clone())
                .await
        }
    };
    if let Err(error) = &result {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", error.reason());
    }
    timer.finish(result.is_ok());
    if result.is_ok()
        && let Ok(mut failures) = ctx.failures.lock()
    {
        failures.remove(&key);
    }
    result
}

/// Retry with exponential backoff per platform, capped at five minutes.
pub fn error_policy(guarded: Arc<Guarded>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error(error.reason());
    let key = ObjectRef::from_obj(guarded.as_ref());
    let attempt = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    let delay = match error {
        // Not a failure: AWS deletes take minutes; poll at a steady pace.
        Error::Finalizer(inner)
            if matches!(
                inner.as_ref(),
                kube::runtime::finalizer::Error::CleanupFailed(Error::DeletionPending(_))
            ) =>
        {
            Duration::from_secs(15)
        }
        _ => backoff(attempt),
    };
    tracing::warn!(platform = %key, attempt, retry_in = ?delay, error = %error, "reconcile failed");
    Action::requeue(delay)
}

fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500).saturating_mul(1 << attempt.min(10));
    base.min(Duration::from_secs(300))
}

async fn reconcile_platform(platform: &PantheraPlatform, ctx: &Arc<Context>) -> Result<Action> {
    let (name, namespace) = platform.ids();
    let api: Api<PantheraPlatform> = Api::namespaced(ctx.client.clone(), &namespace);
    let ctx2 = ctx.clone();
    finalizer(
        &api,
        FINALIZER,
        Arc::new(platform.clone()),
        |event| async move {
            match event {
                Finalizer::Apply(p) => apply(&p, &ctx2).await,
                Finalizer::Cleanup(p) => cleanup(&p, &ctx2).await,
            }
        },
    )
    .await
    .map_err(|e| {
        tracing::debug!(platform = %name, namespace = %namespace, "finalizer step failed");
        Error::Finalizer(Box::new(e))
    })
}

fn is_paused(platform: &PantheraPlatform) -> bool {
    platform.spec.paused
        || platform
            .annotations()
            .get(PAUSE_ANNOTATION)
            .is_some_and(|v| v == "true")
}

async fn apply(platform: &PantheraPlatform, ctx: &Context) -> Result<Action> {
    if is_paused(platform) {
        write_status(platform, &Outcome::Paused, ctx).await?;
        return Ok(Action::await_change());
    }
    // The API server already enforced the CRD's schema and CEL rules; this catches an object
    // stored before the CRD had them, and gives the same messages as `panthera validate`.
    if let Err(diagnostics) = crate::load::validate(platform) {
        let message = diagnostics
            .0
            .iter()
            .map(|d| match &d.path {
                Some(p) => format!("{p}: {}", d.message),
                None => d.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let outcome = Outcome::Stalled {
            reason: "InvalidSpec".into(),
            message,
        };
        write_status(platform, &outcome, ctx).await?;
        return Ok(Action::await_change());
    }
    let options = ApplyOptions {
        prune: true,
        // The platform resource is the source of truth: a field someone changed by hand is
        // taken back (drift correction), where the CLI would stop and ask.
        force_conflicts: true,
        create_namespace: false,
        ..ApplyOptions::default()
    };
    let report = match ctx.engine.apply(platform, &options, &|_| {}).await {
        Ok(report) => report,
        // Errors the same spec will hit again (render errors, a foreign object, a missing
        // permission, AWS refusing a parameter or a quota): Stalled, no retry storm.
        Err(e) if e.is_terminal() => {
            let outcome = Outcome::Stalled {
                reason: engine_reason(&e).into(),
                message: e.to_string(),
            };
            write_status(platform, &outcome, ctx).await?;
            // Nothing changes until the spec or the conflicting object does; a slow retry
            // covers the second, which no watch of ours sees.
            return Ok(Action::requeue(ctx.settings.resync));
        }
        Err(e) => {
            let outcome = Outcome::Retrying {
                reason: engine_reason(&e).into(),
                message: e.to_string(),
            };
            // Best effort: the error itself is what drives the retry.
            if let Err(status_error) = write_status(platform, &outcome, ctx).await {
                tracing::debug!(error = %status_error, "status not written while retrying");
            }
            return Err(e.into());
        }
    };
    let writes = report.created.len() + report.changed.len() + report.pruned.len();
    if writes > 0 {
        ctx.metrics.writes.inc_by(writes as u64);
        let note = format!(
            "{} created, {} changed, {} pruned: {}",
            report.created.len(),
            report.changed.len(),
            report.pruned.len(),
            summarize(
                report
                    .created
                    .iter()
                    .chain(&report.changed)
                    .chain(&report.pruned)
            )
        );
        let regarding = platform.object_ref(&());
        publish(ctx, &regarding, Occurrence::Applied, note).await;
    }
    let ready = report.components.iter().all(|c| c.ready);
    let stalled = report.components.iter().any(|c| c.stalled);
    let waiting_on_aws_only = !ready
        && report
            .components
            .iter()
            .filter(|c| !c.ready)
            .all(|c| c.backend == crate::api::Backend::Aws);
    write_status(platform, &Outcome::Applied(report.components), ctx).await?;
    Ok(if ready {
        Action::requeue(ctx.settings.resync)
    } else if stalled || waiting_on_aws_only {
        // A stalled workload needs a person (its recovery arrives as a child event anyway);
        // RDS, ElastiCache and MSK take minutes to tens of minutes. Polling either every few
        // seconds would only spend API quota.
        Action::requeue(Duration::from_secs(30).min(ctx.settings.resync))
    } else {
        // Child events usually come first; this is the safety net for a missed or dropped
        // watch event while a workload comes up.
        Action::requeue(Duration::from_secs(5).min(ctx.settings.resync))
    })
}

async fn cleanup(platform: &PantheraPlatform, ctx: &Context) -> Result<Action> {
    let terminating = platform.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == status::RECONCILING && c.reason == "Terminating")
    });
    if !terminating {
        let outcome = Outcome::Terminating {
            message: "deleting the gateway, then services, then data stores; data is kept as each store's deletionPolicy says".into(),
        };
        write_status(platform, &outcome, ctx).await?;
    }
    let report = ctx
        .engine
        .destroy_platform(platform, false, &|_| {})
        .await?;
    ctx.metrics.writes.inc_by(report.deleted.len() as u64);
    if !report.deleted.is_empty() {
        let note = format!(
            "deleted {} children: {}",
            report.deleted.len(),
            summarize(report.deleted.iter())
        );
        let regarding = platform.object_ref(&());
        publish(ctx, &regarding, Occurrence::Deleted, note).await;
    }
    if !report.waiting.is_empty() {
        // The finalizer stays until AWS reports every resource gone; the status says which and
        // for how long, so a stuck deletion is never silent.
        let waiting = report.waiting.join("; ");
        let outcome = Outcome::Terminating {
            message: format!("waiting for AWS to delete: {waiting}"),
        };
        write_status(platform, &outcome, ctx).await?;
        return Err(Error::DeletionPending(waiting));
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert!(backoff(5) > backoff(4));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
