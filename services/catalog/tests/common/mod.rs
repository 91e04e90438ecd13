//! The real `panthera-catalog` binary on loopback, wired to the test PostgreSQL, Kafka and
//! OpenSearch the way the renderer wires it (environment variables), with a database, topics and
//! a search alias of its own; the calls the search tests and the search benchmark make; and a
//! bucket of its own on the test S3 server, with the browser's side of an upload.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use panthera_kit::testing::{
    KAFKA_BROKERS_VAR, OPENSEARCH_URL_VAR, TestDatabase, free_port, service_command, service_env,
    signed_identity, unique_name,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The test S3 server (versitygw, `scripts/versitygw.sh`) and its root credentials.
pub const S3_ENDPOINT_VAR: &str = "PANTHERA_TEST_S3_ENDPOINT";
pub const S3_ACCESS_KEY_VAR: &str = "PANTHERA_TEST_S3_ACCESS_KEY";
pub const S3_SECRET_KEY_VAR: &str = "PANTHERA_TEST_S3_SECRET_KEY";

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
    /// Environment added to every start (and restart).
    extra: Vec<(String, String)>,
    child: Option<Child>,
}

impl Catalog {
    /// `None` (skip) when a test service is missing outside CI.
    pub async fn start(prefix: &str) -> Option<Self> {
        Self::start_with(prefix, &[]).await
    }

    /// With extra environment variables.
    pub async fn start_with(prefix: &str, extra: &[(&str, &str)]) -> Option<Self> {
        let mut catalog = Self::prepare(prefix).await?;
        catalog.start_now(extra).await;
        Some(catalog)
    }

    /// Its database, names and port, not started yet (to set something up first).
    pub async fn prepare(prefix: &str) -> Option<Self> {
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
            extra: Vec::new(),
            child: None,
        };
        catalog.base = format!("http://127.0.0.1:{}", catalog.port);
        Some(catalog)
    }

    /// Starts a prepared catalog with `extra` environment; returns when it is ready.
    pub async fn start_now(&mut self, extra: &[(&str, &str)]) {
        self.extra = extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        self.spawn().await;
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

    async fn spawn(&mut self) {
        let mut command = self.command(&[]);
        command
            .envs(self.extra.iter().map(|(n, v)| (n.as_str(), v.as_str())))
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
        self.spawn().await;
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
        self.call_as(&ADMIN, method, target, body).await
    }

    /// A call as the caller the gateway vouches for with `identity`.
    pub async fn call_as(
        &self,
        identity: &[(&str, &str)],
        method: Method,
        target: &str,
        body: Option<Value>,
    ) -> (u16, String, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{target}", self.base));
        for (name, value) in signed_identity(method.as_str(), target, identity) {
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
        self.opensearch_with(method, path, None).await
    }

    /// A request straight to OpenSearch, with a JSON body.
    pub async fn opensearch_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/{path}", self.opensearch));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
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

/// A bucket of its own on the test S3 server; `finish` empties and removes it.
pub struct TestBucket {
    pub name: String,
    pub endpoint: String,
    access_key: String,
    secret_key: String,
    pub client: aws_sdk_s3::Client,
}

impl TestBucket {
    /// `None` (skip) when the S3 server's variables are missing outside CI.
    pub async fn create() -> Option<Self> {
        let endpoint = service_env(S3_ENDPOINT_VAR)?;
        let access_key = service_env(S3_ACCESS_KEY_VAR)?;
        let secret_key = service_env(S3_SECRET_KEY_VAR)?;
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(
                &access_key,
                &secret_key,
                None,
                None,
                "test",
            ))
            .http_client(panthera_catalog::images::http_client())
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        let name = format!("catalog-images-{}", Uuid::new_v4().simple());
        client.create_bucket().bucket(&name).send().await.unwrap();
        Some(Self {
            name,
            endpoint,
            access_key,
            secret_key,
            client,
        })
    }

    /// The catalog's environment for this bucket: path style, as S3-compatible servers on a
    /// host and port need.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("S3_BUCKET", self.name.clone()),
            ("S3_ENDPOINT", self.endpoint.clone()),
            ("S3_REGION", "us-east-1".to_owned()),
            ("S3_ACCESS_KEY_ID", self.access_key.clone()),
            ("S3_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("S3_FORCE_PATH_STYLE", "true".to_owned()),
        ]
    }

    /// The keys in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        let listed = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .send()
            .await
            .unwrap();
        listed
            .contents()
            .iter()
            .filter_map(|object| object.key().map(str::to_owned))
            .collect()
    }

    pub async fn finish(self) {
        for key in self.keys().await {
            self.client
                .delete_object()
                .bucket(&self.name)
                .key(key)
                .send()
                .await
                .unwrap();
        }
        self.client
            .delete_bucket()
            .bucket(&self.name)
            .send()
            .await
            .unwrap();
    }
}

/// A 1x1 PNG.
pub const PNG: [u8; 69] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x78, 0x51, 0x25, 0x03,
    0x00, 0x03, 0xcc, 0x01, 0x7f, 0x25, 0x9d, 0x75, 0x6f, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// What a browser does with an upload form (`ImageUpload`): `multipart/form-data` to its `url`
/// with its `fields` and then the file. `content_type` replaces the form's `Content-Type` field
/// (to try another than the signed one). Returns the storage's status and body.
pub async fn post_form(
    http: &reqwest::Client,
    form: &Value,
    content_type: Option<&str>,
    file: &[u8],
) -> (u16, String) {
    let boundary = format!("form-{}", Uuid::new_v4().simple());
    let mut body = Vec::new();
    for (name, value) in form["fields"].as_object().unwrap() {
        let value = match (name.as_str(), content_type) {
            ("Content-Type", Some(replacement)) => replacement,
            _ => value.as_str().unwrap(),
        };
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    // The file goes last: S3 ignores fields after it.
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"image\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = http
        .post(form["url"].as_str().unwrap())
        .header(
            reqwest::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}
