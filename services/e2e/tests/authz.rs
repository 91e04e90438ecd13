//! Authorization end to end, as issue 16's attacker would try it: the real `panthera-gateway`,
//! `panthera-users`, `panthera-catalog` and `panthera-orders` binaries, configured from what
//! `panthera` renders for `examples/shop.yaml` (the gateway's `gateway.yaml` and each
//! Deployment's environment), with PostgreSQL, Redis and Kafka from `scripts/test-services.sh`.
//! Only addresses are rewritten (Service DNS names to loopback ports) and Secret references
//! resolved to test values. Every refused request is checked to have changed nothing in the
//! databases.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use panthera::render::{Redacted, Renderer};
use panthera_kit::testing::{
    KAFKA_BROKERS_VAR, REDIS_URL_VAR, TestDatabase, free_port, service_command, service_env,
    unique_name,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Child;

const SECRET: &str = "e2e-hs256-key-of-at-least-thirty-two-bytes";
const ADMIN_EMAIL: &str = "root@shop.example.com";
const ADMIN_PASSWORD: &str = "first admin password";
const PASSWORD: &str = "correct horse battery";
const SERVICES: [&str; 3] = ["users", "catalog", "orders"];

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

fn render_shop() -> Rendered {
    let text = include_str!("../../../examples/shop.yaml");
    let platform = panthera::load::load_str("shop.yaml", text).unwrap();
    let plan = Renderer::embedded()
        .unwrap()
        .render(&platform, &Redacted)
        .unwrap();
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

struct Shop {
    gateway: String,
    http: reqwest::Client,
    users_db: TestDatabase,
    catalog_db: TestDatabase,
    orders_db: TestDatabase,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Shop {
    async fn start() -> Option<Self> {
        let redis = service_env(REDIS_URL_VAR)?;
        let brokers = service_env(KAFKA_BROKERS_VAR)?;
        let users_db = TestDatabase::create("e2e_users").await.unwrap()?;
        let catalog_db = TestDatabase::create("e2e_catalog").await.unwrap()?;
        let orders_db = TestDatabase::create("e2e_orders").await.unwrap()?;
        let bin = binaries();
        let rendered = render_shop();
        let ports: BTreeMap<&str, u16> = SERVICES.iter().map(|s| (*s, free_port())).collect();
        // Topics of this run only, so events of other runs sharing the broker stay out.
        let suffix = unique_name("e2e");

        // What the Secrets the renderer references hold in this test.
        let secret = |name: &str, key: &str, service: &str| -> String {
            match (name, key) {
                ("shop-jwt", "secret") => SECRET.to_owned(),
                ("shop-admin", "email") => ADMIN_EMAIL.to_owned(),
                ("shop-admin", "password") => ADMIN_PASSWORD.to_owned(),
                ("shop-redis", "url") => redis.clone(),
                ("shop-kafka", "bootstrapServers") => brokers.clone(),
                ("shop-db-users", "url") => users_db.url(),
                // The shop puts catalog and orders in one database; here each gets its own.
                ("shop-db-orders", "url") if service == "catalog" => catalog_db.url(),
                ("shop-db-orders", "url") => orders_db.url(),
                other => panic!("the shop references an unexpected Secret key {other:?}"),
            }
        };
        let environment = |service: &str| -> Vec<(String, String)> {
            rendered.env[service]
                .iter()
                .filter_map(|var| {
                    let name = var["name"].as_str().unwrap().to_owned();
                    // The listener is the test's (service_command sets PORT and loopback).
                    if name == "PORT" {
                        return None;
                    }
                    let value = match (&var["value"], &var["valueFrom"]["secretKeyRef"]) {
                        (Value::String(value), _) => value.clone(),
                        (_, Value::Object(reference)) => secret(
                            reference["name"].as_str().unwrap(),
                            reference["key"].as_str().unwrap(),
                            service,
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
                        _ => value,
                    };
                    Some((name, value))
                })
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
            gateway: format!("http://127.0.0.1:{proxy_port}"),
            http,
            users_db,
            catalog_db,
            orders_db,
            children,
            _dir: dir,
        })
    }

    /// One request through the gateway; `token` as a bearer token, `headers` verbatim.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.gateway));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn sign_up(&self, first_name: &str, email: &str) -> Value {
        let (status, _, user) = self
            .call(
                Method::POST,
                "/v1/users",
                None,
                &[],
                Some(json!({"firstName": first_name, "lastName": "Test", "email": email, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        user
    }

    async fn token(&self, email: &str, password: &str) -> String {
        let (status, _, body) = self
            .call(
                Method::POST,
                "/v1/auth/token",
                None,
                &[],
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["accessToken"].as_str().unwrap().to_owned()
    }

    /// Every row the attacks could touch, to compare before and after.
    async fn rows(&self) -> Value {
        async fn table(pool: &sqlx::PgPool, sql: &str) -> Vec<Value> {
            sqlx::query_scalar(sql).fetch_all(pool).await.unwrap()
        }
        json!({
            "users": table(&self.users_db.pool, "SELECT to_jsonb(u) - 'password_hash' FROM users u ORDER BY id").await,
            "products": table(&self.catalog_db.pool, "SELECT to_jsonb(p) FROM products p ORDER BY id").await,
            "categories": table(&self.catalog_db.pool, "SELECT to_jsonb(c) FROM categories c ORDER BY id").await,
            "orders": table(&self.orders_db.pool, "SELECT to_jsonb(o) FROM orders o ORDER BY id").await,
        })
    }

    async fn finish(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        self.users_db.drop_database().await.unwrap();
        self.catalog_db.drop_database().await.unwrap();
        self.orders_db.drop_database().await.unwrap();
    }
}

/// What an attacker tries: (what, method, path, bearer token, extra headers, body, expected status).
type Attack<'a> = (
    &'a str,
    Method,
    String,
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
    Option<Value>,
    StatusCode,
);

fn spawn(mut command: tokio::process::Command) -> Child {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
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

fn assert_problem(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    expected: StatusCode,
    what: &str,
) {
    assert_eq!(status, expected, "{what}");
    assert_eq!(
        headers[reqwest::header::CONTENT_TYPE],
        "application/problem+json",
        "{what}"
    );
    if expected == StatusCode::UNAUTHORIZED {
        assert!(
            headers[reqwest::header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_lets_each_caller_do_what_the_model_says_and_nothing_else() {
    let Some(shop) = Shop::start().await else {
        return;
    };

    // --- What is allowed ---------------------------------------------------------------------
    // Sign-up through the gateway, without a token; status and roles cannot be chosen.
    let ada = shop.sign_up("Ada", "ada@example.com").await;
    assert_eq!(
        (ada["status"].clone(), ada["roles"].clone()),
        (json!("active"), json!([]))
    );
    let (status, _, body) = shop
        .call(
            Method::POST,
            "/v1/users",
            None,
            &[],
            Some(json!({"firstName": "Eve", "lastName": "X", "email": "eve@example.com", "password": PASSWORD, "roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let bob = shop.sign_up("Bob", "bob@example.com").await;
    let (ada_id, bob_id) = (ada["id"].as_str().unwrap(), bob["id"].as_str().unwrap());
    let ada_token = shop.token("ada@example.com", PASSWORD).await;
    let bob_token = shop.token("bob@example.com", PASSWORD).await;
    // The administrator exists from the Secret the platform names.
    let admin_token = shop.token(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // Own profile.
    let (status, _, me) = shop
        .call(
            Method::GET,
            &format!("/v1/users/{ada_id}"),
            Some(&ada_token),
            &[],
            None,
        )
        .await;
    assert_eq!(
        (status, me["email"].clone()),
        (StatusCode::OK, json!("ada@example.com"))
    );
    let (status, _, me) = shop
        .call(
            Method::PATCH,
            &format!("/v1/users/{ada_id}"),
            Some(&ada_token),
            &[],
            Some(json!({"lastName": "Lovelace"})),
        )
        .await;
    assert_eq!(
        (status, me["lastName"].clone()),
        (StatusCode::OK, json!("Lovelace"))
    );

    // The administrator stocks the catalog; anyone reads it.
    let (status, _, product) = shop
        .call(
            Method::POST,
            "/v1/products",
            Some(&admin_token),
            &[],
            Some(
                json!({"sku": "LAMP-1", "name": "Lamp", "priceCents": 2500, "stockAvailable": 10}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    let product_id = product["id"].as_str().unwrap().to_owned();
    let (status, _, read) = shop
        .call(
            Method::GET,
            &format!("/v1/products/{product_id}"),
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(
        (status, read["name"].clone()),
        (StatusCode::OK, json!("Lamp"))
    );

    // Ada orders for herself (no customerId needed), and sees only her own orders.
    let (status, _, order) = shop
        .call(
            Method::POST,
            "/v1/orders",
            Some(&ada_token),
            &[],
            Some(json!({"items": [{"productId": product_id, "quantity": 2}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["customerId"], ada_id);
    let order_id = order["id"].as_str().unwrap().to_owned();
    let (status, _, list) = shop
        .call(Method::GET, "/v1/orders", Some(&ada_token), &[], None)
        .await;
    assert_eq!(
        (status, list["meta"]["total"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (status, _, list) = shop
        .call(Method::GET, "/v1/orders", Some(&bob_token), &[], None)
        .await;
    assert_eq!(
        (status, list["meta"]["total"].clone()),
        (StatusCode::OK, json!(0))
    );

    // The administrator's actions: list users, pay and ship Ada's order.
    let (status, _, users) = shop
        .call(Method::GET, "/v1/users", Some(&admin_token), &[], None)
        .await;
    assert_eq!(
        (status, users["meta"]["total"].clone()),
        (StatusCode::OK, json!(3))
    );
    for action in ["pay", "ship"] {
        let (status, _, paid) = shop
            .call(
                Method::POST,
                &format!("/v1/orders/{order_id}/{action}"),
                Some(&admin_token),
                &[],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {paid}");
    }

    // The catalog settles the shipped order's reservation from the orders' Kafka events, in the
    // background: wait for it, so that the snapshot below changes only if an attack succeeds.
    let started = std::time::Instant::now();
    while shop.rows().await["products"][0]["stock_reserved"] != json!(0) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the catalog never settled the shipped order: {}",
            shop.rows().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // --- The attacks of issue 16, and forged identity headers --------------------------------
    let before = shop.rows().await;
    let product = format!("/v1/products/{product_id}");
    let bob_uri = format!("/v1/users/{bob_id}");
    let forged = [
        ("x-panthera-subject", bob_id),
        ("x-panthera-roles", "admin"),
        ("x-panthera-scopes", "catalog:write orders:fulfil"),
    ];
    let new_product = json!({"sku": "EVIL-1", "name": "Evil", "priceCents": 1});
    let attacks: Vec<Attack> = vec![
        (
            "no token: create a product",
            Method::POST,
            "/v1/products".into(),
            None,
            &[],
            Some(new_product.clone()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no token: delete a product",
            Method::DELETE,
            product.clone(),
            None,
            &[],
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no token: set its stock to zero",
            Method::PUT,
            format!("{product}/stock"),
            None,
            &[],
            Some(json!({"available": 0})),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no token: create a category",
            Method::POST,
            "/v1/categories".into(),
            None,
            &[],
            Some(json!({"name": "X", "slug": "x"})),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "user: create a product",
            Method::POST,
            "/v1/products".into(),
            Some(&ada_token),
            &[],
            Some(new_product.clone()),
            StatusCode::FORBIDDEN,
        ),
        (
            "user: set stock to zero",
            Method::PUT,
            format!("{product}/stock"),
            Some(&ada_token),
            &[],
            Some(json!({"available": 0})),
            StatusCode::FORBIDDEN,
        ),
        (
            "user: list every user",
            Method::GET,
            "/v1/users".into(),
            Some(&ada_token),
            &[],
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "user: read another user",
            Method::GET,
            bob_uri.clone(),
            Some(&ada_token),
            &[],
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "user: rename another user",
            Method::PATCH,
            bob_uri.clone(),
            Some(&ada_token),
            &[],
            Some(json!({"firstName": "Mallory"})),
            StatusCode::NOT_FOUND,
        ),
        (
            "user: delete another user",
            Method::DELETE,
            bob_uri.clone(),
            Some(&ada_token),
            &[],
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "user: make themselves admin",
            Method::PATCH,
            format!("/v1/users/{ada_id}"),
            Some(&ada_token),
            &[],
            Some(json!({"roles": ["admin"]})),
            StatusCode::FORBIDDEN,
        ),
        (
            "user: order for another customer",
            Method::POST,
            "/v1/orders".into(),
            Some(&ada_token),
            &[],
            Some(
                json!({"customerId": bob_id, "items": [{"productId": product_id, "quantity": 1}]}),
            ),
            StatusCode::FORBIDDEN,
        ),
        (
            "user: list another customer's orders",
            Method::GET,
            format!("/v1/orders?customerId={ada_id}"),
            Some(&bob_token),
            &[],
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "user: read another customer's order",
            Method::GET,
            format!("/v1/orders/{order_id}"),
            Some(&bob_token),
            &[],
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "user: cancel another customer's order",
            Method::POST,
            format!("/v1/orders/{order_id}/cancel"),
            Some(&bob_token),
            &[],
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "no token: sign-up route does not open the rest",
            Method::GET,
            "/v1/users".into(),
            None,
            &[],
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "forged identity, no token: read a user",
            Method::GET,
            bob_uri.clone(),
            None,
            &forged,
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "forged identity, no token: delete a product",
            Method::DELETE,
            product.clone(),
            None,
            &forged,
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "forged identity with a user's token: list users",
            Method::GET,
            "/v1/users".into(),
            Some(&ada_token),
            &forged,
            None,
            StatusCode::FORBIDDEN,
        ),
        (
            "forged identity with a user's token: delete another user",
            Method::DELETE,
            bob_uri.clone(),
            Some(&ada_token),
            &forged,
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "forged identity with a user's token: stock to zero",
            Method::PUT,
            format!("{product}/stock"),
            Some(&ada_token),
            &forged,
            Some(json!({"available": 0})),
            StatusCode::FORBIDDEN,
        ),
        (
            "forged identity with a user's token: order as Bob",
            Method::POST,
            "/v1/orders".into(),
            Some(&ada_token),
            &forged,
            Some(
                json!({"customerId": bob_id, "items": [{"productId": product_id, "quantity": 1}]}),
            ),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (what, method, path, token, headers, body, expected) in attacks {
        let (status, response_headers, problem) =
            shop.call(method, &path, token, headers, body).await;
        assert_problem(
            status,
            &response_headers,
            expected,
            &format!("{what}: {problem}"),
        );
        assert_eq!(shop.rows().await, before, "{what} changed the database");
    }
    // A forged header on a public route is dropped too: sign-up still makes an ordinary user.
    let (status, _, eve) = shop
        .call(
            Method::POST,
            "/v1/users",
            None,
            &forged,
            Some(json!({"firstName": "Eve", "lastName": "X", "email": "eve@example.com", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (status, eve["roles"].clone()),
        (StatusCode::CREATED, json!([]))
    );
    shop.finish().await;
}
