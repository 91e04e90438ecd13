//! Step 5, wait: after each phase is written, until its workloads are ready — failing fast on a
//! workload that reports it is stuck, or a pod that cannot start, rather than at the deadline.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Value, json};

use super::Engine;
use super::decide::ComponentDecisions;
use super::error::{Error, Result, classify};
use super::readiness::{self, Readiness};
use super::report::{Event, component_of};
use super::snapshot::name_of;
use crate::api::{Kind, LABEL_PLATFORM};

/// Container waiting reasons that need a fix, not time.
const STUCK: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// A container that exits while what it needs is still starting (a broker whose own DNS name is
/// not published yet, say) is restarted by the kubelet and usually comes up: the back-off alone
/// does not mean it is stuck, only after this many restarts.
const CRASHES_BEFORE_STUCK: i64 = 3;

/// The workloads to wait for in each component of a phase: (kind, name) by component id.
pub fn workloads(phase: &[ComponentDecisions<'_>]) -> BTreeMap<String, Vec<(String, String)>> {
    phase
        .iter()
        .map(|c| {
            let workloads = c
                .component
                .objects
                .iter()
                .filter(|o| matches!(o.kind(), "Deployment" | "StatefulSet" | "Job"))
                .map(|o| (o.kind().to_string(), o.name().to_string()))
                .collect();
            (c.id.clone(), workloads)
        })
        .collect()
}

/// The first stuck container among `pods`, as (component, why).
pub fn stuck_container(pods: &[Value]) -> Option<(String, String)> {
    pods.iter().find_map(|pod| {
        let statuses = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)?;
        statuses.iter().find_map(|s| {
            let reason = s.pointer("/state/waiting/reason").and_then(Value::as_str)?;
            let restarts = s.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            let stuck = STUCK.contains(&reason)
                && (reason != "CrashLoopBackOff" || restarts >= CRASHES_BEFORE_STUCK);
            stuck.then(|| {
                let message = s
                    .pointer("/state/waiting/message")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                (
                    component_of(pod, "unknown"),
                    format!(
                        "pod {} container {}: {reason}: {message}",
                        name_of(pod),
                        s["name"].as_str().unwrap_or("?")
                    ),
                )
            })
        })
    })
}

