//! The `_search` request behind `GET /v1/products` and the reading of its answer.
//!
//! Relevance: the words of `q` match the name (boosted 3x) and the description, stemmed, and as
//! written with fuzziness `AUTO` (one typo from 3 letters, two from 6); the whole of `q` matches
//! the SKU exactly (any case, boosted far above the rest), and the name's `search_as_you_type`
//! field matches `q` as a prefix (the last word may be unfinished). Filters: stock in `query`, category and price in
//! `post_filter`, so that each facet counts the hits of the other filters: the category facet
//! shows the other categories' counts for the same text and price.

use panthera_kit::Page;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::document::Document;
use crate::model::{CategoryFacet, Facets, PriceRangeFacet, Product, ProductQuery};

/// Price buckets of the facet, in minor units: `from` inclusive, `to` exclusive.
pub const PRICE_RANGES: [(Option<i64>, Option<i64>); 6] = [
    (None, Some(1_000)),
    (Some(1_000), Some(2_500)),
    (Some(2_500), Some(5_000)),
    (Some(5_000), Some(10_000)),
    (Some(10_000), Some(25_000)),
    (Some(25_000), None),
];

/// Categories listed in the facet, the largest first.
const MAX_CATEGORY_FACETS: usize = 50;

/// The text part of the query.
fn text_query(q: &str) -> Value {
    json!({"bool": {
        "should": [
            // The words, stemmed (english): "keyboards" finds "keyboard"; any word counts.
            {"multi_match": {
                "query": q,
                "fields": ["name^3", "description"],
                "type": "best_fields",
            }},
            // The words as written, with typos forgiven; most words must match.
            {"multi_match": {
                "query": q,
                "fields": ["name.plain^3", "description.plain"],
                "type": "best_fields",
                "fuzziness": "AUTO",
                "prefix_length": 1,
                "minimum_should_match": "2<75%",
            }},
            {"term": {"sku": {"value": q, "boost": 50.0}}},
            // As typed: the last word may be unfinished.
            {"multi_match": {
                "query": q,
                "type": "bool_prefix",
                "fields": ["name.prefix", "name.prefix._2gram", "name.prefix._3gram"],
                "minimum_should_match": "2<75%",
                "boost": 2.0,
            }},
        ],
        "minimum_should_match": 1,
    }})
}

fn category_filter(query: &ProductQuery) -> Option<Value> {
    query
        .category_id
        .map(|id| json!({"term": {"category_id": id}}))
}

fn price_filter(query: &ProductQuery) -> Option<Value> {
    if query.min_price_cents.is_none() && query.max_price_cents.is_none() {
        return None;
    }
    let mut range = serde_json::Map::new();
    if let Some(min) = query.min_price_cents {
        range.insert("gte".to_owned(), json!(min));
    }
    if let Some(max) = query.max_price_cents {
        range.insert("lte".to_owned(), json!(max));
    }
    Some(json!({"range": {"price_cents": range}}))
}

fn all_of(filters: impl IntoIterator<Item = Option<Value>>) -> Value {
    let filters: Vec<Value> = filters.into_iter().flatten().collect();
    json!({"bool": {"filter": filters}})
}

/// The `_search` body for `query` (validated) and `page`.
pub fn search_body(query: &ProductQuery, page: Page) -> Value {
    let mut filters = vec![json!({"term": {"deleted": false}})];
    if query.in_stock == Some(true) {
        filters.push(json!({"term": {"in_stock": true}}));
    }
    let must = match &query.q {
        Some(q) => text_query(q),
        None => json!({"match_all": {}}),
    };
    // Without text every hit scores the same: the order is the PostgreSQL one (creation).
    let sort = if query.q.is_some() {
        json!(["_score", {"created_at": "asc"}, {"id": "asc"}])
    } else {
        json!([{"created_at": "asc"}, {"id": "asc"}])
    };
    let ranges: Vec<Value> = PRICE_RANGES
        .iter()
        .map(|(from, to)| {
            let mut range = serde_json::Map::new();
            if let Some(from) = from {
                range.insert("from".to_owned(), json!(from));
            }
            if let Some(to) = to {
                range.insert("to".to_owned(), json!(to));
            }
            Value::Object(range)
        })
        .collect();
    json!({
        "from": page.offset,
        "size": page.limit,
        "track_total_hits": true,
        "query": {"bool": {"must": [must], "filter": filters}},
        "post_filter": all_of([category_filter(query), price_filter(query)]),
        "sort": sort,
        "aggs": {
            "categories": {
                "filter": all_of([price_filter(query)]),
                "aggs": {"ids": {"terms": {"field": "category_id", "size": MAX_CATEGORY_FACETS}}},
            },
            "price_ranges": {
                "filter": all_of([category_filter(query)]),
                "aggs": {"ranges": {"range": {"field": "price_cents", "ranges": ranges}}},
            },
        },
    })
}

