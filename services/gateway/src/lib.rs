//! Panthera API gateway: the platform's front door.
//!
//! A reverse proxy on hyper/tokio configured by the `gateway.yaml` the renderer writes (see
//! `docs/contracts.md`): path-prefix routing with pooled keep-alive upstream connections,
//! JWT validation (HS256 or JWKS), token-bucket rate limiting (local or shared through Redis),
//! CORS, response caching, Prometheus metrics and JSON access logs.
//!
//! Entry points: [`RunningGateway::start`] (bind and serve a [`GatewayConfig`]) and
//! [`server::run`] (what the binary does: serve, reload on change, drain on SIGTERM).

pub mod auth;
pub mod body;
pub mod cache;
pub mod client_addr;
pub mod config;
pub mod cors;
pub mod forward;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod ratelimit;
mod retry;
pub mod routing;
pub mod server;
pub mod upstream;

pub use config::{ConfigError, GatewayConfig};
pub use proxy::{Environment, Gateway, GatewayOptions};
pub use server::{RunningGateway, ServerError};
