//! Takes a platform to a cluster as one pipeline, the same for the CLI and the operator; each
//! step is a module, and data flows one way through them:
//!
//! 1. [`snapshot`] — dereference: read the children in the platform's namespace (listed, or
//!    from the operator's watch caches) and its AWS stores, once, before anything is decided.
//! 2. [`render`](mod@render) — the whole desired state from the platform and the snapshot
//!    (pure), with the AWS stores' connection Secrets.
//! 3. [`decide`] — per object: create, change, unchanged; per stale child: prune (pure). Plan
//!    shows these decisions; apply carries them out.
//! 4. [`write`] — apply: AWS stores first, then the Kubernetes objects phase by phase, then
//!    prune.
//! 5. [`wait`] — after each phase, until its workloads are ready.
//! 6. [`report`] — what was done, and each component's state.
//!
//! When the AWS step learns something the snapshot did not hold (an endpoint AWS has just
//! published), apply reads the world again and runs the steps once more, rather than patching
//! its own plan halfway.

mod cloud;
pub mod decide;
mod destroy;
mod diff;
mod error;
pub mod preflight;
mod readiness;
pub mod render;
pub mod report;
pub mod retry;
mod server_version;
pub mod snapshot;
pub mod upgrade;
mod wait;
mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use diff::{APPLIED_HASH, clean, is_subset, prepare, unchanged};
pub use error::{Error, Result, api_message};
pub use readiness::Readiness;
pub use report::{
    Action, ApplyReport, Change, ComponentState, DestroyReport, Diff, DiffLine, Event, component_id,
};
pub use server_version::{MINIMUM_MINOR, check as check_server_version};
pub use snapshot::{ChildCache, Live, Snapshot};

use decide::Verdict;

use crate::api::PantheraPlatform;
use crate::cloud::aws::{Aws, Planned as AwsPlanned, StoreState};
use crate::render::Renderer;
use tracing::Instrument;

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

/// What an apply would do: each Kubernetes object, and each AWS data store.
#[derive(Clone, Debug, Default)]
pub struct PlanReport {
    pub changes: Vec<Change>,
    pub aws: Vec<AwsPlanned>,
    /// What the plan leaves out and why (an API the cluster does not serve).
    pub notes: Vec<String>,
}

/// Runs the pipeline against one cluster.
pub struct Engine {
    client: kube::Client,
    renderer: Renderer,
    limiter: retry::Limiter,
    aws: Option<Aws>,
    cache: Option<Arc<dyn ChildCache>>,
}

impl Engine {
    pub fn new(client: kube::Client, renderer: Renderer) -> Self {
        Self {
            client,
            renderer,
            limiter: retry::Limiter::unlimited(),
            aws: None,
            cache: None,
        }
    }

    /// Throttle requests client-side, like kubectl's `--qps`/`--burst`.
    pub fn with_rate_limit(mut self, qps: f64, burst: u32) -> Self {
        self.limiter = retry::Limiter::new(qps, burst);
        self
    }

