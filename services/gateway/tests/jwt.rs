//! Every JWT rejection case, for HS256 (shared secret) and JWKS (RS256/ES256) gateways.
// Test helpers outside #[test] functions: a failed setup step should abort the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::*;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const SECRET: &str = "test-only-hs256-secret-0123456789";
const ISSUER: &str = "https://auth.shop.example.com";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Value {
    json!({"sub": "alice", "iss": ISSUER, "aud": "shop", "exp": now() + 300, "iat": now()})
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn signed(alg: Algorithm, kid: Option<&str>, pem: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    };
    encode(&header, claims, &key).unwrap()
}

/// An unsigned token (`alg: none`) with valid claims.
fn unsigned(claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    )
}

fn routes(upstream: &str, jwt: &str) -> String {
    format!(
        r#"
routes:
  - {{name: private, pathPrefix: /v1/private, upstream: "{upstream}"}}
  - {{name: public, pathPrefix: /v1/public, upstream: "{upstream}", public: true}}
auth:
  jwt:
    issuer: {ISSUER}
    audiences: [shop, other]
    leewaySeconds: 30
    {jwt}
"#
    )
}

async fn call(base: &str, token: Option<&str>) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    get(&format!("{base}/v1/private/x"), &headers).await
}

async fn assert_rejected(base: &str, token: Option<&str>, reason: &str) {
    let reply = call(base, token).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{reason}: {:?}",
        reply.body
    );
    assert_eq!(reply.json()["reason"], reason);
    let challenge = reply.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(!String::from_utf8_lossy(&reply.body).contains(SECRET));
}

#[tokio::test]
async fn hs256_accepts_valid_tokens_and_rejects_every_bad_one() {
    let upstream = TestUpstream::start("api").await;
    let gw = start_gateway(
        &routes(&upstream.url(), "hs256SecretEnv: TEST_JWT_SECRET"),
        &[("TEST_JWT_SECRET", SECRET)],
    )
    .await;
    let base = format!("http://{}", gw.proxy_addr);

    let valid = hs256(SECRET.as_bytes(), &claims());
    let reply = call(&base, Some(&valid)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.json()["headers"]["authorization"]
            .as_str()
            .unwrap()
            .ends_with(&valid)
    );
    // Second audience in the list is accepted too; so is expiry within the leeway.
    let other_aud = hs256(SECRET.as_bytes(), &with(claims(), "aud", json!("other")));
    assert_eq!(call(&base, Some(&other_aud)).await.status, StatusCode::OK);
    let in_leeway = hs256(SECRET.as_bytes(), &with(claims(), "exp", json!(now() - 10)));
    assert_eq!(call(&base, Some(&in_leeway)).await.status, StatusCode::OK);

    let seen = upstream.count();
    assert_rejected(&base, None, "missing bearer token").await;
    assert_rejected(&base, Some("not-a-jwt"), "malformed bearer token").await;
    assert_rejected(&base, Some("a.b.c"), "malformed bearer token").await;
    let wrong_secret = hs256(b"another-secret", &claims());
    assert_rejected(&base, Some(&wrong_secret), "token signature is invalid").await;
    let expired = hs256(
        SECRET.as_bytes(),
        &with(claims(), "exp", json!(now() - 120)),
    );
    assert_rejected(&base, Some(&expired), "token has expired").await;
    let future = hs256(
        SECRET.as_bytes(),
        &with(claims(), "nbf", json!(now() + 600)),
    );
    assert_rejected(&base, Some(&future), "token is not valid yet").await;
    let issuer = hs256(
        SECRET.as_bytes(),
        &with(claims(), "iss", json!("https://evil")),
    );
    assert_rejected(&base, Some(&issuer), "token issuer is not accepted").await;
    let audience = hs256(SECRET.as_bytes(), &with(claims(), "aud", json!("billing")));
    assert_rejected(&base, Some(&audience), "token audience is not accepted").await;
    let no_exp = hs256(SECRET.as_bytes(), &without(claims(), "exp"));
    assert_rejected(&base, Some(&no_exp), "token lacks required claim `exp`").await;
    let no_aud = hs256(SECRET.as_bytes(), &without(claims(), "aud"));
    assert_rejected(&base, Some(&no_aud), "token lacks required claim `aud`").await;
    assert_rejected(
        &base,
        Some(&unsigned(&claims())),
        "token algorithm is not accepted",
    )
    .await;
    // Algorithm confusion: an RS256 token on an HS256 gateway.
    let rs = signed(
        Algorithm::RS256,
        Some("rsa-1"),
        &fixture("rsa1.pem"),
        &claims(),
    );
    assert_rejected(&base, Some(&rs), "token algorithm is not accepted").await;
    let basic = get(
        &format!("{base}/v1/private/x"),
        &[("authorization", "Basic YTpi")],
    )
    .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        upstream.count(),
        seen,
        "a rejected request reached the upstream"
    );

    // Public routes need no token.
    assert_eq!(
        get(&format!("{base}/v1/public/x"), &[]).await.status,
        StatusCode::OK
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn missing_secret_env_fails_startup_without_leaking() {
    let text = format!(
        "listen: \"127.0.0.1:0\"\nadminListen: \"127.0.0.1:0\"\n{}",
        routes("http://127.0.0.1:1", "hs256SecretEnv: NOT_SET_ANYWHERE")
    );
    let config = panthera_gateway::GatewayConfig::from_yaml(&text).unwrap();
    let options = panthera_gateway::GatewayOptions {
        environment: panthera_gateway::Environment::from_pairs([("OTHER", SECRET)]),
        ..Default::default()
    };
    let err = panthera_gateway::RunningGateway::start(config, options)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("NOT_SET_ANYWHERE"), "{err}");
    assert!(!err.contains(SECRET));
}

