//! Command line flags and the environment variables of `docs/contracts.md`.

use std::path::PathBuf;

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

    /// Topic the catalog publishes its product events to (`product.created`, `product.changed`,
    /// `product.stock_changed`, `product.deleted`), through the outbox; the search indexer reads
    /// it back.
    #[arg(long, env = "PRODUCT_EVENTS_TOPIC", default_value = "products")]
    pub product_events_topic: String,

    #[command(flatten)]
    pub search: SearchConfig,

    #[command(flatten)]
    pub images: ImageConfig,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the binary does; without a subcommand it serves the API.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Rebuild the search index from PostgreSQL into a new index and swap the alias to it, without
    /// downtime (after a restore, a mapping change, or a lost index); a Kubernetes Job. Reads the
    /// same environment as the service; flags go before the subcommand.
    Reindex,
}

/// The OpenSearch cluster that answers product searches; without `SEARCH_ENDPOINT`, PostgreSQL's
/// full-text search does.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchConfig {
    /// `http(s)://host:port` of OpenSearch; empty or unset: search with PostgreSQL.
    #[arg(long, env = "SEARCH_ENDPOINT")]
    pub search_endpoint: Option<String>,

    /// Basic-auth user of OpenSearch (optional).
    #[arg(long, env = "SEARCH_USERNAME")]
    pub search_username: Option<String>,

    #[arg(long, env = "SEARCH_PASSWORD", hide_env_values = true)]
    pub search_password: Option<Secret>,

    /// PEM bundle of the CAs that sign OpenSearch's certificate; the public web PKI roots when
    /// unset.
    #[arg(long, env = "SEARCH_CA_FILE", value_parser = any_path)]
    pub search_ca_file: Option<PathBuf>,

    /// The alias searches and the indexer use; the index behind it is `{alias}-v{N}-{millis}`.
    #[arg(long, env = "SEARCH_INDEX", default_value = "products")]
    pub search_index: String,

    /// Timeout of a search request; past it the catalog answers from PostgreSQL.
    #[arg(long, env = "SEARCH_TIMEOUT_MS", default_value_t = 2000)]
    pub search_timeout_ms: u64,
}

impl SearchConfig {
    /// The endpoint, when search through OpenSearch is wired (an empty variable counts as unset,
    /// as a Secret key mapped to an empty value would give).
    pub fn endpoint(&self) -> Option<&str> {
        self.search_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }

    pub fn username(&self) -> Option<&str> {
        self.search_username.as_deref().filter(|u| !u.is_empty())
    }

    pub fn password(&self) -> Option<&Secret> {
        self.search_password
            .as_ref()
            .filter(|p| !p.expose().is_empty())
    }

    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.search_ca_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }
}

/// The bucket of product images; without `S3_BUCKET`, products have no images (the upload and
/// attach routes answer 503). Empty variables count as unset, as a Secret key mapped to an empty
/// value would give.
#[derive(Debug, Clone, clap::Args)]
pub struct ImageConfig {
    /// The bucket that holds product images (`products/{id}/{uuid}`); unset: no images.
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// `http(s)://host:port` of an S3-compatible server (MinIO, versitygw); unset: AWS's
    /// regional endpoint.
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// The bucket's region; unset: `AWS_REGION` (or `AWS_DEFAULT_REGION`, or the AWS profile's).
    #[arg(long, env = "S3_REGION")]
    pub s3_region: Option<String>,

    /// A static access key (with `S3_SECRET_ACCESS_KEY`); unset: the standard AWS credentials
    /// chain (environment, web identity as with IRSA, container and instance roles). It shows in
    /// every upload form (`x-amz-credential`), as in any presigned request.
    #[arg(long, env = "S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,

    #[arg(long, env = "S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<Secret>,

    /// Address the bucket in the path (`endpoint/bucket/key`) rather than the host name
    /// (`bucket.endpoint/key`): what S3-compatible servers on a plain host and port need.
    #[arg(long, env = "S3_FORCE_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set)]
    pub s3_force_path_style: bool,

    /// Base URL of a CDN in front of the bucket: product reads then give
    /// `{IMAGE_CDN_URL}/{key}` rather than a presigned GET URL.
    #[arg(long, env = "IMAGE_CDN_URL")]
    pub image_cdn_url: Option<String>,

    /// Largest image accepted, in bytes (S3 refuses bigger uploads).
    #[arg(long, env = "IMAGE_MAX_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub image_max_bytes: u64,
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

impl ImageConfig {
    pub fn bucket(&self) -> Option<&str> {
        non_empty(self.s3_bucket.as_deref())
    }

    pub fn endpoint(&self) -> Option<&str> {
        non_empty(self.s3_endpoint.as_deref())
    }

    pub fn region(&self) -> Option<&str> {
        non_empty(self.s3_region.as_deref())
    }

    pub fn access_key_id(&self) -> Option<&str> {
        non_empty(self.s3_access_key_id.as_deref())
    }

    pub fn secret_access_key(&self) -> Option<&Secret> {
        self.s3_secret_access_key
            .as_ref()
            .filter(|s| !s.expose().is_empty())
    }

    pub fn cdn_url(&self) -> Option<&str> {
        non_empty(self.image_cdn_url.as_deref())
    }
}

/// A path, empty allowed (clap's own parser refuses ""): an empty variable counts as unset.
fn any_path(value: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(value))
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

    #[test]
    fn search_is_off_without_an_endpoint_and_reindex_is_a_subcommand() {
        let base = [
            "panthera-catalog",
            "--database-url",
            "postgres://db/catalog",
        ];
        let config = Config::try_parse_from(base).unwrap();
        assert_eq!(config.search.endpoint(), None);
        assert_eq!(config.search.search_index, "products");
        assert_eq!(config.product_events_topic, "products");
        assert!(config.command.is_none());

        let mut args = base.to_vec();
        args.extend([
            "--search-endpoint",
            " ",
            "--search-password",
            "hunter2",
            "reindex",
        ]);
        let config = Config::try_parse_from(args).unwrap();
        assert_eq!(config.search.endpoint(), None);
        assert!(matches!(config.command, Some(Command::Reindex)));
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn images_are_off_without_a_bucket_and_the_secret_key_stays_hidden() {
        let base = [
            "panthera-catalog",
            "--database-url",
            "postgres://db/catalog",
        ];
        let config = Config::try_parse_from(base).unwrap();
        assert_eq!(config.images.bucket(), None);
        assert_eq!(config.images.image_max_bytes, 5 * 1024 * 1024);
        assert!(!config.images.s3_force_path_style);

        let mut args = base.to_vec();
        args.extend([
            "--s3-bucket",
            "shop-images",
            "--s3-endpoint",
            " ",
            "--s3-secret-access-key",
            "hunter2",
            "--s3-force-path-style",
            "true",
            "--image-max-bytes",
            "1024",
        ]);
        let config = Config::try_parse_from(args).unwrap();
        assert_eq!(config.images.bucket(), Some("shop-images"));
        assert_eq!(config.images.endpoint(), None);
        assert!(config.images.s3_force_path_style);
        assert_eq!(config.images.image_max_bytes, 1024);
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
