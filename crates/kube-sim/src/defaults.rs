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
pub fn apply_builtin_defaults(kind: &str, group: &str, obj: &mut Value, creating: bool) {
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
            if creating && let Some(status) = obj_entry(root, "status") {
                default(status, "loadBalancer", json!({}));
            }
            let Some(spec) = obj_entry(root, "spec") else {
                return;
            };
            default(spec, "type", json!("ClusterIP"));
            default(spec, "sessionAffinity", json!("None"));
            if spec.get("type").and_then(Value::as_str) != Some("ExternalName") {
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
            if let Some(spec) = root.get_mut("spec").and_then(Value::as_object_mut) {
                default_pod_spec(spec);
                default(spec, "enableServiceLinks", json!(true));
            }
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
            default_template(spec);
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
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            default_template(spec);
            if let Some(Value::Array(claims)) = spec.get_mut("volumeClaimTemplates") {
                for claim in claims.iter_mut().filter_map(Value::as_object_mut) {
                    default(claim, "apiVersion", json!("v1"));
                    default(claim, "kind", json!("PersistentVolumeClaim"));
                    if let Some(spec) = obj_entry(claim, "spec") {
                        default(spec, "volumeMode", json!("Filesystem"));
                    }
                    if let Some(status) = obj_entry(claim, "status") {
                        default(status, "phase", json!("Pending"));
                    }
                }
            }
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
            if creating && spec.get("manualSelector").is_none() {
                spec.insert("manualSelector".into(), json!(false));
            }
            default(spec, "parallelism", json!(1));
            default(spec, "completions", json!(1));
            default(spec, "backoffLimit", json!(6));
            default(spec, "completionMode", json!("NonIndexed"));
            default(spec, "suspend", json!(false));
            default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
            default_template(spec);
        }
        _ => {}
    }
}

/// The defaults of a workload's `spec.template.spec`.
fn default_template(workload_spec: &mut Map<String, Value>) {
    if let Some(spec) = workload_spec
        .get_mut("template")
        .and_then(Value::as_object_mut)
        .and_then(|t| t.get_mut("spec"))
        .and_then(Value::as_object_mut)
    {
        default_pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and `SetDefaults_Container` of `k8s.io/kubernetes/pkg/apis/core/v1`.
fn default_pod_spec(spec: &mut Map<String, Value>) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for list in ["initContainers", "containers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                default_container(c);
            }
        }
    }
    if let Some(Value::Array(volumes)) = spec.get_mut("volumes") {
        for v in volumes.iter_mut().filter_map(Value::as_object_mut) {
            for (source, mode) in [("secret", "defaultMode"), ("configMap", "defaultMode")] {
                if let Some(src) = v.get_mut(source).and_then(Value::as_object_mut) {
                    default(src, mode, json!(420));
                }
            }
            if let Some(src) = v.get_mut("projected").and_then(Value::as_object_mut) {
                default(src, "defaultMode", json!(420));
            }
            if let Some(src) = v.get_mut("downwardAPI").and_then(Value::as_object_mut) {
                default(src, "defaultMode", json!(420));
            }
        }
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let image = c.get("image").and_then(Value::as_str).unwrap_or("");
    let last = image.rsplit('/').next().unwrap_or("");
    let pull = if !image.contains('@') && (!last.contains(':') || last.ends_with(":latest")) {
        "Always"
    } else {
        "IfNotPresent"
    };
    default(c, "imagePullPolicy", json!(pull));
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            default(p, "protocol", json!("TCP"));
        }
    }
    if let Some(Value::Array(env)) = c.get_mut("env") {
        for e in env.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(field) = e
                .get_mut("valueFrom")
                .and_then(Value::as_object_mut)
                .and_then(|v| v.get_mut("fieldRef"))
                .and_then(Value::as_object_mut)
            {
                default(field, "apiVersion", json!("v1"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            default(p, "timeoutSeconds", json!(1));
            default(p, "periodSeconds", json!(10));
            default(p, "successThreshold", json!(1));
            default(p, "failureThreshold", json!(3));
            if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                default(h, "scheme", json!("HTTP"));
            }
        }
    }
}

