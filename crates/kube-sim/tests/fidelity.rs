//! Fidelity suite: every behaviour asserted through the real kube-rs client.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly on purpose

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind, Status};
use kube::runtime::{WatchStreamExt, conditions, wait::await_condition, watcher};
use kube::{Client, ResourceExt};
use kube_sim::{FaultKind, KubeSim};
use serde_json::{Value, json};

async fn start() -> (KubeSim, Client) {
    let sim = KubeSim::builder()
        .ready_delay(Duration::from_millis(50))
        .bookmark_interval(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let client = sim.client().unwrap();
    (sim, client)
}

async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .unwrap();
}

fn status(e: kube::Error) -> Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cm(name: &str, labels: Value, data: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "data": data}))
        .unwrap()
}

/// `conditions::is_deleted` needs the uid; these tests only care that the name is gone.
fn absent<K>(obj: Option<&K>) -> bool {
    obj.is_none()
}

async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("timed out")
}

#[tokio::test]
async fn discovery_lists_builtins_and_version() {
    let (_sim, client) = start().await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            found.push((
                ar.group.clone(),
                ar.version.clone(),
                ar.plural.clone(),
                caps.scope == kube::discovery::Scope::Namespaced,
            ));
        }
    }
    for expected in [
        ("", "v1", "configmaps", true),
        ("", "v1", "namespaces", false),
        ("apps", "v1", "deployments", true),
        ("autoscaling", "v2", "horizontalpodautoscalers", true),
        ("rbac.authorization.k8s.io", "v1", "clusterroles", false),
        (
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            false,
        ),
        ("events.k8s.io", "v1", "events", true),
    ] {
        let e = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
            expected.3,
        );
        assert!(found.contains(&e), "missing {expected:?} in discovery");
    }
    // Like a real cluster: the initial namespaces, each with a default ServiceAccount.
    let nss: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert_eq!(
        names,
        vec!["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), "default");
    within(
        20,
        await_condition(
            sas,
            "default",
            |s: Option<&k8s_openapi::api::core::v1::ServiceAccount>| s.is_some(),
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn crud_and_optimistic_concurrency() {
    let (_sim, client) = start().await;
    namespace(&client, "crud").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "crud");
    let created = api
        .create(
            &PostParams::default(),
            &cm("a", json!({"app": "x"}), json!({"k": "v"})),
        )
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let dup = status(
        api.create(&PostParams::default(), &cm("a", json!({}), json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, "configmaps \"a\" already exists");

    let mut first = api.get("a").await.unwrap();
    let mut second = first.clone();
    first.data = Some([("k".to_owned(), "v2".to_owned())].into());
    let updated = api
        .replace("a", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(updated.resource_version(), second.resource_version());
    second.data = Some([("k".to_owned(), "stale".to_owned())].into());
    let stale = status(
        api.replace("a", &PostParams::default(), &second)
            .await
            .unwrap_err(),
    );
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert!(
        stale.message.contains("the object has been modified"),
        "{}",
        stale.message
    );

    let missing = status(api.get("nope").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    let other_ns: Api<ConfigMap> = Api::namespaced(client.clone(), "does-not-exist");
    let no_ns = status(
        other_ns
            .create(&PostParams::default(), &cm("a", json!({}), json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(no_ns.code, 404);
    assert!(
        no_ns
            .message
            .contains("namespaces \"does-not-exist\" not found")
    );

    let bad_name = status(
        api.create(
            &PostParams::default(),
            &cm("Bad_Name", json!({}), json!({})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(bad_name.code, 422);
    assert_eq!(bad_name.details.unwrap().causes[0].field, "metadata.name");

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(status(api.get("a").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn list_selectors_and_pagination() {
    let (_sim, client) = start().await;
    namespace(&client, "list").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "list");
    for i in 0..7 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        api.create(
            &PostParams::default(),
            &cm(&format!("cm-{i}"), json!({"tier": tier}), json!({})),
        )
        .await
        .unwrap();
    }
    let even = api
        .list(&ListParams::default().labels("tier=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 4);
    let not_even = api
        .list(&ListParams::default().labels("tier notin (even)"))
        .await
        .unwrap();
    assert_eq!(not_even.items.len(), 3);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=cm-3"))
        .await
        .unwrap();
    assert_eq!(
        by_name
            .items
            .iter()
            .map(|c| c.name_any())
            .collect::<Vec<_>>(),
        vec!["cm-3"]
    );
    // Absurd parameters are rejected or clamped, never a crash.
    let huge = ListParams::default().limit(u32::MAX);
    assert_eq!(api.list(&huge).await.unwrap().items.len(), 7);
    let forever = http::Request::get(format!(
        "/api/v1/namespaces/list/configmaps?watch=true&timeoutSeconds={}",
        u64::MAX
    ))
    .body(Vec::new())
    .unwrap();
    let mut forever = client
        .request_events::<ConfigMap>(forever)
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        within(20, forever.next()).await,
        Some(Ok(WatchEvent::Added(_)))
    ));
    let bad_field = status(
        api.list(&ListParams::default().fields("data.k=v"))
            .await
            .unwrap_err(),
    );
    assert_eq!(bad_field.code, 400);

    let mut names = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await.unwrap();
        pages += 1;
        names.extend(page.items.iter().map(|c| c.name_any()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => {
                assert!(page.metadata.remaining_item_count.unwrap_or(0) > 0);
                params = params.continue_token(&token);
            }
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());

    // Metadata-only reads (PartialObjectMetadata), as kube's metadata watcher uses.
    let meta = api
        .list_metadata(&ListParams::default().labels("tier=odd"))
        .await
        .unwrap();
    assert_eq!(meta.items.len(), 3);
    assert_eq!(
        meta.items[0].types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    let one = api.get_metadata("cm-1").await.unwrap();
    assert_eq!(one.metadata.labels.unwrap()["tier"], "odd");
}

#[tokio::test]
async fn watch_resumes_bookmarks_times_out_and_expires() {
    let (sim, client) = start().await;
    namespace(&client, "w").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "w");
    let a = api
        .create(&PostParams::default(), &cm("a", json!({}), json!({})))
        .await
        .unwrap();
    let from = a.resource_version().unwrap();
    api.create(&PostParams::default(), &cm("b", json!({}), json!({})))
        .await
        .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();

    // Resuming from a's resourceVersion replays what happened after it.
    let mut stream = api
        .watch(&WatchParams::default().timeout(2), &from)
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    while let Some(ev) = within(20, stream.next()).await {
        match ev.unwrap() {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.name_any())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.name_any())),
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.name_any())),
            _ => {}
        }
    }
    // The stream ended by itself: the server-side timeout of 2 s.
    assert_eq!(seen, vec!["ADDED b", "DELETED a"]);

    let mut with_bookmarks = api
        .watch(&WatchParams::default().timeout(5), "0")
        .await
        .unwrap()
        .boxed();
    let mut got_bookmark = false;
    while let Some(ev) = within(20, with_bookmarks.next()).await {
        if let WatchEvent::Bookmark(b) = ev.unwrap() {
            assert!(!b.metadata.resource_version.is_empty());
            got_bookmark = true;
            break;
        }
    }
    assert!(got_bookmark);

    sim.compact();
    let mut expired = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    match within(20, expired.next()).await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 error event, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_and_controller_runtime_work() {
    let (_sim, client) = start().await;
    namespace(&client, "rt").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "rt");
    api.create(&PostParams::default(), &cm("pre", json!({}), json!({})))
        .await
        .unwrap();
    let stream = watcher(api.clone(), watcher::Config::default()).applied_objects();
    let mut stream = Box::pin(stream);
    let first = within(20, stream.try_next()).await.unwrap().unwrap();
    assert_eq!(first.name_any(), "pre");
    api.create(&PostParams::default(), &cm("post", json!({}), json!({})))
        .await
        .unwrap();
    let second = within(20, stream.try_next()).await.unwrap().unwrap();
    assert_eq!(second.name_any(), "post");

    // A kube-runtime Controller reconciling ConfigMaps: it stamps an annotation on each.
    use kube::runtime::controller::{Action, Controller};
    use std::sync::Arc;
    async fn reconcile(
        obj: Arc<ConfigMap>,
        api: Arc<Api<ConfigMap>>,
    ) -> Result<Action, kube::Error> {
        let patch = json!({"metadata": {"annotations": {"reconciled": "yes"}}});
        api.patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(Action::await_change())
    }
    let ctrl = Controller::new(api.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::await_change(),
            Arc::new(api.clone()),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(ctrl);
    let done = await_condition(api.clone(), "post", |o: Option<&ConfigMap>| {
        o.and_then(|c| c.metadata.annotations.as_ref())
            .is_some_and(|a| a.get("reconciled").is_some())
    });
    within(20, done).await.unwrap();
    handle.abort();
}

fn deployment(name: &str, replicas: i32, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]}}
        }
    })
}

#[tokio::test]
async fn server_side_apply_ownership_conflicts_force_and_removal() {
    let (sim, client) = start().await;
    namespace(&client, "ssa").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "ssa");
    let mut desired = deployment("web", 2, "img:1");
    desired["metadata"]["labels"]["extra"] = json!("yes");
    let created = api
        .patch("web", &PatchParams::apply("alice"), &Patch::Apply(&desired))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let mf = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(
        (mf[0].manager.as_deref(), mf[0].operation.as_deref()),
        (Some("alice"), Some("Apply"))
    );
    let fields = serde_json::to_value(&mf[0].fields_v1).unwrap();
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:image"]
            .is_object(),
        "{fields}"
    );

    // No-op apply: same resourceVersion, still counted as a write request.
    sim.reset_counters();
    let again = api
        .patch("web", &PatchParams::apply("alice"), &Patch::Apply(&desired))
        .await
        .unwrap();
    assert_eq!(again.resource_version(), created.resource_version());
    assert_eq!(sim.counters().get("apply", "deployments"), 1);
    assert_eq!(sim.counters().by_manager("alice"), 1);

    // Another manager changing alice's field conflicts, naming alice.
    let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let conflict = status(
        api.patch("web", &PatchParams::apply("bob"), &Patch::Apply(&bob))
            .await
            .unwrap_err(),
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(
        conflict.message.contains("conflict with \"alice\""),
        "{}",
        conflict.message
    );
    assert_eq!(conflict.details.unwrap().causes[0].field, ".spec.replicas");
    // Agreeing on the value is shared ownership, not a conflict.
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    api.patch("web", &PatchParams::apply("carol"), &Patch::Apply(&same))
        .await
        .unwrap();
    // Force takes ownership.
    let forced = api
        .patch(
            "web",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&bob),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(5));
    assert_eq!(forced.metadata.generation, Some(2));

    // alice stops sending the label and replicas: the label goes, replicas (now bob's) stays.
    let mut trimmed = deployment("web", 2, "img:1");
    trimmed["spec"].as_object_mut().unwrap().remove("replicas");
    let after = api
        .patch("web", &PatchParams::apply("alice"), &Patch::Apply(&trimmed))
        .await
        .unwrap();
    assert!(!after.labels().contains_key("extra"));
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(5));
    // Label-only changes do not bump generation.
    assert_eq!(after.metadata.generation, Some(2));

    // Dry-run: answered as if written, nothing stored.
    let mut dry = trimmed.clone();
    dry["spec"]["template"]["spec"]["containers"][0]["image"] = json!("img:2");
    let preview = api
        .patch(
            "web",
            &PatchParams::apply("alice").dry_run(),
            &Patch::Apply(&dry),
        )
        .await
        .unwrap();
    assert_eq!(
        preview.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("img:2")
    );
    let stored = api.get("web").await.unwrap();
    assert_eq!(
        stored.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("img:1")
    );
    assert_eq!(
        stored.metadata.resource_version,
        after.metadata.resource_version
    );
    let dry_create = api
        .patch(
            "nope",
            &PatchParams::apply("alice").dry_run(),
            &Patch::Apply(&deployment("nope", 1, "x")),
        )
        .await
        .unwrap();
    assert_eq!(dry_create.name_any(), "nope");
    assert_eq!(status(api.get("nope").await.unwrap_err()).code, 404);

    let missing_manager = client
        .request_status::<Value>(
            http::Request::patch("/apis/apps/v1/namespaces/ssa/deployments/web")
                .header("content-type", "application/apply-patch+yaml")
                .body(serde_json::to_vec(&bob).unwrap())
                .unwrap(),
        )
        .await;
    assert!(missing_manager.is_err());
}

#[tokio::test]
async fn patch_types_and_status_subresource() {
    let (_sim, client) = start().await;
    namespace(&client, "p").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "p");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(deployment("d", 1, "a:1")).unwrap(),
    )
    .await
    .unwrap();
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}}}});
    let out = api
        .patch("d", &PatchParams::default(), &Patch::Strategic(&smp))
        .await
        .unwrap();
    let names: Vec<_> = out
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, vec!["app", "sidecar"]);
    let merge =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "o:1"}]}}}});
    let out = api
        .patch("d", &PatchParams::default(), &Patch::Merge(&merge))
        .await
        .unwrap();
    assert_eq!(
        out.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers
            .len(),
        1
    );
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]))
            .unwrap();
    let out = api
        .patch("d", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .unwrap();
    assert_eq!(out.spec.as_ref().unwrap().replicas, Some(3));
    let generation = out.metadata.generation;

    // Status through the main resource is ignored; through /status it is kept without a
    // generation bump.
    let with_status = json!({"status": {"observedGeneration": 99}});
    let main = api
        .patch("d", &PatchParams::default(), &Patch::Merge(&with_status))
        .await
        .unwrap();
    assert_ne!(
        main.status.as_ref().and_then(|s| s.observed_generation),
        Some(99)
    );
    let st = api
        .patch_status("d", &PatchParams::default(), &Patch::Merge(&with_status))
        .await
        .unwrap();
    assert_eq!(st.status.unwrap().observed_generation, Some(99));
    assert_eq!(st.metadata.generation, generation);
    let spec_via_status = json!({"spec": {"replicas": 7}});
    let st = api
        .patch_status(
            "d",
            &PatchParams::default(),
            &Patch::Merge(&spec_via_status),
        )
        .await
        .unwrap();
    assert_eq!(st.spec.unwrap().replicas, Some(3));

    // The scale subresource, as `kubectl scale` and HPAs use it.
    let scaled = api
        .patch_scale(
            "d",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.unwrap().replicas, Some(4));
    assert_eq!(scaled.status.unwrap().selector.as_deref(), Some("app=d"));
    assert_eq!(
        api.get_scale("d").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );
    assert_eq!(api.get("d").await.unwrap().spec.unwrap().replicas, Some(4));

    let bad = status(
        api.patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(&json!({"kind": "Pod"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(bad.code, 400);
}

#[tokio::test]
async fn finalizers_preconditions_and_garbage_collection() {
    let (_sim, client) = start().await;
    namespace(&client, "gc").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "gc");
    let mut held = cm("held", json!({}), json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let deleting = api.get("held").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    let add = json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}});
    assert_eq!(
        status(
            api.patch("held", &PatchParams::default(), &Patch::Merge(&add))
                .await
                .unwrap_err()
        )
        .code,
        422
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(status(api.get("held").await.unwrap_err()).code, 404);

    let owner = api
        .create(&PostParams::default(), &cm("owner", json!({}), json!({})))
        .await
        .unwrap();
    let pre = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("wrong".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(
        status(api.delete("owner", &pre).await.unwrap_err()).code,
        409
    );

    let owned = |name: &str, owner: &ConfigMap, finalizer: bool| {
        let mut c = cm(name, json!({}), json!({}));
        c.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: owner.name_any(),
                uid: owner.uid().unwrap(),
                block_owner_deletion: Some(true),
                controller: Some(true),
            },
        ]);
        if finalizer {
            c.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        }
        c
    };
    // Background: the owner goes at once, its dependent shortly after.
    api.create(&PostParams::default(), &owned("dep", &owner, false))
        .await
        .unwrap();
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    within(20, await_condition(api.clone(), "dep", absent))
        .await
        .unwrap();

    // Foreground: the owner stays (with foregroundDeletion) until its dependents are gone.
    let owner2 = api
        .create(&PostParams::default(), &cm("owner2", json!({}), json!({})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &owned("blocker", &owner2, true))
        .await
        .unwrap();
    api.delete("owner2", &DeleteParams::foreground())
        .await
        .unwrap();
    // The GC marks the dependent for deletion; the owner waits for it.
    within(
        20,
        await_condition(api.clone(), "blocker", |c: Option<&ConfigMap>| {
            c.is_some_and(|c| c.metadata.deletion_timestamp.is_some())
        }),
    )
    .await
    .unwrap();
    let waiting = api.get("owner2").await.unwrap();
    assert!(
        waiting
            .finalizers()
            .contains(&"foregroundDeletion".to_owned())
    );
    assert!(
        api.get("blocker")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    api.patch(
        "blocker",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    within(20, await_condition(api.clone(), "owner2", absent))
        .await
        .unwrap();

    // Orphan: dependents survive without the owner reference.
    let owner3 = api
        .create(&PostParams::default(), &cm("owner3", json!({}), json!({})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &owned("orphan", &owner3, false))
        .await
        .unwrap();
    api.delete("owner3", &DeleteParams::orphan()).await.unwrap();
    within(20, await_condition(api.clone(), "owner3", absent))
        .await
        .unwrap();
    let orphan = api.get("orphan").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn namespace_lifecycle() {
    let (_sim, client) = start().await;
    namespace(&client, "doomed").await;
    let nss: Api<Namespace> = Api::all(client.clone());
    assert_eq!(
        nss.get("doomed")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Active")
    );
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let mut held = cm("held", json!({}), json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.create(&PostParams::default(), &cm("plain", json!({}), json!({})))
        .await
        .unwrap();
    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    within(20, await_condition(api.clone(), "plain", absent))
        .await
        .unwrap();
    let ns = nss.get("doomed").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    let refused = status(
        api.create(&PostParams::default(), &cm("new", json!({}), json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((refused.code, refused.reason.as_str()), (403, "Forbidden"));
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    within(20, await_condition(nss.clone(), "doomed", absent))
        .await
        .unwrap();
}

#[tokio::test]
async fn simulated_controllers_report_readiness_and_failures() {
    let (sim, client) = start().await;
    namespace(&client, "apps").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "apps");
    deploys
        .patch(
            "web",
            &PatchParams::apply("t"),
            &Patch::Apply(&deployment("web", 3, "img:1")),
        )
        .await
        .unwrap();
    let available = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Available" && c.status == "True")
            })
    };
    let ready = within(20, await_condition(deploys.clone(), "web", available))
        .await
        .unwrap()
        .unwrap();
    let st = ready.status.unwrap();
    assert_eq!(
        (
            st.ready_replicas,
            st.available_replicas,
            st.observed_generation
        ),
        (Some(3), Some(3), Some(1))
    );

    sim.fail_workload(
        "apps",
        "Deployment",
        "web",
        "ImagePullBackOff",
        "Back-off pulling image \"img:1\"",
    );
    let stalled = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "Progressing"
                        && c.status == "False"
                        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
                })
            })
    };
    within(20, await_condition(deploys.clone(), "web", stalled))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "apps");
    let pod = within(
        20,
        await_condition(pods.clone(), "web-sim-0", |p: Option<&Pod>| {
            p.is_some_and(|p| p.status.is_some())
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let waiting = pod.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("ImagePullBackOff"));
    sim.recover_workload("apps", "Deployment", "web");
    within(20, await_condition(deploys.clone(), "web", available))
        .await
        .unwrap();

    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "apps");
    let s = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "pg"}]}}}});
    sts.patch("db", &PatchParams::apply("t"), &Patch::Apply(&s))
        .await
        .unwrap();
    within(
        20,
        await_condition(sts.clone(), "db", |s: Option<&StatefulSet>| {
            s.and_then(|s| s.status.as_ref())
                .is_some_and(|st| st.ready_replicas == Some(2))
        }),
    )
    .await
    .unwrap();

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "apps");
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    pvcs.patch("data", &PatchParams::apply("t"), &Patch::Apply(&pvc))
        .await
        .unwrap();
    let bound = within(
        20,
        await_condition(pvcs.clone(), "data", |p: Option<&PersistentVolumeClaim>| {
            p.and_then(|p| p.status.as_ref())
                .is_some_and(|s| s.phase.as_deref() == Some("Bound"))
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(bound.spec.unwrap().volume_name.is_some());

    let jobs: Api<Job> = Api::namespaced(client.clone(), "apps");
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "m"}]}}}});
    jobs.patch("migrate", &PatchParams::apply("t"), &Patch::Apply(&job))
        .await
        .unwrap();
    within(
        20,
        await_condition(jobs.clone(), "migrate", conditions::is_job_completed()),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn fault_injection() {
    let (sim, client) = start().await;
    namespace(&client, "f").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "f");
    api.create(&PostParams::default(), &cm("a", json!({}), json!({})))
        .await
        .unwrap();

    sim.faults()
        .set_error_rate(Some("get"), Some("configmaps"), 1.0, FaultKind::Internal500);
    assert_eq!(status(api.get("a").await.unwrap_err()).code, 500);
    // Other verbs are unaffected.
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    sim.faults().set_error_rate(
        Some("get"),
        Some("configmaps"),
        1.0,
        FaultKind::TooManyRequests { retry_after_s: 7 },
    );
    // kube's default client retries 429s (honouring Retry-After); look at the raw answer.
    let mut config = kube::Config::new(sim.url().parse().unwrap());
    config.default_retry = false;
    let no_retry: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "f");
    let throttled = status(no_retry.get("a").await.unwrap_err());
    assert_eq!(
        (
            throttled.code,
            throttled.details.unwrap().retry_after_seconds
        ),
        (429, 7)
    );
    sim.faults()
        .set_error_rate(None, None, 1.0, FaultKind::Conflict409);
    assert_eq!(status(api.get("a").await.unwrap_err()).code, 409);
    sim.faults().clear();
    api.get("a").await.unwrap();

    sim.faults().set_latency(Duration::from_millis(200));
    let t = std::time::Instant::now();
    api.get("a").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    sim.faults().set_latency(Duration::ZERO);

    sim.faults().set_unavailable(true);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), api.get("a"))
            .await
            .is_err(),
        "server kept answering"
    );
    sim.faults().set_unavailable(false);
    api.get("a").await.unwrap();

    sim.faults()
        .drop_watches_every(Some(Duration::from_millis(300)));
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let ended = within(20, async {
        while let Some(ev) = stream.next().await {
            ev.unwrap();
        }
    });
    ended.await;
}

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object", "required": ["size"],
                            "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"}],
                            "properties": {
                                "size": {"type": "string", "enum": ["small", "large"]},
                                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                                "maxReplicas": {"type": "integer", "default": 5},
                                "host": {"type": "string", "pattern": "^[a-z.]+$"}
                            }
                        },
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                    }
                }}
            }]
        }
    })
}

