//! Apply benchmark (run with `cargo bench --bench apply`, or `scripts/bench.sh` for the real
//! control plane beside kube-sim; not a test).
//!
//! Prints, for the shop example and a generated 200-service platform, against kube-sim and,
//! when a real control plane is configured, against kube-apiserver: wall time of a first apply
//! with --wait, API requests per object on that first apply (target < 2), and writes on a
//! re-apply (target 0).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use kube_sim::KubeSim;

#[path = "support/real.rs"]
#[allow(dead_code)] // shared with the operator bench
mod real;
use panthera::engine::{ApplyOptions, Engine};
use panthera::render::Renderer;
use real::RealCluster;

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("apply bench: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run()) {
        eprintln!("apply bench failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let shop = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/shop.yaml"))
        .map_err(|e| e.to_string())?;
    let real = RealCluster::from_env();
    println!(
        "{:<15} {:<14} {:>8} {:>10} {:>10} {:>12} {:>16}",
        "server", "platform", "objects", "apply ms", "requests", "req/object", "re-apply writes"
    );
    for (name, text) in [("shop", shop), ("200 services", platform(200))] {
        let sim = KubeSim::builder()
            .ready_delay(Duration::from_millis(20))
            .start()
            .await
            .map_err(|e| e.to_string())?;
        let client = sim.client().map_err(|e| e.to_string())?;
        let platform = panthera::load::load_str(name, &text).map_err(|e| e.to_string())?;
        let namespace = platform.metadata.namespace.clone().unwrap_or_default();
        prepare_namespace(&client, &namespace, &platform).await?;
        let counts = || {
            let c = sim.counters();
            (c.total(), c.writes())
        };
        let figures = measure(client, &text, name, || sim.reset_counters(), counts).await?;
        print_row("kube-sim", name, figures);
        sim.shutdown().await;
        if let Some(real) = &real {
            let tag = real::run_tag();
            let namespace = format!("bench-{}-{tag}", name.replace(' ', "-"));
            let text = text.replace(
                &format!(
                    "namespace: {}\n",
                    if name == "shop" { "shop" } else { "big" }
                ),
                &format!("namespace: {namespace}\n"),
            );
            let client = real.client().await?;
            let platform = panthera::load::load_str(name, &text).map_err(|e| e.to_string())?;
            prepare_namespace(&client, &namespace, &platform).await?;
            let mark = std::cell::Cell::new(real.mark());
            let counts = || {
                // The server logs a request once it has answered it.
                std::thread::sleep(Duration::from_millis(500));
                real.count(mark.get(), "admin")
            };
            let figures = measure(client, &text, name, || mark.set(real.mark()), counts).await?;
            print_row("kube-apiserver", name, figures);
        }
    }
    if real.is_none() {
        println!(
            "(no real control plane: run scripts/bench.sh for kube-apiserver figures beside these)"
        );
    }
    println!("targets: < 2 requests per object on a first apply, 0 writes on a re-apply");
    Ok(())
}

/// (objects, apply time, requests of the first apply, writes of the re-apply)
type Figures = (usize, Duration, u64, u64);

/// A first apply with --wait, then a re-apply; `reset` starts counting, `counts` reads
/// (requests, writes) since then.
async fn measure(
    client: kube::Client,
    text: &str,
    name: &str,
    reset: impl Fn(),
    counts: impl Fn() -> (u64, u64),
) -> Result<Figures, String> {
    let platform = panthera::load::load_str(name, text).map_err(|e| e.to_string())?;
    let engine = Engine::new(client, Renderer::embedded().map_err(|e| e.to_string())?);
    let options = ApplyOptions {
        wait: true,
        timeout: Duration::from_secs(600),
        ..ApplyOptions::default()
    };
    reset();
    let started = Instant::now();
    let report = engine
        .apply(&platform, &options, &|_| {})
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let (requests, _) = counts();
    reset();
    engine
        .apply(&platform, &ApplyOptions::default(), &|_| {})
        .await
        .map_err(|e| e.to_string())?;
    let (_, rewrites) = counts();
    Ok((report.created.len(), elapsed, requests, rewrites))
}

fn print_row(server: &str, name: &str, (objects, elapsed, requests, rewrites): Figures) {
    println!(
        "{:<15} {:<14} {:>8} {:>10.0} {:>10} {:>12.2} {:>16}",
        server,
        name,
        objects,
        elapsed.as_secs_f64() * 1000.0,
        requests,
        requests as f64 / objects.max(1) as f64,
        rewrites
    );
}

/// The namespace, and the Secrets a user provides before applying (what `apply` checks for).
async fn prepare_namespace(
    client: &kube::Client,
    namespace: &str,
    platform: &panthera::api::PantheraPlatform,
) -> Result<(), String> {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use kube::api::{Api, PostParams};
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}}))
            .map_err(|e| e.to_string())?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .map_err(|e| e.to_string())?;
    for required in panthera::engine::preflight::required(platform) {
        let data: serde_json::Map<String, serde_json::Value> = required
            .keys
            .iter()
            .map(|key| (key.clone(), serde_json::json!(format!("bench-{key}-value"))))
            .collect();
        let secret: Secret = serde_json::from_value(
            serde_json::json!({"metadata": {"name": required.name}, "stringData": data}),
        )
        .map_err(|e| e.to_string())?;
        Api::<Secret>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn platform(n: usize) -> String {
    let databases = n.clamp(1, 20);
    let mut s = String::from(
        "apiVersion: panthera.dev/v1alpha1\nkind: PantheraPlatform\nmetadata:\n  name: big\n  namespace: big\nspec:\n  gateway:\n    routes:\n",
    );
    for i in 0..n {
        let _ = writeln!(s, "      - pathPrefix: /v1/svc{i}\n        service: svc{i}");
    }
    s.push_str("  services:\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "    - name: svc{i}\n      kind: custom\n      image: registry.example.com/svc{i}:1.0.0\n      database: db{}",
            i % databases
        );
    }
    s.push_str("  databases:\n");
    for i in 0..databases {
        let _ = writeln!(s, "    - name: db{i}");
    }
    s
}
