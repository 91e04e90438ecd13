//! Resources and request bodies of the catalog API, and their validation rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use panthera_kit::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_RESERVATION_ITEMS: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCategory {
    pub name: String,
    /// Lower-case letters, digits and dashes; unique.
    pub slug: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stock {
    /// Units that can be ordered now.
    pub available: i32,
    /// Units held by orders that have not shipped or been cancelled.
    pub reserved: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category_id: Option<Uuid>,
    /// Price in the currency's minor unit.
    pub price_cents: i64,
    /// ISO 4217 code.
    pub currency: String,
    pub stock: Stock,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The image's object key in the bucket (`products/{id}/{uuid}`); null without an image.
    /// `default`: cached products and product events written before images existed lack it.
    #[serde(default)]
    pub image_key: Option<String>,
    /// Where to download the image: `{IMAGE_CDN_URL}/{imageKey}`, or a presigned GET URL valid
    /// for at least an hour; null without an image (and when the catalog has no bucket). Made at
    /// each read, so it is null in cached products and product events.
    #[serde(default)]
    pub image_url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateProduct {
    pub sku: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub category_id: Option<Uuid>,
    pub price_cents: i64,
    /// Defaults to `USD`.
    #[serde(default)]
    pub currency: Option<String>,
    /// Initial available stock, default 0.
    #[serde(default)]
    pub stock_available: Option<i32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateProduct {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category_id: Option<Uuid>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetStock {
    /// New number of available units (reserved units are not affected).
    pub available: i32,
}

/// `POST /v1/products/{id}/image-uploads`: ask for a form to upload an image with.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateImageUpload {
    /// `image/jpeg`, `image/png` or `image/webp`; the upload must declare exactly this type.
    pub content_type: String,
}

/// A presigned POST: send `fields` and then the file (as the form field `file`, last) as
/// `multipart/form-data` to `url` before `expiresAt`. The storage refuses a body larger than
/// `maxBytes` (400 `EntityTooLarge`), another Content-Type or key (403), and a late upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpload {
    pub url: String,
    /// `key`, `Content-Type`, `policy`, `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
    /// `x-amz-signature`, and `x-amz-security-token` with temporary credentials.
    pub fields: BTreeMap<String, String>,
    /// The object the upload creates; attach it with `PUT /v1/products/{id}/image`.
    pub key: String,
    pub expires_at: DateTime<Utc>,
    pub max_bytes: u64,
}

/// `PUT /v1/products/{id}/image`: attach an uploaded image.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachImage {
    /// The `key` of an upload issued for this product.
    pub key: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Full-text search over name, SKU and description (web search syntax: words, "phrases", -not).
    pub q: Option<String>,
    pub category_id: Option<Uuid>,
    pub min_price_cents: Option<i64>,
    pub max_price_cents: Option<i64>,
    /// Only products with available stock.
    pub in_stock: Option<bool>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationItem {
    pub product_id: Uuid,
    pub quantity: i32,
}

/// `POST /v1/reservations`: hold stock for an order. Idempotent per `orderId`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateReservation {
    pub order_id: Uuid,
    pub items: Vec<ReservationItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservedItem {
    pub product_id: Uuid,
    pub quantity: i32,
    /// Price at reservation time, in minor units.
    pub unit_price_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub order_id: Uuid,
    /// `reserved`, `committed` or `released`.
    pub state: String,
    pub items: Vec<ReservedItem>,
}

fn text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    } else if trimmed.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    trimmed.to_owned()
}

fn currency(value: &str, errors: &mut Vec<FieldError>) -> String {
    let code = value.trim().to_ascii_uppercase();
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
        errors.push(FieldError::new(
            "currency",
            "must be a three-letter ISO 4217 code",
        ));
    }
    code
}

fn price(value: i64, errors: &mut Vec<FieldError>) {
    if value < 0 {
        errors.push(FieldError::new("priceCents", "must not be negative"));
    }
}

fn done<T>(value: T, errors: Vec<FieldError>) -> Result<T, Vec<FieldError>> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors)
    }
}

impl CreateCategory {
    pub fn validate(self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = text("name", &self.name, 100, &mut errors);
        let slug = self.slug.trim().to_owned();
        let slug_ok = !slug.is_empty()
            && slug.len() <= 100
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !slug_ok {
            errors.push(FieldError::new(
                "slug",
                "must be 1 to 100 lower-case letters, digits or dashes",
            ));
        }
        done(Self { name, slug }, errors)
    }
}