#[tokio::test]
async fn custom_resources_validate_default_and_serve_status() {
    let (_sim, client) = start().await;
    namespace(&client, "cr").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("t"),
        &Patch::Apply(&widget_crd()),
    )
    .await
    .unwrap();
    within(
        20,
        await_condition(
            crds.clone(),
            "widgets.example.com",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap();

    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("Widget discovered");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "widgets/status" || s.plural == "status"),
        "{caps:?}"
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "cr", &ar);
    let ok = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": "small", "unknown": 1}});
    let w = api
        .patch("w", &PatchParams::apply("t"), &Patch::Apply(&ok))
        .await
        .unwrap();
    assert_eq!(
        w.data["spec"],
        json!({"size": "small", "replicas": 1, "maxReplicas": 5})
    );
    let owned =
        serde_json::to_value(&w.metadata.managed_fields.as_ref().unwrap()[0].fields_v1).unwrap();
    assert!(
        owned["f:spec"].get("f:unknown").is_none(),
        "pruned fields are not owned: {owned}"
    );
    let mut strict_params = PatchParams::apply("t");
    strict_params.field_validation = Some(kube::api::ValidationDirective::Strict);
    let strict = status(
        api.patch("w", &strict_params, &Patch::Apply(&ok))
            .await
            .unwrap_err(),
    );
    assert_eq!(strict.code, 400);
    assert!(
        strict.message.contains("unknown field \"spec.unknown\""),
        "{}",
        strict.message
    );

    let bad = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"}, "spec": {"size": "huge", "replicas": 11, "host": "UPPER"}});
    let err = status(
        api.patch("bad", &PatchParams::apply("t"), &Patch::Apply(&bad))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .starts_with("Widget.example.com \"bad\" is invalid"),
        "{}",
        err.message
    );
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    // As on the apiserver, the CEL rule on `spec` is not run while the schema's checks fail:
    // a `<nil>` cause says so (the rule itself is checked with `c` below).
    for f in ["spec.size", "spec.replicas", "spec.host", "<nil>"] {
        assert!(
            fields.contains(&f.to_owned()),
            "{f} missing from {fields:?}"
        );
    }
    let missing = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "m"}, "spec": {}});
    let err = status(
        api.patch("m", &PatchParams::apply("t"), &Patch::Apply(&missing))
            .await
            .unwrap_err(),
    );
    assert!(
        err.message.contains("spec.size: Required value"),
        "{}",
        err.message
    );
    let cel = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "c"}, "spec": {"size": "small", "replicas": 6}});
    let err = status(
        api.patch("c", &PatchParams::apply("t"), &Patch::Apply(&cel))
            .await
            .unwrap_err(),
    );
    assert!(
        err.message.contains("replicas must not exceed maxReplicas"),
        "{}",
        err.message
    );

    let st = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["ready"], json!(true));
    assert_eq!(st.metadata.generation, Some(1));
    // Server-side apply through /status is tracked as its own managedFields entry.
    let status_apply = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "status": {"ready": false}});
    // The merge patch above made another manager own status.ready: a conflict unless forced.
    let conflict = status(
        api.patch_status(
            "w",
            &PatchParams::apply("status-writer"),
            &Patch::Apply(&status_apply),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (
            conflict.code,
            conflict.details.unwrap().causes[0].field.as_str()
        ),
        (409, ".status.ready")
    );
    let st = api
        .patch_status(
            "w",
            &PatchParams::apply("status-writer").force(),
            &Patch::Apply(&status_apply),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["ready"], json!(false));
    let entry = st
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|e| e.manager.as_deref() == Some("status-writer"))
        .unwrap();
    assert_eq!(
        (entry.operation.as_deref(), entry.subresource.as_deref()),
        (Some("Apply"), Some("status"))
    );
    let strategic = status(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(&json!({"spec": {}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(strategic.code, 415);

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let gone = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let after: Api<DynamicObject> = Api::namespaced_with(client.clone(), "cr", &gone);
    assert_eq!(status(after.get("w").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn counters_track_verbs_resources_and_managers() {
    let (sim, client) = start().await;
    namespace(&client, "c").await;
    sim.reset_counters();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "c");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
    api.patch("x", &PatchParams::apply("op"), &Patch::Apply(&applied))
        .await
        .unwrap();
    api.get("x").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    let c = sim.counters();
    assert_eq!(c.total(), 3);
    assert_eq!(c.writes(), 1);
    assert_eq!(
        c.by.get(&("apply".to_owned(), "configmaps".to_owned(), "op".to_owned())),
        Some(&1)
    );
    assert_eq!(c.verb("get") + c.verb("list"), 2);
}

async fn kubectl(sim: &KubeSim, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use tokio::io::AsyncWriteExt as _;
    let mut cmd = tokio::process::Command::new("kubectl");
    cmd.args(args)
        .env("KUBECONFIG", sim.kubeconfig_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .expect("kubectl must be installed (/usr/bin/kubectl)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .await
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = within(60, child.wait_with_output()).await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const KUBECTL_MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: kc
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: kc
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: kc
data:
  mode: fast
"#;

#[tokio::test]
async fn kubectl_get_apply_wait_delete() {
    let (sim, client) = start().await;
    let (ok, out) = kubectl(
        &sim,
        &["apply", "--server-side", "-f", "-"],
        Some(KUBECTL_MANIFEST),
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );

    let (ok, out) = kubectl(&sim, &["get", "deployments,configmaps", "-n", "kc"], None).await;
    assert!(
        ok && out.contains("deployment.apps/web") && out.contains("configmap/settings"),
        "{out}"
    );
    let (ok, out) = kubectl(
        &sim,
        &[
            "get",
            "cm",
            "settings",
            "-n",
            "kc",
            "-o",
            "json",
            "--show-managed-fields",
        ],
        None,
    )
    .await;
    assert!(ok, "{out}");
    let cm: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cm["data"]["mode"], "fast");
    assert_eq!(cm["metadata"]["managedFields"][0]["manager"], "kubectl");

    let (ok, out) = kubectl(
        &sim,
        &[
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "-n",
            "kc",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    assert!(ok && out.contains("condition met"), "{out}");

    // Another manager takes replicas; kubectl's next apply reports the conflict naming it.
    let api: Api<Deployment> = Api::namespaced(client.clone(), "kc");
    let scale = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 4}});
    api.patch(
        "web",
        &PatchParams::apply("autoscaler").force(),
        &Patch::Apply(&scale),
    )
    .await
    .unwrap();
    let (ok, out) = kubectl(
        &sim,
        &["apply", "--server-side", "-f", "-"],
        Some(KUBECTL_MANIFEST),
    )
    .await;
    assert!(
        !ok && out.contains("conflict with \"autoscaler\"") && out.contains(".spec.replicas"),
        "{out}"
    );
    let (ok, out) = kubectl(
        &sim,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(KUBECTL_MANIFEST),
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );

    let (ok, out) = kubectl(
        &sim,
        &["scale", "deployment/web", "-n", "kc", "--replicas=3"],
        None,
    )
    .await;
    assert!(ok && out.contains("scaled"), "{out}");
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );

    let (ok, out) = kubectl(&sim, &["delete", "deployment", "web", "-n", "kc"], None).await;
    assert!(ok && out.contains("deleted"), "{out}");
    let (ok, out) = kubectl(
        &sim,
        &[
            "wait",
            "--for=delete",
            "configmap/settings",
            "-n",
            "kc",
            "--timeout=1s",
        ],
        None,
    )
    .await;
    assert!(
        !ok,
        "settings still exists, so waiting for its deletion must time out: {out}"
    );
    let (ok, out) = kubectl(
        &sim,
        &["delete", "namespace", "kc", "--wait=true", "--timeout=20s"],
        None,
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(status(api.get("web").await.unwrap_err()).code, 404);
    let (ok, out) = kubectl(&sim, &["get", "namespace", "kc"], None).await;
    assert!(!ok && out.contains("NotFound"), "{out}");
}

#[tokio::test]
async fn streaming_lists_selector_transitions_dry_run_and_collections() {
    let (_sim, client) = start().await;
    namespace(&client, "x").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "x");
    api.create(
        &PostParams::default(),
        &cm("first", json!({"team": "a"}), json!({})),
    )
    .await
    .unwrap();

    // kube's streaming-list watcher relies on sendInitialEvents and the initial-events-end bookmark.
    let mut streamed = Box::pin(watcher(
        api.clone(),
        watcher::Config::default().streaming_lists(),
    ));
    let mut init_done = false;
    let mut names = Vec::new();
    while !init_done {
        match within(20, streamed.try_next()).await.unwrap().unwrap() {
            watcher::Event::InitApply(o) => names.push(o.name_any()),
            watcher::Event::InitDone => init_done = true,
            _ => {}
        }
    }
    assert_eq!(names, vec!["first"]);

    // An object leaving a label selector is a DELETED event for that watch, entering it ADDED.
    let mut team_a = api
        .watch(&WatchParams::default().labels("team=a").timeout(3), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        within(20, team_a.next()).await,
        Some(Ok(WatchEvent::Added(_)))
    ));
    api.patch(
        "first",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"team": "b"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(
        within(20, team_a.next()).await,
        Some(Ok(WatchEvent::Deleted(_)))
    ));
    api.patch(
        "first",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"team": "a"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(
        within(20, team_a.next()).await,
        Some(Ok(WatchEvent::Added(_)))
    ));

    // Dry-run create and delete change nothing.
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    api.create(&dry, &cm("ghost", json!({}), json!({})))
        .await
        .unwrap();
    assert_eq!(status(api.get("ghost").await.unwrap_err()).code, 404);
    let rv = api.get("first").await.unwrap().resource_version();
    api.delete(
        "first",
        &DeleteParams {
            dry_run: true,
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(api.get("first").await.unwrap().resource_version(), rv);

    // generateName, then delete a collection by label.
    let mut generated = cm("", json!({"batch": "1"}), json!({}));
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let g = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(
        g.name_any().starts_with("gen-") && g.name_any().len() == 9,
        "{}",
        g.name_any()
    );
    api.create(
        &PostParams::default(),
        &cm("b2", json!({"batch": "1"}), json!({})),
    )
    .await
    .unwrap();
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("batch=1"),
    )
    .await
    .unwrap();
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(left, vec!["first"]);
}

fn api_code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn service_accounts_get_exactly_what_rbac_grants() {
    let (sim, admin) = start().await;
    namespace(&admin, "shop").await;
    namespace(&admin, "other").await;
    let operator = sim.service_account("ops", "operator").unwrap();
    let client = operator.client().unwrap();
    let config_maps = |ns: &str| -> Api<ConfigMap> { Api::namespaced(client.clone(), ns) };

    // Nothing is bound yet: even a list is refused, with the apiserver's message.
    let (code, message) = api_code(
        config_maps("shop")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "configmaps is forbidden: User \"system:serviceaccount:ops:operator\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"shop\""
    );

    // A Role bound in "shop" grants there only. Only `patch` is granted: server-side apply of a
    // new object also needs `create`.
    let apply = |kind: &str, ns: &str, body: Value| {
        let admin = admin.clone();
        let (group, plural) = match kind {
            "Role" => ("rbac.authorization.k8s.io", "roles"),
            "RoleBinding" => ("rbac.authorization.k8s.io", "rolebindings"),
            _ => unreachable!(),
        };
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural);
        let ns = ns.to_owned();
        async move {
            let api: Api<DynamicObject> = Api::namespaced_with(admin, &ns, &ar);
            let name = body["metadata"]["name"].as_str().unwrap().to_owned();
            api.patch(&name, &PatchParams::apply("test"), &Patch::Apply(body))
                .await
                .unwrap();
        }
    };
    apply(
        "Role",
        "shop",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "cm", "namespace": "shop"},
               "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "get", "patch"]}]}),
    )
    .await;
    apply(
        "RoleBinding",
        "shop",
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "cm", "namespace": "shop"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm"},
               "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": "ops"}]}),
    )
    .await;
    assert!(
        config_maps("shop")
            .list(&ListParams::default())
            .await
            .is_ok()
    );
    let (code, _) = api_code(
        config_maps("other")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}});
    let (code, message) = api_code(
        config_maps("shop")
            .patch(
                "settings",
                &PatchParams::apply("operator"),
                &Patch::Apply(cm.clone()),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert!(message.contains("cannot create resource"), "{message}");
    // Once the object exists, `patch` is enough to apply to it.
    let admin_cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "shop");
    admin_cms
        .patch(
            "settings",
            &PatchParams::apply("test"),
            &Patch::Apply(cm.clone()),
        )
        .await
        .unwrap();
    config_maps("shop")
        .patch(
            "settings",
            &PatchParams::apply("operator"),
            &Patch::Apply(cm),
        )
        .await
        .unwrap();
    let (code, message) = api_code(
        config_maps("shop")
            .delete("settings", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "configmaps \"settings\" is forbidden: User \"system:serviceaccount:ops:operator\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"shop\""
    );

    // A token the simulator never issued is not trusted.
    let mut config = kube::Config::new(sim.url().parse().unwrap());
    config.auth_info.token = Some("sim-sa-forged".to_owned().into());
    let forged = Client::try_from(config).unwrap();
    let (code, _) = api_code(
        Api::<ConfigMap>::namespaced(forged, "shop")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 401);
}
