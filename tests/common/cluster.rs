//! The real control plane that `scripts/test.sh` starts (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler, kwok): where to reach it, a fresh namespace per test,
//! ServiceAccount credentials, and the API server's audit log to count requests exactly.
//!
//! Tests share the one cluster and run in parallel, so each works in namespaces of its own and
//! counts only the requests made in them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// The cluster of `PANTHERA_TEST_KUBECONFIG`. Missing in CI is a failure; elsewhere the test is
/// skipped with a notice (run `scripts/test.sh`, or `scripts/control-plane.sh start DIR`).
pub fn real_cluster() -> Option<RealCluster> {
    let kubeconfig = std::env::var_os("PANTHERA_TEST_KUBECONFIG").map(PathBuf::from);
    let audit_log = std::env::var_os("PANTHERA_TEST_AUDIT_LOG").map(PathBuf::from);
    match (kubeconfig, audit_log) {
        (Some(kubeconfig), Some(audit_log)) if kubeconfig.exists() => Some(RealCluster {
            kubeconfig,
            audit_log,
        }),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PANTHERA_TEST_KUBECONFIG is not set: scripts/test.sh starts the real control plane"
            );
            eprintln!("skipping: no real control plane (PANTHERA_TEST_KUBECONFIG)");
            None
        }
    }
}

pub struct RealCluster {
    pub kubeconfig: PathBuf,
    audit_log: PathBuf,
}

/// One request as the API server's audit log recorded it.
#[derive(Debug, Clone)]
pub struct Request {
    pub user: String,
    pub verb: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub code: u16,
    pub dry_run: bool,
}

impl Request {
    /// A request that changes something (dry runs change nothing).
    pub fn is_write(&self) -> bool {
        !self.dry_run
            && matches!(
                self.verb.as_str(),
                "create" | "update" | "patch" | "delete" | "deletecollection"
            )
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}/{} -> {}",
            self.user, self.verb, self.resource, self.name, self.code
        )
    }
}

/// A position in the audit log: requests after it are what a step made.
#[derive(Debug, Clone, Copy)]
pub struct Mark(u64);

impl RealCluster {
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// Create a namespace of its own for one test: `{prefix}-{random}`.
    pub async fn namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", &uuid_like()[..8]);
        let api: Api<Namespace> = Api::all(self.client().await);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
        name
    }

    /// `panthera ARGS --kubeconfig <admin>`, off the async runtime.
    pub async fn panthera(&self, args: &[&str]) -> Output {
        self.panthera_as(&self.kubeconfig, args).await
    }

    pub async fn panthera_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.push("--kubeconfig".into());
        all.push(kubeconfig.display().to_string());
        tokio::task::spawn_blocking(move || {
            super::bin()
                .args(&all)
                .env_remove("KUBECONFIG")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    }

    /// `kubectl ARGS` as the admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// A kubeconfig in `dir` with a one-hour token of ServiceAccount `namespace/name`.
    pub fn service_account_kubeconfig(&self, dir: &Path, namespace: &str, name: &str) -> PathBuf {
        let token = self.kubectl(&["create", "token", name, "-n", namespace, "--duration", "1h"]);
        assert!(
            token.status.success(),
            "{}",
            String::from_utf8_lossy(&token.stderr)
        );
        let token = String::from_utf8(token.stdout).unwrap();
        let mut config: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&self.kubeconfig).unwrap()).unwrap();
        config["users"] = json!([{"name": "sa", "user": {"token": token.trim()}}]);
        config["contexts"][0]["context"]["user"] = json!("sa");
        let path = dir.join(format!("{namespace}-{name}.kubeconfig"));
        std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
        path
    }

    /// The current end of the audit log.
    pub fn mark(&self) -> Mark {
        Mark(std::fs::metadata(&self.audit_log).map_or(0, |m| m.len()))
    }

    /// Requests since `mark` in `namespace` (cluster-scoped ones when `namespace` is empty), by
    /// every user but the control plane's own components.
    /// The server writes an event once the response is sent, so this first waits a moment.
    pub async fn requests(&self, since: Mark, namespace: &str) -> Vec<Request> {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let text = std::fs::read(&self.audit_log).unwrap();
        let start = usize::try_from(since.0).unwrap().min(text.len());
        String::from_utf8_lossy(&text[start..])
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|e| e["stage"] == "ResponseComplete")
            .filter(|e| e["objectRef"]["namespace"].as_str().unwrap_or_default() == namespace)
            .map(|e| Request {
                user: e["user"]["username"].as_str().unwrap_or_default().into(),
                verb: e["verb"].as_str().unwrap_or_default().into(),
                resource: e["objectRef"]["resource"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                namespace: namespace.to_string(),
                name: e["objectRef"]["name"].as_str().unwrap_or_default().into(),
                code: e["responseStatus"]["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or_default(),
                dry_run: e["requestURI"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("dryRun="),
            })
            .collect()
    }

    /// The writes since `mark` in `namespace` by the admin (the CLI's and kubectl's user).
    pub async fn writes(&self, since: Mark, namespace: &str) -> Vec<Request> {
        self.writes_by(since, namespace, "admin").await
    }

    /// The writes since `mark` in `namespace` by `user`.
    pub async fn writes_by(&self, since: Mark, namespace: &str, user: &str) -> Vec<Request> {
        self.requests(since, namespace)
            .await
            .into_iter()
            .filter(|r| r.is_write() && r.user == user)
            .collect()
    }
}

/// `example` (a file under examples/) moved to `namespace`, written into `dir`.
pub fn example_in(dir: &Path, example: &str, namespace: &str) -> PathBuf {
    let text = std::fs::read_to_string(super::example(example)).unwrap();
    edited_in(dir, example, namespace, &text, |t| t)
}

/// `text` (a platform file) moved to `namespace` and changed by `edit`, written into `dir`.
pub fn edited_in(
    dir: &Path,
    name: &str,
    namespace: &str,
    text: &str,
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let moved: String = text
        .lines()
        .map(|l| {
            if l.starts_with("  namespace: ") {
                format!("  namespace: {namespace}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join(format!("{name}-{namespace}.yaml"));
    std::fs::write(&path, edit(moved + "\n")).unwrap();
    path
}

pub fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{:016x}", h.finish())
}
