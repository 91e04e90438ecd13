//! Is an object ready, still progressing, or stuck? The same rules `kubectl rollout status` and
//! kstatus use, read from the object's status only.

use serde_json::Value;

/// Where an object stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not yet; what it is waiting for.
    Progressing(String),
    /// Will not become ready without a change; why.
    Stalled(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Readiness of a live object.
pub fn of(object: &Value) -> Readiness {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind {
        "Deployment" => deployment(object),
        "StatefulSet" => statefulset(object),
        "Job" => job(object),
        "PersistentVolumeClaim" => match object.pointer("/status/phase").and_then(Value::as_str) {
            Some("Bound") => Readiness::Ready,
            Some("Lost") => Readiness::Stalled("volume lost".into()),
            other => Readiness::Progressing(format!("volume {}", other.unwrap_or("pending"))),
        },
        "Service"
            if object.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer") =>
        {
            let ingress = object
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array);
            if ingress.is_some_and(|i| !i.is_empty()) {
                Readiness::Ready
            } else {
                Readiness::Progressing("waiting for a load balancer address".into())
            }
        }
        _ => Readiness::Ready,
    }
}

/// Why a StatefulSet's volume claims keep its pods from starting (the StatefulSet itself only
/// says its pods are not ready, and the cause is in the claims and their events). `claim` looks
/// a claim up by name. `None` when every claim is bound or not there yet.
pub fn claims<'a>(
    statefulset: &Value,
    claim: impl Fn(&str) -> Option<&'a Value>,
) -> Option<Readiness> {
    let mut pending = Vec::new();
    for claim_name in claim_names(statefulset) {
        let Some(pvc) = claim(&claim_name) else {
            continue;
        };
        if pvc.pointer("/status/phase").and_then(Value::as_str) == Some("Bound") {
            continue;
        }
        match pending_class(pvc) {
            // The API server fills in the default class when the claim is made; none left means
            // the cluster had no default then.
            None => {
                return Some(Readiness::Stalled(format!(
                    "claim {claim_name} cannot bind: it names no StorageClass and the cluster has no default one; set storageClassName (the store's or the platform's) to one of the cluster's classes"
                )));
            }
            Some(class) => pending.push(format!(
                "claim {claim_name} Pending (StorageClass {class:?})"
            )),
        }
    }
    (!pending.is_empty()).then(|| Readiness::Progressing(pending.join(", ")))
}

/// The claims a StatefulSet's pods use: `{template}-{statefulset}-{ordinal}`.
pub fn claim_names(statefulset: &Value) -> Vec<String> {
    let name = statefulset
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let replicas = statefulset
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let templates = statefulset
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    templates
        .iter()
        .filter_map(|t| t.pointer("/metadata/name").and_then(Value::as_str))
        .flat_map(|prefix| (0..replicas).map(move |ordinal| format!("{prefix}-{name}-{ordinal}")))
        .collect()
}

/// The StorageClass a claim names, if any.
pub fn pending_class(pvc: &Value) -> Option<&str> {
    pvc.pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
}

fn generation_observed(object: &Value) -> Option<Readiness> {
    let generation = int(object, "/metadata/generation");
    let observed = int(object, "/status/observedGeneration");
    (observed < generation).then(|| {
        Readiness::Progressing(format!(
            "controller has not observed generation {generation} yet"
        ))
    })
}

fn deployment(d: &Value) -> Readiness {
    if let Some(p) = condition(d, "Progressing")
        && p["status"] == "False"
        && p["reason"] == "ProgressDeadlineExceeded"
    {
        return Readiness::Stalled(
            p["message"]
                .as_str()
                .unwrap_or("rollout exceeded its progress deadline")
                .into(),
        );
    }
    if let Some(r) = condition(d, "ReplicaFailure")
        && r["status"] == "True"
    {
        return Readiness::Stalled(r["message"].as_str().unwrap_or("replica failure").into());
    }
    let want = match replicas_wanted(d) {
        Ok(want) => want,
        Err(progress) => return progress,
    };
    let updated = int(d, "/status/updatedReplicas");
    let available = int(d, "/status/availableReplicas");
    let total = int(d, "/status/replicas");
    if updated < want {
        Readiness::Progressing(format!("{updated} of {want} replicas updated"))
    } else if total > updated {
        Readiness::Progressing(format!(
            "{} old replicas pending termination",
            total - updated
        ))
    } else if available < want {
        Readiness::Progressing(format!("{available} of {want} replicas available"))
    } else {
        Readiness::Ready
    }
}

