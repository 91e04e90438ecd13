//! Search through OpenSearch, end to end: the real catalog binary publishes product events
//! through its outbox to a real Kafka, indexes them into a real OpenSearch node, and answers
//! fuzzy, prefix, SKU and faceted queries from it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Catalog, ids};
use panthera_kit::kafka;
use reqwest::Method;
use rskafka::client::partition::{Compression, OffsetAt};
use serde_json::{Value, json};

fn first(body: &Value) -> Option<String> {
    ids(body).into_iter().next()
}

fn facet_count(body: &Value, facet: &str, key: &str, value: &Value) -> Option<i64> {
    body["meta"]["facets"][facet]
        .as_array()?
        .iter()
        .find(|bucket| &bucket[key] == value)
        .and_then(|bucket| bucket["count"].as_i64())
}

#[tokio::test]
async fn products_are_found_by_typos_prefixes_sku_and_facets_and_follow_every_write() {
    let Some(catalog) = Catalog::start("catalog_search").await else {
        return;
    };
    // No alias at the first start: the catalog builds the index itself.
    catalog.wait_for_alias().await;
    let audio = catalog.category("audio").await;
    let peripherals = catalog.category("peripherals").await;
    let headphones = catalog
        .product(
            json!({"sku": "AUD-HP-100", "name": "Wireless Bluetooth Headphones",
            "description": "Over-ear, noise cancelling, 30 hours of battery",
            "priceCents": 8999, "stockAvailable": 5, "categoryId": audio}),
        )
        .await;
    let keyboard = catalog
        .product(json!({"sku": "KB-MECH-001", "name": "Mechanical Keyboard",
            "description": "Hot-swappable switches and a wireless mode",
            "priceCents": 12999, "stockAvailable": 0, "categoryId": peripherals}))
        .await;
    let mouse = catalog
        .product(json!({"sku": "MS-ERG-7", "name": "Ergonomic Mouse",
            "description": "Vertical grip", "priceCents": 2999, "stockAvailable": 3,
            "categoryId": peripherals}))
        .await;
    let speakers = catalog
        .product(
            json!({"sku": "AUD-SPK-2", "name": "Studio Monitor Speakers",
            "description": "A pair of active monitors", "priceCents": 29999,
            "stockAvailable": 2, "categoryId": audio}),
        )
        .await;

    // A typo in each word.
    let body = catalog
        .eventually("q=wireles%20hedphones", |b| {
            first(b) == Some(headphones.clone())
        })
        .await;
    assert_eq!(body["data"][0]["sku"], "AUD-HP-100");
    // Prefixes, as typed.
    catalog
        .eventually("q=mecha", |b| first(b) == Some(keyboard.clone()))
        .await;
    catalog
        .eventually("q=studio%20mon", |b| first(b) == Some(speakers.clone()))
        .await;
    // The exact SKU, any case, first.
    catalog
        .eventually("q=kb-mech-001", |b| first(b) == Some(keyboard.clone()))
        .await;
    // The name weighs more than the description: "wireless" is in both.
    let body = catalog
        .eventually("q=wireless", |b| ids(b).len() == 2)
        .await;
    assert_eq!(first(&body), Some(headphones.clone()));

    // Facets: every category and price bucket without filters...
    let body = catalog.eventually("", |b| b["meta"]["total"] == 4).await;
    assert_eq!(
        facet_count(&body, "categories", "id", &json!(audio)),
        Some(2)
    );
    assert_eq!(
        facet_count(&body, "categories", "id", &json!(peripherals)),
        Some(2)
    );
    assert_eq!(
        facet_count(&body, "priceRanges", "from", &json!(2500)),
        Some(1)
    );
    assert_eq!(
        facet_count(&body, "priceRanges", "from", &json!(25000)),
        Some(1)
    );
    // ... and with a category chosen, the hits narrow but the category facet still counts the
    // others (for the same text and price), while the price facet follows the category.
    let (backend, body) = catalog.search(&format!("categoryId={peripherals}")).await;
    assert_eq!(backend, "opensearch");
    assert_eq!(body["meta"]["total"], 2);
    assert_eq!(
        facet_count(&body, "categories", "id", &json!(audio)),
        Some(2)
    );
    assert_eq!(
        facet_count(&body, "priceRanges", "from", &json!(25000)),
        Some(0)
    );
    let (_, body) = catalog
        .search("minPriceCents=5000&maxPriceCents=20000")
        .await;
    let mut hits = ids(&body);
    hits.sort();
    let mut expected = vec![headphones.clone(), keyboard.clone()];
    expected.sort();
    assert_eq!(hits, expected);

    // The stock filter, and stock changes reaching the index.
    let body = catalog
        .eventually("inStock=true", |b| b["meta"]["total"] == 3)
        .await;
    assert!(!ids(&body).contains(&keyboard));
    let (status, _, _) = catalog
        .call(
            Method::PUT,
            &format!("/v1/products/{keyboard}/stock"),
            Some(json!({"available": 4})),
        )
        .await;
    assert_eq!(status, 200);
    catalog
        .eventually("inStock=true", |b| ids(b).contains(&keyboard))
        .await;
    // A reservation takes the mouse's last units: out of stock in the index too.
    let order = uuid::Uuid::new_v4();
    let (status, _, body) = catalog
        .call(
            Method::POST,
            "/v1/reservations",
            Some(json!({"orderId": order, "items": [{"productId": mouse, "quantity": 3}]})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    catalog
        .eventually("inStock=true", |b| !ids(b).contains(&mouse))
        .await;
    let (status, _, _) = catalog
        .call(Method::DELETE, &format!("/v1/reservations/{order}"), None)
        .await;
    assert_eq!(status, 204);
    catalog
        .eventually("inStock=true", |b| ids(b).contains(&mouse))
        .await;

    // An update and a delete.
    let (status, _, _) = catalog
        .call(
            Method::PATCH,
            &format!("/v1/products/{mouse}"),
            Some(json!({"name": "Ergonomic Trackball"})),
        )
        .await;
    assert_eq!(status, 200);
    let body = catalog
        .eventually("q=trackbal", |b| first(b) == Some(mouse.clone()))
        .await;
    assert_eq!(body["data"][0]["name"], "Ergonomic Trackball");
    let (status, _, _) = catalog
        .call(Method::DELETE, &format!("/v1/products/{speakers}"), None)
        .await;
    assert_eq!(status, 204);
    catalog
        .eventually("q=speakers", |b| b["meta"]["total"] == 0)
        .await;
    catalog.eventually("", |b| b["meta"]["total"] == 3).await;
    catalog.finish().await;
}

/// The versions the index holds, by product id, straight from OpenSearch.
async fn indexed_versions(catalog: &Catalog, ids: &[&String]) -> Vec<(i64, bool)> {
    let mut versions = Vec::new();
    for id in ids {
        let (status, body) = catalog
            .opensearch(Method::GET, &format!("{}/_doc/{id}", catalog.alias))
            .await;
        assert_eq!(status, 200, "{body}");
        versions.push((
            body["_version"].as_i64().unwrap(),
            body["_source"]["deleted"].as_bool().unwrap(),
        ));
    }
    versions
}

#[tokio::test]
async fn replayed_and_late_events_change_nothing() {
    let Some(catalog) = Catalog::start("catalog_replay").await else {
        return;
    };
    catalog.wait_for_alias().await;
    let kept = catalog
        .product(
            json!({"sku": "RP-1", "name": "Replay Lamp", "priceCents": 1500,
            "stockAvailable": 1}),
        )
        .await;
    let gone = catalog
        .product(json!({"sku": "RP-2", "name": "Replay Chair", "priceCents": 9000}))
        .await;
    for name in ["Replay Lamp II", "Replay Desk Lamp"] {
        let (status, _, _) = catalog
            .call(
                Method::PATCH,
                &format!("/v1/products/{kept}"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = catalog
        .call(Method::DELETE, &format!("/v1/products/{gone}"), None)
        .await;
    assert_eq!(status, 204);
    catalog
        .eventually("q=replay", |b| {
            ids(b) == vec![kept.clone()] && b["data"][0]["name"] == "Replay Desk Lamp"
        })
        .await;
    let before = indexed_versions(&catalog, &[&kept, &gone]).await;
    assert_eq!(
        before,
        vec![(3, false), (2, true)],
        "created + 2 changes; created + delete"
    );

    // Every event again, in order, then each one more time in reverse order: a replay of the
    // topic and late, out-of-order deliveries.
    let client = kafka::connect(std::slice::from_ref(&catalog.brokers), "replay-test")
        .await
        .unwrap();
    let partition = kafka::partition(&client, &catalog.product_topic)
        .await
        .unwrap();
    let end = partition.get_offset(OffsetAt::Latest).await.unwrap();
    let (records, _) = partition
        .fetch_records(0, 1..10_000_000, 1_000)
        .await
        .unwrap();
    let records: Vec<_> = records
        .into_iter()
        .filter(|r| r.offset < end)
        .map(|r| r.record)
        .collect();
    assert_eq!(records.len(), 5);
    let reversed: Vec<_> = records.iter().rev().cloned().collect();
    partition
        .produce(records, Compression::NoCompression)
        .await
        .unwrap();
    partition
        .produce(reversed, Compression::NoCompression)
        .await
        .unwrap();
    let replayed_end = end + 10;

    // Until the indexer has gone past them.
    let consumer = format!("catalog-search:{}", catalog.alias);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let offset: Option<i64> = sqlx::query_scalar(
            "SELECT next_offset FROM catalog.consumer_offsets WHERE consumer = $1",
        )
        .bind(&consumer)
        .fetch_optional(&catalog.db.pool)
        .await
        .unwrap();
        if offset.is_some_and(|o| o >= replayed_end) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the indexer stopped at {offset:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(indexed_versions(&catalog, &[&kept, &gone]).await, before);
    let (_, body) = catalog.search("q=replay").await;
    assert_eq!(ids(&body), vec![kept.clone()]);
    assert_eq!(body["data"][0]["name"], "Replay Desk Lamp");
    let (_, body) = catalog.search("q=chair").await;
    assert_eq!(
        body["meta"]["total"], 0,
        "the deleted product stays deleted"
    );
    catalog.finish().await;
}

#[tokio::test]
async fn a_crash_right_after_a_write_loses_nothing() {
    let Some(mut catalog) = Catalog::start("catalog_crash").await else {
        return;
    };
    catalog.wait_for_alias().await;
    let mut created = Vec::new();
    for round in 0..3 {
        let id = catalog
            .product(
                json!({"sku": format!("CR-{round}"), "name": format!("Crash Kettle {round}"),
                "priceCents": 2500}),
            )
            .await;
        created.push(id);
        // SIGKILL at once: the event may still be in the outbox, or on Kafka and not indexed.
        catalog.crash_and_restart().await;
    }
    created.sort();
    catalog
        .eventually("q=kettle", |b| {
            let mut found = ids(b);
            found.sort();
            found == created
        })
        .await;
    catalog.finish().await;
}
