//! The real `panthera-catalog` binary on loopback, wired to the test PostgreSQL, Kafka and
//! OpenSearch the way the renderer wires it (environment variables), with a database, topics and
//! a search alias of its own; and the calls the search tests and the search benchmark make.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use panthera_kit::testing::{
    KAFKA_BROKERS_VAR, OPENSEARCH_URL_VAR, TestDatabase, free_port, service_command, service_env,
    signed_identity, unique_name,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub const ADMIN: [(&str, &str); 2] = [
    ("x-panthera-subject", "admin-1"),
    ("x-panthera-roles", "admin"),
];

pub struct Catalog {
    pub base: String,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    pub alias: String,
    pub product_topic: String,
    pub order_topic: String,
    pub opensearch: String,
    pub brokers: String,
    pub log: std::path::PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Catalog {
    /// `None` (skip) when a test service is missing outside CI.
    pub async fn start(prefix: &str) -> Option<Self> {
        Self::start_with(prefix, &[]).await
    }

    /// With extra environment variables.
    pub async fn start_with(prefix: &str, extra: &[(&str, &str)]) -> Option<Self> {
        let opensearch = service_env(OPENSEARCH_URL_VAR)?;
        let brokers = service_env(KAFKA_BROKERS_VAR)?;
        let db = TestDatabase::create(prefix).await.unwrap()?;
        let alias = unique_name(prefix);
        let log = std::env::temp_dir().join(format!("{alias}.log"));
        let mut catalog = Self {
            base: String::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            db,
            product_topic: format!("{alias}-products"),
            order_topic: format!("{alias}-orders"),
            alias,
            opensearch: opensearch.trim_end_matches('/').to_owned(),
            brokers,
            log,
            port: free_port(),
            child: None,
        };
        catalog.base = format!("http://127.0.0.1:{}", catalog.port);
        catalog.spawn(extra).await;
        Some(catalog)
    }

    /// The catalog's command with the test's environment; `args` after the program name.
    pub fn command(&self, args: &[&str]) -> Command {
        let program = env!("CARGO_BIN_EXE_panthera-catalog");
        let mut command = service_command(program, "catalog", self.port);
        command
            .args(args)
            .env("DATABASE_URL", self.db.url())
            .env("KAFKA_BROKERS", &self.brokers)
            .env("KAFKA_TOPICS", &self.order_topic)
            .env("PRODUCT_EVENTS_TOPIC", &self.product_topic)
            .env("SEARCH_ENDPOINT", &self.opensearch)
            .env("SEARCH_INDEX", &self.alias)
            .env("SHUTDOWN_DELAY_SECONDS", "0")
            .env("SHUTDOWN_GRACE_SECONDS", "1");
        command
    }

    fn log_file(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap()
    }

    async fn spawn(&mut self, extra: &[(&str, &str)]) {
        let mut command = self.command(&[]);
        command
            .envs(extra.iter().copied())
            .stdout(Stdio::from(self.log_file()))
            .stderr(Stdio::from(self.log_file()))
            .kill_on_drop(true);
        self.child = Some(command.spawn().unwrap());
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self.http.get(format!("{}/readyz", self.base)).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the catalog did not get ready; log: {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process without warning (SIGKILL) and starts it again.
    pub async fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
        self.spawn(&[]).await;
    }

    /// `panthera-catalog reindex`, as the Job runs it; returns its stdout.
    pub async fn reindex(&self) -> String {
        let output = self
            .command(&["reindex"])
            .stderr(Stdio::from(self.log_file()))
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "reindex failed ({}): {stdout}; log: {}",
            output.status,
            self.log.display()
        );
        stdout
    }

    /// A call to the catalog as an administrator: status, `x-search-backend`, body.
    pub async fn call(
        &self,
        method: Method,
        target: &str,
        body: Option<Value>,
    ) -> (u16, String, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{target}", self.base));
        for (name, value) in signed_identity(method.as_str(), target, &ADMIN) {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let backend = response
            .headers()
            .get("x-search-backend")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, backend, body)
    }

    pub async fn category(&self, slug: &str) -> String {
        let (status, _, body) = self
            .call(
                Method::POST,
                "/v1/categories",
                Some(json!({"name": slug, "slug": slug})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a product from its JSON (the API's `CreateProduct`); returns its id.
    pub async fn product(&self, product: Value) -> String {
        let (status, _, body) = self.call(Method::POST, "/v1/products", Some(product)).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// `GET /v1/products?{query}`: backend and body.
    pub async fn search(&self, query: &str) -> (String, Value) {
        let (status, backend, body) = self
            .call(Method::GET, &format!("/v1/products?{query}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        (backend, body)
    }

    /// The ids of the hits of an OpenSearch answer, in order; `None` when PostgreSQL answered.
    pub async fn search_ids(&self, query: &str) -> Option<Vec<String>> {
        let (backend, body) = self.search(query).await;
        (backend == "opensearch").then(|| ids(&body))
    }

    /// Waits until `check` holds for the OpenSearch answer to `query`; returns that answer.
    pub async fn eventually(&self, query: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (backend, body) = self.search(query).await;
            if backend == "opensearch" && check(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "?{query} never gave the expected answer; last ({backend}): {body}; log: {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A request straight to OpenSearch.
    pub async fn opensearch(&self, method: Method, path: &str) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}/{path}", self.opensearch))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The indices behind the alias.
    pub async fn alias_indices(&self) -> Vec<String> {
        let (status, body) = self
            .opensearch(Method::GET, &format!("_alias/{}", self.alias))
            .await;
        if status == 404 {
            return Vec::new();
        }
        body.as_object().unwrap().keys().cloned().collect()
    }

    pub async fn wait_for_alias(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let indices = self.alias_indices().await;
            if !indices.is_empty() {
                return indices;
            }
            assert!(
                Instant::now() < deadline,
                "the alias {} never appeared",
                self.alias
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the catalog, removes its indices and drops its database.
    pub async fn finish(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
        self.opensearch(Method::DELETE, &format!("{}-v*", self.alias))
            .await;
        let _ = std::fs::remove_file(&self.log);
        self.db.drop_database().await.unwrap();
    }
}

pub fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}
