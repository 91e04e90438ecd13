//! Who may do what in the users service: the gateway's signed identity, tokens for active users,
//! users on their own record and administrators on everyone's, the first administrator.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

/// The service believes only what the gateway signed: the same administrator's headers are 401
/// without the signature, or with one made for another request.
#[tokio::test]
async fn an_identity_the_gateway_did_not_sign_is_refused() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let admin = |uri: &str| {
        Request::builder()
            .uri(uri)
            .header("x-panthera-subject", ADMIN_ID)
            .header("x-panthera-roles", "admin")
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, body) = t.send(admin("/v1/users")).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let mut signed_elsewhere = admin("/v1/users?limit=1");
    sign_identity(&mut signed_elsewhere);
    let mut moved = admin("/v1/users");
    let signature = signed_elsewhere.headers()["x-panthera-signature"].clone();
    moved
        .headers_mut()
        .insert("x-panthera-signature", signature);
    let (status, _, body) = t.send(moved).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    let (status, _, body) = t.send(signed_elsewhere).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    t.finish().await;
}

#[tokio::test]
async fn tokens_for_active_users_only() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let user = t.create("turing@example.com").await;
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "Turing@Example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 600);
    let token = body["accessToken"].as_str().unwrap();

    // What the gateway does: HS256 with the shared secret, issuer and audience checked.
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&["https://auth.shop.example.com"]);
    validation.set_audience(&["shop"]);
    let claims = decode_claims(token);
    assert_eq!(claims.roles, Vec::<String>::new());
    assert_eq!(claims.sub, user["id"].as_str().unwrap());
    assert_eq!(claims.exp - claims.iat, 600);
    assert!(
        jsonwebtoken::decode::<Claims>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(b"another secret"),
            &validation
        )
        .is_err()
    );

    for credentials in [
        json!({"email": "turing@example.com", "password": "wrong password"}),
        json!({"email": "nobody@example.com", "password": "correct horse battery"}),
    ] {
        let (status, problem) = t
            .call(Method::POST, "/v1/auth/token", Some(credentials))
            .await;
        assert_problem(status, &problem, StatusCode::UNAUTHORIZED);
        assert_eq!(
            problem["detail"],
            "authentication failed: invalid credentials"
        );
    }

    let uri = format!("/v1/users/{}", user["id"].as_str().unwrap());
    let (status, _) = t
        .call(Method::PATCH, &uri, Some(json!({"status": "inactive"})))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, problem) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "turing@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::UNAUTHORIZED);

    let (status, problem) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "turing@example.com"})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&problem), ["password"]);
    t.finish().await;
}

#[tokio::test]
async fn token_endpoint_unavailable_without_secret_and_no_events_without_kafka() {
    let Some(t) = TestApp::with(false, None).await else {
        return;
    };
    t.create("lamarr@example.com").await;
    let (status, problem) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "lamarr@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !problem.to_string().contains("JWT_HS256_SECRET"),
        "{problem}"
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(events, 0);
    t.finish().await;
}

#[tokio::test]
async fn users_see_and_change_only_themselves_and_admins_everyone() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let ada = t.create("ada@example.com").await;
    let bob = t.create("bob@example.com").await;
    let (ada_id, bob_id) = (ada["id"].as_str().unwrap(), bob["id"].as_str().unwrap());
    assert_eq!(ada["roles"], json!([]));
    assert_eq!(ada["status"], "active");
    let as_ada = Some((ada_id, ""));
    let bob_uri = format!("/v1/users/{bob_id}");
    let ada_uri = format!("/v1/users/{ada_id}");

    // Without an identity every protected endpoint is 401.
    for (method, uri) in [
        (Method::GET, "/v1/users"),
        (Method::GET, ada_uri.as_str()),
        (Method::DELETE, ada_uri.as_str()),
    ] {
        let (status, body) = t.call_as(None, method, uri, None).await;
        assert_problem(status, &body, StatusCode::UNAUTHORIZED);
    }
    // An ordinary user: listing is admin-only (403); other users look missing (404).
    let (status, body) = t.call_as(as_ada, Method::GET, "/v1/users", None).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = t.call_as(as_ada, Method::GET, &bob_uri, None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let rename = json!({"firstName": "Mallory"});
    let (status, body) = t
        .call_as(as_ada, Method::PATCH, &bob_uri, Some(rename.clone()))
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = t.call_as(as_ada, Method::DELETE, &bob_uri, None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);
    // Nor may they raise themselves.
    for patch in [json!({"roles": ["admin"]}), json!({"status": "inactive"})] {
        let (status, body) = t
            .call_as(as_ada, Method::PATCH, &ada_uri, Some(patch))
            .await;
        assert_problem(status, &body, StatusCode::FORBIDDEN);
    }
    let (bob_now,): (String,) = sqlx::query_as("SELECT first_name FROM users WHERE id = $1::uuid")
        .bind(bob_id)
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(bob_now, "Ada", "another user's record changed");
    let roles: Vec<String> = sqlx::query_scalar("SELECT roles FROM users WHERE id = $1::uuid")
        .bind(ada_id)
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert!(roles.is_empty());

    // Their own record they read and change.
    let (status, body) = t.call_as(as_ada, Method::GET, &ada_uri, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t
        .call_as(as_ada, Method::PATCH, &ada_uri, Some(rename))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["firstName"], "Mallory");

    // An administrator grants a role; the next token carries it.
    let (status, body) = t
        .call(Method::PATCH, &bob_uri, Some(json!({"roles": ["admin"]})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!(["admin"]));
    let (status, body) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "bob@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = decode_claims(body["accessToken"].as_str().unwrap());
    assert_eq!(claims.roles, ["admin"]);

    // And a user deletes themselves.
    let (status, _) = t.call_as(as_ada, Method::DELETE, &ada_uri, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    t.finish().await;
}

#[tokio::test]
async fn the_first_administrator_is_created_once() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let pool = &t.db.pool;
    let ensure = |password: &'static str| {
        panthera_users::admin::ensure_first_admin(
            pool,
            Some(" Root@Example.com "),
            Some(password),
            Some("users"),
        )
    };
    assert!(ensure("first password!").await.unwrap());
    // A second start (or replica) changes nothing, not even with another password.
    assert!(!ensure("second password").await.unwrap());
    let rows: Vec<(Vec<String>, String)> =
        sqlx::query_as("SELECT roles, status FROM users WHERE email = 'root@example.com'")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(rows, [(vec!["admin".to_owned()], "active".to_owned())]);
    let (status, _) = t
        .call_as(
            None,
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "root@example.com", "password": "first password!"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Half a Secret is a configuration error, not a silent no-op.
    let half = panthera_users::admin::ensure_first_admin(pool, Some("x@example.com"), None, None)
        .await
        .unwrap_err();
    assert!(half.to_string().contains("ADMIN_PASSWORD"), "{half}");
    t.finish().await;
}
