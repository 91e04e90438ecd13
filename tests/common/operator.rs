//! The `panthera operator` process and the cluster set-up its tests share.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};
use kube_sim::KubeSim;
use panthera::api::PantheraPlatform;
use serde_json::json;

/// Install `crd` (usually [`crd`]).
pub async fn install_crd(client: &kube::Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), crd).await.unwrap();
}

pub fn crd() -> CustomResourceDefinition {
    serde_yaml::from_str(&panthera::api::crd_yaml().unwrap()).unwrap()
}

pub async fn namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .unwrap();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `panthera operator` process; SIGKILLed when dropped.
pub struct Operator {
    pub child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Operator {
    /// Start against `sim` as cluster-admin with `extra` arguments and `env` (e.g. AWS settings),
    /// its Lease in `default`.
    pub fn start_with_env(sim: &KubeSim, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let args: Vec<&str> = ["--lease-namespace", "default"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        Self::start_as(sim.kubeconfig_path(), &args, env)
    }

    /// Start with the credentials of `kubeconfig` (e.g. a ServiceAccount's), `args` and `env`.
    pub fn start_as(kubeconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("operator.log");
        let port = free_port();
        let child = super::bin()
            .arg("operator")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg(format!("--metrics-addr=127.0.0.1:{port}"))
            .args(["--log-format", "json"])
            .args(["--qps", "1000", "--burst", "2000"])
            .args(args)
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "info,panthera=debug")
            // The operator loads the AWS configuration at start; off EC2 the SDK would look for
            // a region at the instance metadata address, which is not on this machine.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Operator {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn start(sim: &KubeSim, extra: &[&str]) -> Self {
        Self::start_with_env(sim, extra, &[])
    }

    /// One metric's value summed over its label sets, if the endpoint answers.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            stream,
            "GET /metrics HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).ok()?;
        let values: Vec<f64> = body
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    pub fn sigterm(&self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the platform is Ready at its current generation, as the status contract says.
pub fn ready_at_generation(p: &panthera::api::PantheraPlatform) -> bool {
    let Some(status) = &p.status else {
        return false;
    };
    status.observed_generation == p.metadata.generation
        && status.conditions.iter().any(|c| {
            c.type_ == "Ready"
                && c.status == panthera::api::ConditionStatus::True
                && c.observed_generation == p.metadata.generation
        })
}

/// Ids (`Kind/name`) of the labelled children of `platform` in the cluster.
pub async fn children(
    client: &kube::Client,
    namespace: &str,
    platform: &str,
) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    for managed in panthera::api::Kind::children() {
        // The Prometheus operator's kinds exist only where its CRDs are installed.
        if managed.optional()
            && !panthera::engine::snapshot::serves(
                client,
                &panthera::engine::retry::Limiter::unlimited(),
                managed,
            )
            .await
            .unwrap()
        {
            continue;
        }
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &managed.api_resource());
        let list = api
            .list(
                &kube::api::ListParams::default()
                    .labels(&format!("panthera.dev/platform={platform}")),
            )
            .await
            .unwrap();
        for o in list.items {
            ids.insert(format!("{}/{}", managed.kind, o.metadata.name.unwrap()));
        }
    }
    ids
}

/// Ids the renderer plans for `platform` (what the cluster must hold, no more, no less) on a
/// cluster without the Prometheus operator's API, as the test clusters are.
pub fn planned(platform: &panthera::api::PantheraPlatform) -> std::collections::BTreeSet<String> {
    panthera::render::Renderer::embedded()
        .unwrap()
        .render(platform, &panthera::render::Generated::default())
        .unwrap()
        .objects()
        .filter(|o| {
            !panthera::api::Kind::find(o.api_version(), o.kind()).is_some_and(|k| k.optional())
        })
        .map(|o| o.id())
        .collect()
}

/// Poll the platform until `done` holds; panics with the last status and the operator's logs.
pub async fn wait_for(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    what: &str,
    within: Duration,
    logs: impl Fn() -> String,
    done: impl Fn(&panthera::api::PantheraPlatform) -> bool,
) -> panthera::api::PantheraPlatform {
    let api: Api<panthera::api::PantheraPlatform> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < within {
        if let Ok(p) = api.get(name).await {
            if done(&p) {
                return p;
            }
            last = Some(p);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{namespace}/{name}: not {what} after {within:?}; last status: {:#?}\noperator log:\n{}",
        last.and_then(|p| p.status),
        logs()
    );
}

/// A kube-sim whose workloads turn Ready after 100 ms.
pub async fn sim() -> KubeSim {
    KubeSim::builder()
        .ready_delay(Duration::from_millis(100))
        .start()
        .await
        .expect("kube-sim starts")
}

pub fn shop(namespace: &str) -> PantheraPlatform {
    let mut p = panthera::load::load_file(&super::example("shop")).unwrap();
    p.metadata.namespace = Some(namespace.into());
    p
}

pub fn minimal(name: &str, namespace: &str) -> PantheraPlatform {
    let mut p = panthera::load::load_file(&super::example("minimal")).unwrap();
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some(namespace.into());
    p
}

pub async fn create(client: &kube::Client, platform: &PantheraPlatform) {
    super::provide_secrets(client, platform).await;
    let api: Api<PantheraPlatform> = Api::namespaced(
        client.clone(),
        platform.metadata.namespace.as_deref().unwrap(),
    );
    api.create(&PostParams::default(), platform).await.unwrap();
}

/// Delete platform `name` and wait until the operator has let it go (its finalizer removed).
pub async fn delete_and_wait_gone(
    platforms: &Api<PantheraPlatform>,
    name: &str,
    logs: impl Fn() -> String,
) {
    platforms
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    let started = Instant::now();
    while platforms.get_opt(name).await.unwrap().is_some() {
        assert!(
            started.elapsed() < PLATFORM_GONE_TIMEOUT,
            "platform {name} not deleted:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const PLATFORM_GONE_TIMEOUT: Duration = Duration::from_secs(30);
