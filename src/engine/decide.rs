//! Step 3, decide (pure): for every object of the desired state, create, change or leave
//! alone; for every child the plan no longer holds, whether prune may delete it. `plan` and
//! `apply` both act on these decisions, so what one shows is what the other does.

use std::collections::BTreeSet;

use serde_json::Value;

use super::diff::{prepare, unchanged};
use super::report::{Action, component_of, plan_component_id};
use super::snapshot::{Live, annotation, name_of, platform_of};
use crate::api::{ComponentKind, DELETION_POLICY, Kind, Phase};
use crate::render::{ComponentPlan, Object, Plan};

/// An object of the plan exists and belongs to someone else: nothing may be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id} is not part of platform {platform}")]
pub struct Foreign {
    pub id: String,
    pub platform: String,
    /// The platform it belongs to, when another platform's.
    pub owner: Option<String>,
}

/// What to do with one object of the plan (pruning is decided apart, in [`Prune`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not in the cluster: create it.
    Add,
    /// In the cluster and different: apply it.
    Change,
    /// In the cluster as planned: no request.
    Unchanged,
}

impl From<Verdict> for Action {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Add => Action::Add,
            Verdict::Change => Action::Change,
            Verdict::Unchanged => Action::Unchanged,
        }
    }
}

/// One object of the plan and what to do with it.
#[derive(Debug)]
pub struct Decision<'a> {
    pub object: &'a Object,
    /// The object as it is sent (see [`prepare`]).
    pub desired: Value,
    pub verdict: Verdict,
}

/// The decisions of one component.
#[derive(Debug)]
pub struct ComponentDecisions<'a> {
    pub component: &'a ComponentPlan,
    /// `service/users`, `postgres/users`, `gateway`, ...
    pub id: String,
    pub objects: Vec<Decision<'a>>,
}

/// A child prune may delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prune {
    pub kind: &'static str,
    pub name: String,
    pub component: String,
}

impl Prune {
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// Everything an apply would do to the cluster, in order.
#[derive(Debug)]
pub struct Decisions<'a> {
    /// Components by apply phase, phases in order; empty phases left out.
    pub phases: Vec<(Phase, Vec<ComponentDecisions<'a>>)>,
    /// With prune: children to delete, in apply order (deleted in reverse).
    pub prune: Vec<Prune>,
}

impl Decisions<'_> {
    pub fn objects(&self) -> impl Iterator<Item = (&ComponentDecisions<'_>, &Decision<'_>)> {
        self.phases
            .iter()
            .flat_map(|(_, components)| components)
            .flat_map(|c| c.objects.iter().map(move |o| (c, o)))
    }
}

/// Decide every object of `plan` against `live`. Refuses the whole plan when any object
/// belongs to someone else, before anything is written.
pub fn decide<'a>(
    plan: &'a Plan,
    keep: &BTreeSet<(String, String)>,
    live: &Live,
    platform: &str,
    prune: bool,
) -> Result<Decisions<'a>, Foreign> {
    for object in plan.objects() {
        check_foreign(
            live.get(object.kind(), object.name()),
            &object.id(),
            platform,
        )?;
    }
    let mut phases: Vec<(Phase, Vec<ComponentDecisions<'a>>)> = Vec::new();
    for phase in Phase::ALL {
        let components: Vec<ComponentDecisions<'a>> = plan
            .components
            .iter()
            .filter(|c| Phase::of(c.kind) == phase)
            .map(|component| ComponentDecisions {
                component,
                id: plan_component_id(component),
                objects: component
                    .objects
                    .iter()
                    .map(|object| object_decision(object, live))
                    .collect(),
            })
            .collect();
        if !components.is_empty() {
            phases.push((phase, components));
        }
    }
    let prune = if prune {
        let mut planned = keep.clone();
        planned.extend(
            plan.objects()
                .map(|o| (o.kind().to_string(), o.name().to_string())),
        );
        prune_candidates(live, platform, &planned)
    } else {
        Vec::new()
    };
    Ok(Decisions { phases, prune })
}

fn object_decision<'a>(object: &'a Object, live: &Live) -> Decision<'a> {
    let desired = prepare(&object.value);
    let verdict = match live.get(object.kind(), object.name()) {
        Some(current) if unchanged(&desired, current) => Verdict::Unchanged,
        Some(_) => Verdict::Change,
        None => Verdict::Add,
    };
    Decision {
        object,
        desired,
        verdict,
    }
}

/// `current` (the live object of that name) may be written by `platform`.
pub fn check_foreign(current: Option<&Value>, id: &str, platform: &str) -> Result<(), Foreign> {
    match current {
        Some(o) if platform_of(o) != Some(platform) => Err(Foreign {
            id: id.to_string(),
            platform: platform.to_string(),
            owner: platform_of(o).map(str::to_string),
        }),
        _ => Ok(()),
    }
}

/// Labelled children not in `planned` that prune may delete, in apply order (delete them in
/// reverse). Never data: no PVC and no data store's connection Secret (it opens the data, which
/// prune keeps whatever the deletion policy; destroy applies the policy).
pub fn prune_candidates(
    live: &Live,
    platform: &str,
    planned: &BTreeSet<(String, String)>,
) -> Vec<Prune> {
    let mut out: Vec<Prune> = live
        .owned_by(platform)
        .filter(|(kind, o)| !planned.contains(&(kind.to_string(), name_of(o).to_string())))
        .filter(|(kind, o)| may_delete(kind, o, true))
        .map(|(kind, o)| Prune {
            kind,
            name: name_of(o).to_string(),
            component: component_of(o, "platform"),
        })
        .collect();
    out.sort_by_key(|p| (Kind::rank(p.kind), p.name.clone()));
    out
}

/// Whether a child may be deleted: data (PVCs, and the connection Secrets that open it) only
/// when `keep_data` is false and the store's deletion policy is Delete.
pub fn may_delete(kind: &str, o: &Value, keep_data: bool) -> bool {
    let policy = annotation(o, DELETION_POLICY);
    let delete = policy == Some("Delete");
    match kind {
        "PersistentVolumeClaim" => !keep_data && delete,
        "Secret" if policy.is_some() => !keep_data && delete,
        _ => true,
    }
}

/// Teardown order by a child's component label: the gateway first, then the services, then
/// the data stores (and their topic jobs), then the rest.
pub fn teardown_rank(component_label: Option<&str>) -> u8 {
    match component_label {
        Some("kafka-topics") => 2,
        Some(l) => match ComponentKind::from_label(l).map(|k| Phase::of(Some(k))) {
            Some(Phase::Gateway) => 0,
            Some(Phase::Services) => 1,
            Some(Phase::DataStores) => 2,
            None => 3,
        },
        None => 3,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
