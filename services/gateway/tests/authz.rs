//! Per-method rules, required roles and scopes, and the identity headers sent upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const SECRET: &str = "test-only-hs256-secret-0123456789";
const ISSUER: &str = "https://auth.shop.example.com";

fn token(extra: Value) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims =
        json!({"sub": "u-1", "iss": ISSUER, "aud": "shop", "exp": now + 300, "jti": "t-1"});
    for (key, value) in extra.as_object().unwrap() {
        claims[key] = value.clone();
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn config(upstream: &str, scopes_claim: &str) -> String {
    format!(
        r#"
routes:
  - name: catalog
    pathPrefix: /v1/products
    upstream: "{upstream}"
    rules:
      - {{methods: [GET, HEAD], public: true}}
      - {{methods: [POST, PUT, PATCH, DELETE], roles: [admin], scopes: ["catalog:write"]}}
  - name: legacy-public
    pathPrefix: /v1/open
    upstream: "{upstream}"
    public: true
  - name: orders
    pathPrefix: /v1/orders
    upstream: "{upstream}"
auth:
  jwt:
    issuer: {ISSUER}
    audiences: [shop]
    hs256SecretEnv: TEST_JWT_SECRET
    scopesClaim: {scopes_claim}
"#
    )
}

async fn call(method: Method, url: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    send(method, url, &headers, "").await
}

#[tokio::test]
async fn method_rules_roles_and_scopes_decide_who_passes() {
    let upstream = TestUpstream::start("api").await;
    let gw = start_gateway(
        &config(&upstream.url(), "scope"),
        &[("TEST_JWT_SECRET", SECRET)],
    )
    .await;
    let products = format!("http://{}/v1/products/p1", gw.proxy_addr);

    // Reads are public: no token needed.
    assert_eq!(
        call(Method::GET, &products, None, &[]).await.status,
        StatusCode::OK
    );
    // Writes without a token: 401 with a challenge, as problem+json; the upstream never sees it.
    let seen = upstream.count();
    let reply = call(Method::DELETE, &products, None, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    // A valid token without the role or scope: 403 problem+json.
    let user = token(json!({"roles": ["user"], "scope": "orders:read"}));
    let reply = call(Method::POST, &products, Some(&user), &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.json()["status"], 403);
    assert_eq!(reply.json()["title"], "Forbidden");
    // A bad token on a protected method is still 401, not 403.
    let reply = call(Method::PUT, &products, Some("not.a.token"), &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(upstream.count(), seen);

    // The admin role, or the scope among others, is enough.
    let admin = token(json!({"roles": ["admin"]}));
    assert_eq!(
        call(Method::POST, &products, Some(&admin), &[])
            .await
            .status,
        StatusCode::OK
    );
    let writer = token(json!({"scope": "catalog:read catalog:write"}));
    assert_eq!(
        call(Method::PATCH, &products, Some(&writer), &[])
            .await
            .status,
        StatusCode::OK
    );
    // A route with only `public: true` (the earlier form) keeps working for every method.
    let open = format!("http://{}/v1/open/x", gw.proxy_addr);
    assert_eq!(
        call(Method::DELETE, &open, None, &[]).await.status,
        StatusCode::OK
    );
    gw.shutdown().await;
}

const IDENTITY_KEYS: &str = "authz-test-identity-key-0123456789abcdef";

#[tokio::test]
async fn identity_headers_come_from_the_token_never_from_the_client() {
    let upstream = TestUpstream::start("api").await;
    let signed = format!(
        "{}identity: {{signingKeysEnv: TEST_IDENTITY_KEYS}}\n",
        config(&upstream.url(), "scp")
    );
    let gw = start_gateway(
        &signed,
        &[
            ("TEST_JWT_SECRET", SECRET),
            ("TEST_IDENTITY_KEYS", IDENTITY_KEYS),
        ],
    )
    .await;
    let forged = [
        ("x-panthera-subject", "someone-else"),
        ("X-Panthera-Roles", "admin"),
        ("x-panthera-scopes", "catalog:write"),
        ("x-panthera-token-id", "forged"),
        ("x-panthera-signature", "v1;kid=x;t=1;sig=y"),
        ("x-panthera-other", "x"),
    ];
    let orders = format!("http://{}/v1/orders/1", gw.proxy_addr);
    let user = token(json!({"roles": ["user", "buyer"], "scp": ["orders:read"]}));
    let reply = call(Method::GET, &orders, Some(&user), &forged).await;
    assert_eq!(reply.status, StatusCode::OK);
    let headers = &reply.json()["headers"];
    assert_eq!(headers["x-panthera-subject"], "u-1");
    assert_eq!(headers["x-panthera-roles"], "user buyer");
    assert_eq!(headers["x-panthera-scopes"], "orders:read");
    assert_eq!(headers["x-panthera-token-id"], "t-1");
    assert!(headers.get("x-panthera-other").is_none(), "{headers}");
    // Signed for this request, with the configured key, over the values sent.
    let keys = panthera_identity::KeyRing::parse(IDENTITY_KEYS).unwrap();
    let identity =
        panthera_identity::IdentityFields::new(b"u-1", b"user buyer", b"orders:read", b"t-1");
    let signature = headers["x-panthera-signature"].as_str().unwrap();
    let request = panthera_identity::RequestLine {
        method: "GET",
        target: "/v1/orders/1",
    };
    let now = panthera_identity::unix_now();
    assert_eq!(
        keys.verify(signature.as_bytes(), now, request, &identity),
        Ok(())
    );

    // On a public route no identity is added and the forged one is removed all the same.
    let products = format!("http://{}/v1/products/p1", gw.proxy_addr);
    let reply = call(Method::GET, &products, None, &forged).await;
    assert_eq!(reply.status, StatusCode::OK);
    let headers = reply.json()["headers"].clone();
    for (name, _) in forged {
        assert!(
            headers.get(name.to_ascii_lowercase()).is_none(),
            "{name} reached the upstream: {headers}"
        );
    }
    // Forged headers do not grant a write either: the token is what counts.
    let reply = call(Method::DELETE, &products, Some(&user), &forged).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    gw.shutdown().await;
}

#[tokio::test]
async fn signing_keys_that_cannot_be_read_stop_the_start_naming_the_variable() {
    let yaml = "listen: \"127.0.0.1:0\"\nadminListen: \"127.0.0.1:0\"\nroutes: []\nidentity: {signingKeysEnv: TEST_IDENTITY_KEYS}\n";
    let config = panthera_gateway::GatewayConfig::from_yaml(yaml).unwrap();
    for (env, reason) in [
        (vec![], "not set"),
        (
            vec![("TEST_IDENTITY_KEYS", "too-short-secret-value")],
            "shorter than",
        ),
    ] {
        let options = panthera_gateway::GatewayOptions {
            environment: panthera_gateway::Environment::from_pairs(env),
            ..Default::default()
        };
        let Err(error) = panthera_gateway::RunningGateway::start(config.clone(), options).await
        else {
            panic!("started without usable signing keys");
        };
        let message = error.to_string();
        assert!(
            message.contains("TEST_IDENTITY_KEYS") && message.contains(reason),
            "{message}"
        );
        assert!(!message.contains("too-short-secret-value"), "{message}");
    }
}

#[test]
fn rules_are_validated() {
    use panthera_gateway::GatewayConfig;
    let base = "auth: {jwt: {issuer: i, audiences: [a], hs256SecretEnv: S}}\nroutes:\n  - name: r\n    pathPrefix: /r\n    upstream: http://u\n    rules:\n";
    for (rules, field) in [
        ("      - {methods: [get]}\n", "rules[0].methods"),
        ("      - {methods: []}\n", "rules[0].methods"),
        (
            "      - {methods: [GET]}\n      - {methods: [GET], public: true}\n",
            "rules[1].methods",
        ),
        (
            "      - {methods: [GET], public: true, roles: [admin]}\n",
            "rules[0].public",
        ),
        (
            "      - {methods: [GET], scopes: ['a b']}\n",
            "rules[0].scopes",
        ),
    ] {
        let err = GatewayConfig::from_yaml(&format!("{base}{rules}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{rules}: {err}");
    }
    // Roles without a validator could never be checked.
    let err = GatewayConfig::from_yaml(
        "routes:\n  - {name: r, pathPrefix: /r, upstream: 'http://u', rules: [{methods: [GET], roles: [admin]}]}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("auth.jwt"), "{err}");
}
