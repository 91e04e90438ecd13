//! Operator benchmark (run with `cargo bench --bench operator`, or `scripts/bench.sh` for the
//! real control plane beside kube-sim; not a test).
//!
//! Creates N platforms (default 1,000 on kube-sim, `PANTHERA_BENCH_PLATFORMS`; 100 on a real
//! control plane, `PANTHERA_BENCH_REAL_PLATFORMS`), each the minimal example in its own
//! namespace, starts the real `panthera operator` process and prints: time until every platform
//! is Ready (target < 60 s at 1,000 on kube-sim), API requests per reconcile on the first pass
//! and on a no-op resync, writes per no-op resync (target 0) and the operator's RSS (target
//! < 64 MiB). On the real server the operator runs as a ServiceAccount of its own, and its
//! requests are counted from the audit log.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kube_sim::KubeSim;

#[path = "support/real.rs"]
mod real;
use panthera::api::{ConditionStatus, PantheraPlatform};
use real::RealCluster;

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("operator bench: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run()) {
        eprintln!("operator bench failed: {e}");
        std::process::exit(1);
    }
}

struct Operator {
    child: Child,
    port: u16,
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Operator {
    fn metric(&self, name: &str) -> f64 {
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return 0.0;
        };
        let _ = write!(stream, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        let mut body = String::new();
        let _ = stream.read_to_string(&mut body);
        body.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Resident set size now and at its peak, in MiB.
    fn rss(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }
}

fn ready(p: &PantheraPlatform) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.observed_generation == p.metadata.generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
    })
}

async fn run() -> Result<(), String> {
    let count: usize = std::env::var("PANTHERA_BENCH_PLATFORMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let sim = KubeSim::builder()
        .ready_delay(Duration::from_millis(50))
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let target = Target {
        client: sim.client().map_err(|e| e.to_string())?,
        operator_kubeconfig: sim.kubeconfig_path().to_path_buf(),
        prefix: "p".into(),
        reset: Box::new(|| sim.reset_counters()),
        counts: Box::new(|polls| {
            let c = sim.counters();
            // The bench's own polling lists are not the operator's.
            (c.total().saturating_sub(polls), c.writes())
        }),
    };
    let mut rows = vec![("kube-sim", count, measure(&target, count).await?)];
    drop(target);
    sim.shutdown().await;

    if let Some(real) = RealCluster::from_env() {
        // A real control plane runs on the same two cores as the operator and this bench
        // (etcd, kube-apiserver, controller-manager, scheduler, kwok for the pods and volumes
        // of every platform): fewer platforms by default.
        let real_count: usize = std::env::var("PANTHERA_BENCH_REAL_PLATFORMS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let tag = real::run_tag();
        let (user, kubeconfig) = real.service_account(dir.path(), &format!("bench-{tag}"))?;
        let mark = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(real.mark()));
        let real = std::sync::Arc::new(real);
        let target = Target {
            client: real.client().await?,
            operator_kubeconfig: kubeconfig,
            prefix: format!("b{tag}-"),
            reset: Box::new({
                let (real, mark) = (real.clone(), mark.clone());
                move || mark.store(real.mark(), std::sync::atomic::Ordering::SeqCst)
            }),
            counts: Box::new({
                let (real, mark) = (real.clone(), mark.clone());
                move |_| {
                    // The server logs a request once it has answered it.
                    std::thread::sleep(Duration::from_millis(500));
                    real.count(mark.load(std::sync::atomic::Ordering::SeqCst), &user)
                }
            }),
        };
        rows.push((
            "kube-apiserver",
            real_count,
            measure(&target, real_count).await?,
        ));
    } else {
        println!(
            "(no real control plane: run scripts/bench.sh for kube-apiserver figures beside these)"
        );
    }

    println!(
        "{:<15} {:>9} {:>9} {:>10} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "server",
        "platforms",
        "ready s",
        "reconciles",
        "req/reconc.",
        "noop req/r.",
        "noop writes",
        "RSS MiB",
        "peak MiB"
    );
    for (server, count, f) in &rows {
        println!(
            "{:<15} {:>9} {:>9.1} {:>10.0} {:>12.1} {:>12.1} {:>12} {:>9.1} {:>9.1}",
            server,
            count,
            f.ready_after.as_secs_f64(),
            f.first_reconciles,
            f.first_requests as f64 / f.first_reconciles.max(1.0),
            f.noop_requests as f64 / f.noop_reconciles.max(1.0),
            f.noop_writes,
            f.rss,
            f.peak
        );
    }
    for (server, count, f) in &rows {
        println!(
            "{server}: {count} platforms ({} objects each): first pass {} requests ({:.1}/platform), {} writes; no-op resync: {:.0} reconciles, {} requests",
            f.objects_per_platform,
            f.first_requests,
            f.first_requests as f64 / *count as f64,
            f.first_writes,
            f.noop_reconciles,
            f.noop_requests
        );
    }
    println!(
        "targets: all Ready < 60 s at 1,000 platforms (kube-sim), 0 writes per no-op resync, RSS < 64 MiB"
    );
    Ok(())
}

/// Where the operator runs: a client for the bench's own calls, the operator's credentials,
/// and how to count the operator's requests.
struct Target<'a> {
    client: kube::Client,
    operator_kubeconfig: std::path::PathBuf,
    /// Prefix of the namespaces and platforms (unique per run on a long-lived cluster).
    prefix: String,
    reset: Box<dyn Fn() + 'a>,
    /// (requests, writes) by the operator since `reset`; the argument is how many list
    /// requests the bench itself made meanwhile.
    counts: Box<dyn Fn(u64) -> (u64, u64) + 'a>,
}