/// The replicas a workload wants, once its controller has seen its latest generation.
fn replicas_wanted(workload: &Value) -> Result<i64, Readiness> {
    if let Some(progress) = generation_observed(workload) {
        return Err(progress);
    }
    let replicas = workload.pointer("/spec/replicas").and_then(Value::as_i64);
    Ok(replicas.unwrap_or(1))
}

fn statefulset(s: &Value) -> Readiness {
    let want = match replicas_wanted(s) {
        Ok(want) => want,
        Err(progress) => return progress,
    };
    let ready = int(s, "/status/readyReplicas");
    let updated = int(s, "/status/updatedReplicas");
    let current = s.pointer("/status/currentRevision");
    let update = s.pointer("/status/updateRevision");
    if updated < want {
        Readiness::Progressing(format!("{updated} of {want} pods updated"))
    } else if ready < want {
        Readiness::Progressing(format!("{ready} of {want} pods ready"))
    } else if current.is_some() && update.is_some() && current != update {
        Readiness::Progressing("rolling update in progress".into())
    } else {
        Readiness::Ready
    }
}

fn job(j: &Value) -> Readiness {
    if condition(j, "Complete").is_some_and(|c| c["status"] == "True") {
        return Readiness::Ready;
    }
    if let Some(f) = condition(j, "Failed").filter(|c| c["status"] == "True") {
        return Readiness::Stalled(f["message"].as_str().unwrap_or("job failed").into());
    }
    Readiness::Progressing("job running".into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_claim_that_cannot_bind_says_why_naming_itself_and_its_class() {
        let sts = json!({"metadata": {"name": "demo-db-users"}, "spec": {"replicas": 1,
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}});
        let claim = |class: Value, phase: &str| {
            json!({"metadata": {"name": "data-demo-db-users-0"},
                   "spec": {"storageClassName": class}, "status": {"phase": phase}})
        };
        assert_eq!(claim_names(&sts), ["data-demo-db-users-0"]);
        let unclassed = claim(Value::Null, "Pending");
        let Some(Readiness::Stalled(why)) = claims(&sts, |_| Some(&unclassed)) else {
            panic!("a claim without a class in a cluster without a default never binds");
        };
        assert!(
            why.contains("claim data-demo-db-users-0 cannot bind: it names no StorageClass"),
            "{why}"
        );
        let waiting = claim(json!("fast"), "Pending");
        assert_eq!(
            claims(&sts, |_| Some(&waiting)),
            Some(Readiness::Progressing(
                "claim data-demo-db-users-0 Pending (StorageClass \"fast\")".into()
            ))
        );
        let bound = claim(json!("fast"), "Bound");
        assert_eq!(claims(&sts, |_| Some(&bound)), None);
        assert_eq!(claims(&sts, |_| None), None);
    }

    #[test]
    fn deployment_rules() {
        let mut d = json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2, "replicas": 2}});
        assert!(
            matches!(of(&d), Readiness::Progressing(_)),
            "old generation"
        );
        d["status"]["observedGeneration"] = json!(2);
        assert_eq!(of(&d), Readiness::Ready);
        d["status"]["availableReplicas"] = json!(1);
        assert_eq!(
            of(&d),
            Readiness::Progressing("1 of 2 replicas available".into())
        );
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}]);
        assert_eq!(of(&d), Readiness::Stalled("timed out".into()));
    }

    #[test]
    fn statefulset_and_job_rules() {
        let s = json!({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 3},
            "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 3}});
        assert_eq!(of(&s), Readiness::Progressing("2 of 3 pods ready".into()));
        let j = json!({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}});
        assert_eq!(of(&j), Readiness::Stalled("BackoffLimitExceeded".into()));
        assert_eq!(of(&json!({"kind": "ConfigMap"})), Readiness::Ready);
    }
}
