//! Takes a rendered plan to a cluster safely: server-side apply with field manager `panthera`,
//! zero writes when nothing changed, prune of labelled children the plan no longer contains
//! (never data), readiness waits in dependency order, and fail-fast on stalled workloads.
//! Shared by the CLI and (next) the operator.

mod cloud;
mod diff;
pub mod preflight;
mod readiness;
mod resources;
pub(crate) mod retry;
mod server_version;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde::Serialize;
use serde_json::{Value, json};

pub use diff::{APPLIED_HASH, clean, is_subset, prepare, unchanged, unified};
pub use readiness::Readiness;
pub use resources::{MANAGED, Managed, PVC};
pub use server_version::{MINIMUM_MINOR, check as check_server_version};

pub use crate::cloud::aws::Aws;
use crate::cloud::aws::Planned as AwsPlanned;

use crate::api::{ComponentKind, PantheraPlatform};
use crate::render::{
    ComponentPlan, Generated, LABEL_COMPONENT, LABEL_PLATFORM, LABEL_PLATFORM_COMPONENT, MANAGER,
    Plan, Renderer,
};

/// Annotation on data-store children recording their deletion policy, read by prune and destroy.
pub const DELETION_POLICY: &str = "panthera.dev/deletion-policy";

/// What went wrong, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot reach the Kubernetes API ({source}); check --kubeconfig, --context and that the cluster is up"
    )]
    Unreachable { source: kube::Error },
    #[error(
        "the cluster runs Kubernetes {version}; Panthera needs {minimum} or newer, and this server lacks: {missing}; upgrade the cluster"
    )]
    UnsupportedServer {
        version: String,
        minimum: String,
        missing: String,
    },
    #[error(
        "the server does not serve {resource}: Panthera needs Kubernetes v1.{}+ with every API it manages; upgrade the cluster or enable that API",
        server_version::MINIMUM_MINOR
    )]
    MissingApi { resource: String },
    #[error(
        "forbidden: cannot {verb} {resource} in namespace {namespace}: {message}; grant this to your user or service account"
    )]
    Forbidden {
        verb: String,
        resource: String,
        namespace: String,
        message: String,
    },
    #[error(
        "{id}: fields are owned by another field manager: {message}; change them where they are managed, or rerun with --force-conflicts to take them over"
    )]
    Conflict { id: String, message: String },
    #[error(
        "{id} already exists and is not part of platform {platform}{owner}; rename or delete it, Panthera does not take over objects it did not create"
    )]
    Foreign {
        id: String,
        platform: String,
        owner: String,
    },
    // The server's message only: kube's Display appends a debug dump of the whole Status.
    #[error("cannot {action} {id}: {}", api_message(.source))]
    Api {
        action: &'static str,
        id: String,
        source: kube::Error,
    },
    #[error("render failed: {0}")]
    Render(#[from] crate::render::Error),
    #[error("{component} is stalled: {reason}")]
    Stalled { component: String, reason: String },
    /// Secrets the user provides are missing (see `preflight`); the message says how to create them.
    #[error("{0}")]
    MissingSecrets(String),
    #[error("timed out after {seconds}s; not ready: {pending}")]
    Timeout { seconds: u64, pending: String },
    /// An AWS data store failed. `terminal`: retrying will not help (invalid parameter, quota,
    /// missing credentials, a foreign resource, a refused replace) — report it as Stalled;
    /// otherwise (throttling after the SDK's retries, a busy resource, a network error) retry.
    #[error("{component}: AWS: {message}")]
    Aws {
        component: String,
        message: String,
        terminal: bool,
    },
}

impl Error {
    /// Whether retrying cannot help: the operator reports these as Stalled.
    pub fn is_terminal(&self) -> bool {
        match self {
            Self::Aws { terminal, .. } => *terminal,
            Self::Forbidden { .. }
            | Self::Conflict { .. }
            | Self::Foreign { .. }
            | Self::Render(_)
            | Self::UnsupportedServer { .. }
            | Self::MissingApi { .. }
            | Self::MissingSecrets(_)
            | Self::Stalled { .. } => true,
            Self::Unreachable { .. } | Self::Api { .. } | Self::Timeout { .. } => false,
        }
    }
}

