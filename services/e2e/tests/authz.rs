//! Authorization end to end, as issue 16's attacker would try it: the real `panthera-gateway`,
//! `panthera-users`, `panthera-catalog` and `panthera-orders` binaries, configured from what
//! `panthera` renders for `examples/shop.yaml` (the gateway's `gateway.yaml` and each
//! Deployment's environment), with PostgreSQL, Redis and Kafka from `scripts/test-services.sh`.
//! Only addresses are rewritten (Service DNS names to loopback ports) and Secret references
//! resolved to test values. Every refused request is checked to have changed nothing in the
//! databases.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, IDENTITY_KEYS, Shop};
use panthera_e2e::{Method, PASSWORD, StatusCode};
use panthera_kit::testing::identity_signature;
use serde_json::{Value, json};

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
    let ada = shop.gateway.sign_up("Ada", "ada@example.com").await;
    assert_eq!(
        (ada["status"].clone(), ada["roles"].clone()),
        (json!("active"), json!([]))
    );
    let (status, _, body) = shop
        .gateway
        .call(
            Method::POST,
            "/v1/users",
            None,
            &[],
            Some(json!({"firstName": "Eve", "lastName": "X", "email": "eve@example.com", "password": PASSWORD, "roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let bob = shop.gateway.sign_up("Bob", "bob@example.com").await;
    let (ada_id, bob_id) = (ada["id"].as_str().unwrap(), bob["id"].as_str().unwrap());
    let ada_token = shop.gateway.token("ada@example.com", PASSWORD).await;
    let bob_token = shop.gateway.token("bob@example.com", PASSWORD).await;
    // The administrator exists from the Secret the platform names.
    let admin_token = shop.gateway.token(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // Own profile.
    let (status, _, me) = shop
        .gateway
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
        .gateway
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
        .gateway
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
        .gateway
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
        .gateway
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
        .gateway
        .call(Method::GET, "/v1/orders", Some(&ada_token), &[], None)
        .await;
    assert_eq!(
        (status, list["meta"]["total"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (status, _, list) = shop
        .gateway
        .call(Method::GET, "/v1/orders", Some(&bob_token), &[], None)
        .await;
    assert_eq!(
        (status, list["meta"]["total"].clone()),
        (StatusCode::OK, json!(0))
    );

    // The administrator's actions: list users, pay and ship Ada's order.
    let (status, _, users) = shop
        .gateway
        .call(Method::GET, "/v1/users", Some(&admin_token), &[], None)
        .await;
    assert_eq!(
        (status, users["meta"]["total"].clone()),
        (StatusCode::OK, json!(3))
    );
    for action in ["pay", "ship"] {
        let (status, _, paid) = shop
            .gateway
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
            shop.gateway.call(method, &path, token, headers, body).await;
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
        .gateway
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

/// Issue "Day 2 on real pods", item 6: an attacker who reaches a service directly, around the
/// gateway (a network plugin that ignores NetworkPolicy; loopback has none at all), claims to be
/// an administrator in the identity headers. The services believe only what the gateway signed
/// with the platform's identity key, for that very request, lately: every variant is 401 and
/// changes nothing, while the same request through the gateway, with a token, works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_identity_sent_straight_to_a_service_is_refused() {
    let Some(shop) = Shop::start().await else {
        return;
    };
    let bob = shop.gateway.sign_up("Bob", "bob@example.com").await;
    let bob_id = bob["id"].as_str().unwrap().to_owned();
    let admin_token = shop.gateway.token(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, product) = shop
        .gateway
        .send(
            Method::POST,
            "/v1/products",
            Some(&admin_token),
            Some(json!({"sku": "LAMP-1", "name": "Lamp", "priceCents": 1500, "stockAvailable": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{product}");
    let product = format!("/v1/products/{}", product["id"].as_str().unwrap());
    let users = &shop.direct["users"];
    let bob_uri = format!("/v1/users/{bob_id}");

    // The platform's key signs Bob's own read (as the gateway would: a signature an attacker
    // could have captured inside the cluster), then the attacker reuses it.
    let bob_identity = [
        ("x-panthera-subject", bob_id.as_str()),
        ("x-panthera-roles", ""),
    ];
    let captured = identity_signature(IDENTITY_KEYS, "GET", &bob_uri, &bob_identity);
    let stale = {
        let keys = panthera_identity::KeyRing::parse(IDENTITY_KEYS).unwrap();
        let fields = panthera_identity::IdentityFields::new(bob_id.as_bytes(), b"admin", b"", b"");
        let request = panthera_identity::RequestLine {
            method: "GET",
            target: "/v1/users",
        };
        let then = panthera_identity::unix_now() - 2 * panthera_identity::MAX_SKEW_SECONDS;
        keys.sign(then, request, &fields).as_str().to_owned()
    };
    let other_key = identity_signature(
        "an-attackers-own-key-0123456789abcdef",
        "GET",
        "/v1/users",
        &[
            ("x-panthera-subject", &bob_id),
            ("x-panthera-roles", "admin"),
        ],
    );
    let forged_admin = [
        ("x-panthera-subject", bob_id.as_str()),
        ("x-panthera-roles", "admin"),
        ("x-panthera-scopes", "catalog:write orders:fulfil"),
    ];
    let with_signature = |signature: &str| {
        let mut headers: Vec<(&str, String)> = forged_admin
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect();
        headers.push(("x-panthera-signature", signature.to_owned()));
        headers
    };
    let unsigned: Vec<(&str, String)> = forged_admin
        .iter()
        .map(|(name, value)| (*name, (*value).to_owned()))
        .collect();
    let attacks = [
        (
            "users",
            Method::GET,
            "/v1/users".to_owned(),
            unsigned.clone(),
            "unsigned admin lists every user",
        ),
        (
            "users",
            Method::DELETE,
            bob_uri.clone(),
            unsigned.clone(),
            "unsigned admin deletes Bob",
        ),
        (
            "catalog",
            Method::DELETE,
            product.clone(),
            unsigned.clone(),
            "unsigned admin deletes a product",
        ),
        (
            "users",
            Method::GET,
            "/v1/users".to_owned(),
            vec![
                ("x-panthera-subject", bob_id.clone()),
                ("x-panthera-roles", String::new()),
                ("x-panthera-signature", captured.clone()),
            ],
            "a captured signature replayed on another path",
        ),
        (
            "users",
            Method::DELETE,
            bob_uri.clone(),
            vec![
                ("x-panthera-subject", bob_id.clone()),
                ("x-panthera-roles", String::new()),
                ("x-panthera-signature", captured.clone()),
            ],
            "a captured signature replayed with another method",
        ),
        (
            "users",
            Method::GET,
            bob_uri.clone(),
            with_signature(&captured),
            "a captured signature with the roles raised to admin",
        ),
        (
            "users",
            Method::GET,
            "/v1/users".to_owned(),
            with_signature(&stale),
            "a stale signature",
        ),
        (
            "users",
            Method::GET,
            "/v1/users".to_owned(),
            with_signature(&other_key),
            "signed with another key",
        ),
        (
            "users",
            Method::GET,
            "/v1/users".to_owned(),
            with_signature("v1;kid=x;t=1;sig=y"),
            "garbage",
        ),
    ];
    let before = shop.rows().await;
    for (service, method, path, headers, what) in attacks {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let (status, response_headers, problem) = shop.direct[service]
            .call(method, &path, None, &headers, None)
            .await;
        assert_problem(
            status,
            &response_headers,
            StatusCode::UNAUTHORIZED,
            &format!("straight to {service}: {what}: {problem}"),
        );
        assert_eq!(shop.rows().await, before, "{what} changed the database");
    }

    // The same request through the gateway, with the administrator's token, works: the gateway
    // signs what it verified.
    let (status, listed) = shop
        .gateway
        .send(Method::GET, "/v1/users", Some(&admin_token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert!(listed["meta"]["total"].as_i64().unwrap() >= 2, "{listed}");
    // And the captured signature on exactly the request it was made for is accepted: the
    // window within which a captured request can be replayed as it was (60 s) is the limit.
    let (status, _, read) = users
        .call(
            Method::GET,
            &bob_uri,
            None,
            &[
                ("x-panthera-subject", &bob_id),
                ("x-panthera-roles", ""),
                ("x-panthera-signature", &captured),
            ],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["id"], bob_id.as_str());
    shop.finish().await;
}