impl CreateProduct {
    pub fn validate(self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let sku = text("sku", &self.sku, 64, &mut errors);
        let name = text("name", &self.name, 200, &mut errors);
        let description = self.description.unwrap_or_default().trim().to_owned();
        if description.chars().count() > 5000 {
            errors.push(FieldError::new(
                "description",
                "must be at most 5000 characters",
            ));
        }
        price(self.price_cents, &mut errors);
        let currency = currency(self.currency.as_deref().unwrap_or("USD"), &mut errors);
        let stock = self.stock_available.unwrap_or(0);
        if stock < 0 {
            errors.push(FieldError::new("stockAvailable", "must not be negative"));
        }
        done(
            Self {
                sku,
                name,
                description: Some(description),
                category_id: self.category_id,
                price_cents: self.price_cents,
                currency: Some(currency),
                stock_available: Some(stock),
            },
            errors,
        )
    }
}

impl UpdateProduct {
    pub fn validate(self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = self.name.map(|n| text("name", &n, 200, &mut errors));
        let description = self.description.map(|d| d.trim().to_owned());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 5000)
        {
            errors.push(FieldError::new(
                "description",
                "must be at most 5000 characters",
            ));
        }
        if let Some(value) = self.price_cents {
            price(value, &mut errors);
        }
        let currency = self.currency.map(|c| currency(&c, &mut errors));
        let empty = name.is_none()
            && description.is_none()
            && self.category_id.is_none()
            && self.price_cents.is_none()
            && currency.is_none();
        if empty {
            errors.push(FieldError::new("body", "must change at least one field"));
        }
        done(
            Self {
                name,
                description,
                category_id: self.category_id,
                price_cents: self.price_cents,
                currency,
            },
            errors,
        )
    }
}

impl CreateImageUpload {
    /// The content type, lower-cased, when it is one of `allowed`.
    pub fn validate(self, allowed: &[&str]) -> Result<String, Vec<FieldError>> {
        let content_type = self.content_type.trim().to_ascii_lowercase();
        if allowed.contains(&content_type.as_str()) {
            Ok(content_type)
        } else {
            Err(vec![FieldError::new(
                "contentType",
                format!("must be one of {}", allowed.join(", ")),
            )])
        }
    }
}

impl ProductQuery {
    /// Checks the filters and drops an empty `q`.
    pub fn validate(mut self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        self.q = self
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if self
            .q
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
        {
            errors.push(FieldError::new(
                "q",
                format!("must be at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        if let (Some(min), Some(max)) = (self.min_price_cents, self.max_price_cents)
            && min > max
        {
            errors.push(FieldError::new(
                "minPriceCents",
                "must not exceed maxPriceCents",
            ));
        }
        done(self, errors)
    }
}

impl CreateReservation {
    /// Rejects empty, oversized or repeated item lists and non-positive quantities.
    pub fn validate(self) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.items.is_empty() {
            errors.push(FieldError::new("items", "must contain at least one item"));
        }
        if self.items.len() > MAX_RESERVATION_ITEMS {
            errors.push(FieldError::new(
                "items",
                format!("must contain at most {MAX_RESERVATION_ITEMS} items"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, item) in self.items.iter().enumerate() {
            if item.quantity <= 0 {
                errors.push(FieldError::new(
                    format!("items[{index}].quantity"),
                    "must be positive",
                ));
            }
            if !seen.insert(item.product_id) {
                errors.push(FieldError::new(
                    format!("items[{index}].productId"),
                    "is listed twice",
                ));
            }
        }
        done(self, errors)
    }
}

/// Hits per category among the products matching `q`, the stock filter and the price filter
/// (not the category filter, so the other categories' counts show).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryFacet {
    pub id: Uuid,
    pub count: i64,
}

/// Hits in a price bucket among the products matching `q`, the stock filter and the category
/// filter (not the price filter). `from` is inclusive, `to` exclusive; null is unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceRangeFacet {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Facets {
    /// The largest 50 categories, the largest first.
    pub categories: Vec<CategoryFacet>,
    /// Fixed buckets: below 10.00, 10.00-25.00, 25.00-50.00, 50.00-100.00, 100.00-250.00, above.
    pub price_ranges: Vec<PriceRangeFacet>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductPageMeta {
    /// Page size used for this response.
    pub limit: i64,
    /// Number of items skipped.
    pub offset: i64,
    /// Number of items matching the filters, over all pages.
    pub total: i64,
    /// Counts by category and price range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
}

/// The list envelope of the seed (`data`, `meta.limit/offset/total`) with the facets in `meta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProductPage {
    pub data: Vec<Product>,
    pub meta: ProductPageMeta,
}

impl ProductPage {
    pub fn new(data: Vec<Product>, page: panthera_kit::Page, total: i64, facets: Facets) -> Self {
        Self {
            data,
            meta: ProductPageMeta {
                limit: page.limit,
                offset: page.offset,
                total,
                facets: Some(facets),
            },
        }
    }
}
