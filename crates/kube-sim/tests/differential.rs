//! Differential suite: the same requests to kube-sim and to a real kube-apiserver, answers compared
//! after normalization (uids, resourceVersions, timestamps, generated names removed).
//!
//! The real server comes from `PANTHERA_TEST_KUBECONFIG` (an admin kubeconfig). Without it the
//! suite is skipped, or fails when `CI` is set. Every difference must be listed in
//! [`KNOWN_DEVIATIONS`] (mirrored in the README's "Known differences" section): a new difference
//! fails the suite, and so does a listed one that no longer differs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly on purpose

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use kube_sim::KubeSim;
use serde_json::{Value, json};

/// Cases where kube-sim knowingly answers differently, with the reason (see the README).
const KNOWN_DEVIATIONS: &[(&str, &str)] = &[(
    "kubectl_create_namespace",
    "protobuf request bodies get 415: kubectl's typed generators (create namespace/secret/...) \
         send protobuf and do not fall back to JSON",
)];

/// One API server under test.
struct Target {
    label: &'static str,
    client: Client,
    kubeconfig: PathBuf,
    sim: Option<KubeSim>,
}

/// What a request got back.
struct Resp {
    code: u16,
    body: Value,
}

impl Resp {
    /// The answer as compared: code and normalized body.
    fn obs(&self) -> Value {
        json!({"code": self.code, "body": normalize(&self.body)})
    }

    /// Code and normalized body without `status` (controller-written, asynchronous).
    fn obs_spec(&self) -> Value {
        let mut b = normalize(&self.body);
        if b.get("kind").and_then(Value::as_str) != Some("Status")
            && let Some(m) = b.as_object_mut()
        {
            m.remove("status");
        }
        json!({"code": self.code, "body": b})
    }
}

async fn call(
    t: &Target,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&Value>,
) -> Resp {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, "application/json")
        .body(Body::from(bytes))
        .unwrap();
    let resp = match t.client.send(req).await {
        Ok(r) => r,
        Err(e) => {
            return Resp {
                code: 0,
                body: json!(format!("transport error: {e}")),
            };
        }
    };
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.unwrap_or_default();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Resp { code, body }
}

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const JSONPATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

async fn get(t: &Target, path: &str) -> Resp {
    call(t, "GET", path, JSON, None).await
}
async fn post(t: &Target, path: &str, body: &Value) -> Resp {
    call(t, "POST", path, JSON, Some(body)).await
}
async fn put(t: &Target, path: &str, body: &Value) -> Resp {
    call(t, "PUT", path, JSON, Some(body)).await
}
async fn patch(t: &Target, path: &str, ct: &str, body: &Value) -> Resp {
    call(t, "PATCH", path, ct, Some(body)).await
}
async fn delete(t: &Target, path: &str) -> Resp {
    call(t, "DELETE", path, JSON, None).await
}

/// Adds `fieldManager=diff` (so managedFields do not depend on the User-Agent) and `extra`.
fn q(path: &str, extra: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    if extra.is_empty() {
        format!("{path}{sep}fieldManager=diff")
    } else {
        format!("{path}{sep}fieldManager=diff&{extra}")
    }
}

/// Strips what differs between any two servers or runs: uids (also where they are copied, as in a
/// Job's selector), resourceVersions, timestamps, managedFields times, cluster IPs.
fn normalize(v: &Value) -> Value {
    let mut uids = Vec::new();
    collect_uids(v, &mut uids);
    let mut out = v.clone();
    scrub(&mut out, &uids, "");
    out
}

fn collect_uids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                if k == "uid"
                    && let Some(s) = c.as_str()
                {
                    out.push(s.to_owned());
                }
                collect_uids(c, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect_uids(c, out)),
        _ => {}
    }
}

