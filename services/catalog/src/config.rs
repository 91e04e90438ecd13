//! Command line flags and the environment variables of `docs/contracts.md`.

use panthera_kit::Secret;
use panthera_kit::config::CommonConfig;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "panthera-catalog", version, about = "Panthera catalog API")]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Redis URL (`redis://:pass@host:port/0`); without it reads go straight to PostgreSQL.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// Prefix of every cache key, so several services can share one Redis.
    #[arg(long, env = "CACHE_KEY_PREFIX", default_value = "catalog:")]
    pub cache_key_prefix: String,

    /// Seconds a cached product or search result lives (writes invalidate earlier).
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value_t = 60)]
    pub cache_ttl_seconds: u64,

    /// Topic with the orders service's events, consumed to release or commit reserved stock;
    /// defaults to the first of `KAFKA_TOPICS`, then `orders`.
    #[arg(long, env = "ORDER_EVENTS_TOPIC")]
    pub order_events_topic: Option<String>,
}

impl Config {
    pub fn order_events_topic(&self) -> String {
        self.order_events_topic
            .clone()
            .filter(|topic| !topic.trim().is_empty())
            .or_else(|| self.common.topics().into_iter().next())
            .unwrap_or_else(|| "orders".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn topic(args: &[&str]) -> String {
        let mut all = vec![
            "panthera-catalog",
            "--database-url",
            "postgres://db/catalog",
        ];
        all.extend_from_slice(args);
        Config::try_parse_from(all).unwrap().order_events_topic()
    }

    #[test]
    fn order_events_topic_follows_the_rendered_topics() {
        assert_eq!(topic(&[]), "orders");
        assert_eq!(
            topic(&["--kafka-topics", "shop-orders,other"]),
            "shop-orders"
        );
        assert_eq!(
            topic(&["--kafka-topics", "x", "--order-events-topic", "y"]),
            "y"
        );
    }
}
