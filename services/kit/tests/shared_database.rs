//! Two services in one database, as `examples/shop.yaml` puts catalog and orders: each keeps its
//! tables and its migration ledger in a schema of its own. With one ledger in `public`, the
//! second service to start refused to run ("migration 1 was previously applied but has been
//! modified") and crash-looped on a real cluster.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use panthera_kit::Secret;
use panthera_kit::db::{self, SchemaName};
use panthera_kit::testing::TestDatabase;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// A service's migrations: its own table, plus an `outbox` as users and orders both have.
fn migrator(table: &str) -> Migrator {
    let sql = format!(
        "CREATE TABLE {table} (id INT PRIMARY KEY); CREATE TABLE outbox (position BIGSERIAL PRIMARY KEY)"
    );
    Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("init"),
            MigrationType::Simple,
            Cow::Owned(sql),
            false,
        )]),
        ..Migrator::DEFAULT
    }
}

fn schema(name: &str) -> SchemaName {
    name.parse().unwrap()
}

/// Schemas that hold a table of that name.
async fn schemas_with(db: &TestDatabase, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_schema::text FROM information_schema.tables WHERE table_name = $1 ORDER BY 1",
    )
    .bind(table)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn two_services_share_a_database_each_in_its_own_schema() {
    let db = TestDatabase::create("shared").await.unwrap().unwrap();
    let url = Secret::new(db.url());
    let (catalog, orders) = (migrator("products"), migrator("orders"));

    // Two replicas of one service start together, then the other service.
    let catalog_schema = schema("catalog");
    let (first, second) = tokio::join!(
        db::open(&url, 2, &catalog_schema, &catalog),
        db::open(&url, 2, &catalog_schema, &catalog),
    );
    let (catalog_pool, catalog_schema) = first.unwrap();
    assert_eq!(second.unwrap().1, schema("catalog"));
    let (orders_pool, orders_schema) = db::open(&url, 2, &schema("orders"), &orders).await.unwrap();
    assert_eq!(
        (catalog_schema, orders_schema),
        (schema("catalog"), schema("orders"))
    );

    assert_eq!(schemas_with(&db, "products").await, ["catalog"]);
    assert_eq!(schemas_with(&db, "orders").await, ["orders"]);
    assert_eq!(schemas_with(&db, "outbox").await, ["catalog", "orders"]);
    assert_eq!(
        schemas_with(&db, "_sqlx_migrations").await,
        ["catalog", "orders"]
    );
    // Each pool sees its own tables without qualifying them.
    sqlx::query("INSERT INTO products VALUES (1)")
        .execute(&catalog_pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO orders VALUES (1)")
        .execute(&orders_pool)
        .await
        .unwrap();
    assert!(
        sqlx::query("SELECT * FROM orders")
            .execute(&catalog_pool)
            .await
            .is_err(),
        "a service does not see another's tables unqualified"
    );

    // A restart migrates nothing and keeps the rows.
    let (again, _) = db::open(&url, 1, &schema("catalog"), &catalog)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&again)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    for pool in [catalog_pool, orders_pool, again] {
        pool.close().await;
    }
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn a_database_laid_out_before_schemas_stays_in_public() {
    let db = TestDatabase::create("legacy").await.unwrap().unwrap();
    let url = Secret::new(db.url());
    let (catalog, orders) = (migrator("products"), migrator("orders"));
    // What an earlier version did: the catalog's migrations straight into `public`.
    catalog.run(&db.pool).await.unwrap();
    sqlx::query("INSERT INTO products VALUES (7)")
        .execute(&db.pool)
        .await
        .unwrap();

    let (catalog_pool, catalog_schema) = db::open(&url, 1, &schema("catalog"), &catalog)
        .await
        .unwrap();
    assert_eq!(
        catalog_schema,
        SchemaName::public(),
        "the data stays where it is"
    );
    let kept: i64 = sqlx::query_scalar("SELECT id FROM products")
        .fetch_one(&catalog_pool)
        .await
        .map(|id: i32| i64::from(id))
        .unwrap();
    assert_eq!(kept, 7);
    // The other service's first migration differs: it gets a schema of its own.
    let (orders_pool, orders_schema) = db::open(&url, 1, &schema("orders"), &orders).await.unwrap();
    assert_eq!(orders_schema, schema("orders"));
    assert_eq!(schemas_with(&db, "outbox").await, ["orders", "public"]);
    catalog_pool.close().await;
    orders_pool.close().await;
    db.drop_database().await.unwrap();
}

#[test]
fn schema_names_are_checked() {
    for good in ["users", "shop-catalog", "_x", "a1"] {
        assert_eq!(schema(good).as_str(), good);
    }
    for bad in [
        "",
        "Users",
        "1a",
        "pg_catalog",
        "a\"b",
        "a b",
        &"x".repeat(64),
    ] {
        let error = bad.parse::<SchemaName>().unwrap_err();
        assert!(error.contains("not a schema name"), "{bad:?}: {error}");
    }
}
