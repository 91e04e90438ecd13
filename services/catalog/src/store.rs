//! SQL for categories and products. Every value is a bind parameter.

use chrono::{DateTime, Utc};
use panthera_kit::Page;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::events::{CategoryRef, ProductEvent};
use crate::model::{
    Category, CategoryFacet, CreateCategory, CreateProduct, Facets, PriceRangeFacet, Product,
    ProductQuery, Stock, UpdateProduct,
};
use crate::search::query::PRICE_RANGES;

pub const PRODUCT_COLUMNS: &str = "id, sku, name, description, category_id, price_cents, currency, \
     stock_available, stock_reserved, created_at, updated_at, image_key";
const CATEGORY_COLUMNS: &str = "id, name, slug, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct ProductRow {
    id: Uuid,
    sku: String,
    name: String,
    description: String,
    category_id: Option<Uuid>,
    price_cents: i64,
    currency: String,
    stock_available: i32,
    stock_reserved: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    image_key: Option<String>,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        Product {
            id: row.id,
            sku: row.sku,
            name: row.name,
            description: row.description,
            category_id: row.category_id,
            price_cents: row.price_cents,
            currency: row.currency,
            stock: Stock {
                available: row.stock_available,
                reserved: row.stock_reserved,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
            image_key: row.image_key,
            // A URL is made per read (routes), never stored.
            image_url: None,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CategoryRow {
    id: Uuid,
    name: String,
    slug: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<CategoryRow> for Category {
    fn from(row: CategoryRow) -> Self {
        Category {
            id: row.id,
            name: row.name,
            slug: row.slug,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub async fn insert_category(
    pool: &PgPool,
    category: &CreateCategory,
) -> Result<Category, sqlx::Error> {
    let row: CategoryRow = sqlx::query_as(&format!(
        "INSERT INTO categories (id, name, slug) VALUES ($1, $2, $3) RETURNING {CATEGORY_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(&category.name)
    .bind(&category.slug)
    .fetch_one(pool)
    .await?;
    Ok(row.into())
}

pub async fn get_category(pool: &PgPool, id: Uuid) -> Result<Option<Category>, sqlx::Error> {
    let row: Option<CategoryRow> = sqlx::query_as(&format!(
        "SELECT {CATEGORY_COLUMNS} FROM categories WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Category::from))
}

pub async fn list_categories(
    pool: &PgPool,
    page: Page,
) -> Result<(Vec<Category>, i64), sqlx::Error> {
    let rows: Vec<CategoryRow> = sqlx::query_as(&format!(
        "SELECT {CATEGORY_COLUMNS} FROM categories ORDER BY name, id LIMIT $1 OFFSET $2"
    ))
    .bind(page.limit)
    .bind(page.offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM categories")
        .fetch_one(pool)
        .await?;
    Ok((rows.into_iter().map(Category::from).collect(), total))
}

pub async fn insert_product(
    conn: &mut PgConnection,
    product: &CreateProduct,
) -> Result<Product, sqlx::Error> {
    let row: ProductRow = sqlx::query_as(&format!(
        "INSERT INTO products (id, sku, name, description, category_id, price_cents, currency, stock_available) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(&product.sku)
    .bind(&product.name)
    .bind(product.description.as_deref().unwrap_or_default())
    .bind(product.category_id)
    .bind(product.price_cents)
    .bind(product.currency.as_deref().unwrap_or("USD"))
    .bind(product.stock_available.unwrap_or(0))
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

pub async fn get_product(pool: &PgPool, id: Uuid) -> Result<Option<Product>, sqlx::Error> {
    let row: Option<ProductRow> = sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Product::from))
}

const SEARCH_FILTER: &str = "($1::text IS NULL OR search @@ websearch_to_tsquery('english', $1)) \
     AND ($2::uuid IS NULL OR category_id = $2) \
     AND ($3::bigint IS NULL OR price_cents >= $3) \
     AND ($4::bigint IS NULL OR price_cents <= $4) \
     AND ($5::bool IS NOT TRUE OR stock_available > 0)";

/// Matching products, best text match first (creation order without `q`), and their count.
pub async fn search_products(
    pool: &PgPool,
    query: &ProductQuery,
    page: Page,
) -> Result<(Vec<Product>, i64), sqlx::Error> {
    let rows: Vec<ProductRow> = sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE {SEARCH_FILTER} \
         ORDER BY CASE WHEN $1::text IS NULL THEN 0 \
                  ELSE ts_rank(search, websearch_to_tsquery('english', $1)) END DESC, \
                  created_at, id \
         LIMIT $6 OFFSET $7"
    ))
    .bind(query.q.as_deref())
    .bind(query.category_id)
    .bind(query.min_price_cents)
    .bind(query.max_price_cents)
    .bind(query.in_stock)
    .bind(page.limit)
    .bind(page.offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM products WHERE {SEARCH_FILTER}"
    ))
    .bind(query.q.as_deref())
    .bind(query.category_id)
    .bind(query.min_price_cents)
    .bind(query.max_price_cents)
    .bind(query.in_stock)
    .fetch_one(pool)
    .await?;
    Ok((rows.into_iter().map(Product::from).collect(), total))
}

/// The facets of a search: hits per category (without the category filter) and per price bucket
/// (without the price filter), as the search index computes them.
pub async fn search_facets(pool: &PgPool, query: &ProductQuery) -> Result<Facets, sqlx::Error> {
    let categories: Vec<(Uuid, i64)> = sqlx::query_as(&format!(
        "SELECT category_id, count(*) FROM products WHERE {SEARCH_FILTER} \
         AND category_id IS NOT NULL GROUP BY category_id ORDER BY count(*) DESC, category_id \
         LIMIT 50"
    ))
    .bind(query.q.as_deref())
    .bind(None::<Uuid>)
    .bind(query.min_price_cents)
    .bind(query.max_price_cents)
    .bind(query.in_stock)
    .fetch_all(pool)
    .await?;
    // One pass counting every bucket; the bounds are constants, not input.
    let counts: Vec<String> = PRICE_RANGES
        .iter()
        .map(|(from, to)| {
            let from = from.map_or("true".to_owned(), |f| format!("price_cents >= {f}"));
            let to = to.map_or("true".to_owned(), |t| format!("price_cents < {t}"));
            format!("count(*) FILTER (WHERE {from} AND {to})")
        })
        .collect();
    let row = sqlx::query(&format!(
        "SELECT {} FROM products WHERE {SEARCH_FILTER}",
        counts.join(", ")
    ))
    .bind(query.q.as_deref())
    .bind(query.category_id)
    .bind(None::<i64>)
    .bind(None::<i64>)
    .bind(query.in_stock)
    .fetch_one(pool)
    .await?;
    let mut price_ranges = Vec::with_capacity(PRICE_RANGES.len());
    for (index, (from, to)) in PRICE_RANGES.into_iter().enumerate() {
        let count: i64 = sqlx::Row::try_get(&row, index)?;
        price_ranges.push(PriceRangeFacet { from, to, count });
    }
    Ok(Facets {
        categories: categories
            .into_iter()
            .map(|(id, count)| CategoryFacet { id, count })
            .collect(),
        price_ranges,
    })
}

pub async fn update_product(
    conn: &mut PgConnection,
    id: Uuid,
    changes: &UpdateProduct,
) -> Result<Option<Product>, sqlx::Error> {
    let row: Option<ProductRow> = sqlx::query_as(&format!(
        "UPDATE products SET \
             name = COALESCE($2, name), \
             description = COALESCE($3, description), \
             category_id = COALESCE($4, category_id), \
             price_cents = COALESCE($5, price_cents), \
             currency = COALESCE($6, currency), \
             updated_at = now(), version = version + 1 \
         WHERE id = $1 RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(id)
    .bind(changes.name.as_deref())
    .bind(changes.description.as_deref())
    .bind(changes.category_id)
    .bind(changes.price_cents)
    .bind(changes.currency.as_deref())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Product::from))
}

/// Sets the available units and records the change.
pub async fn set_stock(
    conn: &mut PgConnection,
    id: Uuid,
    available: i32,
) -> Result<Option<Product>, sqlx::Error> {
    let before: Option<i32> =
        sqlx::query_scalar("SELECT stock_available FROM products WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(before) = before else {
        return Ok(None);
    };
    let row: ProductRow = sqlx::query_as(&format!(
        "UPDATE products SET stock_available = $2, updated_at = now(), version = version + 1 \
         WHERE id = $1 RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(id)
    .bind(available)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO stock_movements (product_id, delta_available, delta_reserved, reason) VALUES ($1, $2, 0, 'adjustment')",
    )
    .bind(id)
    .bind(available - before)
    .execute(&mut *conn)
    .await?;
    Ok(Some(row.into()))
}

pub async fn product_exists(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM products WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
}

/// Sets (or with `None` clears) the product's image key. Returns the product and whether it
/// changed (the version is bumped only then); `None` for an unknown product.
pub async fn set_image(
    conn: &mut PgConnection,
    id: Uuid,
    key: Option<&str>,
) -> Result<Option<(Product, bool)>, sqlx::Error> {
    let changed: Option<ProductRow> = sqlx::query_as(&format!(
        "UPDATE products SET image_key = $2, updated_at = now(), version = version + 1 \
         WHERE id = $1 AND image_key IS DISTINCT FROM $2 RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = changed {
        return Ok(Some((row.into(), true)));
    }
    // Unknown, or already so: nothing to record.
    let row: Option<ProductRow> = sqlx::query_as(&format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|row| (row.into(), false)))
}

/// Deletes a product that no reservation refers to and returns its last version; `Err` with a
/// foreign-key violation when reservations refer to it.
pub async fn delete_product(conn: &mut PgConnection, id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM products WHERE id = $1 RETURNING version")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The product columns, qualified, with its version and its category's slug and name.
const EVENT_COLUMNS: &str = "p.id, p.sku, p.name, p.description, p.category_id, p.price_cents, \
     p.currency, p.stock_available, p.stock_reserved, p.created_at, p.updated_at, p.image_key, \
     p.version, c.slug AS category_slug, c.name AS category_name";

#[derive(sqlx::FromRow)]
struct EventRow {
    #[sqlx(flatten)]
    product: ProductRow,
    version: i64,
    category_slug: Option<String>,
    category_name: Option<String>,
}

impl From<EventRow> for ProductEvent {
    fn from(row: EventRow) -> Self {
        let product = Product::from(row.product);
        let category = match (product.category_id, row.category_slug, row.category_name) {
            (Some(id), Some(slug), Some(name)) => Some(CategoryRef { id, slug, name }),
            _ => None,
        };
        ProductEvent {
            product_id: product.id,
            version: row.version,
            product: Some(product),
            category,
        }
    }
}

/// What a product event carries about the product, as it is now.
pub async fn product_event(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ProductEvent>, sqlx::Error> {
    let row: Option<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM products p LEFT JOIN categories c ON c.id = p.category_id \
         WHERE p.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(ProductEvent::from))
}

/// Up to `limit` products with an id above `after`, by id: the pages a rebuild of the search
/// index reads (keyset pagination, so each page is one cheap index range scan).
pub async fn product_events_after(
    pool: &PgPool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ProductEvent>, sqlx::Error> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM products p LEFT JOIN categories c ON c.id = p.category_id \
         WHERE $1::uuid IS NULL OR p.id > $1 ORDER BY p.id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(ProductEvent::from).collect())
}

pub fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}