impl From<crate::cloud::aws::Error> for Error {
    fn from(e: crate::cloud::aws::Error) -> Self {
        Self::Aws {
            component: e.component,
            message: e.message,
            terminal: e.terminal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Server-side dry run: nothing is persisted.
    pub dry_run: bool,
    /// Delete labelled children the plan no longer contains.
    pub prune: bool,
    /// Wait for each phase to be ready before the next (data stores, services, gateway).
    pub wait: bool,
    /// Time budget for the whole apply when waiting.
    pub timeout: Duration,
    /// Take over fields owned by other managers.
    pub force_conflicts: bool,
    /// Create the platform's namespace when missing. The operator turns this off: the platform
    /// resource lives in that namespace, and it needs no permission on namespaces.
    pub create_namespace: bool,
    /// Let an AWS data store be replaced (deleted by its deletionPolicy, created again) when a
    /// change cannot be made in place; refused otherwise.
    pub allow_replace: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            prune: false,
            wait: false,
            timeout: Duration::from_secs(300),
            force_conflicts: false,
            create_namespace: true,
            allow_replace: false,
        }
    }
}

/// Progress of an apply, for the CLI's progress bars and the operator's events.
#[derive(Clone, Debug)]
pub enum Event {
    Applied {
        component: String,
        created: usize,
        changed: usize,
        unchanged: usize,
    },
    Waiting {
        component: String,
        reason: String,
        elapsed: Duration,
        budget: Duration,
    },
    Ready {
        component: String,
    },
    Pruned {
        id: String,
    },
}

/// What an object needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Add,
    Change,
    Unchanged,
    Prune,
}

/// One object of a cluster plan.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub component: String,
    pub id: String,
    pub action: Action,
    /// Unified diff (live -> planned) for add, change and prune.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// Result of an apply.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ApplyReport {
    pub created: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
    pub pruned: Vec<String>,
    /// Readiness per component: observed after waiting, or else as the cluster answered the
    /// writes (a workload just written is not ready yet) and as AWS reports its stores.
    pub components: Vec<ComponentState>,
    /// What was planned for each AWS data store (create, modify in place, ... or no change).
    pub aws: Vec<AwsPlanned>,
    /// AWS API calls made by this apply.
    pub aws_calls: usize,
    /// Mutating AWS API calls made by this apply (0 on a re-apply of an unchanged platform).
    pub aws_writes: usize,
    /// With prune: AWS stores no longer in the spec that AWS is still deleting.
    pub aws_waiting: Vec<String>,
}

/// Result of a destroy. The operator keeps its finalizer until `waiting` is empty.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DestroyReport {
    /// Kubernetes objects deleted (`Kind/name`) and AWS resources deleted or retained.
    pub deleted: Vec<String>,
    /// What AWS is still deleting, with what it waits on and for how long, e.g.
    /// `postgres/users: RDS instance shop-users deleting (final snapshot shop-users-final-...), 2m10s`.
    pub waiting: Vec<String>,
}

/// Observed state of one component.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentState {
    pub name: String,
    pub kind: String,
    pub backend: String,
    pub ready: bool,
    /// A workload reports it cannot progress (e.g. its rollout exceeded the progress
    /// deadline): waiting will not help.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stalled: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Objects of the platform's namespace, by kind, as the cluster has them.
#[derive(Debug, Default)]
struct Live {
    /// kind -> name -> object
    objects: HashMap<&'static str, BTreeMap<String, Value>>,
}

impl Live {
    fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects.get(kind).and_then(|m| m.get(name))
    }

    /// Record an object as the server answered a write of it.
    fn insert(&mut self, kind: &str, object: Value) {
        if let Some(managed) = Managed::by_kind(kind) {
            self.objects
                .entry(managed.kind)
                .or_default()
                .insert(name_of(&object).to_string(), object);
        }
    }

    fn owned_by<'a>(
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
}

fn platform_of(o: &Value) -> Option<&str> {
    label(o, LABEL_PLATFORM)
}

fn label<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer(&format!("/metadata/labels/{}", key.replace('/', "~1")))
        .and_then(Value::as_str)
}

