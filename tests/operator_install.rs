//! `panthera install` and `apply --via-operator` against kube-sim: the operator's manifests
//! applied idempotently, and the real operator running on exactly the RBAC they grant (cluster-wide
//! and for one namespace).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::time::Duration;

use common::operator::{
    Operator, children, crd, create, delete_and_wait_gone, install_crd, minimal, namespace,
    planned, ready_at_generation, shop, sim, wait_for,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::ApiResource;
use panthera::api::PantheraPlatform;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_via_operator_follows_the_real_operator_to_ready() {
    let sim = sim().await;
    let client = sim.client().unwrap();
    install_crd(&client, &crd()).await;
    namespace(&client, "shop").await;
    common::provide_secrets(&client, &shop("shop")).await;
    let operator = Operator::start(&sim, &["--no-leader-elect"]);
    let kubeconfig = sim.kubeconfig_path().display().to_string();
    let o = tokio::task::spawn_blocking(move || {
        common::bin()
            .args([
                "apply",
                "--via-operator",
                "--wait",
                "--timeout",
                "60s",
                "-f",
            ])
            .arg(common::example("shop"))
            .args(["--kubeconfig", &kubeconfig])
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        common::stderr(&o),
        operator.logs()
    );
    let out = common::stdout(&o);
    assert!(out.contains("Ready: all 10 components are ready"), "{out}");
    // The CLI wrote only the platform resource; the operator wrote the children.
    assert_eq!(
        children(&client, "shop", "shop").await,
        planned(&shop("shop"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_applies_the_operator_manifests_idempotently() {
    let sim = sim().await;
    let client = sim.client().unwrap();
    let kubeconfig = sim.kubeconfig_path().display().to_string();
    let install = |extra: &'static [&'static str]| {
        let kubeconfig = kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            common::bin()
                .args(["install", "--kubeconfig", &kubeconfig])
                .args(extra)
                .env_remove("KUBECONFIG")
                .output()
                .unwrap()
        })
    };
    // A watched namespace that does not exist is refused before anything is written.
    let o = install(&["-n", "ops", "--watch-namespace", "nowhere"])
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        common::stderr(&o).trim(),
        "error: namespace nowhere (--watch-namespace) does not exist: create it first; nothing was applied"
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert!(
        crds.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let o = install(&["-n", "ops", "--replicas", "3"]).await.unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let out = common::stdout(&o);
    assert_eq!(out.lines().count(), 9, "{out}");
    assert!(
        out.starts_with("applied Namespace/ops\napplied CustomResourceDefinition/"),
        "{out}"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "ops");
    let d = deployments.get("panthera-operator").await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(3));
    let installed = crds.get("pantheraplatforms.panthera.dev").await.unwrap();
    assert_eq!(installed.spec, crd().spec);
    // Running it again changes nothing (the status may move on: kube-sim's controller).
    let generation = d.metadata.generation;
    let o = install(&["-n", "ops", "--replicas", "3"]).await.unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let again = deployments.get("panthera-operator").await.unwrap();
    assert_eq!(again.metadata.generation, generation);
    assert_eq!(again.spec, d.spec);
}

/// Run the Argo CD health check (`gitops/argocd/health.lua`) on `object`, if lua is here.
/// The code of a failed API call.
fn api_code<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> u16 {
    match result {
        Err(kube::Error::Api(status)) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The operator lives on what `panthera install` grants its ServiceAccount, and nothing more:
/// kube-sim authorizes its requests by the installed RBAC, as an API server does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_runs_on_exactly_the_rbac_that_install_grants() {
    operator_on_installed_rbac(&[]).await;
}

/// Watching one namespace, the grant is a RoleBinding there: no cluster-wide call may be left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_watching_one_namespace_needs_no_cluster_wide_grant() {
    operator_on_installed_rbac(&["--watch-namespace", "shop"]).await;
}

/// Install with `mode` (extra `install` flags, passed on to the operator too), run the operator
/// as its ServiceAccount through a platform's life, then check what it must not be able to do.
async fn operator_on_installed_rbac(mode: &'static [&'static str]) {
    let sim = sim().await;
    let admin = sim.client().unwrap();
    namespace(&admin, "shop").await;
    let kubeconfig = sim.kubeconfig_path().display().to_string();
    let install = tokio::task::spawn_blocking(move || {
        common::bin()
            .args([
                "install",
                "--kubeconfig",
                &kubeconfig,
                "-n",
                "panthera-system",
            ])
            .args(mode)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(install.status.success(), "{}", common::stderr(&install));
    let account = sim
        .service_account("panthera-system", "panthera-operator")
        .unwrap();
    // Leader election on, its Lease where the install's Role allows it.
    let args: Vec<&str> = ["--lease-namespace", "panthera-system", "--resync", "2s"]
        .into_iter()
        .chain(mode.iter().copied())
        .collect();
    let operator = Operator::start_as(account.kubeconfig_path(), &args, &[]);
    let logs = || operator.logs();

    let platform = shop("shop");
    create(&admin, &platform).await;
    wait_for(
        &admin,
        "shop",
        "shop",
        "Ready",
        TIMEOUT,
        logs,
        ready_at_generation,
    )
    .await;
    assert_eq!(children(&admin, "shop", "shop").await, planned(&platform));
    let leases: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        "panthera-system",
        &ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"),
            "leases",
        ),
    );
    assert!(
        leases.get_opt("panthera-operator").await.unwrap().is_some(),
        "no Lease:\n{}",
        logs()
    );

    // Teardown (children, PVCs, the finalizer) is within the grant too.
    let platforms: Api<PantheraPlatform> = Api::namespaced(admin.clone(), "shop");
    delete_and_wait_gone(&platforms, "shop", logs).await;
    assert!(
        !logs().contains("is forbidden: User"),
        "the API server refused the operator something:\n{}",
        logs()
    );

    // Least privilege: no RBAC writes (no escalation), no namespaces, no platforms of its own.
    let own = account.client().unwrap();
    let bindings: Api<DynamicObject> = Api::all_with(
        own.clone(),
        &ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk(
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
            ),
            "clusterrolebindings",
        ),
    );
    let escalate = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "mine"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "panthera-operator", "namespace": "panthera-system"}]
    }))
    .unwrap();
    assert_eq!(
        api_code(bindings.create(&PostParams::default(), &escalate).await),
        403
    );
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(own.clone());
    assert_eq!(
        api_code(namespaces.delete("shop", &DeleteParams::default()).await),
        403
    );
    if !mode.is_empty() {
        let elsewhere: Api<Deployment> = Api::namespaced(own.clone(), "default");
        assert_eq!(api_code(elsewhere.list(&ListParams::default()).await), 403);
    }
    let own_platforms: Api<PantheraPlatform> = Api::namespaced(own, "shop");
    assert_eq!(
        api_code(
            own_platforms
                .create(&PostParams::default(), &minimal("mine", "shop"))
                .await
        ),
        403
    );
}
