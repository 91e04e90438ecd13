//! Simulated controllers, in the spirit of kwok: garbage collection, namespace termination, and
//! workloads that become ready (or fail, when a test says so) after a delay.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::lifecycle::{self, DeleteOptions, Propagation};
use crate::object::{finalizers, is_deleting, meta, meta_str, now_rfc3339, set_finalizers};
use crate::resources::{GroupResource, ResourceType};
use crate::state::{ReconcileRequest, SimState, WorkloadFailure};
use crate::store::{EventType, WatchEvent};

const MANAGER: &str = "kube-controller-manager";

pub async fn run(
    state: Arc<SimState>,
    mut requests: mpsc::UnboundedReceiver<ReconcileRequest>,
    mut events: broadcast::Receiver<Arc<WatchEvent>>,
) {
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => on_event(&state, &ev),
                Err(broadcast::error::RecvError::Lagged(_)) => resync(&state),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            req = requests.recv() => match req {
                Some((gr, ns, name)) => reconcile_workload(&state, &gr, &ns, &name),
                None => return,
            },
        }
    }
}

/// After missing events, look at everything the controllers care about again.
fn resync(state: &Arc<SimState>) {
    let types: Vec<Arc<ResourceType>> = state.registry.read().all().to_vec();
    for rt in types {
        let (items, _) = state.store.list(&rt.group_resource(), None);
        for obj in items {
            if is_deleting(&obj) {
                on_deleting(state, &rt.group_resource(), &obj);
            }
            schedule_workload(state, &rt.group_resource(), &obj);
        }
    }
}

fn on_event(state: &Arc<SimState>, ev: &WatchEvent) {
    match ev.event_type {
        EventType::Deleted => {
            let uid = meta_str(&ev.object, "uid");
            for (dep_gr, (ns, name)) in state.store.dependents_of(uid) {
                collect_orphan(state, &dep_gr, &ns, &name);
            }
            finish_foreground_owners(state, &ev.object);
            if !ev.namespace.is_empty() {
                terminate_namespace_if_deleting(state, &ev.namespace);
            }
        }
        EventType::Added | EventType::Modified => {
            if is_deleting(&ev.object) {
                on_deleting(state, &ev.resource, &ev.object);
            } else {
                schedule_workload(state, &ev.resource, &ev.object);
                if ev.event_type == EventType::Added
                    && ev.resource.group.is_empty()
                    && ev.resource.resource == "namespaces"
                {
                    create_default_service_account(state, meta_str(&ev.object, "name"));
                }
            }
        }
    }
}

/// Like the serviceaccount controller: every namespace gets a `default` ServiceAccount.
fn create_default_service_account(state: &Arc<SimState>, ns: &str) {
    let Some(rt) = state.core("serviceaccounts") else {
        return;
    };
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
    let opts = lifecycle::WriteOptions {
        manager: MANAGER.into(),
        ..Default::default()
    };
    // Already there (or the namespace is already going away): nothing to do.
    let _ = lifecycle::create(state, &rt, ns, sa, &opts, false);
}

/// The namespaces every cluster starts with.
pub fn create_initial_namespaces(state: &SimState) {
    let Some(rt) = state.core("namespaces") else {
        return;
    };
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}}});
        let opts = lifecycle::WriteOptions {
            manager: "kube-apiserver".into(),
            ..Default::default()
        };
        let _ = lifecycle::create(state, &rt, "", ns, &opts, false);
    }
}

fn on_deleting(state: &Arc<SimState>, gr: &GroupResource, obj: &Value) {
    let fins = finalizers(obj);
    if fins.iter().any(|f| f == "foregroundDeletion") {
        delete_dependents_foreground(state, obj);
    }
    if fins.iter().any(|f| f == "orphan") {
        orphan_dependents(state, gr, obj);
    }
    if gr.group.is_empty() && gr.resource == "namespaces" {
        terminate_namespace_if_deleting(state, meta_str(obj, "name"));
    }
    // The pvc-protection controller: no simulated pod mounts a claim, so it goes at once.
    if gr.group.is_empty()
        && gr.resource == "persistentvolumeclaims"
        && fins.iter().any(|f| f == PVC_PROTECTION)
        && let Some(rt) = state.core("persistentvolumeclaims")
    {
        remove_finalizer(
            state,
            &rt,
            meta_str(obj, "namespace"),
            meta_str(obj, "name"),
            PVC_PROTECTION,
        );
    }
}

