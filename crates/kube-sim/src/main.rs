//! `kube-sim --port N --kubeconfig out.yaml`: runs the simulated API server until interrupted.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "kube-sim",
    about = "In-process Kubernetes API server test double"
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write a kubeconfig pointing at the server.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Delay before simulated controllers report workloads ready, in milliseconds.
    #[arg(long, default_value_t = 100)]
    ready_delay_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let mut builder = kube_sim::KubeSim::builder()
        .port(args.port)
        .ready_delay(Duration::from_millis(args.ready_delay_ms));
    if let Some(path) = &args.kubeconfig {
        builder = builder.kubeconfig_path(path);
    }
    let sim = builder.start().await?;
    // Whoever started us may have stopped reading stdout; that must not stop the server.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "kube-sim listening on {}", sim.url());
    let _ = writeln!(out, "kubeconfig: {}", sim.kubeconfig_path().display());
    let _ = out.flush();
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