fn scrub(v: &mut Value, uids: &[String], key: &str) {
    match v {
        Value::Object(m) => {
            for k in ["uid", "resourceVersion", "selfLink", "time"] {
                if m.contains_key(k) && (k != "time" || key == "managedFields") {
                    m.insert(k.into(), json!("<scrubbed>"));
                }
            }
            if key == "metadata" {
                for k in ["creationTimestamp", "deletionTimestamp"] {
                    if m.get(k).is_some_and(|t| !t.is_null()) {
                        m.insert(k.into(), json!("<time>"));
                    }
                }
                if let Some(Value::Object(a)) = m.get_mut("annotations") {
                    a.remove("deployment.kubernetes.io/revision");
                    if a.is_empty() {
                        m.remove("annotations");
                    }
                }
            }
            if key == "spec" {
                for k in ["clusterIP", "clusterIPs"] {
                    if m.contains_key(k) {
                        m.insert(k.into(), json!("<ip>"));
                    }
                }
            }
            for (k, c) in m.iter_mut() {
                scrub(c, uids, k);
            }
            // Keys of maps (labels) can hold uids too.
            let renamed: Vec<(String, String)> = m
                .keys()
                .filter(|k| uids.iter().any(|u| k.contains(u.as_str())))
                .map(|k| {
                    let mut n = k.clone();
                    for u in uids {
                        n = n.replace(u.as_str(), "<uid>");
                    }
                    (k.clone(), n)
                })
                .collect();
            for (old, new) in renamed {
                if let Some(c) = m.remove(&old) {
                    m.insert(new, c);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| scrub(c, uids, key)),
        Value::String(s) => {
            for u in uids {
                if s.contains(u.as_str()) {
                    *s = s.replace(u.as_str(), "<uid>");
                }
            }
        }
        _ => {}
    }
}

/// Keeps only the managedFields entries (manager, operation, fieldsV1 ...) of an object answer,
/// those of this suite's managers (not the controllers' asynchronous status writes).
fn managed_fields(r: &Resp) -> Value {
    let mut entries = normalize(&r.body)["metadata"]["managedFields"].clone();
    if let Value::Array(a) = &mut entries {
        a.retain(|e| {
            matches!(
                e["manager"].as_str(),
                Some("diff" | "alice" | "bob" | "carol")
            )
        });
    }
    json!({"code": r.code, "managedFields": entries})
}

fn names(list: &Value) -> Value {
    Value::Array(
        list["items"]
            .as_array()
            .map(|a| a.iter().map(|i| i["metadata"]["name"].clone()).collect())
            .unwrap_or_default(),
    )
}

/// Reads a raw watch until `max` events or `wait` elapsed: (HTTP code, events).
async fn watch_events(t: &Target, path: &str, max: usize, wait: Duration) -> (u16, Vec<Value>) {
    let req = http::Request::builder()
        .method("GET")
        .uri(path)
        .header(http::header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let Ok(resp) = t.client.send(req).await else {
        return (0, vec![]);
    };
    let code = resp.status().as_u16();
    let mut body = resp.into_body();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    if code != 200 {
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        return (code, vec![v]);
    }
    while events.len() < max {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        if let Ok(v) = serde_json::from_slice::<Value>(&line)
                            && events.len() < max
                        {
                            events.push(v);
                        }
                    }
                }
            }
            _ => break,
        }
    }
    (code, events)
}

fn event_summary(events: &[Value]) -> Value {
    Value::Array(
        events
            .iter()
            .map(|e| {
                let o = &e["object"];
                match e["type"].as_str() {
                    Some("BOOKMARK") => json!({"type": "BOOKMARK", "annotations": o["metadata"]["annotations"].clone()}),
                    Some("ERROR") => json!({"type": "ERROR", "code": o["code"].clone(), "reason": o["reason"].clone()}),
                    Some(t) => json!({"type": t, "name": o["metadata"]["name"].clone(), "data": o["data"].clone()}),
                    None => json!({"status": e["code"].clone(), "reason": e["reason"].clone()}),
                }
            })
            .collect(),
    )
}

fn cm(name: &str, labels: Value, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": data})
}

fn deployment(name: &str, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}},
        },
    })
}

fn container(image: &str) -> Value {
    json!([{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}])
}

/// Polls until `check` holds or `secs` pass.
async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// Runs every probe against one target; case name -> observation.
/// What the real server's answers decide for kube-sim's run.
#[derive(Default)]
struct Ctx {
    real_compacted: bool,
}