const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";

/// Does the owner a reference points to still exist (same uid)?
fn owner_exists(state: &SimState, ns: &str, owner: &Value) -> bool {
    let api_version = owner
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = owner.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = owner.get("name").and_then(Value::as_str).unwrap_or("");
    let uid = owner.get("uid").and_then(Value::as_str).unwrap_or("");
    let Some(rt) = state.registry.read().by_kind(api_version, kind) else {
        return false;
    };
    let owner_ns = if rt.namespaced { ns } else { "" };
    state
        .store
        .get(&rt.group_resource(), owner_ns, name)
        .is_some_and(|o| meta_str(&o, "uid") == uid)
}

fn owner_refs(obj: &Value) -> Vec<Value> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Background GC: a dependent whose owners are all gone is deleted; references to vanished owners
/// are dropped otherwise.
fn collect_orphan(state: &Arc<SimState>, dep_gr: &GroupResource, ns: &str, name: &str) {
    let Some(rt) = state.type_of(dep_gr) else {
        return;
    };
    let Some(obj) = state.store.get(dep_gr, ns, name) else {
        return;
    };
    let refs = owner_refs(&obj);
    let alive: Vec<Value> = refs
        .iter()
        .filter(|r| owner_exists(state, ns, r))
        .cloned()
        .collect();
    if alive.is_empty() {
        if !is_deleting(&obj) {
            let opts = DeleteOptions {
                propagation: Some(Propagation::Background),
                ..DeleteOptions::default()
            };
            let _ = lifecycle::delete(state, &rt, ns, name, &opts);
        }
    } else if alive.len() != refs.len() {
        let _ = lifecycle::mutate(
            state,
            &rt,
            ns,
            name,
            "kube-controller-manager",
            false,
            &|o| {
                if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("ownerReferences".into(), Value::Array(alive.clone()));
                }
                true
            },
        );
    }
}

fn delete_dependents_foreground(state: &Arc<SimState>, owner: &Value) {
    let uid = meta_str(owner, "uid");
    let deps = state.store.dependents_of(uid);
    for (dep_gr, (ns, name)) in &deps {
        let Some(rt) = state.type_of(dep_gr) else {
            continue;
        };
        if state
            .store
            .get(dep_gr, ns, name)
            .is_some_and(|d| !is_deleting(&d))
        {
            let opts = DeleteOptions {
                propagation: Some(Propagation::Foreground),
                ..DeleteOptions::default()
            };
            let _ = lifecycle::delete(state, &rt, ns, name, &opts);
        }
    }
    finish_foreground(state, owner);
}

/// Removes `foregroundDeletion` once an owner has no dependents left.
fn finish_foreground(state: &Arc<SimState>, owner: &Value) {
    if !state.store.dependents_of(meta_str(owner, "uid")).is_empty() {
        return;
    }
    let (Some(api_version), Some(kind)) = (
        owner.get("apiVersion").and_then(Value::as_str),
        owner.get("kind").and_then(Value::as_str),
    ) else {
        return;
    };
    let Some(rt) = state.registry.read().by_kind(api_version, kind) else {
        return;
    };
    remove_finalizer(
        state,
        &rt,
        meta_str(owner, "namespace"),
        meta_str(owner, "name"),
        "foregroundDeletion",
    );
}

fn finish_foreground_owners(state: &Arc<SimState>, dependent: &Value) {
    let ns = meta_str(dependent, "namespace");
    for r in owner_refs(dependent) {
        let api_version = r.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = r.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(rt) = state.registry.read().by_kind(api_version, kind) else {
            continue;
        };
        let owner_ns = if rt.namespaced { ns } else { "" };
        if let Some(owner) = state.store.get(&rt.group_resource(), owner_ns, name)
            && is_deleting(&owner)
            && finalizers(&owner).iter().any(|f| f == "foregroundDeletion")
        {
            finish_foreground(state, &owner);
        }
    }
}