/// What the registry fills in after defaulting and after managedFields are recorded (so no
/// manager owns it): a Service's cluster IPs, a Job's generated selector and labels, a claim's
/// pvc-protection finalizer.
pub fn prepare_for_create(kind: &str, group: &str, obj: &mut Value, cluster_ip_seed: u64) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta_string = |root: &Map<String, Value>, k: &str| {
        root.get("metadata")
            .and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    match (group, kind) {
        ("", "PersistentVolumeClaim") => {
            // The StorageObjectInUseProtection admission plugin.
            if let Some(meta) = obj_entry(root, "metadata") {
                let fins = meta.entry("finalizers").or_insert_with(|| json!([]));
                if let Value::Array(list) = fins
                    && !list.iter().any(|f| f == "kubernetes.io/pvc-protection")
                {
                    list.push(json!("kubernetes.io/pvc-protection"));
                }
            }
        }
        ("", "Service") => {
            let Some(spec) = obj_entry(root, "spec") else {
                return;
            };
            if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
                return;
            }
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
        }
        ("batch", "Job") => {
            let uid = meta_string(root, "uid");
            let job_name = meta_string(root, "name");
            let Some(spec) = obj_entry(root, "spec") else {
                return;
            };
            if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
                return;
            }
            spec.insert(
                "selector".into(),
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
            );
            let mut template_labels = Map::new();
            if let Some(template) = obj_entry(spec, "template")
                && let Some(meta) = obj_entry(template, "metadata")
                && let Some(labels) = obj_entry(meta, "labels")
            {
                for (k, v) in [
                    ("batch.kubernetes.io/controller-uid", &uid),
                    ("batch.kubernetes.io/job-name", &job_name),
                    ("controller-uid", &uid),
                    ("job-name", &job_name),
                ] {
                    labels.insert(k.into(), json!(v));
                }
                template_labels = labels.clone();
            }
            if let Some(meta) = obj_entry(root, "metadata") {
                let empty = meta
                    .get("labels")
                    .and_then(Value::as_object)
                    .is_none_or(Map::is_empty);
                if empty {
                    meta.insert("labels".into(), Value::Object(template_labels));
                }
            }
        }
        _ => {}
    }
}

/// On update, what [`prepare_for_create`] allocated stays when the new version leaves it out.
pub fn keep_allocated(kind: &str, group: &str, old: &Value, new: &mut Value) {
    if (group, kind) != ("", "Service") {
        return;
    }
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for k in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        if !spec.contains_key(k)
            && let Some(v) = old.get("spec").and_then(|s| s.get(k))
        {
            spec.insert(k.into(), v.clone());
        }
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

/// Compact JSON as the apiserver prints an invalid value (`{"app":"other"}`).
fn show(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Whether a `LabelSelector` (matchLabels and matchExpressions) selects `labels`.
fn selector_matches(selector: &Value, labels: &Map<String, Value>) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let labels_ok = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.iter().all(|(k, v)| label(k) == v.as_str()));
    let expressions_ok = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|exprs| {
            exprs.iter().all(|e| {
                let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                let values: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                    "In" => label(key).is_some_and(|v| values.contains(&v)),
                    "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
                    "Exists" => label(key).is_some(),
                    "DoesNotExist" => label(key).is_none(),
                    _ => false,
                }
            })
        });
    labels_ok && expressions_ok
}

/// The part of the apiserver's validation of workloads that callers trip over: replicas, the
/// selector matching the template's labels, and containers with a name and an image.
pub fn validate_builtin(kind: &str, group: &str, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let workload = matches!(
        (group, kind),
        (
            "apps",
            "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet"
        )
    );
    if !(workload || (group, kind) == ("batch", "Job")) {
        return causes;
    }
    let spec = &obj["spec"];
    if let Some(r) = spec.get("replicas").and_then(Value::as_i64)
        && r < 0
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "spec.replicas",
            format!("Invalid value: {r}: must be greater than or equal to 0"),
        ));
    }
    let template = &spec["template"];
    let labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if workload {
        match spec.get("selector").filter(|s| s.is_object()) {
            None => causes.push(Cause::new(
                "FieldValueRequired",
                "spec.selector",
                "Required value",
            )),
            Some(selector) if !selector_matches(selector, &labels) => causes.push(Cause::new(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    show(&Value::Object(labels.clone()))
                ),
            )),
            Some(_) => {}
        }
    }
    let containers = template["spec"]["containers"].as_array();
    match containers {
        None => causes.push(Cause::new(
            "FieldValueRequired",
            "spec.template.spec.containers",
            "Required value",
        )),
        Some(list) if list.is_empty() => causes.push(Cause::new(
            "FieldValueRequired",
            "spec.template.spec.containers",
            "Required value",
        )),
        Some(list) => {
            for (i, c) in list.iter().enumerate() {
                if c.get("name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        format!("spec.template.spec.containers[{i}].name"),
                        "Required value",
                    ));
                }
                if c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        format!("spec.template.spec.containers[{i}].image"),
                        "Required value",
                    ));
                }
            }
        }
    }
    causes
}

const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// The apiserver's checks of `metadata.labels` values, then the kind's own checks.
pub fn validate_object(kind: &str, group: &str, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(labels) = obj
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
    {
        for v in labels.values() {
            let text = v.as_str().unwrap_or_default();
            if !is_label_value(text) {
                let msg = if text.len() > 63 {
                    "must be no more than 63 characters".to_owned()
                } else {
                    LABEL_VALUE_MSG.to_owned()
                };
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    "metadata.labels",
                    format!("Invalid value: {}: {msg}", show(v)),
                ));
            }
        }
    }
    causes.extend(validate_builtin(kind, group, obj));
    causes
}
