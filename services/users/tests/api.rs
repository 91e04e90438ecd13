//! Every endpoint of the users service, through the full router, against a real PostgreSQL.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn create_get_update_delete() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let request = Request::post("/v1/users")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(new_user(" Ada@Example.com ").to_string()))
        .unwrap();
    let (status, headers, created) = t.send(request).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(headers[header::LOCATION], format!("/v1/users/{id}"));
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["firstName"], "Ada");
    assert_eq!(created["lastName"], "Lovelace");
    assert_eq!(created["status"], "active");
    for field in ["createdAt", "updatedAt"] {
        let text = created[field].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "{field}: {text}"
        );
    }
    let keys: Vec<_> = created.as_object().unwrap().keys().cloned().collect();
    assert!(
        !keys.iter().any(|k| k.to_lowercase().contains("password")),
        "{keys:?}"
    );

    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");

    let (status, fetched) = t.call(Method::GET, &format!("/v1/users/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, created);

    let (status, updated) = t
        .call(
            Method::PATCH,
            &format!("/v1/users/{id}"),
            Some(json!({"lastName": "Byron", "status": "inactive"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["lastName"], "Byron");
    assert_eq!(updated["firstName"], "Ada");
    assert_eq!(updated["status"], "inactive");
    assert_eq!(updated["createdAt"], created["createdAt"]);
    assert!(updated["updatedAt"].as_str() > created["updatedAt"].as_str());

    let (status, body) = t
        .call(Method::DELETE, &format!("/v1/users/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, body) = t.call(Method::GET, &format!("/v1/users/{id}"), None).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND);

    // Each change was recorded for publishing, in order, without the password hash.
    let events: Vec<(String, Value)> =
        sqlx::query_as("SELECT event_type, payload FROM outbox ORDER BY position")
            .fetch_all(&t.db.pool)
            .await
            .unwrap();
    let types: Vec<_> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["user.created", "user.updated", "user.deleted"]);
    assert_eq!(events[0].1["id"], id.as_str());
    assert!(!events.iter().any(|(_, p)| p.to_string().contains("argon2")));
    t.finish().await;
}

#[tokio::test]
async fn list_pages_and_filters() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    t.seed(45).await;

    let (status, body) = t.call(Method::GET, "/v1/users", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["meta"], json!({"limit": 20, "offset": 0, "total": 45}));
    assert_eq!(body["data"].as_array().unwrap().len(), 20);
    assert_eq!(body["data"][0]["email"], "seed0@example.com");

    let (_, body) = t
        .call(Method::GET, "/v1/users?limit=10&offset=40", None)
        .await;
    assert_eq!(
        body["meta"],
        json!({"limit": 10, "offset": 40, "total": 45})
    );
    let emails: Vec<_> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        emails,
        (40..45)
            .map(|i| format!("seed{i}@example.com"))
            .collect::<Vec<_>>()
    );

    let (_, body) = t.call(Method::GET, "/v1/users?limit=100", None).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 45);

    // Past the last page the total is still reported.
    let (_, body) = t.call(Method::GET, "/v1/users?offset=100", None).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 0);
    assert_eq!(body["meta"]["total"], 45);
    let (_, body) = t
        .call(Method::GET, "/v1/users?status=pending&offset=100", None)
        .await;
    assert_eq!(body["meta"]["total"], 15);

    let (_, body) = t.call(Method::GET, "/v1/users?status=pending", None).await;
    assert_eq!(body["meta"]["total"], 15);
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["status"] == "pending")
    );

    let (_, body) = t
        .call(Method::GET, "/v1/users?email=SEED7%40example.com", None)
        .await;
    assert_eq!(body["meta"]["total"], 1);
    assert_eq!(body["data"][0]["lastName"], "Number7");

    let (_, body) = t
        .call(
            Method::GET,
            "/v1/users?email=seed7%40example.com&status=active",
            None,
        )
        .await;
    assert_eq!(body["meta"]["total"], 0);
    assert_eq!(body["data"], json!([]));

    for (query, field) in [
        ("limit=101", "limit"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("limit=abc", "limit"),
        ("status=deleted", "status"),
        ("sort=email", "sort"),
    ] {
        let (status, body) = t
            .call(Method::GET, &format!("/v1/users?{query}"), None)
            .await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_fields(&body), [field], "{query}: {body}");
    }
    t.finish().await;
}

