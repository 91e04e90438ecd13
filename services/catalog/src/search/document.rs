//! What the index holds: one document per product, its mapping, and the `_bulk` lines that write
//! product events with external versioning.
//!
//! A deleted product stays as a tombstone (`deleted: true`, no other field) at the delete's
//! version rather than being removed: OpenSearch forgets the version of a removed document after
//! `index.gc_deletes` (60 s), and a late or replayed `product.changed` would then bring the
//! product back. Searches filter tombstones out; a rebuild (`reindex`) drops them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::events::ProductEvent;
use crate::model::{Product, Stock};

/// Bumped when the mapping changes incompatibly; part of the index name (`{alias}-v{N}-...`).
pub const MAPPING_VERSION: u32 = 1;

/// How soon a write becomes searchable. OpenSearch's default is 1 s (and none at all on a shard
/// idle for 30 s, until the next search pays for it); 500 ms halves the wait for a cost that stays
/// small on an index of catalog size: one more small segment per second at most, merged away.
pub const REFRESH_INTERVAL: &str = "500ms";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: Uuid,
    pub version: i64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_available: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock_reserved: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_stock: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_key: Option<String>,
}

impl Document {
    /// The document after `event`: the product, or a tombstone when it carries none (deleted).
    pub fn from_event(event: &ProductEvent) -> Self {
        let mut document = Self {
            id: event.product_id,
            version: event.version,
            deleted: true,
            sku: None,
            name: None,
            description: None,
            category_id: None,
            category_slug: None,
            category_name: None,
            price_cents: None,
            currency: None,
            stock_available: None,
            stock_reserved: None,
            in_stock: None,
            created_at: None,
            updated_at: None,
            image_key: None,
        };
        if let Some(product) = &event.product {
            let category = event.category.as_ref();
            document.deleted = false;
            document.sku = Some(product.sku.clone());
            document.name = Some(product.name.clone());
            document.description = Some(product.description.clone());
            document.category_id = product.category_id;
            document.category_slug = category.map(|c| c.slug.clone());
            document.category_name = category.map(|c| c.name.clone());
            document.price_cents = Some(product.price_cents);
            document.currency = Some(product.currency.clone());
            document.stock_available = Some(product.stock.available);
            document.stock_reserved = Some(product.stock.reserved);
            document.in_stock = Some(product.stock.available > 0);
            document.created_at = Some(product.created_at);
            document.updated_at = Some(product.updated_at);
            document.image_key.clone_from(&product.image_key);
        }
        document
    }

    /// The product as the API shows it; `None` for a tombstone or an incomplete document.
    pub fn into_product(self) -> Option<Product> {
        if self.deleted {
            return None;
        }
        Some(Product {
            id: self.id,
            sku: self.sku?,
            name: self.name?,
            description: self.description.unwrap_or_default(),
            category_id: self.category_id,
            price_cents: self.price_cents?,
            currency: self.currency?,
            stock: Stock {
                available: self.stock_available?,
                reserved: self.stock_reserved.unwrap_or(0),
            },
            created_at: self.created_at?,
            updated_at: self.updated_at?,
            image_key: self.image_key,
            image_url: None,
        })
    }
}

/// `_bulk` lines writing each event's document at the event's version. `version_type=external`
/// applies a write only when its version is above the stored one: replays and late deliveries
/// answer 409 and change nothing, in whatever order they arrive.
pub fn bulk_lines<'a>(events: impl IntoIterator<Item = &'a ProductEvent>) -> String {
    let mut body = String::new();
    for event in events {
        let action = json!({"index": {
            "_id": event.product_id,
            "version": event.version,
            "version_type": "external",
        }});
        body.push_str(&action.to_string());
        body.push('\n');
        body.push_str(&json!(Document::from_event(event)).to_string());
        body.push('\n');
    }
    body
}

/// Settings and mapping of a new index; `refresh_interval` is `-1` while a rebuild loads it.
pub fn index_body(refresh_interval: &str) -> Value {
    let mut body = json!({
        "settings": {
            "index": {
                // A catalog fits one shard; a replica wherever there is a second node.
                "number_of_shards": 1,
                "auto_expand_replicas": "0-1",
                "refresh_interval": refresh_interval,
            },
            "analysis": {
                "normalizer": {
                    "sku": {"type": "custom", "filter": ["lowercase", "asciifolding"]}
                }
            }
        },
        "mappings": {
            // A field the code does not know is a bug, not something to guess a type for.
            "dynamic": "strict",
            "properties": {
                "id": {"type": "keyword"},
                "version": {"type": "long"},
                "deleted": {"type": "boolean"},
                "sku": {"type": "keyword", "normalizer": "sku"},
                "name": {
                    "type": "text",
                    "analyzer": "english",
                    "fields": {
                        // Unstemmed, for fuzzy matching: a typo stems differently ("wireles"
                        // to "wirel"), so typos are measured against the words as written.
                        "plain": {"type": "text", "analyzer": "standard"},
                        "prefix": {"type": "search_as_you_type", "analyzer": "standard"},
                        "keyword": {"type": "keyword", "ignore_above": 256}
                    }
                },
                "description": {
                    "type": "text",
                    "analyzer": "english",
                    "fields": {"plain": {"type": "text", "analyzer": "standard"}}
                },
                "category_id": {"type": "keyword"},
                "category_slug": {"type": "keyword"},
                "category_name": {"type": "keyword"},
                "price_cents": {"type": "long"},
                "currency": {"type": "keyword"},
                "stock_available": {"type": "integer"},
                "stock_reserved": {"type": "integer"},
                "in_stock": {"type": "boolean"},
                "created_at": {"type": "date"},
                "updated_at": {"type": "date"}
            }
        }
    });
    if let Some(properties) = body["mappings"]["properties"].as_object_mut()
        && let Value::Object(added) = added_properties()
    {
        properties.extend(added);
    }
    body
}

