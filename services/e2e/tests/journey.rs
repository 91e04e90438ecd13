//! The shop's journey (`panthera_e2e::order_journey`) through the real binaries on loopback: the
//! same scenario the real-node tier runs through the gateway's Service (`tests/real_pods.rs` of
//! the root crate).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Shop};
use panthera_e2e::{Admin, order_journey};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_orders_and_the_catalog_settles_the_shipped_order_from_kafka() {
    let Some(shop) = Shop::start().await else {
        return;
    };
    let admin = Admin {
        email: ADMIN_EMAIL,
        password: ADMIN_PASSWORD,
    };
    let journey = order_journey(&shop.gateway, &admin, "loopback").await;
    // The journey's effects are in the shared database, each service in its own schema.
    let rows = shop.rows().await;
    let order = rows["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == journey.order_id.as_str())
        .unwrap();
    assert_eq!(order["status"], "shipped");
    for exchange in shop.gateway.exchanges() {
        eprintln!("{exchange}");
    }
    shop.finish().await;
}
