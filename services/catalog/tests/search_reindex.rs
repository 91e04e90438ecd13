//! `panthera-catalog reindex` on the real binary, OpenSearch and Kafka: a rebuild while writes and
//! searches go on (no downtime, no lost write), and the rebuild of an index deleted under the
//! catalog.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Catalog;
use reqwest::Method;
use serde_json::json;

async fn create(catalog: &Catalog, sku: &str) -> String {
    catalog
        .product(
            json!({"sku": sku, "name": format!("Reindex Teapot {sku}"), "priceCents": 1200,
            "stockAvailable": 1}),
        )
        .await
}

/// Waits until OpenSearch finds exactly `expected` for `q=teapot`, over all pages.
async fn all_found(catalog: &Catalog, expected: &[String]) {
    let mut expected = expected.to_vec();
    expected.sort();
    let total = i64::try_from(expected.len()).unwrap();
    catalog
        .eventually("q=teapot&limit=1", |body| body["meta"]["total"] == total)
        .await;
    let mut found = Vec::new();
    for offset in (0..expected.len()).step_by(100) {
        let query = format!("q=teapot&limit=100&offset={offset}");
        found.extend(catalog.search_ids(&query).await.unwrap());
    }
    found.sort();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn reindex_swaps_the_alias_without_downtime_or_lost_writes() {
    let Some(catalog) = Catalog::start("catalog_reindex").await else {
        return;
    };
    let first_index = catalog.wait_for_alias().await;
    let mut created = Vec::new();
    for n in 0..20 {
        created.push(create(&catalog, &format!("RI-{n}")).await);
    }
    all_found(&catalog, &created).await;

    let catalog = Arc::new(catalog);
    let stop = Arc::new(AtomicBool::new(false));
    // Searches all along: every one must be answered, by OpenSearch.
    let searcher = tokio::spawn({
        let (catalog, stop) = (Arc::clone(&catalog), Arc::clone(&stop));
        async move {
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                let (status, backend, body) = catalog
                    .call(Method::GET, "/v1/products?q=teapot&limit=100", None)
                    .await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(
                    backend, "opensearch",
                    "a search fell back during the rebuild"
                );
                assert!(body["meta"]["total"].as_i64().unwrap() >= 20, "{body}");
                answered += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            answered
        }
    });
    // Writes all along: none may be lost.
    let writer = tokio::spawn({
        let (catalog, stop) = (Arc::clone(&catalog), Arc::clone(&stop));
        async move {
            let mut written = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                written.push(create(&catalog, &format!("RW-{n}")).await);
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            written
        }
    });
    let output = catalog.reindex().await;
    assert!(output.contains("reindexed"), "{output}");
    // A little more of both after the swap.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let answered = searcher.await.unwrap();
    let written = writer.await.unwrap();
    assert!(answered > 10, "only {answered} searches ran");
    assert!(!written.is_empty());

    let now = catalog.alias_indices().await;
    assert_eq!(now.len(), 1);
    assert_ne!(now, first_index, "the alias points to the new index");
    let (status, _) = catalog.opensearch(Method::GET, &first_index[0]).await;
    assert_eq!(status, 404, "the old index is deleted");
    created.extend(written);
    all_found(&catalog, &created).await;
    Arc::into_inner(catalog).unwrap().finish().await;
}

#[tokio::test]
async fn a_deleted_index_is_answered_by_postgres_then_rebuilt_by_reindex() {
    let Some(catalog) = Catalog::start("catalog_lost").await else {
        return;
    };
    let index = catalog.wait_for_alias().await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(create(&catalog, &format!("LI-{n}")).await);
    }
    all_found(&catalog, &created).await;

    let (status, body) = catalog.opensearch(Method::DELETE, &index[0]).await;
    assert_eq!(status, 200, "{body}");
    // Searches keep answering, from PostgreSQL.
    let (backend, body) = catalog.search("q=teapot&limit=100").await;
    assert_eq!(backend, "postgres");
    assert_eq!(body["meta"]["total"], 5);
    // A write while there is no index.
    created.push(create(&catalog, "LI-late").await);

    let output = catalog.reindex().await;
    assert!(output.contains("reindexed"), "{output}");
    let rebuilt = catalog.alias_indices().await;
    assert_eq!(rebuilt.len(), 1);
    assert_ne!(rebuilt, index);
    all_found(&catalog, &created).await;
    // And the index follows writes again.
    created.push(create(&catalog, "LI-after").await);
    all_found(&catalog, &created).await;
    catalog.finish().await;
}