fn remove_finalizer(state: &SimState, rt: &ResourceType, ns: &str, name: &str, finalizer: &str) {
    let _ = lifecycle::mutate(state, rt, ns, name, MANAGER, false, &|o| {
        let fins = finalizers(o);
        if !fins.iter().any(|f| f == finalizer) {
            return false;
        }
        set_finalizers(o, fins.into_iter().filter(|f| f != finalizer).collect());
        true
    });
}

fn orphan_dependents(state: &Arc<SimState>, gr: &GroupResource, owner: &Value) {
    let uid = meta_str(owner, "uid").to_owned();
    for (dep_gr, (ns, name)) in state.store.dependents_of(&uid) {
        let Some(rt) = state.type_of(&dep_gr) else {
            continue;
        };
        let _ = lifecycle::mutate(state, &rt, &ns, &name, MANAGER, false, &|o| {
            let refs: Vec<Value> = owner_refs(o)
                .into_iter()
                .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()))
                .collect();
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                if refs.is_empty() {
                    m.remove("ownerReferences");
                } else {
                    m.insert("ownerReferences".into(), Value::Array(refs));
                }
            }
            true
        });
    }
    if let Some(rt) = state.type_of(gr) {
        remove_finalizer(
            state,
            &rt,
            meta_str(owner, "namespace"),
            meta_str(owner, "name"),
            "orphan",
        );
    }
}

/// Deletes everything in a terminating namespace, then the namespace itself.
fn terminate_namespace_if_deleting(state: &Arc<SimState>, ns: &str) {
    let Some(ns_rt) = state.core("namespaces") else {
        return;
    };
    let Some(namespace) = state.store.get(&ns_rt.group_resource(), "", ns) else {
        return;
    };
    if !is_deleting(&namespace) {
        return;
    }
    let remaining = state.store.namespaces_in_use(ns);
    for (gr, name) in &remaining {
        let Some(rt) = state.type_of(gr) else {
            continue;
        };
        if state
            .store
            .get(gr, ns, name)
            .is_some_and(|o| !is_deleting(&o))
        {
            let opts = DeleteOptions {
                propagation: Some(Propagation::Background),
                ..DeleteOptions::default()
            };
            let _ = lifecycle::delete(state, &rt, ns, name, &opts);
        }
    }
    if state.store.namespaces_in_use(ns).is_empty() {
        let _ = lifecycle::mutate(state, &ns_rt, "", ns, MANAGER, false, &|o| {
            if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
            true
        });
    }
}

fn workload_kind(gr: &GroupResource) -> Option<&'static str> {
    match (gr.group.as_str(), gr.resource.as_str()) {
        ("apps", "deployments") => Some("Deployment"),
        ("apps", "statefulsets") => Some("StatefulSet"),
        ("batch", "jobs") => Some("Job"),
        ("", "persistentvolumeclaims") => Some("PersistentVolumeClaim"),
        _ => None,
    }
}

/// After the ready delay, write the status a real controller would.
fn schedule_workload(state: &Arc<SimState>, gr: &GroupResource, obj: &Value) {
    let Some(kind) = workload_kind(gr) else {
        return;
    };
    let failure = failure_for(
        state,
        meta_str(obj, "namespace"),
        kind,
        meta_str(obj, "name"),
    );
    if desired_status(kind, obj, failure.as_ref()).is_none_or(|d| obj.get("status") == Some(&d)) {
        return;
    }
    let state = state.clone();
    let gr = gr.clone();
    let ns = meta_str(obj, "namespace").to_owned();
    let name = meta_str(obj, "name").to_owned();
    let delay = state.config.ready_delay;
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        reconcile_workload(&state, &gr, &ns, &name);
    });
}

fn failure_for(state: &SimState, ns: &str, kind: &str, name: &str) -> Option<WorkloadFailure> {
    state
        .failures
        .lock()
        .get(&(ns.to_owned(), kind.to_owned(), name.to_owned()))
        .cloned()
}