#[tokio::test]
async fn validation_errors_name_the_fields() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let cases = [
        (
            json!({"lastName": "L", "email": "a@example.com", "password": "long enough"}),
            vec!["firstName"],
        ),
        (
            json!({"firstName": "A", "lastName": "L", "email": "not-an-email", "password": "long enough"}),
            vec!["email"],
        ),
        (
            json!({"firstName": "A", "lastName": "L", "email": "a@example.com", "password": "short"}),
            vec!["password"],
        ),
        (
            json!({"firstName": " ", "lastName": "L", "email": "bad", "password": "short"}),
            vec!["firstName", "email", "password"],
        ),
        (
            json!({"firstName": "A", "lastName": "L", "email": "a@example.com", "password": "long enough", "status": "banned"}),
            vec!["status"],
        ),
        (
            json!({"firstName": 5, "lastName": "L", "email": "a@example.com", "password": "long enough"}),
            vec!["firstName"],
        ),
        (
            json!({"firstName": "A", "lastName": "L", "email": "a@example.com", "password": "long enough", "role": "admin"}),
            vec!["role"],
        ),
        (
            json!({"firstName": "A".repeat(101), "lastName": "L", "email": "a@example.com", "password": "long enough"}),
            vec!["firstName"],
        ),
    ];
    for (body, fields) in cases {
        let (status, problem) = t.call(Method::POST, "/v1/users", Some(body.clone())).await;
        assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_fields(&problem), fields, "{body}: {problem}");
    }

    let (status, _, problem) = t
        .raw(
            Method::POST,
            "/v1/users",
            "application/json",
            "{\"firstName\": ",
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST);
    let (status, headers, problem) = t
        .raw(
            Method::POST,
            "/v1/users",
            "application/json",
            "{\"firstName\": \"A\", ",
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    let (status, _, problem) = t
        .raw(Method::POST, "/v1/users", "text/plain", "hello")
        .await;
    assert_problem(status, &problem, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let created = t.create("valid@example.com").await;
    let id = created["id"].as_str().unwrap();
    for (patch, field) in [
        (json!({}), "body"),
        (json!({"email": "nope"}), "email"),
        (json!({"password": "x"}), "password"),
        (json!({"status": "gone"}), "status"),
        (json!({"id": "00000000-0000-0000-0000-000000000000"}), "id"),
    ] {
        let (status, problem) = t
            .call(
                Method::PATCH,
                &format!("/v1/users/{id}"),
                Some(patch.clone()),
            )
            .await;
        assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error_fields(&problem), [field], "{patch}: {problem}");
    }
    let (status, _, problem) = t
        .raw(
            Method::PATCH,
            &format!("/v1/users/{id}"),
            "application/json",
            "nope",
        )
        .await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST);
    t.finish().await;
}

#[tokio::test]
async fn duplicate_email_conflicts() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    t.create("grace@example.com").await;
    let (status, problem) = t
        .call(
            Method::POST,
            "/v1/users",
            Some(new_user("GRACE@example.com")),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT);
    assert!(problem["detail"].as_str().unwrap().contains("email"));

    let other = t.create("hopper@example.com").await;
    let uri = format!("/v1/users/{}", other["id"].as_str().unwrap());
    let (status, problem) = t
        .call(
            Method::PATCH,
            &uri,
            Some(json!({"email": "grace@example.com"})),
        )
        .await;
    assert_problem(status, &problem, StatusCode::CONFLICT);
    let (status, unchanged) = t.call(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unchanged["email"], "hopper@example.com");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
    t.finish().await;
}

