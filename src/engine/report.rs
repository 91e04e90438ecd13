//! The last step: what an apply, plan or destroy did, and each component's state, read from the
//! children as the cluster has them (pure). Also the progress events the steps emit on the way.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::readiness::{self, Readiness};
use super::snapshot::{Live, label, platform_of};
use crate::api::{Backend, ComponentKind, LABEL_COMPONENT, LABEL_PLATFORM_COMPONENT};
use crate::cloud::aws::{Planned as AwsPlanned, StoreState};
use crate::render::{ComponentPlan, Plan};

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

/// A unified diff (live -> planned) of one object, as YAML lines; secret values hashed. The
/// engine leaves presentation (colour) to its caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diff(pub(super) String);

/// What a line of a [`Diff`] is, for whoever paints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffLine {
    /// `--- live/...` and `+++ planned/...`
    Header,
    /// `@@ ... @@`
    Hunk,
    Added,
    Removed,
    Context,
}

impl Diff {
    /// The diff as text, no colour.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Each line with what it is.
    pub fn lines(&self) -> impl Iterator<Item = (DiffLine, &str)> {
        self.0.lines().map(|line| {
            let kind = if line.starts_with("+++") || line.starts_with("---") {
                DiffLine::Header
            } else if line.starts_with("@@") {
                DiffLine::Hunk
            } else if line.starts_with('+') {
                DiffLine::Added
            } else if line.starts_with('-') {
                DiffLine::Removed
            } else {
                DiffLine::Context
            };
            (kind, line)
        })
    }
}

/// One object of a cluster plan.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub component: String,
    pub id: String,
    pub action: Action,
    /// For add, change and prune.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<Diff>,
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
    pub kind: ComponentKind,
    pub backend: Backend,
    pub ready: bool,
    /// A workload reports it cannot progress (e.g. its rollout exceeded the progress
    /// deadline): waiting will not help.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stalled: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// How a component is named in progress, errors and status (see [`ComponentKind::component_id`]);
/// `platform` for the platform-wide objects.
pub fn component_id(kind: Option<ComponentKind>, name: &str) -> String {
    kind.map_or_else(|| "platform".into(), |k| k.component_id(name))
}

/// The component a child (or pod) belongs to, from its labels; `unlabelled` names the
/// component of an object without the component-name label.
pub fn component_of(o: &Value, unlabelled: &str) -> String {
    match label(o, LABEL_COMPONENT) {
        None => "platform".into(),
        Some(kind) => {
            let name = label(o, LABEL_PLATFORM_COMPONENT).unwrap_or(unlabelled);
            if kind == name || kind == ComponentKind::Gateway.as_str() {
                kind.to_string()
            } else {
                format!("{kind}/{name}")
            }
        }
    }
}

pub(super) fn plan_component_id(c: &ComponentPlan) -> String {
    component_id(c.kind, &c.name)
}

/// Component states from the live children; AWS stores from what AWS reported, when known.
pub fn observe(
    plan: &Plan,
    live: &Live,
    platform: &str,
    aws: &[StoreState],
) -> Vec<ComponentState> {
    let mut out = Vec::new();
    for c in plan.components.iter() {
        let Some(kind) = c.kind else { continue };
        if let Some(external) = &c.external {
            let state = aws
                .iter()
                .find(|s| s.store.service.kind() == kind && s.store.name == c.name);
            out.push(match state {
                Some(s) => aws_state(s),
                None => ComponentState {
                    name: c.name.clone(),
                    kind,
                    backend: c.backend,
                    ready: false,
                    stalled: false,
                    message: format!("no AWS client configured to observe it: {external}"),
                    endpoint: None,
                },
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
                Some(l) => {
                    // A StatefulSet waiting for its volumes: the claims say why.
                    let state = match readiness::of(l) {
                        Readiness::Ready => Readiness::Ready,
                        waiting if o.kind() == "StatefulSet" => {
                            readiness::claims(l, |name| live.get("PersistentVolumeClaim", name))
                                .unwrap_or(waiting)
                        }
                        other => other,
                    };
                    match state {
                        Readiness::Ready => {}
                        Readiness::Progressing(r) => problems.push(format!("{}: {r}", o.id())),
                        Readiness::Stalled(r) => {
                            stalled = true;
                            problems.push(format!("{}: {r}", o.id()))
                        }
                    }
                }
            }
        }
        // A bucket in the cluster is reached at its object server's Service.
        let endpoint = service_endpoint(c, &plan.namespace).or_else(|| {
            (kind == ComponentKind::Bucket && c.backend == Backend::Cluster)
                .then(|| {
                    plan.components
                        .iter()
                        .find(|o| o.kind == Some(ComponentKind::Objects))
                        .and_then(|o| service_endpoint(o, &plan.namespace))
                })
                .flatten()
        });
        out.push(ComponentState {
            name: c.name.clone(),
            kind,
            backend: c.backend,
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

/// `{service}.{namespace}.svc:{port}` of a component's client Service, if it has one.
fn service_endpoint(c: &ComponentPlan, namespace: &str) -> Option<String> {
    c.objects
        .iter()
        .find(|o| o.kind() == "Service" && !o.name().ends_with("-headless"))
        .map(|o| {
            let port = o
                .value
                .pointer("/spec/ports/0/port")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            format!("{}.{namespace}.svc:{port}", o.name())
        })
}

/// A store as AWS reports it.
pub(super) fn aws_state(s: &StoreState) -> ComponentState {
    let message = match (&s.endpoint, &s.arn) {
        (Some(_), Some(arn)) if !arn.is_empty() => format!("{} ({arn})", s.message),
        _ => s.message.clone(),
    };
    ComponentState {
        name: s.store.name.clone(),
        kind: s.store.service.kind(),
        backend: Backend::Aws,
        ready: s.ready,
        stalled: false,
        message,
        endpoint: s
            .endpoint
            .clone()
            .or_else(|| s.arn.clone().filter(|a| !a.is_empty())),
    }
}
