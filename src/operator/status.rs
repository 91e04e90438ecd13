//! The status contract (DESIGN.md), computed from what a reconcile found. Pure: the same outcome
//! and previous status give the same status, so a resync that finds nothing new writes nothing.

use crate::api::{
    ComponentKind, ComponentStatus, Condition, ConditionStatus, PantheraPlatformStatus,
};
use crate::engine::ComponentState;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// What one reconcile of a platform came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Children are applied; readiness per component.
    Applied(Vec<ComponentState>),
    /// `spec.paused` or the pause annotation: nothing is written to the children.
    Paused,
    /// The spec cannot be reconciled as it is; retrying will not help until it changes.
    Stalled { reason: String, message: String },
    /// A transient failure; the controller retries with backoff.
    Retrying { reason: String, message: String },
    /// Deletion is in progress; `message` says what it waits on.
    Terminating { message: String },
}

/// The status for `generation` after `outcome`, keeping transition times of conditions whose
/// value did not change.
pub fn build(
    previous: Option<&PantheraPlatformStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    gateway_host: Option<&str>,
    now: &str,
) -> PantheraPlatformStatus {
    let previous_components = previous.map(|p| p.components.clone()).unwrap_or_default();
    let (ready, reconciling, stalled, components) = match outcome {
        Outcome::Applied(states) => {
            let components: Vec<ComponentStatus> = states.iter().map(component).collect();
            let waiting: Vec<String> = components
                .iter()
                .filter(|c| !c.ready)
                .map(|c| format!("{}: {}", c.name, c.message))
                .collect();
            let stalled: Vec<String> = states
                .iter()
                .filter(|c| c.stalled)
                .map(|c| format!("{}: {}", c.name, c.message))
                .collect();
            if !stalled.is_empty() {
                // A workload that cannot progress (rollout past its progress deadline) needs
                // someone to act: kstatus Stalled, not an endless Reconciling.
                let message = truncate(&stalled.join("; "));
                (
                    (ConditionStatus::False, "WorkloadStalled", message.clone()),
                    (ConditionStatus::False, "WorkloadStalled", message.clone()),
                    (ConditionStatus::True, "WorkloadStalled", message),
                    components,
                )
            } else if waiting.is_empty() {
                let message = format!("all {} components are ready", components.len());
                (
                    (ConditionStatus::True, "Ready", message.clone()),
                    (ConditionStatus::False, "Ready", message.clone()),
                    (ConditionStatus::False, "Ready", message),
                    components,
                )
            } else {
                let message = format!("waiting for {}", truncate(&waiting.join("; ")));
                (
                    (ConditionStatus::False, "Progressing", message.clone()),
                    (ConditionStatus::True, "Progressing", message),
                    (ConditionStatus::False, "Progressing", String::new()),
                    components,
                )
            }
        }
        Outcome::Paused => {
            let message = "reconciliation is paused (spec.paused or the panthera.dev/paused annotation); children are not changed".to_string();
            // Readiness is whatever it was: pausing does not make a platform unready.
            let ready = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == READY))
                .map(|c| (c.status, c.reason.clone(), c.message.clone()))
                .unwrap_or((ConditionStatus::Unknown, "Paused".into(), message.clone()));
            return assemble(
                previous,
                generation,
                [
                    (READY, ready.0, ready.1, ready.2),
                    (
                        RECONCILING,
                        ConditionStatus::False,
                        "Paused".into(),
                        message.clone(),
                    ),
                    (STALLED, ConditionStatus::False, "Paused".into(), message),
                ],
                previous_components,
                gateway_host,
                now,
            );
        }
        Outcome::Stalled { reason, message } => (
            (ConditionStatus::False, reason.as_str(), message.clone()),
            (ConditionStatus::False, reason.as_str(), message.clone()),
            (ConditionStatus::True, reason.as_str(), message.clone()),
            previous_components,
        ),
        Outcome::Retrying { reason, message } => (
            (ConditionStatus::False, reason.as_str(), message.clone()),
            (ConditionStatus::True, reason.as_str(), message.clone()),
            (ConditionStatus::False, reason.as_str(), String::new()),
            previous_components,
        ),
        Outcome::Terminating { message } => (
            (ConditionStatus::False, "Terminating", message.clone()),
            (ConditionStatus::True, "Terminating", message.clone()),
            (ConditionStatus::False, "Terminating", String::new()),
            previous_components,
        ),
    };
    let condition = |type_, (status, reason, message): (ConditionStatus, &str, String)| {
        (type_, status, reason.to_string(), message)
    };
    assemble(
        previous,
        generation,
        [
            condition(READY, ready),
            condition(RECONCILING, reconciling),
            condition(STALLED, stalled),
        ],
        components,
        gateway_host,
        now,
    )
}

fn assemble(
    previous: Option<&PantheraPlatformStatus>,
    generation: Option<i64>,
    conditions: [(&str, ConditionStatus, String, String); 3],
    components: Vec<ComponentStatus>,
    gateway_host: Option<&str>,
    now: &str,
) -> PantheraPlatformStatus {
    let conditions = conditions
        .into_iter()
        .map(|(type_, status, reason, message)| {
            let before = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == type_));
            let last_transition_time = match before {
                Some(b) if b.status == status => b.last_transition_time.clone(),
                _ => Some(now.to_string()),
            };
            Condition {
                type_: type_.to_string(),
                status,
                reason,
                message,
                last_transition_time,
                observed_generation: generation,
            }
        })
        .collect();
    let gateway_endpoint = gateway_host.map(str::to_string).or_else(|| {
        components
            .iter()
            .find(|c| c.kind == ComponentKind::Gateway)
            .and_then(|c| c.endpoint.clone())
    });
    PantheraPlatformStatus {
        observed_generation: generation,
        conditions,
        components,
        gateway_endpoint,
    }
}

