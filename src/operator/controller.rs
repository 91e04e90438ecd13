//! The PantheraPlatform controller: watches platforms and (metadata only) their children, and
//! runs the pipeline `dereference -> validate -> render/apply (engine) -> status` per platform.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::metrics::Metrics;
use super::status::{self, Outcome};
use crate::api::{ConditionStatus, PantheraPlatform, PantheraPlatformStatus};
use crate::engine::{self, ApplyOptions, Engine, MANAGED};
use crate::render::LABEL_PLATFORM;

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
        engine::Error::Api { .. } => "ApiError",
        engine::Error::Render(_) => "RenderFailed",
        engine::Error::Stalled { .. } => "WorkloadStalled",
        engine::Error::MissingSecrets(_) => "SecretMissing",
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

/// The platforms' watch (full objects, cached) and a reader of its cache.
pub fn platforms(
    client: &Client,
    settings: &Settings,
) -> (
    Store<Guarded>,
    impl Stream<Item = Result<Guarded, watcher::Error>> + Send + 'static,
) {
    let api: Api<Guarded> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .backoff(WatchBackoff::default())
        .reflect(writer)
        .applied_objects()
        // Status writes (ours included) do not need a reconcile; spec, pause, finalizers and
        // deletion do. Children's changes arrive through their own watches.
        .predicate_filter(what_needs_a_reconcile, PredicateConfig::default());
    (reader, stream)
}

fn what_needs_a_reconcile(platform: &Guarded) -> Option<u64> {
    let meta = platform.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(PAUSE_ANNOTATION))
        .hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0)
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// The controller: platforms plus a metadata-only watch per child kind, mapped back to their
/// platform by the `panthera.dev/platform` label (children carry no ownerReferences, so the
/// garbage collector can never delete data behind the finalizer's back).
pub fn build(
    client: &Client,
    settings: &Settings,
    reader: Store<Guarded>,
    platforms: impl Stream<Item = Result<Guarded, watcher::Error>> + Send + 'static,
) -> Controller<Guarded> {
    let config = controller::Config::default()
        .concurrency(settings.concurrency)
        .debounce(settings.debounce);
    // Every trigger stream's error also pauses the merged trigger stream; kube's default pause
    // grows to 30 s and resets only after two quiet minutes, so a flaky API server would hold
    // back every platform's events. Ours resets on the next event.
    let mut controller = Controller::for_stream(platforms, reader)
        .with_config(config)
        .trigger_backoff(WatchBackoff::default());
    for managed in MANAGED {
        let resource = managed.api_resource();
        // PartialObjectMeta: the API server sends metadata only, which is all the mapping needs.
        let api: Api<PartialObjectMeta<DynamicObject>> = match &settings.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let children = watcher(api, watcher::Config::default().labels(LABEL_PLATFORM))
            .backoff(WatchBackoff::default())
            .touched_objects();
        controller = controller.watches_stream_with(children, platform_of_child, resource);
    }
    controller
}

/// Delay between attempts to restart a failed watch (and before passing on trigger events
/// after an error): 200 ms doubling to 5 s, back to 200 ms after any success. kube's default climbs to 30 s and resets only after two quiet minutes, so
/// a flaky API server would leave the operator blind to changes for half a minute at a time.
#[derive(Clone, Debug)]
struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(5);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

fn platform_of_child(child: PartialObjectMeta<DynamicObject>) -> Option<ObjectRef<Guarded>> {
    let platform = child.labels().get(LABEL_PLATFORM)?;
    let namespace = child.namespace()?;
    Some(ObjectRef::new(platform).within(&namespace))
}

