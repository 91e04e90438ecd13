//! Settings every service reads, with the environment variable names the renderer injects
//! (`docs/contracts.md`). Each service flattens [`CommonConfig`] into its own clap parser.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::secret::Secret;

/// Log output format; the renderer always sets `LOG_FORMAT=json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CommonConfig {
    /// Port of the HTTP listener (API, `/metrics`, `/healthz`, `/readyz`).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,

    /// Address to bind the HTTP listener to.
    #[arg(long, env = "BIND_ADDRESS", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub bind_address: IpAddr,

    /// Name reported in logs and metrics; defaults to the binary's service name.
    #[arg(long, env = "SERVICE_NAME")]
    pub service_name: Option<String>,

    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// PostgreSQL URL, `postgres://user:pass@host:port/db`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,

    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// Kafka bootstrap servers, `host:port,host:port`; events are disabled when empty.
    #[arg(long, env = "KAFKA_BROKERS", value_delimiter = ',')]
    pub kafka_brokers: Vec<String>,

    /// Topics this service works with; the first one is where it publishes its own events.
    #[arg(long, env = "KAFKA_TOPICS", value_delimiter = ',')]
    pub kafka_topics: Vec<String>,

    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,

    /// Largest accepted request body.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Requests taking longer than this are answered with 408.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 15)]
    pub request_timeout_seconds: u64,
}

impl CommonConfig {
    pub fn listen_address(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.port)
    }

    pub fn service_name_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.service_name.as_deref().unwrap_or(default)
    }

    /// Broker list with empty entries removed (an empty env var gives one empty entry).
    pub fn brokers(&self) -> Vec<String> {
        clean_list(&self.kafka_brokers)
    }

    /// Topic list with empty entries removed.
    pub fn topics(&self) -> Vec<String> {
        clean_list(&self.kafka_topics)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

fn clean_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonConfig,
    }

    #[test]
    fn parses_flags_and_cleans_lists() {
        let cli = Cli::try_parse_from([
            "svc",
            "--database-url",
            "postgres://u:p@h/db",
            "--kafka-brokers",
            "a:9092, b:9092,",
            "--port",
            "9000",
        ])
        .unwrap();
        assert_eq!(cli.common.port, 9000);
        assert_eq!(cli.common.brokers(), vec!["a:9092", "b:9092"]);
        assert!(cli.common.topics().is_empty());
        assert!(!format!("{:?}", cli.common).contains("u:p"));
    }

    #[test]
    fn database_url_is_required() {
        assert!(
            Cli::try_parse_from(["svc"]).is_err() || std::env::var_os("DATABASE_URL").is_some()
        );
    }
}
