//! The seed's orders: creation with an idempotency key and stock reserved at the catalog, the
//! `pending -> paid -> shipped | cancelled` state machine, and `order.created` /
//! `order.status_changed` events published through a transactional outbox.

pub mod app;
pub mod catalog;
pub mod config;
pub mod events;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod status;
pub mod store;

pub use app::{AppState, build_app, run};
pub use config::Config;
