//! Command line flags and the environment variables of `docs/contracts.md`.

use panthera_kit::config::CommonConfig;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "panthera-orders", version, about = "Panthera orders API")]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Base URL of the catalog service, e.g. `http://shop-catalog:8080`; without it orders cannot
    /// be created (503).
    #[arg(long, env = "CATALOG_URL")]
    pub catalog_url: Option<String>,

    /// Timeout of one call to the catalog.
    #[arg(long, env = "CATALOG_TIMEOUT_MS", default_value_t = 3000)]
    pub catalog_timeout_ms: u64,
}
