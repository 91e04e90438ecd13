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
