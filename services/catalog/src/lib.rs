//! The seed's catalog: categories, products with PostgreSQL full-text search, stock levels, stock
//! reservations for orders, and the consumer of order events that releases or commits them.
//! Reads of products go through a Redis cache that writes invalidate. Every product write records
//! a product event in the outbox ([`events`]); with OpenSearch wired ([`search`]), an indexer
//! follows those events into a search index that answers `GET /v1/products`. With a bucket wired
//! ([`images`]), products have images, uploaded by browsers straight to object storage.

pub mod app;
pub mod cache;
pub mod config;
pub mod events;
pub mod images;
pub mod model;
pub mod openapi;
pub mod routes;
pub mod search;
pub mod stock;
pub mod stock_consumer;
pub mod store;

pub use app::{AppState, build_app, run};
pub use config::Config;
