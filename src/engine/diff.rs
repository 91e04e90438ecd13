//! Deciding whether an object needs a write, and showing what would change.
//!
//! A re-apply must make zero writes. Server-side apply of an unchanged object is a no-op for the
//! object but still a request; so before applying, the desired object is compared with the live
//! one: every desired field must already hold (drift is a change), and the hash of the last
//! applied object must match (a field removed from the desired object is a change too).

use base64::Engine as _;
use serde_json::{Map, Value};

use super::report::Diff;
use crate::render::short_hash;

/// Annotation holding the hash of what Panthera last applied.
pub const APPLIED_HASH: &str = "panthera.dev/applied-hash";

/// The object as it is sent: `stringData` folded into base64 `data` (the API server stores only
/// `data`, so comparing `stringData` would always see a change), plus the applied-hash annotation.
pub fn prepare(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(obj) = out.as_object_mut()
        && let Some(Value::Object(strings)) = obj.remove("stringData")
    {
        let data = obj
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(data) = data.as_object_mut() {
            for (k, v) in strings {
                let text = v.as_str().unwrap_or_default();
                data.insert(
                    k,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
    let hash = short_hash(&out.to_string());
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(APPLIED_HASH.to_string(), Value::String(hash));
        }
    }
    out
}

/// Whether applying `desired` (prepared) to `live` would change nothing.
pub fn unchanged(desired: &Value, live: &Value) -> bool {
    let hash = |v: &Value| {
        v.pointer(&format!(
            "/metadata/annotations/{}",
            APPLIED_HASH.replace('/', "~1")
        ))
        .cloned()
    };
    hash(desired).is_some() && hash(desired) == hash(live) && is_subset(desired, live)
}

/// Every field of `want` is in `have` with the same value (`have` may hold more: defaults,
/// fields of other managers, status).
pub fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        // Every list field of the Kubernetes API types is `omitempty`: the server stores an
        // empty list as no field at all (`ingress: []` of a deny-all NetworkPolicy comes back
        // absent), so an empty list matches a missing one.
        (Value::Object(w), Value::Object(h)) => w.iter().all(|(k, v)| {
            v.is_null()
                || v.as_array().is_some_and(Vec::is_empty) && h.get(k).is_none_or(Value::is_null)
                || h.get(k).is_some_and(|hv| is_subset(v, hv))
        }),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| is_subset(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// The object without what the server owns (for showing a diff).
pub fn clean(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(obj) = out.as_object_mut() {
        obj.remove("status");
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in [
                "managedFields",
                "resourceVersion",
                "uid",
                "generation",
                "creationTimestamp",
                "selfLink",
            ] {
                meta.remove(key);
            }
            if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                a.remove(APPLIED_HASH);
                if a.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
        // Never show secret values in a diff.
        if obj.get("kind").and_then(Value::as_str) == Some("Secret") {
            for key in ["data", "stringData"] {
                if let Some(Value::Object(data)) = obj.get_mut(key) {
                    for (_, v) in data.iter_mut() {
                        *v = Value::String(format!("(hash {})", short_hash(&v.to_string())));
                    }
                }
            }
        }
    }
    out
}

/// A unified diff of two objects as YAML; `None` when they are equal.
pub fn unified(before: Option<&Value>, after: Option<&Value>, id: &str) -> Option<Diff> {
    let yaml = |v: Option<&Value>| {
        v.map(|v| serde_yaml::to_string(v).unwrap_or_default())
            .unwrap_or_default()
    };
    let (a, b) = (yaml(before), yaml(after));
    if a == b {
        return None;
    }
    let text = similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{id}"), &format!("planned/{id}"))
        .to_string();
    Some(Diff(text))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_sent_as_data_and_hashed() {
        let s = prepare(
            &json!({"kind": "Secret", "metadata": {"name": "a"}, "stringData": {"k": "v"}}),
        );
        assert_eq!(s["data"]["k"], "dg==");
        assert!(s.get("stringData").is_none());
        assert_eq!(
            s["metadata"]["annotations"][APPLIED_HASH]
                .as_str()
                .unwrap()
                .len(),
            8
        );
    }

    #[test]
    fn unchanged_needs_same_hash_and_no_drift() {
        let desired = prepare(&json!({"metadata": {"name": "a"}, "spec": {"replicas": 2}}));
        let mut live = desired.clone();
        live["spec"]["extra"] = json!("defaulted");
        live["status"] = json!({"ready": 1});
        assert!(unchanged(&desired, &live));
        live["spec"]["replicas"] = json!(3);
        assert!(!unchanged(&desired, &live), "drift is a change");
        let removed = prepare(&json!({"metadata": {"name": "a"}, "spec": {}}));
        assert!(
            !unchanged(&removed, &desired),
            "a removed field changes the hash"
        );
    }

    #[test]
    fn an_empty_list_matches_the_missing_field_the_server_stores() {
        let desired = json!({"spec": {"policyTypes": ["Ingress"], "ingress": []}});
        let stored = json!({"spec": {"policyTypes": ["Ingress"]}});
        assert!(is_subset(&desired, &stored));
        let with_rules = json!({"spec": {"policyTypes": ["Ingress"], "ingress": [{"from": []}]}});
        assert!(
            !is_subset(&desired, &with_rules),
            "rules to remove are a change"
        );
        assert!(
            !is_subset(&json!({"spec": {"emptyDir": {}}}), &json!({"spec": {}})),
            "an empty object is a value"
        );
    }

    #[test]
    fn diff_hides_secret_values() {
        let before = json!({"kind": "Secret", "data": {"password": "c2VjcmV0"}});
        let after = json!({"kind": "Secret", "data": {"password": "b3RoZXI="}});
        let diff = unified(Some(&clean(&before)), Some(&clean(&after)), "Secret/x").unwrap();
        let d = diff.as_str();
        assert!(!d.contains("c2VjcmV0") && !d.contains("b3RoZXI="), "{d}");
        assert!(d.contains("-  password: (hash"), "{d}");
    }
}
