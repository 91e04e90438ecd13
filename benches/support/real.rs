//! A real control plane for the benchmarks: the cluster of `PANTHERA_BENCH_KUBECONFIG` (or the
//! test suite's `PANTHERA_TEST_KUBECONFIG`), with requests counted exactly from the API
//! server's audit log (`PANTHERA_BENCH_AUDIT_LOG` / `PANTHERA_TEST_AUDIT_LOG`).
//! `scripts/bench.sh` starts one and sets both.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

pub struct RealCluster {
    pub kubeconfig: PathBuf,
    audit_log: PathBuf,
}

impl RealCluster {
    pub fn from_env() -> Option<Self> {
        let var = |bench: &str, test: &str| {
            std::env::var_os(bench)
                .or_else(|| std::env::var_os(test))
                .map(PathBuf::from)
        };
        Some(Self {
            kubeconfig: var("PANTHERA_BENCH_KUBECONFIG", "PANTHERA_TEST_KUBECONFIG")?,
            audit_log: var("PANTHERA_BENCH_AUDIT_LOG", "PANTHERA_TEST_AUDIT_LOG")?,
        })
    }

    pub async fn client(&self) -> Result<kube::Client, String> {
        client_of(&self.kubeconfig).await
    }

    /// A ServiceAccount bound to cluster-admin and a kubeconfig with its token, so that its
    /// requests can be told apart from the benchmark's own in the audit log.
    pub fn service_account(&self, dir: &Path, name: &str) -> Result<(String, PathBuf), String> {
        let kubectl = |args: &[&str]| -> Result<String, String> {
            let o = Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .output()
                .map_err(|e| format!("kubectl: {e}"))?;
            if o.status.success() {
                Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
            } else {
                Err(String::from_utf8_lossy(&o.stderr).into_owned())
            }
        };
        let _ = kubectl(&["create", "serviceaccount", name, "-n", "default"]);
        let _ = kubectl(&[
            "create",
            "clusterrolebinding",
            name,
            "--clusterrole=cluster-admin",
            &format!("--serviceaccount=default:{name}"),
        ]);
        let token = kubectl(&["create", "token", name, "-n", "default", "--duration", "2h"])?;
        let text = std::fs::read_to_string(&self.kubeconfig).map_err(|e| e.to_string())?;
        let mut config: Value = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
        config["users"] = json!([{"name": name, "user": {"token": token}}]);
        config["contexts"][0]["context"]["user"] = json!(name);
        let path = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(
            &path,
            serde_yaml::to_string(&config).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        Ok((format!("system:serviceaccount:default:{name}"), path))
    }

    /// The current end of the audit log.
    pub fn mark(&self) -> u64 {
        std::fs::metadata(&self.audit_log).map_or(0, |m| m.len())
    }

    /// (requests, writes) by `user` since `mark` (dry runs are not writes). The server logs a
    /// request once its response is sent, so callers let a moment pass first.
    pub fn count(&self, mark: u64, user: &str) -> (u64, u64) {
        let Ok(text) = std::fs::read(&self.audit_log) else {
            return (0, 0);
        };
        let start = usize::try_from(mark).unwrap_or(usize::MAX).min(text.len());
        let (mut requests, mut writes) = (0, 0);
        for line in String::from_utf8_lossy(&text[start..]).lines() {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if event["stage"] != "ResponseComplete" || event["user"]["username"] != user {
                continue;
            }
            requests += 1;
            let dry_run = event["requestURI"]
                .as_str()
                .is_some_and(|u| u.contains("dryRun="));
            let write = matches!(
                event["verb"].as_str(),
                Some("create" | "update" | "patch" | "delete" | "deletecollection")
            );
            if write && !dry_run {
                writes += 1;
            }
        }
        (requests, writes)
    }
}

pub async fn client_of(kubeconfig: &Path) -> Result<kube::Client, String> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// A short random tag, so that runs against a long-lived cluster do not collide.
pub fn run_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    format!("{:06x}", h.finish() & 0xff_ffff)
}