struct Figures {
    objects_per_platform: usize,
    ready_after: Duration,
    first_reconciles: f64,
    first_requests: u64,
    first_writes: u64,
    noop_reconciles: f64,
    noop_requests: u64,
    noop_writes: u64,
    rss: f64,
    peak: f64,
}

async fn measure(target: &Target<'_>, count: usize) -> Result<Figures, String> {
    let resync = Duration::from_secs(20);
    let client = target.client.clone();
    let crd: CustomResourceDefinition =
        serde_yaml::from_str(&panthera::api::crd_yaml().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    if crds
        .get_opt(crd.metadata.name.as_deref().unwrap_or_default())
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        crds.create(&PostParams::default(), &crd)
            .await
            .map_err(|e| e.to_string())?;
        // A new CRD is served a moment after it is created.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let template = panthera::load::load_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/minimal.yaml"
    )))
    .map_err(|e| e.to_string())?;
    let objects_per_platform = panthera::render::Renderer::embedded()
        .map_err(|e| e.to_string())?
        .render(&template, &panthera::render::Generated::default())
        .map_err(|e| e.to_string())?
        .objects()
        .count();
    let names: Vec<String> = (0..count)
        .map(|i| format!("{}{i:04}", target.prefix))
        .collect();
    for name in &names {
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
            .map_err(|e| e.to_string())?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| e.to_string())?;
        let mut platform = template.clone();
        platform.metadata.name = Some(name.clone());
        platform.metadata.namespace = Some(name.clone());
        Api::<PantheraPlatform>::namespaced(client.clone(), name)
            .create(&PostParams::default(), &platform)
            .await
            .map_err(|e| e.to_string())?;
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    (target.reset)();
    let started = Instant::now();
    let operator = Operator {
        child: std::process::Command::new(env!("CARGO_BIN_EXE_panthera"))
            .arg("operator")
            .arg("--kubeconfig")
            .arg(&target.operator_kubeconfig)
            .arg(format!("--metrics-addr=127.0.0.1:{port}"))
            .args(["--no-leader-elect", "--qps", "100000", "--burst", "100000"])
            .arg(format!("--resync={}s", resync.as_secs()))
            .env("RUST_LOG", "warn")
            // Off EC2: no instance-metadata lookup for a region.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("KUBECONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?,
        port,
    };
    let platforms: Api<PantheraPlatform> = Api::all(client.clone());
    let mut polls = 0u64;
    let ready_after = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        polls += 1;
        let list = platforms
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let done = list
            .items
            .iter()
            .filter(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&target.prefix))
                    && ready(p)
            })
            .count();
        if done == count {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "only {done} of {count} platforms Ready after 600 s"
            ));
        }
    };
    let (first_requests, first_writes) = (target.counts)(polls);
    let first_reconciles = operator.metric("panthera_operator_reconciles_total");

    // Let the last status writes settle, then measure one full resync period.
    tokio::time::sleep(Duration::from_secs(2)).await;
    (target.reset)();
    let before = operator.metric("panthera_operator_reconciles_total");
    tokio::time::sleep(resync + Duration::from_secs(5)).await;
    let (noop_requests, noop_writes) = (target.counts)(0);
    let noop_reconciles = operator.metric("panthera_operator_reconciles_total") - before;
    let (rss, peak) = operator.rss();
    Ok(Figures {
        objects_per_platform,
        ready_after,
        first_reconciles,
        first_requests,
        first_writes,
        noop_reconciles,
        noop_requests,
        noop_writes,
        rss,
        peak,
    })
}
