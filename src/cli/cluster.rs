//! kubectl-like cluster flags and the client built from them.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::{Error, Result};

/// The platform a verb acts on: a PantheraPlatform in the cluster by name, or a platform file.
#[derive(Debug, Clone, clap::Args)]
pub struct PlatformArgs {
    /// Name of a PantheraPlatform in the cluster (namespace from -n).
    pub name: Option<String>,
    /// Or the platform file.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE",
        conflicts_with = "name"
    )]
    pub file: Option<PathBuf>,
}

/// A platform file, the cluster to reconcile it in and the templates to render it with: what
/// every verb that renders a file against a cluster takes.
#[derive(Debug, clap::Args)]
pub struct FileArgs {
    /// PantheraPlatform file.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub templates: super::TemplateArgs,
}

impl FileArgs {
    /// The platform of the file (see [`ClusterArgs::load`]).
    pub fn platform(&self) -> Result<crate::api::PantheraPlatform> {
        self.cluster.load(&self.file)
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE", global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace; must match the file's metadata.namespace when both are given.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Client-side request rate limit (requests per second).
    #[arg(long, default_value_t = 50.0, global = true)]
    pub qps: f64,
    /// Requests allowed above --qps in a burst.
    #[arg(long, default_value_t = 100, global = true)]
    pub burst: u32,
    /// How long to wait for one API response (e.g. 30s).
    #[arg(long, default_value = "30s", value_parser = super::apply::parse_duration, global = true)]
    pub request_timeout: std::time::Duration,
}

impl ClusterArgs {
    /// Whether any way to reach a cluster is configured (for verbs with an offline fallback).
    pub fn configured(&self) -> bool {
        self.kubeconfig.is_some()
            || self.context.is_some()
            || std::env::var_os("KUBECONFIG").is_some()
            || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
            || std::env::var_os("HOME")
                .is_some_and(|h| PathBuf::from(h).join(".kube/config").exists())
    }

    pub async fn client(&self) -> Result<kube::Client> {
        let mut config = self.config().await?;
        config.read_timeout = Some(self.request_timeout);
        connect(config).await
    }

    /// A client for long-running watches: the read timeout must outlast a watch's own
    /// server-side timeout (5 minutes), or every idle watch would fail and restart.
    pub async fn watch_client(&self) -> Result<kube::Client> {
        let mut config = self.config().await?;
        config.read_timeout = Some(
            self.request_timeout
                .max(std::time::Duration::from_secs(330)),
        );
        connect(config).await
    }

    async fn config(&self) -> Result<kube::Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: None,
            user: None,
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                    Error::Usage(format!("cannot read kubeconfig {}: {e}", path.display()))
                })?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options).await,
            None => kube::Config::infer().await.map_err(|e| {
                kube::config::KubeconfigError::ReadConfig(
                    std::io::Error::other(e.to_string()),
                    PathBuf::from("~/.kube/config"),
                )
            }),
        }
        .map_err(|e| {
            Error::Usage(format!(
                "no usable cluster configuration: {e}; pass --kubeconfig or set KUBECONFIG"
            ))
        })?;
        let mut config = config;
        config.connect_timeout = Some(self.request_timeout.min(std::time::Duration::from_secs(10)));
        Ok(config)
    }

    /// The platform of `file`, in the file's namespace unless -n says otherwise (then they
    /// must agree).
    pub fn load(&self, file: &std::path::Path) -> Result<crate::api::PantheraPlatform> {
        let mut platform = crate::load::load_file(file)?;
        match (&self.namespace, &platform.metadata.namespace) {
            (Some(flag), Some(file)) if flag != file => {
                return Err(Error::Usage(format!(
                    "the file says namespace {file} but -n says {flag}; remove one of them"
                )));
            }
            (Some(flag), None) => platform.metadata.namespace = Some(flag.clone()),
            _ => {}
        }
        Ok(platform)
    }
}

/// A client for `config`, refused when the server is older than Panthera supports.
async fn connect(config: kube::Config) -> Result<kube::Client> {
    let client = kube::Client::try_from(config)
        .map_err(|e| Error::Usage(format!("cannot build a Kubernetes client: {e}")))?;
    crate::engine::check_server_version(&client).await?;
    Ok(client)
}

/// A runtime for the verbs that talk to a cluster (the offline ones stay synchronous and quick).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))
}
