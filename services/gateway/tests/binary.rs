//! The `panthera-gateway` binary: `--config`, strict config errors, serving, SIGTERM drain.
// Test helpers outside #[test] functions: a failed setup step should abort the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use http::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_panthera-gateway");

#[test]
fn unknown_field_is_rejected_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        "routes:\n  - name: a\n    pathPrefix: /a\n    upstream: http://a\n    timeout: 5\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("routes[0]") && stderr.contains("timeout"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serves_and_drains_on_sigterm() {
    let upstream = TestUpstream::start("api").await;
    let (port, admin_port) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: \"127.0.0.1:{port}\"\nadminListen: \"127.0.0.1:{admin_port}\"\nroutes:\n  - {{name: api, pathPrefix: /, upstream: \"{}\"}}\nauth:\n  jwt: {{issuer: i, audiences: [a], hs256SecretEnv: GW_SECRET}}\ntrustedProxies: [127.0.0.1/32]\n",
            upstream.url()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .env("GW_SECRET", "binary-test-secret")
        .env("RUST_LOG", "info")
        .args(["--drain-delay-seconds", "0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(admin_port, "gateway").await;
    // Sent as a trusted proxy (127.0.0.1) would send it: the log names the client it forwards for.
    let reply = get(
        &format!("http://127.0.0.1:{port}/x"),
        &[
            ("authorization", "Bearer x.y.z"),
            ("x-forwarded-for", "203.0.113.5"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // During the drain delay readiness fails while requests are still served.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ready = get(&format!("http://127.0.0.1:{admin_port}/readyz"), &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "gateway did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // JSON access log line for the request, and never the secret.
    let access = stdout
        .lines()
        .find(|line| line.contains("\"status\":401"))
        .unwrap_or_else(|| panic!("no access log line in {stdout}"));
    let entry: serde_json::Value = serde_json::from_str(access).unwrap();
    assert_eq!(entry["path"], "/x");
    assert_eq!(entry["route"], "api");
    assert_eq!(entry["client"], "203.0.113.5");
    assert!(!stdout.contains("binary-test-secret"));
}