#[tokio::test]
async fn unknown_users_and_routes_are_not_found() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let missing = format!("/v1/users/{}", uuid::Uuid::new_v4());
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"firstName": "X"}))),
        (Method::DELETE, None),
    ] {
        let (status, problem) = t.call(method.clone(), &missing, body).await;
        assert_problem(status, &problem, StatusCode::NOT_FOUND);
        assert_eq!(problem["detail"], "user not found", "{method}");
    }
    let (status, problem) = t.call(Method::GET, "/v1/users/not-a-uuid", None).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND);
    let (status, problem) = t.call(Method::GET, "/v1/nothing-here", None).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND);
    t.finish().await;
}

#[tokio::test]
async fn sql_injection_attempts_are_plain_data() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    t.seed(3).await;
    let hostile = "Robert'); DROP TABLE users; --";
    let (status, created) = t
        .call(
            Method::POST,
            "/v1/users",
            Some(json!({"firstName": hostile, "lastName": "' OR '1'='1", "email": "bobby@example.com", "password": "x' OR 1=1 --"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["firstName"], hostile);

    for query in [
        "email=%27%20OR%20%271%27%3D%271",
        "email=x%40example.com%27%3B%20DELETE%20FROM%20users%3B%20--",
        "status=active%27%20OR%201%3D1%20--",
        "limit=1%3B%20DROP%20TABLE%20users",
    ] {
        let (status, body) = t
            .call(Method::GET, &format!("/v1/users?{query}"), None)
            .await;
        assert!(
            status == StatusCode::OK && body["meta"]["total"] == 0
                || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {status} {body}"
        );
    }
    let (status, problem) = t.call(Method::GET, "/v1/users/1%20OR%201%3D1", None).await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND);

    let (_, problem) = t
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(json!({"email": "' OR 1=1 --", "password": "' OR 1=1 --"})),
        )
        .await;
    assert_eq!(problem["status"], 401);

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&t.db.pool)
        .await
        .unwrap();
    assert_eq!(count, 4, "the table is intact");
    t.finish().await;
}

#[tokio::test]
async fn operational_endpoints() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    let (status, body) = t.call(Method::GET, "/healthz", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = t.call(Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    t.call(Method::GET, "/v1/users", None).await;
    let (status, body) = t.call(Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(text.contains("route=\"/v1/users\""), "{text}");
    let (status, body) = t.call(Method::GET, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::from_str::<Value>(&panthera_users::openapi::document_json().unwrap()).unwrap()
    );

    // Closing the pool is what an unreachable database looks like to the service.
    t.db.pool.close().await;
    let (status, body) = t.call(Method::GET, "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["postgres"], "unavailable");
    t.finish().await;
}

#[tokio::test]
async fn totals_follow_every_write_and_concurrent_status_changes() {
    let Some(t) = TestApp::new().await else {
        return;
    };
    t.seed(30).await;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id::text FROM users ORDER BY created_at")
        .fetch_all(&t.db.pool)
        .await
        .unwrap();

    // Opposite status changes at the same time must neither deadlock nor miscount.
    let changes = ids.iter().enumerate().map(|(i, id)| {
        let status = ["pending", "active", "inactive"][i % 3];
        let uri = format!("/v1/users/{id}");
        let t = &t;
        async move {
            t.call(Method::PATCH, &uri, Some(json!({"status": status})))
                .await
                .0
        }
    });
    let statuses = futures::future::join_all(changes).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let (status, _) = t
        .call(Method::DELETE, &format!("/v1/users/{}", ids[0]), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let actual: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM users GROUP BY status ORDER BY status")
            .fetch_all(&t.db.pool)
            .await
            .unwrap();
    for (status, count) in &actual {
        let (_, body) = t
            .call(
                Method::GET,
                &format!("/v1/users?status={status}&limit=1"),
                None,
            )
            .await;
        assert_eq!(body["meta"]["total"], *count, "{status}");
    }
    let (_, body) = t.call(Method::GET, "/v1/users", None).await;
    assert_eq!(body["meta"]["total"], 29);
    t.finish().await;
}
