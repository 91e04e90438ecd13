//! Scale benchmark: creates N ConfigMaps through the real kube client while W watches are open,
//! then prints writes/s, watch events/s, list time and the server's RSS.
//!
//! By default the server runs as a child process (the sibling `kube-sim` binary) so its RSS is
//! measured alone; `--in-process` runs it inside the benchmark instead.
//!
//! `cargo build --release -p kube-sim && target/release/kube-sim-bench [--objects 25000] [--watches 100]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures::{AsyncReadExt as _, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

#[derive(Debug, Parser)]
#[command(name = "kube-sim-bench")]
struct Args {
    #[arg(long, default_value_t = 25_000)]
    objects: u64,
    #[arg(long, default_value_t = 100)]
    watches: u64,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Run the server inside this process (RSS then includes the client).
    #[arg(long)]
    in_process: bool,
}

/// Resident set size of a process in MiB (Linux), as the kernel reports it.
fn rss_mib(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

enum Server {
    InProcess(kube_sim::KubeSim),
    Child(tokio::process::Child, tempfile::TempDir),
}

async fn start_server(in_process: bool) -> anyhow::Result<(Server, String, String)> {
    if in_process {
        let sim = kube_sim::KubeSim::builder()
            .start()
            .await
            .context("failed to start kube-sim")?;
        let url = sim.url().to_owned();
        return Ok((Server::InProcess(sim), url, "self".into()));
    }
    let exe = std::env::current_exe().context("failed to find the benchmark binary")?;
    let server_bin = exe.with_file_name("kube-sim");
    let dir = tempfile::tempdir().context("failed to create a temp dir")?;
    let mut child = tokio::process::Command::new(&server_bin)
        .args(["--port", "0", "--kubeconfig"])
        .arg(dir.path().join("kubeconfig"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "failed to start {} (build it with `cargo build --release -p kube-sim`)",
                server_bin.display()
            )
        })?;
    let pid = child
        .id()
        .context("failed to read the server pid")?
        .to_string();
    let stdout = child
        .stdout
        .take()
        .context("failed to read the server output")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = lines
        .next_line()
        .await?
        .context("the server exited before printing its URL")?;
    let url = first
        .rsplit(' ')
        .next()
        .context("unexpected server output")?
        .to_owned();
    Ok((Server::Child(child, dir), url, pid))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (server, url, pid) = start_server(args.in_process).await?;
    let mut config = kube::Config::new(url.parse().context("bad server URL")?);
    config.default_retry = false;
    let client = kube::Client::try_from(config).context("failed to build a client")?;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "bench"}}))?,
    )
    .await
    .context("failed to create the bench namespace")?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");
    let rss_start = rss_mib(&pid);

    // Watchers count event lines without decoding them: the figure is the server's delivery
    // rate, not kube-rs' JSON parsing speed.
    let received = Arc::new(AtomicU64::new(0));
    let mut watchers = Vec::new();
    for _ in 0..args.watches {
        let req = http::Request::get("/api/v1/namespaces/bench/configmaps?watch=true&resourceVersion=0&allowWatchBookmarks=false")
            .body(Vec::new())?;
        let mut stream = client
            .request_stream(req)
            .await
            .context("failed to open a watch")?;
        let received = received.clone();
        watchers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let lines = buf.iter().take(n).filter(|b| **b == b'\n').count();
                received.fetch_add(lines as u64, Ordering::Relaxed);
            }
        }));
    }

    let started = Instant::now();
    let results: Vec<Result<ConfigMap, kube::Error>> = futures::stream::iter(0..args.objects)
        .map(|i| {
            let api = api.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("cm-{i:06}"), "labels": {"app": "bench", "shard": (i % 16).to_string()}},
                    "data": {"index": i.to_string(), "payload": "x".repeat(64)}
                }))
                .map_err(kube::Error::SerdeError)?;
                api.create(&PostParams::default(), &cm).await
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let write_secs = started.elapsed().as_secs_f64();
    let failed = results.iter().filter(|r| r.is_err()).count();

    let expected = args.objects * args.watches;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let watch_secs = started.elapsed().as_secs_f64();
    let delivered = received.load(Ordering::Relaxed);
    let rss_loaded = rss_mib(&pid);

    let list_started = Instant::now();
    let listed = api
        .list(&ListParams::default())
        .await
        .context("failed to list")?
        .items
        .len();
    let list_secs = list_started.elapsed().as_secs_f64();
    let selected = api
        .list(&ListParams::default().labels("shard=3"))
        .await
        .context("failed to list by label")?
        .items
        .len();
    let rss_end = rss_mib(&pid);

    println!(
        "server:                 {}",
        if args.in_process {
            "in-process (RSS includes the client)"
        } else {
            "child process (RSS is the server's alone)"
        }
    );
    println!("objects created:        {} ({failed} failed)", args.objects);
    println!("open watches:           {}", args.watches);
    println!("create concurrency:     {}", args.concurrency);
    println!(
        "writes/s:               {:.0}",
        args.objects as f64 / write_secs
    );
    println!("watch events delivered: {delivered} of {expected}");
    println!(
        "watch events/s:         {:.0}",
        delivered as f64 / watch_secs
    );
    println!(
        "list of {listed} objects: {:.0} ms (label selector matched {selected})",
        list_secs * 1000.0
    );
    println!("server RSS at start:    {rss_start:.1} MiB");
    println!("server RSS loaded:      {rss_loaded:.1} MiB (after all events were delivered)");
    println!("server RSS after lists: {rss_end:.1} MiB");

    for w in watchers {
        w.abort();
    }
    match server {
        Server::InProcess(sim) => sim.shutdown().await,
        Server::Child(mut child, _dir) => {
            child.kill().await.context("failed to stop the server")?;
        }
    }
    Ok(())
}
