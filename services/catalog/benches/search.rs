//! Search benchmark on the real thing: the catalog binary (release) with PostgreSQL, Kafka and
//! OpenSearch from the test services.
//!
//! 1. Quality: loads `bench/products.json` (240 products) through the API, so the index is fed
//!    by the real path (outbox, Kafka, indexer), then runs `bench/queries.json` (40 queries with
//!    their expected hits: exact names, typos, prefixes, SKUs, facets) on OpenSearch (through the
//!    API) and on PostgreSQL's full-text search (the catalog's own query, in process), and prints
//!    the hits at rank 1 and in the top 5 of each.
//! 2. Index lag: creates 100 products one after the other (a random 0-510 ms apart) and measures,
//!    for each, the time from sending the create to the first search that finds it (polling
//!    every 5 ms): p50, p99.
//! 3. Search latency: the queries round-robin at 50 requests/s for 20 s through the API (an open
//!    loop: a slow answer does not delay the next request): p50, p99.
//!
//! `cargo bench -p panthera-catalog --bench search` with the test services' variables
//! (`source /tmp/panthera-test/env.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::Catalog;
use panthera_catalog::model::ProductQuery;
use panthera_catalog::store;
use panthera_kit::Page;
use serde::Deserialize;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

const LAG_SAMPLES: usize = 100;
const RATE_PER_SECOND: u64 = 50;
const LOAD_SECONDS: u64 = 20;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BenchProduct {
    sku: String,
    name: String,
    description: String,
    category: String,
    price_cents: i64,
    stock_available: i32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BenchQuery {
    kind: String,
    q: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    min_price_cents: Option<i64>,
    #[serde(default)]
    max_price_cents: Option<i64>,
    #[serde(default)]
    in_stock: Option<bool>,
    expected: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[derive(Default, Clone, Copy)]
struct Score {
    queries: usize,
    rank1: usize,
    top5: usize,
}

impl Score {
    fn add(&mut self, expected: &[String], hits: &[String]) {
        self.queries += 1;
        if hits.first().is_some_and(|h| expected.contains(h)) {
            self.rank1 += 1;
        }
        if hits.iter().take(5).any(|h| expected.contains(h)) {
            self.top5 += 1;
        }
    }
}

#[tokio::main]
async fn main() {
    let Some(catalog) = Catalog::start("catalog_bench").await else {
        return;
    };
    catalog.wait_for_alias().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench");
    let products: Vec<BenchProduct> =
        serde_json::from_slice(&std::fs::read(root.join("products.json")).unwrap()).unwrap();
    let queries: Vec<BenchQuery> =
        serde_json::from_slice(&std::fs::read(root.join("queries.json")).unwrap()).unwrap();

    // Load through the API: outbox, Kafka, indexer.
    let started = Instant::now();
    let mut categories: BTreeMap<String, String> = BTreeMap::new();
    let mut skus: BTreeMap<String, String> = BTreeMap::new();
    for product in &products {
        if !categories.contains_key(&product.category) {
            let id = catalog.category(&product.category).await;
            categories.insert(product.category.clone(), id);
        }
        let id = catalog
            .product(json!({"sku": product.sku, "name": product.name,
                "description": product.description, "priceCents": product.price_cents,
                "stockAvailable": product.stock_available,
                "categoryId": categories[&product.category]}))
            .await;
        skus.insert(id, product.sku.clone());
    }
    let total = products.len();
    catalog
        .eventually("limit=1", |body| body["meta"]["total"] == json!(total))
        .await;
    println!(
        "loaded {total} products and {} categories through the API and the indexer in {:.1} s",
        categories.len(),
        started.elapsed().as_secs_f64()
    );

    // PostgreSQL full-text search as the catalog runs it without OpenSearch.
    let options = PgConnectOptions::from_str(&catalog.db.url())
        .unwrap()
        .options([("search_path", "catalog")]);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();

    let mut scores: BTreeMap<(String, &str), Score> = BTreeMap::new();
    let mut misses = Vec::new();
    for query in &queries {
        let category = query.category.as_ref().map(|slug| categories[slug].clone());
        let mut target = format!("q={}&limit=5", urlencode(&query.q));
        if let Some(id) = &category {
            target.push_str(&format!("&categoryId={id}"));
        }
        if let Some(min) = query.min_price_cents {
            target.push_str(&format!("&minPriceCents={min}"));
        }
        if let Some(max) = query.max_price_cents {
            target.push_str(&format!("&maxPriceCents={max}"));
        }
        if query.in_stock == Some(true) {
            target.push_str("&inStock=true");
        }
        let opensearch: Vec<String> = catalog
            .search_ids(&target)
            .await
            .expect("OpenSearch answered")
            .into_iter()
            .map(|id| skus[&id].clone())
            .collect();
        let filters = ProductQuery {
            q: Some(query.q.clone()),
            category_id: category.map(|id| Uuid::parse_str(&id).unwrap()),
            min_price_cents: query.min_price_cents,
            max_price_cents: query.max_price_cents,
            in_stock: query.in_stock,
            limit: None,
            offset: None,
        };
        let page = Page::new(Some(5), Some(0)).unwrap();
        let (found, _) = store::search_products(&pool, &filters, page).await.unwrap();
        let postgres: Vec<String> = found.into_iter().map(|p| p.sku).collect();
        for (backend, hits) in [("opensearch", &opensearch), ("postgres", &postgres)] {
            scores
                .entry((query.kind.clone(), backend))
                .or_default()
                .add(&query.expected, hits);
            scores
                .entry(("all".to_owned(), backend))
                .or_default()
                .add(&query.expected, hits);
        }
        if !opensearch
            .first()
            .is_some_and(|h| query.expected.contains(h))
        {
            misses.push(format!(
                "  {} {:?}: expected {:?}, OpenSearch gave {:?}",
                query.kind, query.q, query.expected, opensearch
            ));
        }
    }
    println!(
        "\nsearch quality: {} queries, hits at rank 1 / in the top 5",
        queries.len()
    );
    println!(
        "| kind | queries | OpenSearch @1 | OpenSearch top 5 | PostgreSQL FTS @1 | PostgreSQL FTS top 5 |"
    );
    println!("|---|---|---|---|---|---|");
    let kinds: Vec<String> = {
        let mut kinds: Vec<String> = scores.keys().map(|(k, _)| k.clone()).collect();
        kinds.dedup();
        kinds.retain(|k| k != "all");
        kinds.push("all".to_owned());
        kinds
    };
    for kind in kinds {
        let os = scores[&(kind.clone(), "opensearch")];
        let pg = scores[&(kind.clone(), "postgres")];
        println!(
            "| {kind} | {} | {} | {} | {} | {} |",
            os.queries, os.rank1, os.top5, pg.rank1, pg.top5
        );
    }
    if !misses.is_empty() {
        println!("OpenSearch misses at rank 1:\n{}", misses.join("\n"));
    }

    // Index lag: write -> findable.
    let mut lags = Vec::with_capacity(LAG_SAMPLES);
    for n in 0..LAG_SAMPLES {
        let token = format!(
            "lagprobe{n:03}x{}",
            &Uuid::new_v4().simple().to_string()[..6]
        );
        // A random pause first: writes sent right after the previous probe was found would all
        // start just after a refresh and wait a whole refresh interval.
        let jitter = u64::from(Uuid::new_v4().as_bytes()[0]) * 2;
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        let sent = Instant::now();
        let id = catalog
            .product(
                json!({"sku": format!("LAG-{n}-{token}"), "name": format!("Probe {token}"),
                "priceCents": 100}),
            )
            .await;
        loop {
            if catalog
                .search_ids(&format!("q={token}"))
                .await
                .is_some_and(|found| found.contains(&id))
            {
                break;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(30),
                "{token} never became findable"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lags.push(sent.elapsed());
    }
    lags.sort();
    println!(
        "\nindex lag over {LAG_SAMPLES} products (create request sent -> first search finding it, polled every 5 ms): p50 {}, p99 {}, max {}",
        ms(percentile(&lags, 0.50)),
        ms(percentile(&lags, 0.99)),
        ms(*lags.last().unwrap())
    );

    // Search latency at a fixed rate.
    let targets: Vec<String> = queries
        .iter()
        .map(|q| format!("/v1/products?q={}", urlencode(&q.q)))
        .collect();
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / RATE_PER_SECOND));
    let mut tasks = Vec::new();
    for n in 0..(RATE_PER_SECOND * LOAD_SECONDS) {
        ticker.tick().await;
        let url = format!("{}{}", catalog.base, targets[n as usize % targets.len()]);
        let http = catalog.http.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = http.get(url).send().await.unwrap();
            let ok = response.status().is_success()
                && response
                    .headers()
                    .get("x-search-backend")
                    .map(|v| v.as_bytes())
                    == Some(b"opensearch".as_slice());
            let _ = response.bytes().await;
            (sent.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (latency, ok) = task.await.unwrap();
        latencies.push(latency);
        if !ok {
            failed += 1;
        }
    }
    latencies.sort();
    println!(
        "search latency at {RATE_PER_SECOND} req/s for {LOAD_SECONDS} s ({} requests, {failed} not answered by OpenSearch): p50 {}, p99 {}, max {}",
        latencies.len(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
    );
    pool.close().await;
    catalog.finish().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
