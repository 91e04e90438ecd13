//! Defaults and name rules of the built-in kinds, the subset that clients observe.

use serde_json::{Map, Value, json};

use crate::status::Cause;

fn obj_entry<'a>(m: &'a mut Map<String, Value>, k: &str) -> Option<&'a mut Map<String, Value>> {
    let e = m
        .entry(k.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    e.as_object_mut()
}

fn default(m: &mut Map<String, Value>, k: &str, v: Value) {
    m.entry(k.to_owned()).or_insert(v);
}

/// Fills what the apiserver's defaulting fills for these kinds (only what Panthera can observe).
/// `creating` limits some defaults to creation (a terminating namespace's emptied
/// `spec.finalizers` must stay empty).
pub fn apply_builtin_defaults(
    kind: &str,
    group: &str,
    obj: &mut Value,
    cluster_ip_seed: u64,
    creating: bool,
) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match (group, kind) {
        ("", "Namespace") => {
            if creating && let Some(spec) = obj_entry(root, "spec") {
                default(spec, "finalizers", json!(["kubernetes"]));
            }
            if let Some(status) = obj_entry(root, "status") {
                default(status, "phase", json!("Active"));
            }
        }
        ("", "Service") => {
            let Some(spec) = obj_entry(root, "spec") else {
                return;
            };
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            if spec.get("type").and_then(Value::as_str) != Some("ExternalName") {
                let ip = format!(
                    "10.96.{}.{}",
                    (cluster_ip_seed / 250) % 250,
                    cluster_ip_seed % 250 + 2
                );
                default(spec, "clusterIP", json!(ip));
                let ip = spec.get("clusterIP").cloned().unwrap_or(Value::Null);
                default(spec, "clusterIPs", json!([ip]));
                default(spec, "ipFamilies", json!(["IPv4"]));
                default(spec, "ipFamilyPolicy", json!("SingleStack"));
                default(spec, "internalTrafficPolicy", json!("Cluster"));
            }
            if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    default(p, "protocol", json!("TCP"));
                    if let Some(port) = p.get("port").cloned() {
                        default(p, "targetPort", port);
                    }
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = obj_entry(root, "spec") {
                default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(status) = obj_entry(root, "status") {
                default(status, "phase", json!("Pending"));
            }
        }
        ("", "Pod") => {
            if let Some(status) = obj_entry(root, "status") {
                default(status, "phase", json!("Pending"));
            }
        }
        ("", "Secret") => default(root, "type", json!("Opaque")),
        ("apps", "Deployment") => {
            let Some(spec) = obj_entry(root, "spec") else {
                return;
            };
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
        }
        ("apps", "StatefulSet") => {
            let Some(spec) = obj_entry(root, "spec") else {
                return;
            };
            default(spec, "replicas", json!(1));
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "podManagementPolicy", json!("OrderedReady"));
            default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
        }
        ("batch", "Job") => {
            let Some(spec) = obj_entry(root, "spec") else {
                return;
            };
            default(spec, "parallelism", json!(1));
            default(spec, "completions", json!(1));
            default(spec, "backoffLimit", json!(6));
            default(spec, "completionMode", json!("NonIndexed"));
            default(spec, "suspend", json!(false));
        }
        _ => {}
    }
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks `metadata.name` with the rule the kind uses.
pub fn validate_name(kind: &str, group: &str, name: &str) -> Option<Cause> {
    let invalid = |msg: &str| {
        Some(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": {msg}"),
        ))
    };
    if group == "rbac.authorization.k8s.io" {
        if name == "." || name == ".." || name.contains(['/', '%']) {
            return invalid("may not contain '/' or '%' and may not be '.' or '..'");
        }
        return None;
    }
    let valid = match kind {
        "Namespace" => is_label(name),
        "Service" => is_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
        _ => name.len() <= 253 && name.split('.').all(is_label),
    };
    if valid {
        return None;
    }
    invalid(match kind {
        "Namespace" => LABEL_MSG,
        "Service" => DNS1035_MSG,
        _ => SUBDOMAIN_MSG,
    })
}

/// A `generateName` suffix like the apiserver's: 5 characters without vowels.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}
