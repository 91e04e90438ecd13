//! The seed's User Management API: users (`/v1/users`) and token issuing (`/v1/auth/token`).
//!
//! Lists use the seed envelope `{"data": [...], "meta": {"limit", "offset", "total"}}`; errors are
//! `application/problem+json`. The gateway authenticates callers with the JWTs this service issues.

pub mod admin;
pub mod app;
pub mod config;
pub mod events;
pub mod model;
pub mod openapi;
pub mod password;
pub mod routes;
pub mod store;
pub mod token;

pub use app::{AppState, build_app, run};
pub use config::Config;