async fn wait_ready(admin: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(&format!("http://{admin}/readyz"), &[]).await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "gateway never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn jwks_accepts_rs256_and_es256_and_rejects_confusion_and_unknown_keys() {
    let upstream = TestUpstream::start("api").await;
    let jwks = JwksServer::start(&fixture("jwks.json")).await;
    let gw = start_gateway(
        &routes(&upstream.url(), &format!("jwksUrl: {}", jwks.url())),
        &[],
    )
    .await;
    wait_ready(gw.admin_addr).await;
    let base = format!("http://{}", gw.proxy_addr);
    let rsa1 = fixture("rsa1.pem");
    let rsa2 = fixture("rsa2.pem");
    let ec1 = fixture("ec1.pem");

    let rs = signed(Algorithm::RS256, Some("rsa-1"), &rsa1, &claims());
    assert_eq!(call(&base, Some(&rs)).await.status, StatusCode::OK);
    // Cached verification gives the same answer.
    assert_eq!(call(&base, Some(&rs)).await.status, StatusCode::OK);
    let es = signed(Algorithm::ES256, Some("ec-1"), &ec1, &claims());
    assert_eq!(call(&base, Some(&es)).await.status, StatusCode::OK);

    // HS256 "signed" with the RSA public key: the classic confusion attack.
    let public_pem = fixture("rsa1.pub.pem");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".to_owned());
    let confused = encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    assert_rejected(&base, Some(&confused), "token algorithm is not accepted").await;
    // A key of another type than the algorithm names.
    let es_with_rsa_kid = signed(Algorithm::ES256, Some("rsa-1"), &ec1, &claims());
    assert_rejected(
        &base,
        Some(&es_with_rsa_kid),
        "token algorithm is not accepted",
    )
    .await;
    // Right kid, wrong private key.
    let forged = signed(Algorithm::RS256, Some("rsa-1"), &rsa2, &claims());
    assert_rejected(&base, Some(&forged), "token signature is invalid").await;
    assert_rejected(
        &base,
        Some(&unsigned(&claims())),
        "token algorithm is not accepted",
    )
    .await;
    let expired = signed(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa1,
        &with(claims(), "exp", json!(now() - 120)),
    );
    assert_rejected(&base, Some(&expired), "token has expired").await;
    let audience = signed(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa1,
        &with(claims(), "aud", json!("x")),
    );
    assert_rejected(&base, Some(&audience), "token audience is not accepted").await;
    let issuer = signed(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa1,
        &with(claims(), "iss", json!("x")),
    );
    assert_rejected(&base, Some(&issuer), "token issuer is not accepted").await;

    // Unknown key: rejected, and it triggers a refresh that picks up a newly published key.
    let rotated = signed(Algorithm::RS256, Some("rsa-2"), &rsa2, &claims());
    let fetches = jwks.fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert_rejected(&base, Some(&rotated), "token is signed by an unknown key").await;
    assert!(jwks.fetches.load(std::sync::atomic::Ordering::SeqCst) > fetches);
    jwks.replace(&fixture("jwks-rotated.json"));
    assert_eq!(call(&base, Some(&rotated)).await.status, StatusCode::OK);
    gw.shutdown().await;
}

#[tokio::test]
async fn unreachable_jwks_is_not_ready_and_rejects() {
    let upstream = TestUpstream::start("api").await;
    let dead = closed_port().await;
    let gw = start_gateway(
        &routes(
            &upstream.url(),
            &format!("jwksUrl: http://{dead}/jwks.json"),
        ),
        &[],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ready = get(&format!("http://{}/readyz", gw.admin_addr), &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let token = signed(
        Algorithm::RS256,
        Some("rsa-1"),
        &fixture("rsa1.pem"),
        &claims(),
    );
    assert_rejected(
        &format!("http://{}", gw.proxy_addr),
        Some(&token),
        "signing keys are not available yet",
    )
    .await;
    assert_eq!(upstream.count(), 0);
    gw.shutdown().await;
}