/// One reconcile of one platform.
pub async fn reconcile(guarded: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action> {
    let timer = ctx.metrics.reconcile();
    let key = ObjectRef::from_obj(guarded.as_ref());
    let result = match &guarded.0 {
        Ok(platform) => reconcile_platform(platform, &ctx).await,
        Err(invalid) => stall_undecodable(&guarded, &invalid.error, &ctx).await,
    };
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
    let (name, namespace) = engine::ids(platform);
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
        publish(
            ctx,
            &platform.object_ref(&()),
            EventType::Normal,
            "Applied",
            "Apply",
            note,
        )
        .await;
    }
    let ready = report.components.iter().all(|c| c.ready);
    let stalled = report.components.iter().any(|c| c.stalled);
    let waiting_on_aws_only = !ready
        && report
            .components
            .iter()
            .filter(|c| !c.ready)
            .all(|c| c.backend == "aws");
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
        publish(
            ctx,
            &platform.object_ref(&()),
            EventType::Normal,
            "Deleted",
            "Delete",
            note,
        )
        .await;
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

fn summarize<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let ids: Vec<&String> = ids.collect();
    let shown: Vec<&str> = ids.iter().take(8).map(|s| s.as_str()).collect();
    let more = ids.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Write the status only when it differs from what the object has: a no-op resync writes
/// nothing. Transitions into Stalled are also published as Warning events.
async fn write_status(platform: &PantheraPlatform, outcome: &Outcome, ctx: &Context) -> Result<()> {
    let (name, namespace) = engine::ids(platform);
    let now = now_rfc3339();
    let previous = platform.status.as_ref();
    let gateway_host = platform
        .spec
        .gateway
        .as_ref()
        .and_then(|g| g.host.as_deref());
    let next = status::build(
        previous,
        platform.metadata.generation,
        outcome,
        gateway_host,
        &now,
    );
    if previous == Some(&next) {
        return Ok(());
    }
    let was_stalled = previous.is_some_and(stalled);
    if stalled(&next) && (!was_stalled || previous.map(stall_message) != Some(stall_message(&next)))
    {
        publish(
            ctx,
            &platform.object_ref(&()),
            EventType::Warning,
            "Stalled",
            "Reconcile",
            stall_message(&next).to_string(),
        )
        .await;
    }
    patch_status(&ctx.client, &namespace, &name, &next).await
}

/// Server-side apply of the status subresource, as its own field manager. Read back as a
/// dynamic object: the response must not fail to decode for an object that is malformed.
async fn patch_status(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &PantheraPlatformStatus,
) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &kube::core::ApiResource::erase::<PantheraPlatform>(&()),
    );
    let body = json!({
        "apiVersion": PantheraPlatform::api_version(&()),
        "kind": PantheraPlatform::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(STATUS_MANAGER).force();
    let patch = Patch::Apply(&body);
    // Idempotent: retried on server errors and conflicts like the engine's own writes, so a
    // transient failure does not cost the platform a backoff.
    crate::engine::retry::call(&crate::engine::retry::Limiter::unlimited(), || {
        api.patch_status(name, &params, &patch)
    })
    .await
    .map(|_| ())
    .map_err(|source| Error::Status {
        id: format!("pantheraplatform/{name}"),
        source,
    })
}

fn stalled(status: &PantheraPlatformStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == status::STALLED && c.status == ConditionStatus::True)
}

fn stall_message(status: &PantheraPlatformStatus) -> &str {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == status::STALLED)
        .map(|c| c.message.as_str())
        .unwrap_or_default()
}

/// A platform that does not match the operator's types: say so in its status, once.
async fn stall_undecodable(guarded: &Guarded, error: &str, ctx: &Context) -> Result<Action> {
    let meta = guarded.meta();
    let name = meta.name.clone().unwrap_or_default();
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    // Read as a dynamic object: it does not decode as a PantheraPlatform.
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &namespace,
        &kube::core::ApiResource::erase::<PantheraPlatform>(&()),
    );
    let message = format!("the object does not match PantheraPlatform v1alpha1: {error}");
    let current = api
        .get_status(&name)
        .await
        .ok()
        .and_then(|o| o.data.get("status").cloned())
        .and_then(|s| serde_json::from_value::<PantheraPlatformStatus>(s).ok());
    let outcome = Outcome::Stalled {
        reason: "InvalidObject".into(),
        message: message.clone(),
    };
    let next = status::build(
        current.as_ref(),
        meta.generation,
        &outcome,
        None,
        &now_rfc3339(),
    );
    if current.as_ref() != Some(&next) {
        patch_status(&ctx.client, &namespace, &name, &next).await?;
        publish(
            ctx,
            &guarded.object_ref(&()),
            EventType::Warning,
            "InvalidObject",
            "Reconcile",
            message,
        )
        .await;
    }
    Ok(Action::await_change())
}

/// Record an event on `regarding`. Events are informational: failing to record one must not
/// fail the reconcile.
async fn publish(
    ctx: &Context,
    regarding: &ObjectReference,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        // The events API caps notes at 1 kB.
        note: Some(note.chars().take(1000).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, regarding).await {
        tracing::warn!(error = %e, reason, "cannot publish an event");
    }
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
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

    #[test]
    fn watch_backoff_is_capped_and_resets() {
        use kube::runtime::utils::Backoff;
        let mut b = WatchBackoff::default();
        let delays: Vec<Duration> = b.by_ref().take(7).collect();
        assert_eq!(delays[0], Duration::from_millis(200));
        assert_eq!(delays[6], Duration::from_secs(5));
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(200)));
    }

    #[test]
    fn summaries_stay_short() {
        let ids: Vec<String> = (0..20).map(|i| format!("Deployment/d{i}")).collect();
        let s = summarize(ids.iter());
        assert!(s.ends_with("and 12 more"), "{s}");
    }
}