    /// Read children from `cache` (a controller's watch caches) instead of listing them.
    pub fn with_cache(mut self, cache: Arc<dyn ChildCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Step 1: what is there. `aws_required`: AWS stores need an AWS client (apply, plan).
    async fn dereference(
        &self,
        platform: &PantheraPlatform,
        aws_required: bool,
    ) -> Result<Snapshot> {
        let (_, namespace) = platform.ids();
        let live = snapshot::children(
            &self.client,
            &self.limiter,
            self.cache.as_deref(),
            &namespace,
            false,
        )
        .await?;
        let mut aws = if aws_required {
            self.dereference_aws(platform, true).await?
        } else {
            Vec::new()
        };
        // The edge's origin is the host the gateway's Ingress publishes, once it does.
        let gateway = cloud::gateway_host(&live, platform);
        for o in &mut aws {
            crate::cloud::aws::model::learn_origin(&mut o.store, gateway.as_deref());
        }
        Ok(Snapshot { live, aws })
    }

    /// What apply would do, object by object, with server-side dry-run diffs; and what it would
    /// do to each AWS store.
    pub async fn plan(&self, platform: &PantheraPlatform, prune: bool) -> Result<PlanReport> {
        let (name, namespace) = platform.ids();
        let snapshot = self.dereference(platform, true).await?;
        preflight::check(platform, |secret| snapshot.live.get("Secret", secret))?;
        let desired = render::desired(&self.renderer, platform, &snapshot)?;
        let decisions = decide::decide(&desired.plan, &desired.keep, &snapshot.live, &name, prune)?;
        upgrade::check(&desired.plan, &snapshot.live)?;
        let aws = self.decide_aws(platform, &snapshot.aws)?;
        let mut changes = Vec::new();
        for (component, decision) in decisions.objects() {
            let id = decision.object.id();
            let current = snapshot
                .live
                .get(decision.object.kind(), decision.object.name());
            let mut change = Change {
                component: component.id.clone(),
                id: id.clone(),
                action: decision.verdict.into(),
                diff: None,
            };
            if decision.verdict != Verdict::Unchanged {
                // What the server would store (defaults, admission), not just what was sent.
                let server = self
                    .patch(&namespace, &decision.desired, true, false)
                    .await?;
                change.diff =
                    diff::unified(current.map(clean).as_ref(), Some(&clean(&server)), &id);
                if change.diff.is_none() {
                    change.action = Action::Unchanged;
                }
            }
            changes.push(change);
        }
        for p in &decisions.prune {
            let object = snapshot.live.get(p.kind, &p.name);
            changes.push(Change {
                component: p.component.clone(),
                id: p.id(),
                action: Action::Prune,
                diff: diff::unified(object.map(clean).as_ref(), None, &p.id()),
            });
        }
        Ok(PlanReport {
            changes,
            aws,
            notes: desired.skipped,
        })
    }

    /// Apply `platform`: write what changed, optionally wait phase by phase and prune.
    pub async fn apply(
        &self,
        platform: &PantheraPlatform,
        options: &ApplyOptions,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<ApplyReport> {
        let started = Instant::now();
        let (name, namespace) = platform.ids();
        let mut report = ApplyReport::default();
        // Every AWS call of the apply counts, the reads of dereference included.
        let counted = |aws: &Aws| (aws.calls(), aws.writes());
        let before = self.aws.as_ref().map(counted).unwrap_or_default();
        let mut first_pass = true;
        loop {
            let snapshot = self
                .dereference(platform, true)
                .instrument(step("dereference"))
                .await?;
            step("preflight").in_scope(|| {
                preflight::check(platform, |secret| snapshot.live.get("Secret", secret))
            })?;
            let desired =
                step("render").in_scope(|| render::desired(&self.renderer, platform, &snapshot))?;
            // An object that belongs to someone else refuses the whole apply here, before
            // anything is written.
            let decisions = step("decide").in_scope(|| {
                decide::decide(
                    &desired.plan,
                    &desired.keep,
                    &snapshot.live,
                    &name,
                    options.prune,
                )
            })?;
            // So does a data store's version change that a roll cannot carry out.
            upgrade::check(&desired.plan, &snapshot.live)?;
            if options.create_namespace {
                self.ensure_namespace(&namespace, options.dry_run).await?;
            }
            // AWS first: every store is planned (and a replace refused) before anything is
            // written, and the services need their stores' connection Secrets.
            // A second pass finds the stores the first one created and told of: it is silent.
            let aws_events: &(dyn Fn(Event) + Send + Sync) =
                if first_pass { on_event } else { &|_| {} };
            let aws = self
                .apply_aws(
                    platform,
                    &snapshot.aws,
                    &snapshot.live,
                    options,
                    started,
                    aws_events,
                )
                .instrument(step("apply aws"))
                .await?;
            let edge_waits = aws
                .planned
                .iter()
                .any(|p| p.action == crate::cloud::aws::Action::WaitOrigin);
            if first_pass {
                report.aws = aws.planned;
            }
            if aws.learned && first_pass {
                first_pass = false;
                continue;
            }
            let mut live = snapshot.live;
            for (phase, components) in &decisions.phases {
                let apply_span = step("apply");
                apply_span.record("panthera.phase", tracing::field::debug(phase));
                for component in components {
                    self.write_component(
                        &namespace,
                        component,
                        options,
                        &mut live,
                        &mut report,
                        on_event,
                    )
                    .instrument(apply_span.clone())
                    .await?;
                }
                if options.wait && !options.dry_run {
                    let wait_span = step("wait");
                    wait_span.record("panthera.phase", tracing::field::debug(phase));
                    self.wait_ready(
                        &namespace,
                        &name,
                        components,
                        started,
                        options.timeout,
                        on_event,
                    )
                    .instrument(wait_span)
                    .await?;
                }
            }
            // The gateway exists now: the edge in front of it, once its Ingress has a host.
            if edge_waits && !options.dry_run {
                self.apply_edge(platform, options, started, on_event, &mut report)
                    .instrument(step("apply edge"))
                    .await?;
            }
            if options.prune {
                async {
                    for p in decisions.prune.iter().rev() {
                        self.delete(&namespace, p.kind, &p.name, options.dry_run)
                            .await?;
                        on_event(Event::Pruned { id: p.id() });
                        report.pruned.push(p.id());
                    }
                    if !options.dry_run {
                        self.prune_aws(platform, on_event, &mut report).await?;
                    }
                    Ok::<(), Error>(())
                }
                .instrument(step("prune"))
                .await?;
            }
            if options.wait && !options.dry_run {
                report.components = self.observe(platform).instrument(step("report")).await?;
            } else if !options.dry_run {
                report.components = step("report")
                    .in_scope(|| report::observe(&desired.plan, &live, &name, &aws.states));
            }
            let after = self.aws.as_ref().map(counted).unwrap_or_default();
            report.aws_calls = after.0 - before.0;
            report.aws_writes = after.1 - before.1;
            return Ok(report);
        }
    }

    /// Components and their readiness, read from the children in the cluster and from AWS.
    pub async fn observe(&self, platform: &PantheraPlatform) -> Result<Vec<ComponentState>> {
        let (name, _) = platform.ids();
        let snapshot = self.dereference(platform, false).await?;
        let desired = render::desired(&self.renderer, platform, &snapshot)?;
        let stores: Vec<StoreState> = match &self.aws {
            Some(aws) if !crate::cloud::aws::model::stores(platform).is_empty() => {
                aws.observe(platform).await?
            }
            _ => Vec::new(),
        };
        Ok(report::observe(
            &desired.plan,
            &snapshot.live,
            &name,
            &stores,
        ))
    }
}

impl From<upgrade::UnsafeUpgrade> for Error {
    fn from(u: upgrade::UnsafeUpgrade) -> Self {
        Error::UnsafeUpgrade(u.to_string())
    }
}

impl From<decide::Foreign> for Error {
    fn from(f: decide::Foreign) -> Self {
        Error::Foreign {
            owner: f
                .owner
                .map(|p| format!(" (it belongs to platform {p})"))
                .unwrap_or_default(),
            id: f.id,
            platform: f.platform,
        }
    }
}

/// A span for one step of the pipeline (docs/pipeline.md), exported as a child of the
/// operator's reconcile span when tracing is on.
fn step(name: &'static str) -> tracing::Span {
    tracing::info_span!(
        "step",
        otel.name = name,
        panthera.step = name,
        panthera.phase = tracing::field::Empty,
    )
}
