//! The shop on loopback: the real `panthera-gateway`, `panthera-users`, `panthera-catalog` and
//! `panthera-orders` binaries, configured from what `panthera` renders for `examples/shop.yaml`
//! (the gateway's `gateway.yaml` and each Deployment's environment), with PostgreSQL, Redis and
//! Kafka from `scripts/test-services.sh`. Only addresses are rewritten (Service DNS names to
//! loopback ports) and Secret references resolved to test values.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use panthera::render::{Plan, Redacted, Renderer};
use panthera_e2e::{Gateway, StatusCode};
use panthera_kit::testing::{
    KAFKA_BROKERS_VAR, REDIS_URL_VAR, TestDatabase, free_port, service_command, service_env,
    unique_name,
};
use serde_json::{Value, json};
use tokio::process::Child;

pub const SECRET: &str = "e2e-hs256-key-of-at-least-thirty-two-bytes";
/// What the platform's identity Secret (`shop-identity`, key `keys`) holds in this test.
pub const IDENTITY_KEYS: &str = "e2e-identity-key-of-at-least-thirty-two-bytes";
pub const ADMIN_EMAIL: &str = "root@shop.example.com";
pub const ADMIN_PASSWORD: &str = "first admin password";
pub const SERVICES: [&str; 3] = ["users", "catalog", "orders"];

/// Builds the four binaries (a no-op when `cargo test --workspace` already did) and returns the
/// directory they are in.
fn binaries() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args(["build", "--bins"])
        .args(["-p", "panthera-gateway", "-p", "panthera-users"])
        .args(["-p", "panthera-catalog", "-p", "panthera-orders"])
        .status()
        .unwrap();
    assert!(status.success(), "building the service binaries failed");
    // target/debug/deps/authz-<hash> -> target/debug
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The shop as `panthera render` gives it: gateway.yaml and each Deployment's env.
struct Rendered {
    gateway_yaml: String,
    env: BTreeMap<String, Vec<Value>>,
}

/// `examples/shop.yaml` rendered, generated secrets redacted; with `traces_to` (an OTLP/HTTP
/// endpoint), its `spec.observability.tracing` points there and records every trace.
pub fn shop_plan(traces_to: Option<&str>) -> Plan {
    let mut shop: serde_yaml::Value =
        serde_yaml::from_str(include_str!("../../../../examples/shop.yaml")).unwrap();
    if let Some(endpoint) = traces_to {
        shop["spec"]["observability"]["tracing"] =
            serde_yaml::to_value(json!({"endpoint": endpoint, "samplingRatio": 1.0})).unwrap();
    }
    let text = serde_yaml::to_string(&shop).unwrap();
    let platform = panthera::load::load_str("shop.yaml", &text).unwrap();
    Renderer::embedded()
        .unwrap()
        .render(&platform, &Redacted)
        .unwrap()
}