#[derive(Deserialize)]
struct Answer {
    hits: Hits,
    #[serde(default)]
    aggregations: Option<Aggregations>,
}

#[derive(Deserialize)]
struct Hits {
    total: Total,
    hits: Vec<Hit>,
}

#[derive(Deserialize)]
struct Total {
    value: i64,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(rename = "_source")]
    source: Document,
}

#[derive(Deserialize)]
struct Aggregations {
    categories: CategoriesAgg,
    price_ranges: PriceRangesAgg,
}

#[derive(Deserialize)]
struct CategoriesAgg {
    ids: Buckets<CategoryBucket>,
}

#[derive(Deserialize)]
struct PriceRangesAgg {
    ranges: Buckets<RangeBucket>,
}

#[derive(Deserialize)]
struct Buckets<B> {
    buckets: Vec<B>,
}

#[derive(Deserialize)]
struct CategoryBucket {
    key: Uuid,
    doc_count: i64,
}

#[derive(Deserialize)]
struct RangeBucket {
    #[serde(default)]
    from: Option<f64>,
    #[serde(default)]
    to: Option<f64>,
    doc_count: i64,
}

/// The products, their total and the facets of a `_search` answer.
pub fn read_answer(body: Value) -> Result<(Vec<Product>, i64, Facets), serde_json::Error> {
    let answer: Answer = serde_json::from_value(body)?;
    let products = answer
        .hits
        .hits
        .into_iter()
        .filter_map(|hit| hit.source.into_product())
        .collect();
    let facets = answer
        .aggregations
        .map(|aggs| Facets {
            categories: aggs
                .categories
                .ids
                .buckets
                .into_iter()
                .map(|b| CategoryFacet {
                    id: b.key,
                    count: b.doc_count,
                })
                .collect(),
            // Bounds come back as doubles; the buckets' own are whole cents.
            #[allow(clippy::cast_possible_truncation)]
            price_ranges: aggs
                .price_ranges
                .ranges
                .buckets
                .into_iter()
                .map(|b| PriceRangeFacet {
                    from: b.from.map(|v| v as i64),
                    to: b.to.map(|v| v as i64),
                    count: b.doc_count,
                })
                .collect(),
        })
        .unwrap_or_default();
    Ok((products, answer.hits.total.value, facets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_split_between_query_and_post_filter() {
        let category = Uuid::new_v4();
        let query = ProductQuery {
            q: Some("keybaord".to_owned()),
            category_id: Some(category),
            min_price_cents: Some(100),
            max_price_cents: None,
            in_stock: Some(true),
            limit: None,
            offset: None,
        };
        let body = search_body(&query, Page::default());
        assert_eq!(body["size"], 20);
        let filters = body["query"]["bool"]["filter"].as_array().unwrap();
        assert!(filters.contains(&json!({"term": {"in_stock": true}})));
        assert!(filters.contains(&json!({"term": {"deleted": false}})));
        let post = body["post_filter"]["bool"]["filter"].as_array().unwrap();
        assert_eq!(post.len(), 2);
        assert_eq!(
            body["aggs"]["categories"]["filter"]["bool"]["filter"],
            json!([{"range": {"price_cents": {"gte": 100}}}])
        );
        assert_eq!(
            body["aggs"]["price_ranges"]["filter"]["bool"]["filter"],
            json!([{"term": {"category_id": category}}])
        );
    }

    #[test]
    fn answers_are_read_with_their_facets() {
        let id = Uuid::new_v4();
        let body = json!({
            "hits": {"total": {"value": 1, "relation": "eq"}, "hits": [
                {"_source": {"id": id, "version": 9, "deleted": true}}
            ]},
            "aggregations": {
                "categories": {"doc_count": 1, "ids": {"buckets": [{"key": id, "doc_count": 1}]}},
                "price_ranges": {"doc_count": 1, "ranges": {"buckets": [
                    {"key": "*-1000.0", "to": 1000.0, "doc_count": 1},
                    {"key": "25000.0-*", "from": 25000.0, "doc_count": 0}
                ]}}
            }
        });
        let (products, total, facets) = read_answer(body).unwrap();
        assert!(products.is_empty(), "a tombstone is never a hit");
        assert_eq!(total, 1);
        assert_eq!(facets.categories, vec![CategoryFacet { id, count: 1 }]);
        assert_eq!(facets.price_ranges[0].to, Some(1000));
        assert_eq!(facets.price_ranges[1].from, Some(25000));
    }
}