impl Engine {
    /// Wait until every workload of `phase` is ready; fail fast on a stalled one.
    pub(super) async fn wait_ready(
        &self,
        namespace: &str,
        platform: &str,
        phase: &[ComponentDecisions<'_>],
        started: Instant,
        timeout: Duration,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<()> {
        let mut pending = workloads(phase);
        pending.retain(|component, workloads| {
            if workloads.is_empty() {
                on_event(Event::Ready {
                    component: component.clone(),
                });
            }
            !workloads.is_empty()
        });
        let mut interval = Duration::from_millis(100);
        while !pending.is_empty() {
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(Duration::from_secs(2));
            let kinds: BTreeSet<&str> = pending
                .values()
                .flatten()
                .map(|(k, _)| k.as_str())
                .collect();
            let mut objects: HashMap<(String, String), Value> = HashMap::new();
            for kind in kinds.iter().filter_map(|k| Kind::named(k)) {
                for v in self.list_labelled(kind, namespace, platform).await? {
                    objects.insert((kind.kind.to_string(), name_of(&v).to_string()), v);
                }
            }
            let mut stuck_pods_checked = false;
            let mut claims: Option<HashMap<String, Value>> = None;
            let mut done = Vec::new();
            for (component, workloads) in &pending {
                let mut reasons = Vec::new();
                for (kind, name) in workloads {
                    let object = objects.get(&(kind.clone(), name.clone()));
                    let mut state = object.map(readiness::of);
                    // A StatefulSet waiting for its volumes: the claims say why.
                    if let (Some(sts), Some(Readiness::Progressing(_))) = (object, &state)
                        && kind == "StatefulSet"
                    {
                        if claims.is_none() {
                            let listed = self
                                .list_labelled(
                                    &crate::api::kinds::PERSISTENT_VOLUME_CLAIM,
                                    namespace,
                                    platform,
                                )
                                .await?;
                            claims = Some(
                                listed
                                    .into_iter()
                                    .map(|c| (name_of(&c).to_string(), c))
                                    .collect(),
                            );
                        }
                        let known = claims.as_ref();
                        if let Some(why) = readiness::claims(sts, |n| known.and_then(|c| c.get(n)))
                        {
                            state = Some(self.missing_class(why, sts, known).await?);
                        }
                    }
                    match state {
                        Some(Readiness::Ready) => {}
                        Some(Readiness::Stalled(reason)) => {
                            // The pod usually says why (image pull, crash loop) better than the
                            // workload's condition does.
                            let reason = match self.stuck_pod(namespace, platform).await? {
                                Some((c, pod_reason)) if &c == component => {
                                    format!("{kind}/{name}: {pod_reason}")
                                }
                                _ => format!("{kind}/{name}: {reason}"),
                            };
                            return Err(Error::Stalled {
                                component: component.clone(),
                                reason,
                            });
                        }
                        Some(Readiness::Progressing(r)) => {
                            reasons.push(format!("{kind}/{name}: {r}"))
                        }
                        None => reasons.push(format!("{kind}/{name}: not found")),
                    }
                }
                if reasons.is_empty() {
                    done.push(component.clone());
                    on_event(Event::Ready {
                        component: component.clone(),
                    });
                    continue;
                }
                // A pod that cannot start (bad image, crash loop, missing config) will not
                // recover by waiting: report it now rather than at the deadline.
                if !stuck_pods_checked {
                    stuck_pods_checked = true;
                    if let Some((pod_component, reason)) =
                        self.stuck_pod(namespace, platform).await?
                    {
                        return Err(Error::Stalled {
                            component: pod_component,
                            reason,
                        });
                    }
                }
                on_event(Event::Waiting {
                    component: component.clone(),
                    reason: reasons.join("; "),
                    elapsed: started.elapsed(),
                    budget: timeout,
                });
            }
            for c in done {
                pending.remove(&c);
            }
            if !pending.is_empty() && started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    seconds: timeout.as_secs(),
                    pending: pending.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(())
    }

    /// The platform's objects of `kind`, with their kind set.
    async fn list_labelled(
        &self,
        kind: &Kind,
        namespace: &str,
        platform: &str,
    ) -> Result<Vec<Value>> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &kind.api_resource());
        let selector = format!("{LABEL_PLATFORM}={platform}");
        let params = ListParams::default().labels(&selector);
        let list = super::retry::call(&self.limiter, || api.list(&params))
            .await
            .map_err(|e| classify(e, "list", kind.plural, namespace, kind.kind))?;
        Ok(list
            .items
            .iter()
            .map(|item| {
                let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
                v["kind"] = json!(kind.kind);
                v
            })
            .collect())
    }

    /// A claim waiting for a StorageClass that does not exist will wait forever: stalled, naming
    /// both. Any other answer (a class that exists, no permission to read classes) keeps `why`.
    async fn missing_class(
        &self,
        why: Readiness,
        statefulset: &Value,
        claims: Option<&HashMap<String, Value>>,
    ) -> Result<Readiness> {
        let waiting = readiness::claim_names(statefulset)
            .into_iter()
            .find_map(|name| {
                let pvc = claims?.get(&name)?;
                let bound = pvc.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
                let class = readiness::pending_class(pvc).filter(|_| !bound)?;
                Some((name, class.to_string()))
            });
        let Some((claim, class)) = waiting else {
            return Ok(why);
        };
        let api: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &crate::api::kinds::STORAGE_CLASS.api_resource(),
        );
        match super::retry::call(&self.limiter, || api.get_opt(&class)).await {
            Ok(None) => Ok(Readiness::Stalled(format!(
                "claim {claim} cannot bind: StorageClass {class:?} does not exist; create it, or set storageClassName to one of the cluster's classes"
            ))),
            _ => Ok(why),
        }
    }

    /// The first pod of the platform whose container waits for a reason that needs a fix.
    async fn stuck_pod(&self, namespace: &str, platform: &str) -> Result<Option<(String, String)>> {
        let pods = self
            .list_labelled(&crate::api::kinds::POD, namespace, platform)
            .await?;
        Ok(stuck_container(&pods))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(reason: &str, restarts: i64) -> Value {
        json!({"metadata": {"name": "shop-kafka-0", "labels": {"app.kubernetes.io/component": "kafka"}},
               "status": {"containerStatuses": [{"name": "kafka", "restartCount": restarts,
                   "state": {"waiting": {"reason": reason, "message": "back-off"}}}]}})
    }

    #[test]
    fn one_crash_at_start_is_not_stuck_three_are_and_a_bad_image_is_at_once() {
        assert_eq!(stuck_container(&[pod("CrashLoopBackOff", 1)]), None);
        assert!(stuck_container(&[pod("CrashLoopBackOff", 3)]).is_some());
        assert!(stuck_container(&[pod("ImagePullBackOff", 0)]).is_some());
        assert_eq!(stuck_container(&[pod("ContainerCreating", 0)]), None);
    }
}