fn render_shop(traces_to: Option<&str>) -> Rendered {
    let plan = shop_plan(traces_to);
    let gateway_yaml = plan.get("ConfigMap/shop-gateway").unwrap().value["data"]["gateway.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut env = BTreeMap::new();
    for component in ["gateway", "users", "catalog", "orders"] {
        let deployment = &plan
            .get(&format!("Deployment/shop-{component}"))
            .unwrap()
            .value;
        let vars = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        env.insert(component.to_owned(), vars);
    }
    Rendered { gateway_yaml, env }
}

pub struct Shop {
    pub gateway: Gateway,
    /// Each service straight, around the gateway: what an attacker in the cluster reaches when
    /// the network plugin does not enforce NetworkPolicy (loopback has none).
    pub direct: BTreeMap<&'static str, Gateway>,
    /// `host:port` of each component's `/metrics` (the gateway's admin listener), by component.
    pub metrics: BTreeMap<&'static str, String>,
    pub users_db: TestDatabase,
    /// catalog and orders share it, as the shop says (each in a schema of its own).
    pub orders_db: TestDatabase,
    /// What names this run's topics and traces' services apart from other runs' (`e2e-...`).
    pub run: String,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Shop {
    /// The shop without traces (there is no collector on loopback for the example's endpoint).
    pub async fn start() -> Option<Self> {
        Self::start_with(None).await
    }

    /// The shop exporting every trace to `otlp` (OTLP/HTTP), its services named
    /// `{service}-{run}`.
    pub async fn start_traced(otlp: &str) -> Option<Self> {
        Self::start_with(Some(otlp)).await
    }

    async fn start_with(traces_to: Option<&str>) -> Option<Self> {
        let redis = service_env(REDIS_URL_VAR)?;
        let brokers = service_env(KAFKA_BROKERS_VAR)?;
        let users_db = TestDatabase::create("e2e_users").await.unwrap()?;
        let orders_db = TestDatabase::create("e2e_orders").await.unwrap()?;
        let bin = binaries();
        let rendered = render_shop(traces_to);
        let ports: BTreeMap<&str, u16> = SERVICES.iter().map(|s| (*s, free_port())).collect();
        // Topics of this run only, so events of other runs sharing the broker stay out.
        let suffix = unique_name("e2e");

        // What the Secrets the renderer references hold in this test.
        let secret = |name: &str, key: &str| -> String {
            match (name, key) {
                ("shop-jwt", "secret") => SECRET.to_owned(),
                ("shop-identity", "keys") => IDENTITY_KEYS.to_owned(),
                ("shop-admin", "email") => ADMIN_EMAIL.to_owned(),
                ("shop-admin", "password") => ADMIN_PASSWORD.to_owned(),
                ("shop-redis", "url") => redis.clone(),
                ("shop-kafka", "bootstrapServers") => brokers.clone(),
                ("shop-db-users", "url") => users_db.url(),
                // The shop puts catalog and orders in one database, and so does this test.
                ("shop-db-orders", "url") => orders_db.url(),
                // The catalog's images bucket: the test S3 server (no journey here uploads).
                ("shop-bucket-images", key) => {
                    let var = |v: &str| std::env::var(v).unwrap_or_default();
                    match key {
                        "bucket" => "e2e-images".to_owned(),
                        "region" => "us-east-1".to_owned(),
                        "endpoint" => var("PANTHERA_TEST_S3_ENDPOINT"),
                        "forcePathStyle" => "true".to_owned(),
                        "accessKeyId" => var("PANTHERA_TEST_S3_ACCESS_KEY"),
                        "secretAccessKey" => var("PANTHERA_TEST_S3_SECRET_KEY"),
                        other => panic!("the shop references an unexpected bucket key {other:?}"),
                    }
                }
                other => panic!("the shop references an unexpected Secret key {other:?}"),
            }
        };
        let environment = |service: &str| -> Vec<(String, String)> {
            rendered.env[service]
                .iter()
                .filter_map(|var| {
                    let name = var["name"].as_str().unwrap().to_owned();
                    // The listener is the test's (service_command sets PORT and loopback).
                    if name == "PORT" || (traces_to.is_none() && name.starts_with("OTEL_")) {
                        return None;
                    }
                    let value = match (&var["value"], &var["valueFrom"]["secretKeyRef"]) {
                        (Value::String(value), _) => value.clone(),
                        (_, Value::Object(reference)) => secret(
                            reference["name"].as_str().unwrap(),
                            reference["key"].as_str().unwrap(),
                        ),
                        other => panic!("{service}: env {name} has no value: {other:?}"),
                    };
                    let value = match name.as_str() {
                        "CATALOG_URL" => format!("http://127.0.0.1:{}", ports["catalog"]),
                        "KAFKA_TOPICS" => value
                            .split(',')
                            .map(|topic| format!("{topic}-{suffix}"))
                            .collect::<Vec<_>>()
                            .join(","),
                        "OTEL_SERVICE_NAME" => format!("{value}-{suffix}"),
                        _ => value,
                    };
                    Some((name, value))
                })
                .chain(
                    // Spans leave every 100 ms rather than every 5 s, so the test reads them soon.
                    traces_to.map(|_| ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned())),
                )
                .collect()
        };

        let mut children = Vec::new();
        for service in SERVICES {
            let program = bin.join(format!("panthera-{service}"));
            let mut command = service_command(program.to_str().unwrap(), service, ports[service]);
            command.envs(environment(service));
            children.push(spawn(command));
        }

        // gateway.yaml as rendered, with loopback listeners and upstreams.
        let mut config: Value = serde_yaml::from_str(&rendered.gateway_yaml).unwrap();
        let (proxy_port, admin_port) = (free_port(), free_port());
        config["listen"] = json!(format!("127.0.0.1:{proxy_port}"));
        config["adminListen"] = json!(format!("127.0.0.1:{admin_port}"));
        for route in config["routes"].as_array_mut().unwrap() {
            let upstream = route["upstream"].as_str().unwrap();
            let service = SERVICES
                .iter()
                .find(|s| upstream == format!("http://shop-{s}:8080"))
                .unwrap_or_else(|| panic!("unexpected upstream {upstream}"));
            route["upstream"] = json!(format!("http://127.0.0.1:{}", ports[service]));
        }
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("gateway.yaml");
        std::fs::write(&config_path, serde_yaml::to_string(&config).unwrap()).unwrap();
        let mut gateway = tokio::process::Command::new(bin.join("panthera-gateway"));
        gateway
            .env_clear()
            .arg("--config")
            .arg(&config_path)
            .args(["--workers", "1", "--drain-delay-seconds", "0"])
            .envs(environment("gateway"));
        children.push(spawn(gateway));

        let http = reqwest::Client::new();
        for port in ports.values() {
            wait_ready(&http, &format!("http://127.0.0.1:{port}/readyz")).await;
        }
        wait_ready(&http, &format!("http://127.0.0.1:{admin_port}/readyz")).await;
        Some(Self {
            gateway: Gateway::new(format!("http://127.0.0.1:{proxy_port}")),
            direct: ports
                .iter()
                .map(|(service, port)| (*service, Gateway::new(format!("http://127.0.0.1:{port}"))))
                .collect(),
            metrics: ports
                .iter()
                .map(|(service, port)| (*service, format!("127.0.0.1:{port}")))
                .chain([("gateway", format!("127.0.0.1:{admin_port}"))])
                .collect(),
            users_db,
            orders_db,
            run: suffix,
            children,
            _dir: dir,
        })
    }

    /// Every row the attacks could touch, to compare before and after.
    pub async fn rows(&self) -> Value {
        async fn table(pool: &sqlx::PgPool, sql: &str) -> Vec<Value> {
            sqlx::query_scalar(sql).fetch_all(pool).await.unwrap()
        }
        json!({
            "users": table(&self.users_db.pool, "SELECT to_jsonb(u) - 'password_hash' FROM users.users u ORDER BY id").await,
            "products": table(&self.orders_db.pool, "SELECT to_jsonb(p) FROM catalog.products p ORDER BY id").await,
            "categories": table(&self.orders_db.pool, "SELECT to_jsonb(c) FROM catalog.categories c ORDER BY id").await,
            "orders": table(&self.orders_db.pool, "SELECT to_jsonb(o) FROM orders.orders o ORDER BY id").await,
        })
    }

    pub async fn finish(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        self.users_db.drop_database().await.unwrap();
        self.orders_db.drop_database().await.unwrap();
    }
}

pub fn spawn(mut command: tokio::process::Command) -> Child {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

pub async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..300 {
        if let Ok(response) = http.get(url).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not become ready");
}
