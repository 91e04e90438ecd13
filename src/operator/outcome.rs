//! What a reconcile leaves behind for people to read: the platform's status (written only when
//! it changes) and events.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Client, Resource};
use serde_json::json;

use super::controller::{Context, Error, Guarded, Result, STATUS_MANAGER};
use super::status::{self, Outcome};
use crate::api::{ConditionStatus, PantheraPlatform, PantheraPlatformStatus};

pub(super) fn summarize<'a>(ids: impl Iterator<Item = &'a String>) -> String {
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
pub(super) async fn write_status(
    platform: &PantheraPlatform,
    outcome: &Outcome,
    ctx: &Context,
) -> Result<()> {
    let (name, namespace) = platform.ids();
    let now = crate::api::now_rfc3339();
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
    // Before the early return: a replica that just became leader finds the status already
    // written and must still export it.
    let ready = match outcome {
        Outcome::Paused | Outcome::Terminating { .. } => None,
        _ => Some(
            next.conditions
                .iter()
                .any(|c| c.type_ == status::READY && c.status == ConditionStatus::True),
        ),
    };
    ctx.metrics.platform_ready(&namespace, &name, ready);
    if previous == Some(&next) {
        return Ok(());
    }
    let was_stalled = previous.is_some_and(stalled);
    if stalled(&next) && (!was_stalled || previous.map(stall_message) != Some(stall_message(&next)))
    {
        let regarding = platform.object_ref(&());
        let note = stall_message(&next).to_string();
        publish(ctx, &regarding, Occurrence::Stalled, note).await;
    }
    patch_status(&ctx.client, &namespace, &name, &next).await
}

/// Server-side apply of the status subresource, as its own field manager. Read back as a
/// dynamic object: the response must not fail to decode for an object that is malformed.
pub(super) async fn patch_status(
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
pub(super) async fn stall_undecodable(
    guarded: &Guarded,
    error: &str,
    ctx: &Context,
) -> Result<Action> {
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
        &crate::api::now_rfc3339(),
    );
    if current.as_ref() != Some(&next) {
        patch_status(&ctx.client, &namespace, &name, &next).await?;
        let regarding = guarded.object_ref(&());
        publish(ctx, &regarding, Occurrence::InvalidObject, message).await;
    }
    Ok(Action::await_change())
}

/// What the operator tells in events.
#[derive(Clone, Copy, Debug)]
pub(super) enum Occurrence {
    /// An apply created, changed or pruned children.
    Applied,
    /// A teardown deleted children.
    Deleted,
    /// The platform cannot progress until it is changed.
    Stalled,
    /// The stored object cannot be read as a PantheraPlatform.
    InvalidObject,
}

impl Occurrence {
    /// The event's type, reason and action.
    fn parts(self) -> (EventType, &'static str, &'static str) {
        match self {
            Self::Applied => (EventType::Normal, "Applied", "Apply"),
            Self::Deleted => (EventType::Normal, "Deleted", "Delete"),
            Self::Stalled => (EventType::Warning, "Stalled", "Reconcile"),
            Self::InvalidObject => (EventType::Warning, "InvalidObject", "Reconcile"),
        }
    }
}

/// Record an event on `regarding`. Events are informational: failing to record one must not
/// fail the reconcile.
pub(super) async fn publish(
    ctx: &Context,
    regarding: &ObjectReference,
    occurrence: Occurrence,
    note: String,
) {
    let (type_, reason, action) = occurrence.parts();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_stay_short() {
        let ids: Vec<String> = (0..20).map(|i| format!("Deployment/d{i}")).collect();
        let s = summarize(ids.iter());
        assert!(s.ends_with("and 12 more"), "{s}");
    }
}
