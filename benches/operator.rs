//! Operator benchmark against kube-sim (run with `cargo bench --bench operator`; not a test).
//!
//! Creates N platforms (default 1,000; `PANTHERA_BENCH_PLATFORMS`), each the minimal example in
//! its own namespace, starts the real `panthera operator` process and prints: time until every
//! platform is Ready (target < 60 s), API requests per reconcile on the first pass and on a
//! no-op resync, writes per no-op resync (target 0) and the operator's RSS (target < 64 MiB).

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kube_sim::KubeSim;
use panthera::api::{ConditionStatus, PantheraPlatform};

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
    let resync = Duration::from_secs(20);
    let sim = KubeSim::builder()
        .ready_delay(Duration::from_millis(50))
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let client = sim.client().map_err(|e| e.to_string())?;
    let crd: CustomResourceDefinition =
        serde_yaml::from_str(&panthera::api::crd_yaml().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .map_err(|e| e.to_string())?;
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
    for i in 0..count {
        let name = format!("p{i:04}");
        let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
            .map_err(|e| e.to_string())?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| e.to_string())?;
        let mut platform = template.clone();
        platform.metadata.name = Some(name.clone());
        platform.metadata.namespace = Some(name.clone());
        Api::<PantheraPlatform>::namespaced(client.clone(), &name)
            .create(&PostParams::default(), &platform)
            .await
            .map_err(|e| e.to_string())?;
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    sim.reset_counters();
    let started = Instant::now();
    let operator = Operator {
        child: std::process::Command::new(env!("CARGO_BIN_EXE_panthera"))
            .arg("operator")
            .arg("--kubeconfig")
            .arg(sim.kubeconfig_path())
            .arg(format!("--metrics-addr=127.0.0.1:{port}"))
            .args(["--no-leader-elect", "--qps", "100000", "--burst", "100000"])
            .arg(format!("--resync={}s", resync.as_secs()))
            .env("RUST_LOG", "warn")
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
        let done = list.items.iter().filter(|p| ready(p)).count();
        if done == count {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!(
                "only {done} of {count} platforms Ready after 300 s"
            ));
        }
    };
    let first = sim.counters();
    let first_reconciles = operator.metric("panthera_operator_reconciles_total");
    // The bench's own polling lists are not the operator's.
    let first_requests = first.total().saturating_sub(polls);
    let (_, peak_during_ready) = operator.rss();

    // Let the last status writes settle, then measure one full resync period.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sim.reset_counters();
    let before = operator.metric("panthera_operator_reconciles_total");
    tokio::time::sleep(resync + Duration::from_secs(5)).await;
    let idle = sim.counters();
    let noop_reconciles = operator.metric("panthera_operator_reconciles_total") - before;
    let (rss, peak) = operator.rss();

    println!(
        "platforms: {count} (minimal example: {objects_per_platform} objects each, {} objects)",
        count * objects_per_platform
    );
    println!(
        "time until all Ready:         {:.1} s (target < 60 s)",
        ready_after.as_secs_f64()
    );
    println!(
        "first pass:                   {first_reconciles:.0} reconciles, {first_requests} requests, {:.1} requests/reconcile, {:.1} requests/platform, {} writes",
        first_requests as f64 / first_reconciles.max(1.0),
        first_requests as f64 / count as f64,
        first.writes()
    );
    println!(
        "no-op resync ({}s period):    {noop_reconciles:.0} reconciles, {} requests, {:.1} requests/reconcile, {} writes (target 0)",
        resync.as_secs(),
        idle.total(),
        idle.total() as f64 / noop_reconciles.max(1.0),
        idle.writes()
    );
    println!(
        "operator RSS:                 {rss:.1} MiB now, {peak:.1} MiB peak ({peak_during_ready:.1} MiB peak until Ready) (target < 64 MiB)"
    );
    Ok(())
}