pub fn reconcile_workload(state: &Arc<SimState>, gr: &GroupResource, ns: &str, name: &str) {
    let Some(kind) = workload_kind(gr) else {
        return;
    };
    let Some(rt) = state.type_of(gr) else { return };
    let Some(obj) = state.store.get(gr, ns, name) else {
        return;
    };
    if is_deleting(&obj) {
        return;
    }
    let failure = failure_for(state, ns, kind, name);
    if kind == "PersistentVolumeClaim" && failure.is_none() {
        let volume = format!("pvc-{}", meta_str(&obj, "uid"));
        let _ = lifecycle::mutate(
            state,
            &rt,
            ns,
            name,
            "persistentvolume-binder-controller",
            false,
            &|o| {
                let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) else {
                    return false;
                };
                if spec.contains_key("volumeName") {
                    return false;
                }
                spec.insert("volumeName".into(), json!(volume));
                true
            },
        );
    }
    sync_failure_pod(state, kind, &obj, failure.as_ref());
    let _ = lifecycle::mutate(state, &rt, ns, name, MANAGER, true, &|o| {
        let Some(desired) = desired_status(kind, o, failure.as_ref()) else {
            return false;
        };
        if o.get("status") == Some(&desired) {
            return false;
        }
        if let Some(m) = o.as_object_mut() {
            m.insert("status".into(), desired);
        }
        true
    });
}

/// A failing workload shows a pod stuck waiting with the failure's reason, like a real cluster.
fn sync_failure_pod(
    state: &Arc<SimState>,
    kind: &str,
    owner: &Value,
    failure: Option<&WorkloadFailure>,
) {
    if !matches!(kind, "Deployment" | "StatefulSet" | "Job") {
        return;
    }
    let Some(pod_rt) = state.core("pods") else {
        return;
    };
    let ns = meta_str(owner, "namespace");
    let pod_name = format!("{}-sim-0", meta_str(owner, "name"));
    let existing = state.store.get(&pod_rt.group_resource(), ns, &pod_name);
    match (failure, existing) {
        (Some(f), None) => {
            let template = owner
                .get("spec")
                .and_then(|s| s.get("template"))
                .cloned()
                .unwrap_or_default();
            let containers = template
                .get("spec")
                .and_then(|s| s.get("containers"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let statuses: Vec<Value> = containers
                .iter()
                .map(|c| {
                    json!({
                        "name": c.get("name").cloned().unwrap_or(json!("app")),
                        "image": c.get("image").cloned().unwrap_or(json!("")),
                        "imageID": "", "ready": false, "started": false, "restartCount": 0,
                        "state": {"waiting": {"reason": f.reason, "message": f.message}},
                    })
                })
                .collect();
            let api_version = owner.get("apiVersion").cloned().unwrap_or(json!(""));
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": pod_name, "namespace": ns,
                    "labels": template.get("metadata").and_then(|m| m.get("labels")).cloned().unwrap_or(json!({})),
                    "ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": meta_str(owner, "name"), "uid": meta_str(owner, "uid"), "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": template.get("spec").cloned().unwrap_or(json!({})),
            });
            let opts = lifecycle::WriteOptions {
                manager: MANAGER.into(),
                ..Default::default()
            };
            if lifecycle::create(state, &pod_rt, ns, pod, &opts, false).is_ok() {
                let now = now_rfc3339();
                let _ = lifecycle::mutate(state, &pod_rt, ns, &pod_name, "kubelet", true, &|o| {
                    if let Some(m) = o.as_object_mut() {
                        m.insert("status".into(), json!({
                            "phase": "Pending",
                            "conditions": [
                                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                                {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": format!("containers with unready status: [{}]", statuses.iter().filter_map(|s| s["name"].as_str()).collect::<Vec<_>>().join(" ")), "lastTransitionTime": now},
                            ],
                            "containerStatuses": statuses,
                        }));
                    }
                    true
                });
            }
        }
        (None, Some(_)) => {
            let _ = lifecycle::delete(state, &pod_rt, ns, &pod_name, &DeleteOptions::default());
        }
        _ => {}
    }
}

fn condition(existing: &Value, kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let prev = existing
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
                .cloned()
        });
    // Keep timestamps while nothing changed so the status converges and writes stop.
    let (transition, update) = match &prev {
        Some(p)
            if p.get("status").and_then(Value::as_str) == Some(status)
                && p.get("reason").and_then(Value::as_str) == Some(reason) =>
        {
            (
                p.get("lastTransitionTime")
                    .cloned()
                    .unwrap_or(json!(now_rfc3339())),
                p.get("lastUpdateTime")
                    .cloned()
                    .unwrap_or(json!(now_rfc3339())),
            )
        }
        Some(p) if p.get("status").and_then(Value::as_str) == Some(status) => (
            p.get("lastTransitionTime")
                .cloned()
                .unwrap_or(json!(now_rfc3339())),
            json!(now_rfc3339()),
        ),
        _ => (json!(now_rfc3339()), json!(now_rfc3339())),
    };
    json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": transition, "lastUpdateTime": update})
}

