//! Rate limiting: local token bucket, shared Redis bucket (real Redis) and fallback when Redis is
//! unreachable.
// Test helpers outside #[test] functions: a failed setup step should abort the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

const SECRET: &str = "test-only-ratelimit-secret";

fn yaml(upstream: &str, rate: &str) -> String {
    format!(
        "routes:\n  - {{name: api, pathPrefix: /, upstream: \"{upstream}\"}}\nrateLimit:\n{rate}"
    )
}

/// Sends `n` requests and returns how many were allowed; checks every 429's Retry-After.
async fn allowed_of(base: &str, n: usize, headers: &[(&str, &str)]) -> usize {
    let mut allowed = 0;
    for _ in 0..n {
        let reply = get(&format!("{base}/x"), headers).await;
        match reply.status {
            StatusCode::OK => allowed += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
                assert_eq!(reply.json()["status"], 429);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    allowed
}

#[tokio::test]
async fn local_bucket_limits_per_ip_with_retry_after() {
    let upstream = TestUpstream::start("api").await;
    let gw = start_gateway(
        &yaml(&upstream.url(), "  requestsPerSecond: 0.5\n  burst: 3\n"),
        &[],
    )
    .await;
    let base = format!("http://{}", gw.proxy_addr);
    assert_eq!(allowed_of(&base, 6, &[]).await, 3);
    assert_eq!(
        upstream.count(),
        3,
        "limited requests must not reach the upstream"
    );
    let reply = get(&format!("{base}/x"), &[]).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.header("retry-after"), Some("2"));
    gw.shutdown().await;
}

fn token(subject: &str) -> String {
    let claims = serde_json::json!({
        "sub": subject, "iss": "https://issuer", "aud": "shop",
        "exp": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 300,
    });
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn subject_key_gives_each_subject_its_own_bucket() {
    let upstream = TestUpstream::start("api").await;
    let text = format!(
        "{}auth:\n  jwt:\n    issuer: https://issuer\n    audiences: [shop]\n    hs256SecretEnv: SECRET\n",
        yaml(
            &upstream.url(),
            "  requestsPerSecond: 0.1\n  burst: 2\n  key: subject\n"
        )
    );
    let gw = start_gateway(&text, &[("SECRET", SECRET)]).await;
    let base = format!("http://{}", gw.proxy_addr);
    let alice = format!("Bearer {}", token("alice"));
    let bob = format!("Bearer {}", token("bob"));
    assert_eq!(allowed_of(&base, 4, &[("authorization", &alice)]).await, 2);
    assert_eq!(allowed_of(&base, 4, &[("authorization", &bob)]).await, 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn redis_bucket_is_shared_between_gateways() {
    let Some(redis) = redis_url() else { return };
    let upstream = TestUpstream::start("api").await;
    let prefix = format!("panthera:test:{}:", random_suffix());
    let config = yaml(
        &upstream.url(),
        "  requestsPerSecond: 0.2\n  burst: 4\n  redisUrlEnv: RL_REDIS\n",
    );
    let env = [("RL_REDIS", redis.as_str())];
    let a = start_gateway_with(&config, &env, &prefix).await;
    let b = start_gateway_with(&config, &env, &prefix).await;
    let allowed_a = allowed_of(&format!("http://{}", a.proxy_addr), 3, &[]).await;
    let allowed_b = allowed_of(&format!("http://{}", b.proxy_addr), 3, &[]).await;
    // Local buckets would allow 3 + 3; the shared one allows its burst of 4 in total.
    assert_eq!((allowed_a, allowed_b), (3, 1));
    assert_eq!(upstream.count(), 4);

    // The state really lives in Redis under the prefix.
    let client = redis::Client::open(redis.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, vec![format!("{prefix}ip:127.0.0.1")]);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0, "bucket key must expire, PTTL {ttl}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn unreachable_redis_falls_back_to_local_limiting() {
    let upstream = TestUpstream::start("api").await;
    let dead = closed_port().await;
    let url = format!("redis://{dead}/0");
    let gw = start_gateway(
        &yaml(
            &upstream.url(),
            "  requestsPerSecond: 0.5\n  burst: 2\n  redisUrlEnv: RL_REDIS\n",
        ),
        &[("RL_REDIS", url.as_str())],
    )
    .await;
    let started = std::time::Instant::now();
    assert_eq!(
        allowed_of(&format!("http://{}", gw.proxy_addr), 4, &[]).await,
        2
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    gw.shutdown().await;
}
