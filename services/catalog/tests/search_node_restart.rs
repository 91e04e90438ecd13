//! A restart of the OpenSearch node loses nothing: the catalog answers from PostgreSQL while the
//! node is down, keeps taking writes, and once the node is back every product, those written
//! while it was down included, is found through it. The node is one of this test's own (the
//! launcher of scripts/opensearch.sh, on a port of its own), so the shared node stays up for the
//! other tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Catalog;
use panthera_kit::testing::{OPENSEARCH_URL_VAR, free_port, service_env};
use serde_json::json;

/// An OpenSearch node of this test's own, data kept in its directory across restarts.
struct Node {
    dir: tempfile::TempDir,
    port: u16,
}

impl Node {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/opensearch.sh")
    }

    fn run(&self, args: &[&str]) {
        let status = Command::new("bash")
            .arg(Self::script())
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "scripts/opensearch.sh {args:?} failed");
    }

    fn start(&self) {
        let port = self.port.to_string();
        self.run(&["start", self.dir.path().to_str().unwrap(), &port]);
    }

    fn stop(&self) {
        self.run(&["stop", self.dir.path().to_str().unwrap()]);
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .args(["stop", self.dir.path().to_str().unwrap()])
            .status();
    }
}

async fn create(catalog: &Catalog, sku: &str) -> String {
    catalog
        .product(
            json!({"sku": sku, "name": format!("Lantern {sku}"), "priceCents": 900,
            "stockAvailable": 3}),
        )
        .await
}

#[tokio::test]
async fn a_restart_of_the_node_loses_nothing() {
    // The shared node's presence says the launcher is installed (the test services start it).
    if service_env(OPENSEARCH_URL_VAR).is_none() {
        return;
    }
    // The launcher takes PORT and PORT+100: both must be free.
    let port = loop {
        let port = free_port();
        if port < 65_000 && std::net::TcpListener::bind(("127.0.0.1", port + 100)).is_ok() {
            break port;
        }
    };
    let node = Node {
        dir: tempfile::tempdir().unwrap(),
        port,
    };
    node.start();
    let url = node.url();
    let Some(mut catalog) =
        Catalog::start_with("catalog_node_restart", &[("SEARCH_ENDPOINT", &url)]).await
    else {
        return;
    };
    catalog.opensearch = url;
    catalog.wait_for_alias().await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(create(&catalog, &format!("NR-{n}")).await);
    }
    let all = |expected: usize| {
        move |body: &serde_json::Value| body["meta"]["total"] == i64::try_from(expected).unwrap()
    };
    catalog.eventually("q=lantern", all(created.len())).await;

    node.stop();
    // Down: PostgreSQL answers, and writes go on.
    let (backend, body) = catalog.search("q=lantern").await;
    assert_eq!(backend, "postgres", "{body}");
    assert_eq!(body["meta"]["total"], 5, "{body}");
    for n in 5..8 {
        created.push(create(&catalog, &format!("NR-{n}")).await);
    }

    node.start();
    let body = catalog
        .eventually("q=lantern&limit=20", all(created.len()))
        .await;
    let mut found = common::ids(&body);
    found.sort();
    created.sort();
    assert_eq!(found, created, "products lost over the node's restart");
    catalog.finish().await;
}