/// Fields added to this version of the mapping after indices with it were made. New fields are
/// a compatible change: rather than a new `MAPPING_VERSION` and a rebuild, the catalog adds them
/// to the index behind the alias at start (`PUT _mapping`, a no-op once they are there), before
/// the indexer writes a document that has them (the mapping is strict: without this, every
/// write of such a document would fail and the indexer would retry it forever).
pub fn added_properties() -> Value {
    json!({
        // Handed back with the hit, never searched: kept in `_source` only.
        "image_key": {"type": "keyword", "index": false, "doc_values": false}
    })
}

/// A fresh index name behind `alias`: `{alias}-v{MAPPING_VERSION}-{unix millis}`.
pub fn new_index_name(alias: &str) -> String {
    format!(
        "{alias}-v{MAPPING_VERSION}-{}",
        Utc::now().timestamp_millis()
    )
}

/// Whether `index` is one of the names [`new_index_name`] gives for `alias`.
pub fn is_index_of(alias: &str, index: &str) -> bool {
    index
        .strip_prefix(alias)
        .and_then(|rest| rest.strip_prefix("-v"))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(version, millis)| {
            !version.is_empty()
                && version.chars().all(|c| c.is_ascii_digit())
                && !millis.is_empty()
                && millis.chars().all(|c| c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::CategoryRef;

    fn product() -> Product {
        Product {
            id: Uuid::new_v4(),
            sku: "KB-1".to_owned(),
            name: "Keyboard".to_owned(),
            description: "Mechanical".to_owned(),
            category_id: Some(Uuid::new_v4()),
            price_cents: 4999,
            currency: "EUR".to_owned(),
            stock: Stock {
                available: 0,
                reserved: 2,
            },
            created_at: Utc::now(),
            updated_at: Utc::now(),
            image_key: Some("products/p/i".to_owned()),
            image_url: None,
        }
    }

    #[test]
    fn a_document_gives_the_product_back_and_a_delete_leaves_a_tombstone() {
        let product = product();
        let event = ProductEvent {
            product_id: product.id,
            version: 3,
            category: Some(CategoryRef {
                id: product.category_id.unwrap(),
                slug: "keyboards".to_owned(),
                name: "Keyboards".to_owned(),
            }),
            product: Some(product.clone()),
        };
        let document = Document::from_event(&event);
        assert_eq!(document.in_stock, Some(false));
        assert_eq!(document.category_slug.as_deref(), Some("keyboards"));
        assert_eq!(document.image_key.as_deref(), Some("products/p/i"));
        assert_eq!(document.clone().into_product(), Some(product.clone()));

        let deleted = ProductEvent {
            product_id: product.id,
            version: 4,
            product: None,
            category: None,
        };
        let tombstone = Document::from_event(&deleted);
        assert!(tombstone.deleted);
        assert_eq!(tombstone.into_product(), None);
        let lines = bulk_lines([&event, &deleted]);
        let lines: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2]["index"]["version"], 4);
        assert_eq!(lines[2]["index"]["version_type"], "external");
        assert_eq!(
            lines[3],
            json!({"id": product.id, "version": 4, "deleted": true})
        );
    }

    #[test]
    fn the_mapping_has_every_field_a_document_writes() {
        let body = index_body(REFRESH_INTERVAL);
        let properties = body["mappings"]["properties"].as_object().unwrap();
        let event = ProductEvent {
            product_id: Uuid::new_v4(),
            version: 1,
            product: Some(product()),
            category: Some(CategoryRef {
                id: Uuid::new_v4(),
                slug: "s".to_owned(),
                name: "n".to_owned(),
            }),
        };
        let document = json!(Document::from_event(&event));
        for field in document.as_object().unwrap().keys() {
            assert!(properties.contains_key(field), "{field} is mapped");
        }
        for field in added_properties().as_object().unwrap().keys() {
            assert_eq!(properties[field], added_properties()[field]);
        }
    }

    #[test]
    fn index_names_are_recognised() {
        let name = new_index_name("shop");
        assert!(is_index_of("shop", &name));
        assert!(!is_index_of("sho", &name));
        assert!(!is_index_of("shop", "shop-v1-"));
        assert!(!is_index_of("shop", "shop-other"));
        assert!(!is_index_of("shop", "shop"));
    }
}
