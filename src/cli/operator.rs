//! `panthera operator`: run the in-cluster controller.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::apply::parse_duration;
use super::cluster::ClusterArgs;
use super::{Error, Result, TemplateArgs};
use crate::operator::{LeaderElection, Options, Settings};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera operator\n  panthera operator --watch-namespace shop --no-leader-elect\n  panthera install | kubectl apply -f -   # runs this in the cluster"
)]
pub struct Args {
    /// Watch PantheraPlatforms in this namespace only (default: all namespaces).
    #[arg(long, value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Run without leader election; only safe with a single replica.
    #[arg(long)]
    pub no_leader_elect: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, default_value = "panthera-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else panthera-system).
    #[arg(long, value_name = "NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// A lease not renewed for this long passes to another replica.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// Re-check Ready platforms this often; a resync that finds no drift writes nothing.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,
    /// Platforms reconciled at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: u16,
    /// Gather child events for this long before reconciling their platform once.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub templates: TemplateArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

pub fn run(args: &Args, _out: &mut dyn Write) -> Result<()> {
    init_logs(args.log_format);
    let renderer = args.templates.renderer()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let client = args.cluster.watch_client().await?;
        // The standard AWS configuration (AWS_REGION, AWS_ENDPOINT_URL, credentials chain: IRSA
        // or Pod Identity in a cluster) but for the region from instance metadata. Credentials
        // are resolved on first use, so an operator without AWS stores needs none and calls
        // nothing at start.
        let aws = crate::cloud::aws::Aws::from_env_for_pod().await;
        let engine = crate::engine::Engine::new(client.clone(), renderer)
            .with_rate_limit(args.cluster.qps, args.cluster.burst)
            .with_aws(aws);
        let leader_election = (!args.no_leader_elect).then(|| LeaderElection {
            lease_name: args.lease_name.clone(),
            lease_namespace: args
                .lease_namespace
                .clone()
                .or_else(|| std::env::var("POD_NAMESPACE").ok())
                .unwrap_or_else(|| "panthera-system".into()),
            identity: crate::operator::default_identity(),
            duration: args.lease_duration,
            grace: (args.lease_duration / 3).max(Duration::from_secs(1)),
        });
        let options = Options {
            settings: Settings {
                namespace: args.watch_namespace.clone(),
                resync: args.resync,
                concurrency: args.concurrency,
                debounce: args.debounce,
            },
            metrics_addr: args.metrics_addr,
            leader_election,
        };
        let ran = crate::operator::run(client, engine, options).await;
        // The last reconciles' spans, before the process ends.
        panthera_otel::shutdown();
        ran.map_err(|e| Error::Usage(e.to_string()))
    })
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // Outside AWS the SDK's region lookup from instance metadata fails at every start;
        // that is expected, and a missing region is reported where it matters.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_config::imds=error"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    // Spans of each reconcile and its pipeline steps, when OTEL_EXPORTER_OTLP_ENDPOINT is set;
    // RUST_LOG filters the log lines only.
    let (otel, setup_error) =
        match panthera_otel::layer("panthera-operator", panthera_otel::Sampling::Sdk) {
            Ok(layer) => (layer, None),
            Err(error) => (None, Some(error)),
        };
    let otel = otel.map(|layer| {
        layer.with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.target().starts_with("panthera") && *metadata.level() <= tracing::Level::INFO
        }))
    });
    // A second initialisation (tests calling run twice) keeps the first subscriber.
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .is_ok();
    if installed && let Some(error) = setup_error {
        tracing::error!(error = %error, "tracing is off: its OTEL_* settings are wrong");
    }
}