fn generation(obj: &Value) -> i64 {
    meta(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn spec_i64(obj: &Value, field: &str, default: i64) -> i64 {
    obj.get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

/// The status the real controller converges to for this object.
fn desired_status(kind: &str, obj: &Value, failure: Option<&WorkloadFailure>) -> Option<Value> {
    let name = meta_str(obj, "name");
    let observed = generation(obj);
    let revision = format!(
        "{name}-{:x}",
        observed.wrapping_mul(0x9e37_79b9) & 0xffff_ffff
    );
    match kind {
        "Deployment" => {
            let replicas = spec_i64(obj, "replicas", 1);
            Some(match failure {
                None => json!({
                    "observedGeneration": observed,
                    "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                    "conditions": [
                        condition(obj, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                        condition(obj, "Progressing", "True", "NewReplicaSetAvailable", &format!("ReplicaSet \"{revision}\" has successfully progressed.")),
                    ],
                }),
                Some(_) => json!({
                    "observedGeneration": observed,
                    "replicas": replicas, "updatedReplicas": replicas, "unavailableReplicas": replicas,
                    "conditions": [
                        condition(obj, "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."),
                        condition(obj, "Progressing", "False", "ProgressDeadlineExceeded", &format!("ReplicaSet \"{revision}\" has timed out progressing.")),
                    ],
                }),
            })
        }
        "StatefulSet" => {
            let replicas = spec_i64(obj, "replicas", 1);
            let ready = if failure.is_some() { 0 } else { replicas };
            Some(json!({
                "observedGeneration": observed,
                "replicas": replicas, "readyReplicas": ready, "currentReplicas": replicas, "updatedReplicas": replicas,
                "availableReplicas": ready, "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
            }))
        }
        "Job" => {
            let prev = obj.get("status");
            let start = prev
                .and_then(|s| s.get("startTime"))
                .cloned()
                .unwrap_or(json!(now_rfc3339()));
            Some(match failure {
                None => {
                    let done = prev
                        .and_then(|s| s.get("completionTime"))
                        .cloned()
                        .unwrap_or(json!(now_rfc3339()));
                    json!({
                        "startTime": start, "completionTime": done,
                        "succeeded": spec_i64(obj, "completions", 1), "ready": 0, "terminating": 0,
                        "uncountedTerminatedPods": {},
                        "conditions": [
                            condition(obj, "SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
                            condition(obj, "Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods"),
                        ],
                    })
                }
                Some(f) => json!({
                    "startTime": start, "failed": spec_i64(obj, "backoffLimit", 6) + 1, "ready": 0, "terminating": 0,
                    "uncountedTerminatedPods": {},
                    "conditions": [
                        condition(obj, "FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                        condition(obj, "Failed", "True", "BackoffLimitExceeded", &format!("Job has reached the specified backoff limit ({}: {})", f.reason, f.message)),
                    ],
                }),
            })
        }
        "PersistentVolumeClaim" => {
            if failure.is_some() {
                return Some(json!({"phase": "Pending"}));
            }
            let spec = obj.get("spec");
            let mut status = json!({"phase": "Bound"});
            if let Some(modes) = spec.and_then(|s| s.get("accessModes")) {
                status["accessModes"] = modes.clone();
            }
            if let Some(storage) = spec
                .and_then(|s| s.get("resources"))
                .and_then(|r| r.get("requests"))
                .and_then(|r| r.get("storage"))
            {
                status["capacity"] = json!({"storage": storage});
            }
            Some(status)
        }
        _ => None,
    }
}