fn name_of(o: &Value) -> &str {
    o.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Runs the pipeline against one cluster.
pub struct Engine {
    client: kube::Client,
    renderer: Renderer,
    limiter: retry::Limiter,
    aws: Option<Aws>,
}

impl Engine {
    pub fn new(client: kube::Client, renderer: Renderer) -> Self {
        Self {
            client,
            renderer,
            limiter: retry::Limiter::unlimited(),
            aws: None,
        }
    }

    /// Throttle requests client-side, like kubectl's `--qps`/`--burst`.
    pub fn with_rate_limit(mut self, qps: f64, burst: u32) -> Self {
        self.limiter = retry::Limiter::new(qps, burst);
        self
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    fn api(&self, resource: &ApiResource, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, resource)
    }

    /// List every managed kind in the namespace: one request per kind. Unlabelled objects are kept
    /// too, to refuse taking over an object someone else created under the same name.
    async fn live(&self, namespace: &str, with_pvcs: bool) -> Result<Live> {
        let mut live = Live::default();
        let kinds = MANAGED.iter().chain(with_pvcs.then_some(&PVC));
        for managed in kinds {
            let api = self.api(&managed.api_resource(), namespace);
            let params = ListParams::default();
            let list = retry::call(&self.limiter, || api.list(&params))
                .await
                .map_err(|e| {
                    let id = format!("{} {}", managed.api_version, managed.kind);
                    classify(e, "list", managed.plural, namespace, &id)
                })?;
            let mut by_name = BTreeMap::new();
            for item in list.items {
                let mut value = serde_json::to_value(&item).unwrap_or(Value::Null);
                // Lists omit kind/apiVersion on items; readiness and diffs need them.
                value["kind"] = json!(managed.kind);
                value["apiVersion"] = json!(managed.api_version);
                by_name.insert(name_of(&value).to_string(), value);
            }
            live.objects.insert(managed.kind, by_name);
        }
        Ok(live)
    }

    /// Render with the generated secrets already in the cluster, so passwords are never rotated.
    fn render(&self, platform: &PantheraPlatform, live: &Live) -> Result<Plan> {
        let name = platform.metadata.name.clone().unwrap_or_default();
        let mut known = BTreeMap::new();
        if let Some(secrets) = live.objects.get("Secret") {
            for secret in secrets
                .values()
                .filter(|s| platform_of(s) == Some(name.as_str()))
            {
                let secret_name = name_of(secret).to_string();
                for (key, value) in secret
                    .get("data")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let decoded = value
                        .as_str()
                        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                        .and_then(|b| String::from_utf8(b).ok());
                    if let Some(decoded) = decoded {
                        known.insert((secret_name.clone(), key.clone()), decoded);
                    }
                }
            }
        }
        Ok(self
            .renderer
            .render(platform, &Generated::with_known(known))?)
    }

    async fn ensure_namespace(&self, namespace: &str, dry_run: bool) -> Result<()> {
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ApiResource::from_gvk_with_plural(
                &kube::core::GroupVersionKind::gvk("", "v1", "Namespace"),
                "namespaces",
            ),
        );
        match retry::call(&self.limiter, || api.get_opt(namespace)).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) if dry_run => Ok(()),
            Ok(None) => {
                let ns: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {"app.kubernetes.io/managed-by": MANAGER}},
                }))
                .map_err(|e| Error::Render(crate::render::Error::Spec(e.to_string())))?;
                let params = PostParams::default();
                retry::call(&self.limiter, || api.create(&params, &ns))
                    .await
                    .map(|_| ())
                    .or_else(|e| if is_code(&e, 409) { Ok(()) } else { Err(e) })
                    .map_err(|e| {
                        classify(
                            e,
                            "create",
                            "namespaces",
                            namespace,
                            &format!("Namespace/{namespace}"),
                        )
                    })
            }
            Err(e) => Err(classify(
                e,
                "get",
                "namespaces",
                namespace,
                &format!("Namespace/{namespace}"),
            )),
        }
    }

    /// What apply would do, object by object, with server-side dry-run diffs.
    pub async fn plan(
        &self,
        platform: &PantheraPlatform,
        prune: bool,
        color: bool,
    ) -> Result<Vec<Change>> {
        let (name, namespace) = ids(platform);
        let live = self.live(&namespace, false).await?;
        preflight::check(platform, |name| live.get("Secret", name))?;
        let plan = self.render(platform, &live)?;
        let mut changes = Vec::new();
        // The connection Secrets of AWS stores are written once AWS has an endpoint: never prune them.
        let mut planned = cloud::aws_secret_ids(platform);
        for component in &plan.components {
            for object in &component.objects {
                planned.insert((object.kind().to_string(), object.name().to_string()));
                let desired = prepare(&object.value);
                let current = live.get(object.kind(), object.name());
                check_foreign(current, &object.id(), &name)?;
                if current.is_some_and(|c| unchanged(&desired, c)) {
                    changes.push(Change {
                        component: plan_component_id(component),
                        id: object.id(),
                        action: Action::Unchanged,
                        diff: None,
                    });
                    continue;
                }
                let server = self.patch(&namespace, &desired, true, false).await?;
                let action = if current.is_some() {
                    Action::Change
                } else {
                    Action::Add
                };
                let diff = unified(
                    current.map(clean).as_ref(),
                    Some(&clean(&server)),
                    &object.id(),
                    color,
                );
                let action = if diff.is_none() && action == Action::Change {
                    Action::Unchanged
                } else {
                    action
                };
                changes.push(Change {
                    component: plan_component_id(component),
                    id: object.id(),
                    action,
                    diff,
                });
            }
        }
        if prune {
            for (kind, object) in prune_candidates(&live, &name, &planned) {
                let id = format!("{kind}/{}", name_of(object));
                let component = component_id(
                    label(object, LABEL_COMPONENT),
                    label(object, LABEL_PLATFORM_COMPONENT).unwrap_or("platform"),
                );
                let diff = unified(Some(&clean(object)), None, &id, color);
                changes.push(Change {
                    component,
                    id,
                    action: Action::Prune,
                    diff,
                });
            }
        }
        Ok(changes)
    }

    /// Server-side apply of one prepared object; returns the object as the server has it.
    async fn patch(
        &self,
        namespace: &str,
        desired: &Value,
        dry_run: bool,
        force: bool,
    ) -> Result<Value> {
        let api_version = desired
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = desired
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = name_of(desired).to_string();
        let id = format!("{kind}/{name}");
        let managed = Managed::find(api_version, kind).ok_or_else(|| {
            Error::Render(crate::render::Error::Spec(format!(
                "{id}: {api_version} {kind} is not a kind Panthera manages"
            )))
        })?;
        let api = self.api(&managed.api_resource(), namespace);
        let mut params = PatchParams::apply(MANAGER);
        params.force = force;
        params.dry_run = dry_run;
        let patch = Patch::Apply(desired);
        let result = retry::call(&self.limiter, || api.patch(&name, &params, &patch)).await;
        match result {
            Ok(o) => Ok(serde_json::to_value(&o).unwrap_or(Value::Null)),
            Err(e) if is_code(&e, 409) => Err(Error::Conflict {
                id,
                message: api_message(&e),
            }),
            Err(e) => Err(classify(e, "apply", managed.plural, namespace, &id)),
        }
    }

    /// Apply `platform`: write what changed, optionally wait phase by phase and prune.
    pub async fn apply(
        &self,
        platform: &PantheraPlatform,
        options: &ApplyOptions,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<ApplyReport> {
        let started = Instant::now();
        let (name, namespace) = ids(platform);
        // A namespace that does not exist yet lists empty.
        let mut live = self.live(&namespace, false).await?;
        preflight::check(platform, |name| live.get("Secret", name))?;
        let plan = self.render(platform, &live)?;
        // An object of the plan that belongs to someone else refuses the whole apply before
        // anything is written, not halfway through the phases.
        for object in plan.objects() {
            check_foreign(live.get(object.kind(), object.name()), &object.id(), &name)?;
        }
        if options.create_namespace {
            self.ensure_namespace(&namespace, options.dry_run).await?;
        }
        let mut report = ApplyReport::default();
        // AWS first: every store is planned (and a replace refused) before anything is written.
        let aws = self
            .reconcile_aws(platform, &live, options, started, on_event)
            .await?;
        report.aws = aws.planned;
        report.aws_calls = aws.calls;
        report.aws_writes = aws.writes;
        // The connection Secrets of AWS stores are written once AWS has an endpoint: never prune them.
        let mut planned = cloud::aws_secret_ids(platform);
        for phase in phases(&plan) {
            for component in &phase {
                let (mut created, mut changed, mut same) = (0, 0, 0);
                let extra = aws.secrets.get(&plan_component_id(component));
                for object in component.objects.iter().chain(extra) {
                    planned.insert((object.kind().to_string(), object.name().to_string()));
                    let desired = prepare(&object.value);
                    let current = live.get(object.kind(), object.name());
                    check_foreign(current, &object.id(), &name)?;
                    if current.is_some_and(|c| unchanged(&desired, c)) {
                        same += 1;
                        continue;
                    }
                    let written = self
                        .patch(
                            &namespace,
                            &desired,
                            options.dry_run,
                            options.force_conflicts,
                        )
                        .await?;
                    let existed = current.is_some();
                    if !options.dry_run {
                        live.insert(object.kind(), written);
                    }
                    if existed {
                        changed += 1;
                        report.changed.push(object.id());
                    } else {
                        created += 1;
                        report.created.push(object.id());
                    }
                }
                report.unchanged += same;
                on_event(Event::Applied {
                    component: plan_component_id(component),
                    created,
                    changed,
                    unchanged: same,
                });
            }
            if options.wait && !options.dry_run {
                self.wait_ready(
                    &namespace,
                    &name,
                    &phase,
                    started,
                    options.timeout,
                    on_event,
                )
                .await?;
            }
        }
        if options.prune {
            let candidates: Vec<(String, &'static str, String)> =
                prune_candidates(&live, &name, &planned)
                    .map(|(kind, o)| {
                        (
                            format!("{kind}/{}", name_of(o)),
                            kind,
                            name_of(o).to_string(),
                        )
                    })
                    .collect();
            for (id, kind, object_name) in candidates.into_iter().rev() {
                self.delete(&namespace, kind, &object_name, options.dry_run)
                    .await?;
                on_event(Event::Pruned { id: id.clone() });
                report.pruned.push(id);
            }
            if !options.dry_run {
                self.prune_aws(platform, on_event, &mut report).await?;
            }
        }
        if options.wait && !options.dry_run {
            report.components = self.observe(platform).await?;
        } else if !options.dry_run {
            let mut states = observe_plan(&plan, &live, &name);
            cloud::merge_aws_states(&mut states, aws.states);
            report.components = states;
        }
        Ok(report)
    }

    async fn delete(&self, namespace: &str, kind: &str, name: &str, dry_run: bool) -> Result<()> {
        let Some(managed) = Managed::by_kind(kind) else {
            return Ok(());
        };
        let api = self.api(&managed.api_resource(), namespace);
        let mut params = DeleteParams::background();
        params.dry_run = dry_run;
        match retry::call(&self.limiter, || api.delete(name, &params)).await {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, 404) => Ok(()),
            Err(e) => Err(classify(
                e,
                "delete",
                managed.plural,
                namespace,
                &format!("{kind}/{name}"),
            )),
        }
    }

    /// Wait until every workload of `phase` is ready; fail fast on a stalled one.
    async fn wait_ready(
        &self,
        namespace: &str,
        platform: &str,
        phase: &[&ComponentPlan],
        started: Instant,
        timeout: Duration,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<()> {
        let mut pending: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for c in phase {
            let workloads: Vec<(String, String)> = c
                .objects
                .iter()
                .filter(|o| matches!(o.kind(), "Deployment" | "StatefulSet" | "Job"))
                .map(|o| (o.kind().to_string(), o.name().to_string()))
                .collect();
            if workloads.is_empty() {
                on_event(Event::Ready {
                    component: plan_component_id(c),
                });
            } else {
                pending.insert(plan_component_id(c), workloads);
            }
        }
        let mut interval = Duration::from_millis(100);
        while !pending.is_empty() {
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_secs(2));
            let kinds: BTreeSet<String> =
                pending.values().flatten().map(|(k, _)| k.clone()).collect();
            let mut objects: HashMap<(String, String), Value> = HashMap::new();
            for kind in &kinds {
                let Some(managed) = Managed::by_kind(kind) else {
                    continue;
                };
                let api = self.api(&managed.api_resource(), namespace);
                let selector = format!("{LABEL_PLATFORM}={platform}");
                let params = ListParams::default().labels(&selector);
                let list = retry::call(&self.limiter, || api.list(&params))
                    .await
                    .map_err(|e| classify(e, "list", managed.plural, namespace, kind))?;
                for item in list.items {
                    let mut v = serde_json::to_value(&item).unwrap_or(Value::Null);
                    v["kind"] = json!(kind);
                    objects.insert((kind.clone(), name_of(&v).to_string()), v);
                }
            }
            let mut stuck_pods_checked = false;
            let mut done = Vec::new();
            for (component, workloads) in &pending {
                let mut reasons = Vec::new();
                for (kind, name) in workloads {
                    match objects
                        .get(&(kind.clone(), name.clone()))
                        .map(readiness::of)
                    {
                        Some(Readiness::Ready) => {}
                        Some(Readiness::Stalled(reason)) => {
                            // The pod usually says why (image pull, crash loop) better than the
                            // workload's condition does.
                            let pod = self.stuck_pod(namespace, platform).await?;
                            let reason = match pod {
                                Some((c, pod_reason)) if &c == component => {
                                    format!("{kind}/{name}: {pod_reason}")
                                }
                                _ => format!("{kind}/{name}: {reason}"),
                            };
                            return Err(Error::Stalled {
                                component: component.clone(),
                                reason,
                            });
                        }
                        Some(Readiness::Progressing(r)) => {
                            reasons.push(format!("{kind}/{name}: {r}"))
                        }
                        None => reasons.push(format!("{kind}/{name}: not found")),
                    }
                }
                if reasons.is_empty() {
                    done.push(component.clone());
                    on_event(Event::Ready {
                        component: component.clone(),
                    });
                } else {
                    // A pod that cannot start (bad image, crash loop, missing config) will not
                    // recover by waiting: report it now rather than at the deadline.
                    if !stuck_pods_checked {
                        stuck_pods_checked = true;
                        if let Some((pod_component, reason)) =
                            self.stuck_pod(namespace, platform).await?
                        {
                            return Err(Error::Stalled {
                                component: pod_component,
                                reason,
                            });
                        }
                    }
                    on_event(Event::Waiting {
                        component: component.clone(),
                        reason: reasons.join("; "),
                        elapsed: started.elapsed(),
                        budget: timeout,
                    });
                }
            }
            for c in done {
                pending.remove(&c);
            }
            if !pending.is_empty() && started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    seconds: timeout.as_secs(),
                    pending: pending.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(())
    }

    /// The first pod of the platform whose container waits for a reason that needs a fix.
    async fn stuck_pod(&self, namespace: &str, platform: &str) -> Result<Option<(String, String)>> {
        const STUCK: &[&str] = &[
            "ImagePullBackOff",
            "ErrImagePull",
            "InvalidImageName",
            "CrashLoopBackOff",
            "CreateContainerConfigError",
            "CreateContainerError",
        ];
        let pods = ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("", "v1", "Pod"),
            "pods",
        );
        let api = self.api(&pods, namespace);
        let selector = format!("{LABEL_PLATFORM}={platform}");
        let params = ListParams::default().labels(&selector);
        let list = retry::call(&self.limiter, || api.list(&params))
            .await
            .map_err(|e| classify(e, "list", "pods", namespace, "pods"))?;
        for pod in list.items {
            let v = serde_json::to_value(&pod).unwrap_or(Value::Null);
            let statuses = v
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for s in statuses {
                let reason = s
                    .pointer("/state/waiting/reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if STUCK.contains(&reason) {
                    let message = s
                        .pointer("/state/waiting/message")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let component = component_id(
                        label(&v, LABEL_COMPONENT),
                        label(&v, LABEL_PLATFORM_COMPONENT).unwrap_or("unknown"),
                    );
                    return Ok(Some((
                        component,
                        format!(
                            "pod {} container {}: {reason}: {message}",
                            name_of(&v),
                            s["name"].as_str().unwrap_or("?")
                        ),
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Components and their readiness, read from the children in the cluster.
    pub async fn observe(&self, platform: &PantheraPlatform) -> Result<Vec<ComponentState>> {
        let (name, namespace) = ids(platform);
        let live = self.live(&namespace, false).await?;
        let plan = self.render(platform, &live)?;
        let mut states = observe_plan(&plan, &live, &name);
        self.observe_aws(platform, &mut states).await?;
        Ok(states)
    }

    /// Delete a platform's children in reverse order: gateway, services, then data stores.
    /// Data (PVCs, and the connection Secrets that open it) is kept unless `keep_data` is false
    /// and the store's deletionPolicy is Delete. With an AWS client, the platform's AWS
    /// resources (found by their ownership tags) go by their deletionPolicy too (see
    /// [`crate::cloud::aws::Aws::destroy`]); AWS deletes asynchronously, so call again until
    /// [`DestroyReport::waiting`] is empty.
    /// AWS resources are looked for in the AWS client's region; [`Engine::destroy_platform`]
    /// uses the platform's `spec.aws.region`.
    pub async fn destroy(
        &self,
        platform: &str,
        namespace: &str,
        keep_data: bool,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<DestroyReport> {
        self.destroy_in(platform, namespace, None, true, keep_data, on_event)
            .await
    }

    /// [`Engine::destroy`] of `platform`, looking for its AWS resources in `spec.aws.region`
    /// (the operator's finalizer has the resource at hand).
    pub async fn destroy_platform(
        &self,
        platform: &PantheraPlatform,
        keep_data: bool,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<DestroyReport> {
        let (name, namespace) = ids(platform);
        // Without `spec.aws` the platform never had AWS stores (the CRD requires it for them):
        // no AWS call, so a cluster-only platform needs no AWS credentials.
        let Some(aws) = &platform.spec.aws else {
            return self
                .destroy_in(&name, &namespace, None, false, keep_data, on_event)
                .await;
        };
        self.destroy_in(
            &name,
            &namespace,
            aws.region.as_deref(),
            true,
            keep_data,
            on_event,
        )
        .await
    }

    async fn destroy_in(
        &self,
        platform: &str,
        namespace: &str,
        region: Option<&str>,
        with_aws: bool,
        keep_data: bool,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<DestroyReport> {
        let live = self.live(namespace, true).await?;
        let order = |kind: Option<&str>| match kind {
            Some("gateway") => 0,
            Some("service") => 1,
            Some("postgres" | "redis" | "kafka" | "kafka-topics") => 2,
            _ => 3,
        };
        let mut victims: Vec<(u8, &'static str, &Value)> = live
            .owned_by(platform)
            .filter(|(kind, o)| may_delete(kind, o, keep_data))
            .map(|(kind, o)| (order(label(o, LABEL_COMPONENT)), kind, o))
            .collect();
        victims.sort_by_key(|(rank, kind, o)| (*rank, *kind, name_of(o).to_string()));
        let mut deleted = Vec::new();
        for (_, kind, o) in victims {
            self.delete(namespace, kind, name_of(o), false).await?;
            let id = format!("{kind}/{}", name_of(o));
            on_event(Event::Pruned { id: id.clone() });
            deleted.push(id);
        }
        let mut report = DestroyReport {
            deleted,
            waiting: Vec::new(),
        };
        if with_aws {
            self.destroy_aws(
                platform,
                namespace,
                region,
                keep_data,
                on_event,
                &mut report,
            )
            .await?;
        }
        Ok(report)
    }
}

/// How a component is named in progress, errors and status: `service/users`, `postgres/users`,
/// `redis`, `kafka`, `gateway` (a service and a database may share a name).
pub fn component_id(kind: Option<&str>, name: &str) -> String {
    match kind {
        None => "platform".into(),
        Some(k) if k == name || k == "gateway" => k.to_string(),
        Some(k) => format!("{k}/{name}"),
    }
}

fn plan_component_id(c: &ComponentPlan) -> String {
    component_id(c.kind.map(|k| k.as_str()), &c.name)
}

/// Name and namespace of a platform.
pub fn ids(platform: &PantheraPlatform) -> (String, String) {
    (
        platform.metadata.name.clone().unwrap_or_default(),
        platform
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
    )
}

/// Apply phases: everything up to the data stores, then services, then the gateway.
fn phases(plan: &Plan) -> Vec<Vec<&ComponentPlan>> {
    let rank = |c: &ComponentPlan| match c.kind {
        None | Some(ComponentKind::Postgres | ComponentKind::Redis | ComponentKind::Kafka) => 0,
        Some(ComponentKind::Service) => 1,
        Some(ComponentKind::Gateway) => 2,
    };
    let mut out: Vec<Vec<&ComponentPlan>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for c in &plan.components {
        out[rank(c)].push(c);
    }
    out.retain(|p| !p.is_empty());
    out
}

/// Labelled children not in the plan that prune may delete: never PVCs, never a data store's
/// connection Secret unless its deletion policy is Delete (the data it opens is kept).
fn prune_candidates<'a>(
    live: &'a Live,
    platform: &'a str,
    planned: &'a BTreeSet<(String, String)>,
) -> impl Iterator<Item = (&'static str, &'a Value)> + 'a {
    let mut out: Vec<(&'static str, &'a Value)> = live
        .owned_by(platform)
        .filter(move |(kind, o)| !planned.contains(&(kind.to_string(), name_of(o).to_string())))
        .filter(|(kind, o)| may_delete(kind, o, true))
        .collect();
    let rank = |kind: &str| {
        MANAGED
            .iter()
            .position(|m| m.kind == kind)
            .unwrap_or(usize::MAX)
    };
    out.sort_by_key(|(kind, o)| (rank(kind), name_of(o).to_string()));
    out.into_iter()
}

fn may_delete(kind: &str, o: &Value, keep_data: bool) -> bool {
    let policy = o
        .pointer(&format!(
            "/metadata/annotations/{}",
            DELETION_POLICY.replace('/', "~1")
        ))
        .and_then(Value::as_str);
    match kind {
        "PersistentVolumeClaim" => !keep_data && policy == Some("Delete"),
        "Secret" if policy.is_some() => !keep_data && policy == Some("Delete"),
        _ => true,
    }
}

fn check_foreign(current: Option<&Value>, id: &str, platform: &str) -> Result<()> {
    match current {
        Some(o) if platform_of(o) != Some(platform) => Err(Error::Foreign {
            id: id.to_string(),
            platform: platform.to_string(),
            owner: platform_of(o)
                .map(|p| format!(" (it belongs to platform {p})"))
                .unwrap_or_default(),
        }),
        _ => Ok(()),
    }
}

/// Component states from the live children.
fn observe_plan(plan: &Plan, live: &Live, platform: &str) -> Vec<ComponentState> {
    let mut out = Vec::new();
    for c in plan.components.iter().filter(|c| c.kind.is_some()) {
        let kind = c.kind.map(|k| k.as_str()).unwrap_or_default().to_string();
        if let Some(external) = &c.external {
            out.push(ComponentState {
                name: c.name.clone(),
                kind,
                backend: c.backend.as_str().into(),
                ready: false,
                stalled: false,
                message: format!("no AWS client configured to observe it: {external}"),
                endpoint: None,
            });
            continue;
        }
        let mut problems = Vec::new();
        let mut stalled = false;
        for o in &c.objects {
            match live
                .get(o.kind(), o.name())
                .filter(|l| platform_of(l) == Some(platform))
            {
                None => problems.push(format!("{} missing", o.id())),
                Some(l) => match readiness::of(l) {
                    Readiness::Ready => {}
                    Readiness::Progressing(r) => problems.push(format!("{}: {r}", o.id())),
                    Readiness::Stalled(r) => {
                        stalled = true;
                        problems.push(format!("{}: {r}", o.id()))
                    }
                },
            }
        }
        let endpoint = c
            .objects
            .iter()
            .find(|o| o.kind() == "Service" && !o.name().ends_with("-headless"))
            .map(|o| {
                let port = o
                    .value
                    .pointer("/spec/ports/0/port")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                format!("{}.{}.svc:{port}", o.name(), plan.namespace)
            });
        out.push(ComponentState {
            name: c.name.clone(),
            kind,
            backend: c.backend.as_str().into(),
            ready: problems.is_empty(),
            stalled,
            message: if problems.is_empty() {
                "ready".into()
            } else {
                problems.join("; ")
            },
            endpoint,
        });
    }
    out
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The API server's own words for a refused request (kube's Display adds a debug dump).
pub(crate) fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Turn a client error into what the user can act on.
fn classify(
    e: kube::Error,
    verb: &'static str,
    resource: &str,
    namespace: &str,
    id: &str,
) -> Error {
    match &e {
        kube::Error::Api(s) if s.code == 403 => Error::Forbidden {
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            message: s.message.clone(),
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => Error::Unreachable { source: e },
        // Listing a type the server does not know (a namespace that does not exist lists empty).
        kube::Error::Api(s) if s.code == 404 && verb == "list" => Error::MissingApi {
            resource: format!("{resource} ({id})"),
        },
        _ => Error::Api {
            action: verb,
            id: id.to_string(),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_read_as_the_server_message_without_a_debug_dump() {
        let status = kube::core::Status::failure("namespaces \"nowhere\" not found", "NotFound")
            .with_code(404)
            .boxed();
        let e = classify(
            kube::Error::Api(status),
            "apply",
            "deployments",
            "nowhere",
            "Deployment/web",
        );
        assert_eq!(
            e.to_string(),
            "cannot apply Deployment/web: namespaces \"nowhere\" not found"
        );
    }

    #[test]
    fn a_type_the_server_does_not_serve_is_named_with_the_minimum_version() {
        let status = kube::core::Status::failure(
            "the server could not find the requested resource",
            "NotFound",
        )
        .with_code(404)
        .boxed();
        let e = classify(
            kube::Error::Api(status),
            "list",
            "horizontalpodautoscalers",
            "shop",
            "autoscaling/v2 HorizontalPodAutoscaler",
        );
        assert!(e.is_terminal());
        assert_eq!(
            e.to_string(),
            "the server does not serve horizontalpodautoscalers (autoscaling/v2 HorizontalPodAutoscaler): Panthera needs Kubernetes v1.29+ with every API it manages; upgrade the cluster or enable that API"
        );
    }
}