async fn probe_all(
    t: &Target,
    ns: &str,
    crd_group: &str,
    ctx: &mut Ctx,
) -> BTreeMap<String, Value> {
    let mut o: BTreeMap<String, Value> = BTreeMap::new();
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    let deps = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let created = post(
        t,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await;
    assert_eq!(
        created.code, 201,
        "{}: namespace {ns}: {}",
        t.label, created.body
    );
    // The real server creates the default ServiceAccount asynchronously; Pods need it.
    let sa = format!("/api/v1/namespaces/{ns}/serviceaccounts/default");
    eventually(30, || async { get(t, &sa).await.code == 200 }).await;

    // ---- discovery
    let v = get(t, "/version").await;
    let mut keys: Vec<&String> = v
        .body
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    keys.sort();
    o.insert(
        "discovery_version_fields".into(),
        json!({"code": v.code, "keys": keys, "major": v.body["major"]}),
    );
    let apis = get(t, "/apis").await;
    let has = |gv: &str| {
        apis.body["groups"].as_array().is_some_and(|gs| {
            gs.iter().any(|g| {
                g["versions"]
                    .as_array()
                    .is_some_and(|vs| vs.iter().any(|v| v["groupVersion"] == gv))
            })
        })
    };
    o.insert(
        "discovery_groups".into(),
        json!({"code": apis.code, "kind": apis.body["kind"], "apps/v1": has("apps/v1"), "autoscaling/v2": has("autoscaling/v2"), "policy/v1": has("policy/v1"), "batch/v1": has("batch/v1"), "networking.k8s.io/v1": has("networking.k8s.io/v1")}),
    );
    let core = get(t, "/api/v1").await;
    let cm_res = core.body["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == "configmaps"))
        .cloned()
        .unwrap_or(Value::Null);
    o.insert(
        "discovery_configmaps_resource".into(),
        json!({"code": core.code, "namespaced": cm_res["namespaced"], "kind": cm_res["kind"], "verbs": cm_res["verbs"], "shortNames": cm_res["shortNames"]}),
    );

    // ---- status codes
    o.insert(
        "get_missing_404".into(),
        get(t, &format!("{cms}/nope")).await.obs(),
    );
    post(t, &q(&cms, ""), &cm("dup", json!({}), json!({"a": "1"}))).await;
    o.insert(
        "create_existing_409".into(),
        post(t, &q(&cms, ""), &cm("dup", json!({}), json!({"a": "1"})))
            .await
            .obs(),
    );
    let first = get(t, &format!("{cms}/dup")).await.body;
    let mut stale = first.clone();
    stale["data"]["a"] = json!("2");
    put(t, &q(&format!("{cms}/dup"), ""), &stale).await;
    stale["data"]["a"] = json!("3");
    o.insert(
        "update_stale_resource_version_409".into(),
        put(t, &q(&format!("{cms}/dup"), ""), &stale).await.obs(),
    );
    o.insert(
        "create_invalid_name_422".into(),
        post(t, &q(&cms, ""), &cm("Bad_Name", json!({}), json!({})))
            .await
            .obs(),
    );
    o.insert(
        "create_in_missing_namespace_404".into(),
        post(
            t,
            &q("/api/v1/namespaces/diff-missing-ns/configmaps", ""),
            &cm("x", json!({}), json!({})),
        )
        .await
        .obs(),
    );
    o.insert(
        "create_invalid_label_value_422".into(),
        post(
            t,
            &q(&cms, ""),
            &cm("badlabel", json!({"app": "has space"}), json!({})),
        )
        .await
        .obs(),
    );

    // ---- defaults on create
    let d = post(
        t,
        &q(&deps, ""),
        &deployment("defaults", container("nginx:1.27")),
    )
    .await;
    o.insert("defaults_deployment".into(), d.obs_spec());
    let sts = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}}}],
        },
    });
    o.insert(
        "defaults_statefulset".into(),
        post(
            t,
            &q(&format!("/apis/apps/v1/namespaces/{ns}/statefulsets"), ""),
            &sts,
        )
        .await
        .obs_spec(),
    );
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
    o.insert(
        "defaults_service".into(),
        post(
            t,
            &q(&format!("/api/v1/namespaces/{ns}/services"), ""),
            &svc,
        )
        .await
        .obs_spec(),
    );
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "busybox:1.36", "command": ["true"]}]}}}});
    o.insert(
        "defaults_job".into(),
        post(
            t,
            &q(&format!("/apis/batch/v1/namespaces/{ns}/jobs"), ""),
            &job,
        )
        .await
        .obs_spec(),
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain"}, "data": {"k": "dg=="}});
    o.insert(
        "defaults_secret".into(),
        post(
            t,
            &q(&format!("/api/v1/namespaces/{ns}/secrets"), ""),
            &secret,
        )
        .await
        .obs(),
    );
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "diff-none", "resources": {"requests": {"storage": "1.5Gi"}}}});
    o.insert(
        "defaults_and_quantities_pvc".into(),
        post(
            t,
            &q(
                &format!("/api/v1/namespaces/{ns}/persistentvolumeclaims"),
                "",
            ),
            &pvc,
        )
        .await
        .obs_spec(),
    );

    // ---- canonical quantities
    let res_dep = deployment(
        "quantities",
        json!([{"name": "app", "image": "nginx:latest", "resources": {
            "requests": {"cpu": "0.5", "memory": "1024Mi"},
            "limits": {"cpu": "1000m", "memory": "1.5Gi", "ephemeral-storage": "2048Ki"}}}]),
    );
    let r = post(t, &q(&deps, ""), &res_dep).await;
    o.insert(
        "quantities_container_resources".into(),
        json!({"code": r.code, "resources": r.body["spec"]["template"]["spec"]["containers"][0]["resources"], "imagePullPolicy": r.body["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]}),
    );
    let mut applied = res_dep.clone();
    applied["metadata"]["name"] = json!("quantities-apply");
    applied["metadata"]["labels"] = json!({"app": "quantities-apply"});
    applied["spec"]["selector"]["matchLabels"]["app"] = json!("quantities-apply");
    applied["spec"]["template"]["metadata"]["labels"]["app"] = json!("quantities-apply");
    let r = patch(
        t,
        &q(&format!("{deps}/quantities-apply"), ""),
        APPLY,
        &applied,
    )
    .await;
    let again = patch(
        t,
        &q(&format!("{deps}/quantities-apply"), ""),
        APPLY,
        &applied,
    )
    .await;
    o.insert(
        "quantities_apply_is_idempotent".into(),
        json!({"code": r.code, "resources": r.body["spec"]["template"]["spec"]["containers"][0]["resources"],
               "second_code": again.code,
               // Not the resourceVersion: the real controllers write status in between.
               "second_keeps_generation": again.body["metadata"]["generation"] == r.body["metadata"]["generation"],
               "second_managed": managed_fields(&again)}),
    );

    // ---- Secret stringData
    let secrets = format!("/api/v1/namespaces/{ns}/secrets");
    let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sd"}, "data": {"a": "YQ=="}, "stringData": {"b": "bee", "a": "over"}});
    o.insert(
        "secret_stringdata_create".into(),
        post(t, &q(&secrets, ""), &s).await.obs(),
    );
    let mut s2 = get(t, &format!("{secrets}/sd")).await.body;
    s2["stringData"] = json!({"c": "sea"});
    o.insert(
        "secret_stringdata_update".into(),
        put(t, &q(&format!("{secrets}/sd"), ""), &s2).await.obs(),
    );
    let s3 = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sd-apply"}, "stringData": {"user": "admin"}});
    o.insert(
        "secret_stringdata_apply".into(),
        patch(t, &q(&format!("{secrets}/sd-apply"), ""), APPLY, &s3)
            .await
            .obs(),
    );

    // ---- Deployment validation
    let mut bad = deployment("mismatch", container("nginx:1.27"));
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    o.insert(
        "deployment_selector_mismatch_422".into(),
        post(t, &q(&deps, ""), &bad).await.obs(),
    );
    o.insert(
        "deployment_missing_containers_422".into(),
        post(t, &q(&deps, ""), &deployment("nocontainers", json!([])))
            .await
            .obs(),
    );
    let mut noimage = deployment("noimage", json!([{"name": "app"}]));
    noimage["spec"]["replicas"] = json!(-1);
    o.insert(
        "deployment_negative_replicas_no_image_422".into(),
        post(t, &q(&deps, ""), &noimage).await.obs(),
    );

    // ---- server-side apply
    let ssa = format!("{deps}/ssa");
    let mut unknown = deployment("ssa-unknown", container("nginx:1.27"));
    unknown["spec"]["bogus"] = json!(1);
    o.insert(
        "apply_unknown_field_default".into(),
        patch(t, &q(&format!("{deps}/ssa-unknown"), ""), APPLY, &unknown)
            .await
            .obs(),
    );
    o.insert(
        "apply_unknown_field_strict".into(),
        patch(
            t,
            &q(&format!("{deps}/ssa-unknown"), "fieldValidation=Strict"),
            APPLY,
            &unknown,
        )
        .await
        .obs(),
    );
    o.insert(
        "apply_unknown_field_ignore".into(),
        managed_fields(
            &patch(
                t,
                &q(&format!("{deps}/ssa-unknown"), "fieldValidation=Ignore"),
                APPLY,
                &unknown,
            )
            .await,
        ),
    );
    let mut create_unknown = deployment("post-unknown", container("nginx:1.27"));
    create_unknown["spec"]["bogus"] = json!(1);
    o.insert(
        "create_unknown_field_strict".into(),
        post(t, &q(&deps, "fieldValidation=Strict"), &create_unknown)
            .await
            .obs(),
    );
    let mut a = deployment("ssa", container("nginx:1.27"));
    a["spec"]["replicas"] = json!(2);
    let r = patch(t, &q(&ssa, "").replace("=diff", "=alice"), APPLY, &a).await;
    o.insert("apply_managed_fields".into(), managed_fields(&r));
    let mut b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa"}, "spec": {"replicas": 3}});
    o.insert(
        "apply_conflict_409".into(),
        patch(t, &q(&ssa, "").replace("=diff", "=bob"), APPLY, &b)
            .await
            .obs(),
    );
    let forced = patch(
        t,
        &q(&ssa, "force=true").replace("=diff", "=bob"),
        APPLY,
        &b,
    )
    .await;
    o.insert(
        "apply_force_takes_over".into(),
        json!({"code": forced.code, "replicas": forced.body["spec"]["replicas"], "managed": managed_fields(&forced)}),
    );
    b["spec"]["replicas"] = json!(3);
    let shared = patch(t, &q(&ssa, "").replace("=diff", "=carol"), APPLY, &b).await;
    o.insert(
        "apply_same_value_shares_ownership".into(),
        managed_fields(&shared),
    );
    let upd = patch(
        t,
        &q(&ssa, ""),
        MERGE,
        &json!({"metadata": {"labels": {"team": "x"}}}),
    )
    .await;
    o.insert(
        "update_after_apply_managed_fields".into(),
        managed_fields(&upd),
    );
    o.insert(
        "apply_without_field_manager_400".into(),
        call(t, "PATCH", &ssa, APPLY, Some(&b)).await.obs(),
    );

    // ---- dry run
    let dry = post(
        t,
        &q(&cms, "dryRun=All"),
        &cm("dry", json!({}), json!({"a": "1"})),
    )
    .await;
    let after = get(t, &format!("{cms}/dry")).await;
    o.insert(
        "dry_run_create_persists_nothing".into(),
        json!({"create": dry.obs(), "get_after": after.code}),
    );
    let dry_del = call(t, "DELETE", &format!("{cms}/dup?dryRun=All"), JSON, None).await;
    o.insert(
        "dry_run_delete_keeps_object".into(),
        json!({"code": dry_del.code, "get_after": get(t, &format!("{cms}/dup")).await.code}),
    );

    // ---- patches
    post(
        t,
        &q(&cms, ""),
        &cm(
            "p",
            json!({"app": "p", "tier": "web"}),
            json!({"a": "1", "b": "2"}),
        ),
    )
    .await;
    let p = format!("{cms}/p");
    o.insert(
        "json_patch_test_fails_422".into(),
        patch(t, &q(&p, ""), JSONPATCH, &json!([{"op": "test", "path": "/data/a", "value": "9"}, {"op": "replace", "path": "/data/a", "value": "x"}])).await.obs(),
    );
    o.insert(
        "json_patch_test_passes".into(),
        patch(t, &q(&p, ""), JSONPATCH, &json!([{"op": "test", "path": "/data/a", "value": "1"}, {"op": "replace", "path": "/data/a", "value": "x"}])).await.obs(),
    );
    o.insert(
        "merge_patch_sets_and_removes".into(),
        patch(t, &q(&p, ""), MERGE, &json!({"metadata": {"labels": {"tier": null, "new": "y"}}, "data": {"b": null, "c": "3"}})).await.obs(),
    );
    let mut two = deployment(
        "smp",
        json!([{"name": "app", "image": "nginx:1.27"}, {"name": "side", "image": "envoy:1"}]),
    );
    two["spec"]["replicas"] = json!(0);
    post(t, &q(&deps, ""), &two).await;
    let smp = patch(
        t,
        &q(&format!("{deps}/smp"), ""),
        STRATEGIC,
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "envoy:2"}]}}}}),
    )
    .await;
    o.insert(
        "strategic_merge_containers_by_name".into(),
        json!({"code": smp.code, "containers": normalize(&smp.body["spec"]["template"]["spec"]["containers"])}),
    );
    let bad_json_patch = patch(
        t,
        &q(&p, ""),
        JSONPATCH,
        &json!([{"op": "remove", "path": "/data/missing"}]),
    )
    .await;
    o.insert(
        "json_patch_remove_missing_path".into(),
        json!({"code": bad_json_patch.code, "reason": bad_json_patch.body["reason"]}),
    );

    // ---- lists
    for i in 0..7 {
        post(
            t,
            &q(&cms, ""),
            &cm(
                &format!("page-{i}"),
                json!({"set": "paging", "parity": if i % 2 == 0 {"even"} else {"odd"}}),
                json!({}),
            ),
        )
        .await;
    }
    let l = get(
        t,
        &format!("{cms}?labelSelector=set%3Dpaging,parity%3Deven"),
    )
    .await;
    o.insert(
        "list_label_selector".into(),
        json!({"code": l.code, "kind": l.body["kind"], "names": names(&l.body)}),
    );
    let l = get(t, &format!("{cms}?labelSelector=parity%20in%20(odd),set")).await;
    o.insert(
        "list_label_selector_set_based".into(),
        json!({"code": l.code, "names": names(&l.body)}),
    );
    let l = get(t, &format!("{cms}?fieldSelector=metadata.name%3Dpage-3")).await;
    o.insert(
        "list_field_selector_name".into(),
        json!({"code": l.code, "names": names(&l.body)}),
    );
    let l = get(t, &format!("{cms}?fieldSelector=data.a%3D1")).await;
    o.insert("list_field_selector_unsupported_400".into(), l.obs());
    let mut pages = Vec::new();
    let mut token = String::new();
    for _ in 0..5 {
        let url = if token.is_empty() {
            format!("{cms}?labelSelector=set%3Dpaging&limit=3")
        } else {
            format!("{cms}?labelSelector=set%3Dpaging&limit=3&continue={token}")
        };
        let page = get(t, &url).await;
        token = page.body["metadata"]["continue"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        pages.push(json!({"code": page.code, "names": names(&page.body), "remainingItemCount": page.body["metadata"]["remainingItemCount"], "has_continue": !token.is_empty()}));
        if token.is_empty() {
            break;
        }
    }
    o.insert("list_paging_continue".into(), Value::Array(pages));
    let bad_token = get(t, &format!("{cms}?limit=3&continue=garbage")).await;
    o.insert(
        "list_bad_continue_token".into(),
        json!({"code": bad_token.code, "reason": bad_token.body["reason"]}),
    );

    // ---- watch
    let start = get(t, &format!("{cms}?labelSelector=set%3Dwatch")).await;
    let rv = start.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_owned();
    post(
        t,
        &q(&cms, ""),
        &cm("w1", json!({"set": "watch"}), json!({"v": "1"})),
    )
    .await;
    patch(
        t,
        &q(&format!("{cms}/w1"), ""),
        MERGE,
        &json!({"data": {"v": "2"}}),
    )
    .await;
    delete(t, &format!("{cms}/w1")).await;
    let (code, events) = watch_events(
        t,
        &format!(
            "{cms}?watch=true&labelSelector=set%3Dwatch&resourceVersion={rv}&timeoutSeconds=10"
        ),
        3,
        Duration::from_secs(8),
    )
    .await;
    o.insert(
        "watch_added_modified_deleted".into(),
        json!({"code": code, "events": event_summary(&events)}),
    );
    let (code, events) = watch_events(
        t,
        &format!("{cms}?watch=true&labelSelector=set%3Dpaging,parity%3Deven&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=10"),
        5,
        Duration::from_secs(8),
    )
    .await;
    let mut ev = event_summary(&events);
    // Initial events arrive in any order.
    if let Value::Array(a) = &mut ev {
        a.sort_by_key(|e| e.to_string());
    }
    o.insert(
        "watch_initial_events_end_bookmark".into(),
        json!({"code": code, "events": ev}),
    );
    let (code, events) = watch_events(
        t,
        &format!("{cms}?watch=true&sendInitialEvents=true&timeoutSeconds=5"),
        1,
        Duration::from_secs(5),
    )
    .await;
    o.insert(
        "watch_send_initial_events_without_match_422".into(),
        json!({"code": code, "first": events.first().map(|e| json!({"code": e["code"], "reason": e["reason"]}))}),
    );
    // A real server answers 410 only once etcd has compacted the revision (every 5 minutes), so
    // kube-sim compacts exactly when the real server turned out to have compacted.
    if let Some(sim) = &t.sim
        && ctx.real_compacted
    {
        sim.compact();
    }
    let (code, events) = watch_events(
        t,
        &format!("{cms}?watch=true&labelSelector=set%3Dpaging&resourceVersion=2&timeoutSeconds=5"),
        1,
        Duration::from_secs(5),
    )
    .await;
    if t.sim.is_none() {
        ctx.real_compacted = events.first().is_some_and(|e| e["type"] == "ERROR");
    }
    let case = if ctx.real_compacted {
        "watch_too_old_resource_version_410"
    } else {
        "watch_old_resource_version_replays"
    };
    o.insert(
        case.into(),
        json!({"code": code, "events": event_summary(&events)}),
    );

    // ---- deletion
    post(
        t,
        &q(&cms, ""),
        &cm("held", json!({}), json!({}))
            .as_object()
            .map(|m| {
                let mut m = m.clone();
                m["metadata"]["finalizers"] = json!(["example.com/hold"]);
                Value::Object(m)
            })
            .unwrap(),
    )
    .await;
    let del = delete(t, &format!("{cms}/held")).await;
    let still = get(t, &format!("{cms}/held")).await;
    let released = patch(
        t,
        &q(&format!("{cms}/held"), ""),
        MERGE,
        &json!({"metadata": {"finalizers": null}}),
    )
    .await;
    let gone = get(t, &format!("{cms}/held")).await;
    o.insert(
        "delete_with_finalizer".into(),
        json!({"delete": del.obs(), "get_while_held": still.obs(), "release": released.code, "get_after": gone.code}),
    );
    let del = delete(t, &format!("{cms}/page-6")).await;
    o.insert("delete_immediate_response".into(), del.obs());
    o.insert(
        "delete_missing_404".into(),
        delete(t, &format!("{cms}/page-6")).await.obs(),
    );
    let del = call(t, "DELETE", &format!("{deps}/smp"), JSON, Some(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}))).await;
    let smp_path = format!("{deps}/smp");
    let gone = eventually(30, || async { get(t, &smp_path).await.code == 404 }).await;
    o.insert(
        "delete_foreground".into(),
        json!({"code": del.code, "finalizers": del.body["metadata"]["finalizers"], "deleting": del.body["metadata"]["deletionTimestamp"].is_string(), "eventually_gone": gone}),
    );
    let del = call(t, "DELETE", &format!("{deps}/defaults"), JSON, Some(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}))).await;
    o.insert(
        "delete_background".into(),
        json!({"code": del.code, "kind": del.body["kind"], "finalizers": del.body["metadata"]["finalizers"], "get_after": get(t, &format!("{deps}/defaults")).await.code}),
    );

    let claim = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/data");
    let del = delete(t, &claim).await;
    let gone = eventually(30, || async { get(t, &claim).await.code == 404 }).await;
    o.insert(
        "delete_pvc_protection".into(),
        json!({"code": del.code, "finalizers": del.body["metadata"]["finalizers"], "deleting": del.body["metadata"]["deletionTimestamp"].is_string(), "eventually_gone": gone}),
    );

    // ---- custom resources
    crd_probes(t, ns, crd_group, &mut o).await;

    // ---- kubectl (protobuf for built-in kinds)
    let kns = format!("{ns}-kubectl");
    let out = tokio::process::Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(&t.kubeconfig)
        .args(["create", "namespace", &kns])
        .output()
        .await;
    let ok = out.as_ref().is_ok_and(|o| o.status.success());
    if !ok && let Ok(out) = &out {
        println!(
            "[{}] kubectl: {}",
            t.label,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    o.insert("kubectl_create_namespace".into(), json!({"success": ok}));
    delete(t, &format!("/api/v1/namespaces/{kns}")).await;

    o
}

async fn crd_probes(t: &Target, ns: &str, group: &str, o: &mut BTreeMap<String, Value>) {
    let crd_name = format!("widgets.{group}");
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"}],
                            "properties": {
                                "replicas": {"type": "integer", "minimum": 0},
                                "maxReplicas": {"type": "integer"},
                                "size": {"type": "string", "default": "small", "enum": ["small", "large"]},
                            },
                        },
                        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                    },
                }},
            }],
        },
    });
    let created = post(
        t,
        &q(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "",
        ),
        &crd,
    )
    .await;
    assert_eq!(created.code, 201, "{}: CRD: {}", t.label, created.body);
    let crd_path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd_name}");
    let established = eventually(60, || async {
        let c = get(t, &crd_path).await;
        c.body["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
    })
    .await;
    o.insert(
        "crd_established".into(),
        json!({"created": created.code, "established": established}),
    );
    let widgets = format!("/apis/{group}/v1/namespaces/{ns}/widgets");
    // The real server starts serving a new CRD's endpoints a moment after Established.
    eventually(60, || async { get(t, &widgets).await.code == 200 }).await;
    let w = |name: &str, spec: Value| json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": name}, "spec": spec});
    let ok = post(
        t,
        &q(&widgets, ""),
        &w("ok", json!({"replicas": 1, "maxReplicas": 3, "extra": "x"})),
    )
    .await;
    o.insert("crd_defaults_and_prunes_unknown".into(), json!({"code": ok.code, "spec": ok.body["spec"], "managed": managed_fields(&ok)["managedFields"][0]["fieldsV1"]}));
    let r = post(
        t,
        &q(&widgets, ""),
        &w("cel", json!({"replicas": 5, "maxReplicas": 3})),
    )
    .await;
    o.insert("crd_cel_rule_422".into(), crd_obs(&r, group));
    let r = post(
        t,
        &q(&widgets, ""),
        &w(
            "neg",
            json!({"replicas": -1, "maxReplicas": 3, "size": "huge"}),
        ),
    )
    .await;
    // The apiserver walks the schema's properties in map order: the causes come in any order.
    let mut obs = crd_obs(&r, group);
    if let Some(causes) = obs["body"]["details"]["causes"].as_array_mut() {
        causes.sort_by_key(|c| c["field"].to_string());
    }
    if let Some(m) = obs["body"].as_object_mut() {
        m.remove("message");
    }
    o.insert("crd_schema_422".into(), obs);
    let r = post(
        t,
        &q(&widgets, "fieldValidation=Strict"),
        &w(
            "strict",
            json!({"replicas": 1, "maxReplicas": 3, "extra": "x"}),
        ),
    )
    .await;
    o.insert("crd_strict_unknown_field".into(), crd_obs(&r, group));
    let mut live = get(t, &format!("{widgets}/ok")).await.body;
    live["status"] = json!({"phase": "Ready"});
    live["spec"]["replicas"] = json!(2);
    let r = put(t, &q(&format!("{widgets}/ok"), ""), &live).await;
    o.insert(
        "crd_status_ignored_on_main_resource".into(),
        json!({"code": r.code, "status": r.body["status"], "replicas": r.body["spec"]["replicas"], "generation": r.body["metadata"]["generation"]}),
    );
    let mut live = r.body.clone();
    live["status"] = json!({"phase": "Ready"});
    live["spec"]["replicas"] = json!(3);
    let r = put(t, &q(&format!("{widgets}/ok/status"), ""), &live).await;
    o.insert(
        "crd_spec_ignored_on_status".into(),
        json!({"code": r.code, "status": r.body["status"], "replicas": r.body["spec"]["replicas"], "generation": r.body["metadata"]["generation"]}),
    );
    let r = get(
        t,
        &format!("/apis/{group}/v1/namespaces/{ns}/widgets/missing"),
    )
    .await;
    o.insert("crd_get_missing_404".into(), crd_obs(&r, group));
}

