//! Render benchmark (run with `cargo bench --bench render`; not part of the test suite).
//!
//! Prints, measured in the same run on the same machine:
//! - `panthera render` of a generated 1,000-service platform, as a whole process;
//! - `kubectl kustomize` over the same manifests (already rendered: kustomize only reads,
//!   merges and prints them), and the ratio (target: panthera at least 10x faster);
//! - `panthera validate` of a 50-service file as a whole process (target: under 20 ms).

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 7;

fn main() {
    if let Err(e) = run() {
        eprintln!("render bench failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let panthera = env!("CARGO_BIN_EXE_panthera");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let big = dir.path().join("platform-1000.yaml");
    let small = dir.path().join("platform-50.yaml");
    std::fs::write(&big, platform(1000)).map_err(|e| e.to_string())?;
    std::fs::write(&small, platform(50)).map_err(|e| e.to_string())?;

    // Manifests for kustomize: exactly what panthera renders, one file per object.
    let manifests = dir.path().join("manifests");
    let o = Command::new(panthera)
        .args(["render", "-f"])
        .arg(&big)
        .arg("--out-dir")
        .arg(&manifests)
        .output()
        .map_err(|e| format!("run panthera: {e}"))?;
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let mut files: Vec<String> = std::fs::read_dir(&manifests)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    files.sort();
    let mut kustomization = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    for f in &files {
        let _ = writeln!(kustomization, "  - {f}");
    }
    std::fs::write(manifests.join("kustomization.yaml"), kustomization)
        .map_err(|e| e.to_string())?;

    let render = median(RUNS, || {
        time(Command::new(panthera).args(["render", "-f"]).arg(&big))
    })?;
    let kustomize = median(RUNS, || {
        time(Command::new("kubectl").arg("kustomize").arg(&manifests))
    })?;
    let validate = median(21, || {
        time(Command::new(panthera).args(["validate", "-f"]).arg(&small))
    })?;

    println!("objects rendered for 1,000 services: {}", files.len());
    println!(
        "panthera render (1,000 services, process): {:>9.1} ms",
        ms(render)
    );
    println!(
        "kubectl kustomize (same {} manifests):   {:>9.1} ms",
        files.len(),
        ms(kustomize)
    );
    println!(
        "ratio kustomize / panthera:                {:>9.1}x (target >= 10x)",
        ms(kustomize) / ms(render)
    );
    println!(
        "panthera validate (50 services, process):  {:>9.1} ms (target < 20 ms)",
        ms(validate)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time(cmd: &mut Command) -> Result<Duration, String> {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .status()
        .map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    if !status.success() {
        return Err(format!("{cmd:?} failed"));
    }
    Ok(elapsed)
}

fn median(
    runs: usize,
    mut f: impl FnMut() -> Result<Duration, String>,
) -> Result<Duration, String> {
    let mut samples = (0..runs).map(|_| f()).collect::<Result<Vec<_>, _>>()?;
    samples.sort();
    Ok(samples[samples.len() / 2])
}

/// A platform with `n` services over up to 50 databases, a route each, Redis and Kafka.
fn platform(n: usize) -> String {
    let databases = n.clamp(1, 50);
    let mut s = String::from(
        "apiVersion: panthera.dev/v1alpha1\nkind: PantheraPlatform\nmetadata:\n  name: bench\n  namespace: bench\nspec:\n",
    );
    s.push_str("  gateway:\n    host: api.bench.example.com\n    routes:\n");
    for i in 0..n {
        let _ = writeln!(s, "      - pathPrefix: /v1/svc{i}\n        service: svc{i}");
    }
    s.push_str("  services:\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "    - name: svc{i}\n      kind: custom\n      image: registry.example.com/svc{i}:1.0.0\n      database: db{}\n      cache: {}\n      topics: [events]",
            i % databases,
            i % 2 == 0
        );
    }
    s.push_str("  databases:\n");
    for i in 0..databases {
        let _ = writeln!(s, "    - name: db{i}\n      storage: 10Gi");
    }
    s.push_str("  redis: {}\n  kafka:\n    topics:\n      events: {}\n");
    s
}
