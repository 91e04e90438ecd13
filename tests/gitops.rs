//! The Argo CD health check (gitops/argocd/health.lua) run by a real Lua interpreter on every
//! state of the status contract.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use serde_json::{Value, json};

fn platform(generation: i64, status: Value, extra: Value) -> Value {
    let mut p = json!({
        "apiVersion": "panthera.dev/v1alpha1",
        "kind": "PantheraPlatform",
        "metadata": {"name": "shop", "namespace": "shop", "generation": generation},
        "spec": {"services": []},
        "status": status,
    });
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            p[k] = v.clone();
        }
    }
    p
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": 2})
}

fn health(object: &Value) -> Option<(String, String)> {
    common::argocd_health(object)
}

#[test]
fn every_state_of_the_contract_maps_to_an_argo_cd_health() {
    let cases = [
        (
            "no status yet",
            platform(1, Value::Null, json!({})),
            "Progressing",
            "waiting for the Panthera operator",
        ),
        (
            "status of an older generation",
            platform(
                3,
                json!({"observedGeneration": 2, "conditions": [condition("Ready", "True", "Ready", "all 8 components are ready")]}),
                json!({}),
            ),
            "Progressing",
            "observe generation 3",
        ),
        (
            "ready",
            platform(
                2,
                json!({"observedGeneration": 2, "conditions": [
                    condition("Ready", "True", "Ready", "all 8 components are ready"),
                    condition("Reconciling", "False", "Ready", ""),
                    condition("Stalled", "False", "Ready", ""),
                ]}),
                json!({}),
            ),
            "Healthy",
            "Ready: all 8 components are ready",
        ),
        (
            "progressing",
            platform(
                2,
                json!({"observedGeneration": 2, "conditions": [
                    condition("Ready", "False", "Progressing", "waiting for users"),
                    condition("Reconciling", "True", "Progressing", "waiting for users: Deployment/shop-users: 0/2 ready"),
                    condition("Stalled", "False", "Progressing", ""),
                ]}),
                json!({}),
            ),
            "Progressing",
            "Deployment/shop-users: 0/2 ready",
        ),
        (
            "stalled",
            platform(
                2,
                json!({"observedGeneration": 2, "conditions": [
                    condition("Ready", "False", "InvalidSpec", "x"),
                    condition("Stalled", "True", "InvalidSpec", "spec.services[0].database: no database \"nope\""),
                ]}),
                json!({}),
            ),
            "Degraded",
            "InvalidSpec: spec.services[0].database: no database \"nope\"",
        ),
        (
            "paused by annotation",
            platform(
                2,
                json!({"observedGeneration": 2}),
                json!({"metadata": {"name": "shop", "generation": 2, "annotations": {"panthera.dev/paused": "true"}}}),
            ),
            "Suspended",
            "paused",
        ),
        (
            "paused by spec",
            platform(
                2,
                json!({"observedGeneration": 2}),
                json!({"spec": {"paused": true}}),
            ),
            "Suspended",
            "paused",
        ),
    ];
    for (name, object, status, message) in cases {
        let Some((got, got_message)) = health(&object) else {
            return;
        };
        assert_eq!(got, status, "{name}: {got_message}");
        assert!(
            got_message.contains(message),
            "{name}: {got_message:?} lacks {message:?}"
        );
    }
}