/// A custom resource answer with the random group replaced.
fn crd_obs(r: &Resp, group: &str) -> Value {
    let text = r.obs().to_string().replace(group, "<group>");
    serde_json::from_str(&text).unwrap()
}

async fn real_target() -> Option<Target> {
    let Ok(path) = std::env::var("PANTHERA_TEST_KUBECONFIG") else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "PANTHERA_TEST_KUBECONFIG is not set: the differential suite needs a real API server in CI"
            );
        }
        println!(
            "differential: PANTHERA_TEST_KUBECONFIG is not set; skipping (no real API server)"
        );
        return None;
    };
    let kubeconfig =
        kube::config::Kubeconfig::read_from(&path).expect("read PANTHERA_TEST_KUBECONFIG");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig");
    Some(Target {
        label: "real",
        client: Client::try_from(config).expect("client"),
        kubeconfig: PathBuf::from(path),
        sim: None,
    })
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..6)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_sim_answers_like_a_real_api_server() {
    let Some(real) = real_target().await else {
        return;
    };
    let sim = KubeSim::builder()
        .ready_delay(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let sim_target = Target {
        label: "kube-sim",
        client: sim.client().unwrap(),
        kubeconfig: sim.kubeconfig_path().to_path_buf(),
        sim: Some(sim),
    };
    let suffix = random_suffix();
    let ns = format!("diff-main-{suffix}");
    let group = format!("diff{suffix}.example.com");

    let mut ctx = Ctx::default();
    let real_obs = probe_all(&real, &ns, &group, &mut ctx).await;
    let sim_obs = probe_all(&sim_target, &ns, &group, &mut ctx).await;

    // Clean up what this test created on the shared cluster.
    delete(
        &real,
        &format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}"),
    )
    .await;
    delete(&real, &format!("/api/v1/namespaces/{ns}")).await;

    let mut differing = Vec::new();
    for (case, real_v) in &real_obs {
        let sim_v = sim_obs.get(case).unwrap_or(&Value::Null);
        if sim_v != real_v {
            println!("--- {case}\n  real:     {}\n  kube-sim: {}", real_v, sim_v);
            differing.push(case.clone());
        }
    }
    let probed = real_obs.len();
    println!("\nidentical {} / probed {probed}", probed - differing.len());
    for case in &differing {
        let known = KNOWN_DEVIATIONS.iter().find(|(n, _)| n == case);
        println!(
            "  differs: {case}{}",
            known
                .map(|(_, why)| format!("  (known: {why})"))
                .unwrap_or_default()
        );
    }
    let unexpected: Vec<&String> = differing
        .iter()
        .filter(|c| !KNOWN_DEVIATIONS.iter().any(|(n, _)| n == c))
        .collect();
    let fixed: Vec<&str> = KNOWN_DEVIATIONS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !differing.iter().any(|c| c == n))
        .collect();
    let unknown_cases: Vec<&str> = KNOWN_DEVIATIONS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !real_obs.contains_key(*n))
        .collect();
    assert!(
        unknown_cases.is_empty(),
        "KNOWN_DEVIATIONS names cases that are not probed: {unknown_cases:?}"
    );
    assert!(
        unexpected.is_empty(),
        "new differences from the real API server: {unexpected:?}"
    );
    assert!(
        fixed.is_empty(),
        "listed as known deviations but identical now (remove them from KNOWN_DEVIATIONS and the README): {fixed:?}"
    );
}
