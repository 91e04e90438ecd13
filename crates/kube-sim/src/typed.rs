//! Unknown fields of built-in kinds, found by a round trip through the k8s-openapi types (which
//! skip what they do not declare), as the apiserver's decoder finds them.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Option<Value> {
    let typed: T = serde_json::from_value(obj.clone()).ok()?;
    serde_json::to_value(&typed).ok()
}

/// The object as its k8s-openapi type keeps it; `None` for kinds without a type here or objects
/// that do not decode (left to the other checks).
fn typed_view(group: &str, kind: &str, obj: &Value) -> Option<Value> {
    use k8s_openapi::api::{
        apps, autoscaling, batch, coordination, core, discovery, events, networking, policy, rbac,
    };
    match (group, kind) {
        ("", "Namespace") => round_trip::<core::v1::Namespace>(obj),
        ("", "ConfigMap") => round_trip::<core::v1::ConfigMap>(obj),
        ("", "Secret") => round_trip::<core::v1::Secret>(obj),
        ("", "Service") => round_trip::<core::v1::Service>(obj),
        ("", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(obj),
        ("", "PersistentVolumeClaim") => round_trip::<core::v1::PersistentVolumeClaim>(obj),
        ("", "Pod") => round_trip::<core::v1::Pod>(obj),
        ("", "Event") => round_trip::<core::v1::Event>(obj),
        ("", "Endpoints") => round_trip::<core::v1::Endpoints>(obj),
        ("apps", "Deployment") => round_trip::<apps::v1::Deployment>(obj),
        ("apps", "StatefulSet") => round_trip::<apps::v1::StatefulSet>(obj),
        ("batch", "Job") => round_trip::<batch::v1::Job>(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => {
            round_trip::<autoscaling::v2::HorizontalPodAutoscaler>(obj)
        }
        ("policy", "PodDisruptionBudget") => round_trip::<policy::v1::PodDisruptionBudget>(obj),
        ("networking.k8s.io", "Ingress") => round_trip::<networking::v1::Ingress>(obj),
        ("networking.k8s.io", "NetworkPolicy") => round_trip::<networking::v1::NetworkPolicy>(obj),
        ("discovery.k8s.io", "EndpointSlice") => round_trip::<discovery::v1::EndpointSlice>(obj),
        ("coordination.k8s.io", "Lease") => round_trip::<coordination::v1::Lease>(obj),
        ("events.k8s.io", "Event") => round_trip::<events::v1::Event>(obj),
        ("rbac.authorization.k8s.io", "Role") => round_trip::<rbac::v1::Role>(obj),
        ("rbac.authorization.k8s.io", "RoleBinding") => round_trip::<rbac::v1::RoleBinding>(obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => round_trip::<rbac::v1::ClusterRole>(obj),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            round_trip::<rbac::v1::ClusterRoleBinding>(obj)
        }
        _ => None,
    }
}

/// A field of the object its kind does not declare: the path segments (a field name or a list
/// index) from the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// The unknown fields of a built-in object (empty for kinds not covered).
pub fn unknown_fields(group: &str, kind: &str, obj: &Value) -> Vec<Vec<Segment>> {
    let Some(kept) = typed_view(group, kind, obj) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(obj, &kept, &mut Vec::new(), &mut out);
    out
}

fn walk(before: &Value, after: &Value, path: &mut Vec<Segment>, out: &mut Vec<Vec<Segment>>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, bv) in b {
                path.push(Segment::Field(k.clone()));
                match a.get(k) {
                    // A null is "not set", which the type drops too.
                    None if !bv.is_null() && !matches!(k.as_str(), "apiVersion" | "kind") => {
                        out.push(path.clone())
                    }
                    None => {}
                    Some(av) => walk(bv, av, path, out),
                }
                path.pop();
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                path.push(Segment::Index(i));
                walk(bv, av, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `spec.template.spec.containers[0].bogus`, as the strict decoder names a field.
pub fn dotted(path: &[Segment]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Segment::Field(f) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(f);
            }
            Segment::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Removes the unknown fields, as the apiserver's decoder drops them.
pub fn remove(obj: &mut Value, paths: &[Vec<Segment>]) {
    fn go(cur: &mut Value, path: &[Segment]) {
        match path {
            [] => {}
            [Segment::Field(f)] => {
                if let Some(m) = cur.as_object_mut() {
                    m.remove(f.as_str());
                }
            }
            [Segment::Index(_)] => {}
            [seg, rest @ ..] => {
                let next = match seg {
                    Segment::Field(f) => cur.get_mut(f.as_str()),
                    Segment::Index(i) => cur.get_mut(*i),
                };
                if let Some(n) = next {
                    go(n, rest);
                }
            }
        }
    }
    for path in paths {
        go(obj, path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_fields_the_kind_does_not_declare() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {}},
            "spec": {"bogus": 1, "replicas": null, "template": {"spec": {"containers": [
                {"name": "a", "image": "i", "extra": true}]}}}});
        let unknown: Vec<String> = unknown_fields("apps", "Deployment", &obj)
            .iter()
            .map(|p| dotted(p))
            .collect();
        assert_eq!(
            unknown,
            vec!["spec.bogus", "spec.template.spec.containers[0].extra"]
        );
        let mut pruned = obj.clone();
        remove(&mut pruned, &unknown_fields("apps", "Deployment", &obj));
        assert!(pruned["spec"].get("bogus").is_none());
        assert!(
            pruned["spec"]["template"]["spec"]["containers"][0]
                .get("extra")
                .is_none()
        );
        assert!(unknown_fields("", "ConfigMap", &json!({"data": {"a": "b"}})).is_empty());
    }
}
