//! Shared runtime of Panthera's services.
//!
//! Every service binary is `config -> telemetry -> database (+ migrations) -> router -> serve`, and this
//! crate holds the parts they share so the three services behave the same way in a cluster: the same
//! environment variables (see `docs/contracts.md`), the same JSON logs, the same `/metrics`, `/healthz`
//! and `/readyz`, the same `application/problem+json` errors and the same list envelope.

pub mod app;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod health;
pub mod identity;
pub mod inbox;
pub mod kafka;
pub mod metrics;
pub mod outbox;
pub mod pagination;
pub mod secret;
pub mod server;
pub mod spans;
pub mod telemetry;
pub mod testing;

pub use error::{ApiError, FieldError, ResultExt};
pub use extract::{ApiJson, ApiPath, ApiQuery};
pub use identity::Caller;
pub use pagination::{Page, PageMeta, Paginated};
pub use secret::Secret;
