//! The seed's catalog: categories, products with PostgreSQL full-text search, stock levels, stock
//! reservations for orders, and the consumer of order events that releases or commits them.
//! Reads of products go through a Redis cache that writes invalidate.

pub mod app;
pub mod cache;
pub mod config;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod stock;
pub mod stock_consumer;
pub mod store;

pub use app::{AppState, build_app, run};
pub use config::Config;
