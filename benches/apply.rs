//! Apply benchmark against kube-sim (run with `cargo bench --bench apply`; not a test).
//!
//! Prints, for the shop example and a generated 200-service platform: wall time of a first
//! apply with --wait, API requests per object on that first apply (target < 2), and writes on a
//! re-apply (target 0).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use kube_sim::KubeSim;
use panthera::engine::{ApplyOptions, Engine};
use panthera::render::Renderer;

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
    println!(
        "{:<22} {:>8} {:>10} {:>12} {:>14} {:>16}",
        "platform", "objects", "apply ms", "requests", "req/object", "re-apply writes"
    );
    for (name, text) in [("shop", shop), ("200 services", platform(200))] {
        let sim = KubeSim::builder()
            .ready_delay(Duration::from_millis(20))
            .start()
            .await
            .map_err(|e| e.to_string())?;
        let platform = panthera::load::load_str(name, &text).map_err(|e| e.to_string())?;
        let engine = Engine::new(
            sim.client().map_err(|e| e.to_string())?,
            Renderer::embedded().map_err(|e| e.to_string())?,
        );
        let options = ApplyOptions {
            wait: true,
            timeout: Duration::from_secs(300),
            ..ApplyOptions::default()
        };
        sim.reset_counters();
        let started = Instant::now();
        let report = engine
            .apply(&platform, &options, &|_| {})
            .await
            .map_err(|e| e.to_string())?;
        let elapsed = started.elapsed();
        let requests = sim.counters().total();
        let objects = report.created.len();
        sim.reset_counters();
        engine
            .apply(&platform, &ApplyOptions::default(), &|_| {})
            .await
            .map_err(|e| e.to_string())?;
        let rewrites = sim.counters().writes();
        println!(
            "{:<22} {:>8} {:>10.0} {:>12} {:>14.2} {:>16}",
            name,
            objects,
            elapsed.as_secs_f64() * 1000.0,
            requests,
            requests as f64 / objects.max(1) as f64,
            rewrites
        );
        sim.shutdown().await;
    }
    println!("targets: < 2 requests per object on a first apply, 0 writes on a re-apply");
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