fn component(state: &ComponentState) -> ComponentStatus {
    ComponentStatus {
        name: state.name.clone(),
        kind: state.kind,
        backend: state.backend,
        ready: state.ready,
        message: truncate(&state.message),
        endpoint: state.endpoint.clone(),
    }
}

/// Status stays small enough to read in `kubectl get -o yaml` and well under etcd's limits.
fn truncate(message: &str) -> String {
    const MAX: usize = 1024;
    if message.len() <= MAX {
        return message.to_string();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// Whether `status` says the platform is Ready for its current generation.
pub fn is_ready(status: &PantheraPlatformStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == ConditionStatus::True)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Backend;

    fn state(name: &str, ready: bool) -> ComponentState {
        ComponentState {
            name: name.into(),
            kind: if name == "gateway" {
                ComponentKind::Gateway
            } else {
                ComponentKind::Service
            },
            backend: Backend::Cluster,
            ready,
            stalled: false,
            message: if ready { "ready" } else { "Deployment/x: 0/1" }.into(),
            endpoint: Some(format!("{name}.ns.svc:80")),
        }
    }

    /// The status after `previous` of an apply at generation `generation` with only `users`.
    fn users(
        previous: Option<&PantheraPlatformStatus>,
        generation: i64,
        ready: bool,
        now: &str,
    ) -> PantheraPlatformStatus {
        let outcome = Outcome::Applied(vec![state("users", ready)]);
        build(previous, Some(generation), &outcome, None, now)
    }

    fn condition<'a>(s: &'a PantheraPlatformStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn all_ready_is_ready_true_and_not_reconciling() {
        let outcome = Outcome::Applied(vec![state("users", true), state("gateway", true)]);
        let s = build(None, Some(3), &outcome, None, "t1");
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(condition(&s, READY).status, ConditionStatus::True);
        assert_eq!(condition(&s, RECONCILING).status, ConditionStatus::False);
        assert_eq!(condition(&s, STALLED).status, ConditionStatus::False);
        assert_eq!(condition(&s, READY).observed_generation, Some(3));
        assert_eq!(s.gateway_endpoint.as_deref(), Some("gateway.ns.svc:80"));
        assert!(is_ready(&s));
    }

    #[test]
    fn a_waiting_component_is_named_in_reconciling() {
        let outcome = Outcome::Applied(vec![state("users", false), state("gateway", true)]);
        let s = build(None, Some(1), &outcome, Some("api.example.com"), "t1");
        assert_eq!(condition(&s, READY).status, ConditionStatus::False);
        let r = condition(&s, RECONCILING);
        assert_eq!(r.status, ConditionStatus::True);
        assert!(
            r.message.contains("users: Deployment/x: 0/1"),
            "{}",
            r.message
        );
        assert_eq!(s.gateway_endpoint.as_deref(), Some("api.example.com"));
    }

    #[test]
    fn unchanged_outcome_gives_an_equal_status_so_resync_writes_nothing() {
        let outcome = Outcome::Applied(vec![state("users", true)]);
        let first = build(None, Some(2), &outcome, None, "t1");
        let again = build(Some(&first), Some(2), &outcome, None, "t2");
        assert_eq!(first, again);
    }

    #[test]
    fn transition_time_moves_only_when_the_value_changes() {
        let waiting = users(None, 1, false, "t1");
        let ready = users(Some(&waiting), 1, true, "t2");
        assert_eq!(
            condition(&ready, READY).last_transition_time.as_deref(),
            Some("t2")
        );
        // Stalled was False before and after.
        assert_eq!(
            condition(&ready, STALLED).last_transition_time.as_deref(),
            Some("t1")
        );
    }

    #[test]
    fn stalled_keeps_the_components_and_says_why() {
        let ready = users(None, 1, true, "t1");
        let s = build(
            Some(&ready),
            Some(2),
            &Outcome::Stalled {
                reason: "InvalidSpec".into(),
                message: "spec.x: bad".into(),
            },
            None,
            "t2",
        );
        let st = condition(&s, STALLED);
        assert_eq!(st.status, ConditionStatus::True);
        assert_eq!(st.reason, "InvalidSpec");
        assert_eq!(st.message, "spec.x: bad");
        assert_eq!(condition(&s, READY).status, ConditionStatus::False);
        assert_eq!(s.components.len(), 1);
    }

    #[test]
    fn a_stalled_workload_makes_the_platform_stalled() {
        let mut stuck = state("users", false);
        stuck.stalled = true;
        stuck.message = "Deployment/shop-users: ProgressDeadlineExceeded".into();
        let s = build(None, Some(1), &Outcome::Applied(vec![stuck]), None, "t1");
        let st = condition(&s, STALLED);
        assert_eq!(st.status, ConditionStatus::True);
        assert_eq!(st.reason, "WorkloadStalled");
        assert!(
            st.message.contains("ProgressDeadlineExceeded"),
            "{}",
            st.message
        );
        assert_eq!(condition(&s, READY).status, ConditionStatus::False);
    }

    #[test]
    fn pause_keeps_readiness() {
        let ready = users(None, 1, true, "t1");
        let paused = build(Some(&ready), Some(2), &Outcome::Paused, None, "t2");
        assert_eq!(condition(&paused, READY).status, ConditionStatus::True);
        assert_eq!(condition(&paused, RECONCILING).reason, "Paused");
        assert_eq!(paused.components, ready.components);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let cut = truncate(&long);
        assert!(cut.len() <= 1024 + "…".len());
        assert!(cut.ends_with('…'));
    }
}
