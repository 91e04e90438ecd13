//! Settings every service reads, with the environment variable names the renderer injects
//! (`docs/contracts.md`). Each service flattens [`CommonConfig`] into its own clap parser.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::identity::{IdentityCheck, IdentityConfigError, IdentityVerify};
use crate::kafka::{self, SaslCredentials, SaslMechanism, SecurityProtocol};
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

    /// Schema that holds the service's tables (created when missing), so that services can share
    /// a database; defaults to the service's name.
    #[arg(long, env = "DATABASE_SCHEMA")]
    pub database_schema: Option<crate::db::SchemaName>,

    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// Kafka bootstrap servers, `host:port,host:port`; events are disabled when empty.
    #[arg(long, env = "KAFKA_BROKERS", value_delimiter = ',')]
    pub kafka_brokers: Vec<String>,

    /// Topics this service works with; the first one is where it publishes its own events.
    #[arg(long, env = "KAFKA_TOPICS", value_delimiter = ',')]
    pub kafka_topics: Vec<String>,

    /// How the brokers are reached, as Kafka's `security.protocol`.
    #[arg(
        long,
        env = "KAFKA_SECURITY_PROTOCOL",
        value_enum,
        ignore_case = true,
        default_value_t
    )]
    pub kafka_security_protocol: SecurityProtocol,

    /// PEM bundle of the CAs that sign the brokers' certificates (SSL, SASL_SSL); the public web
    /// PKI roots when unset.
    #[arg(long, env = "KAFKA_CA_FILE", value_parser = any_path)]
    pub kafka_ca_file: Option<PathBuf>,

    /// SASL mechanism (SASL_SSL, SASL_PLAINTEXT).
    #[arg(
        long,
        env = "KAFKA_SASL_MECHANISM",
        value_enum,
        ignore_case = true,
        default_value_t
    )]
    pub kafka_sasl_mechanism: SaslMechanism,

    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,

    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<Secret>,

    /// After SIGTERM, how long the service stays up but unready, so that the Service stops
    /// routing to it before its listener closes (endpoints and kube-proxy take a few seconds).
    #[arg(long, env = "SHUTDOWN_DELAY_SECONDS", default_value_t = 5)]
    pub shutdown_delay_seconds: u64,

    /// Then, how long in-flight requests may take to finish.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,

    /// Largest accepted request body.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Requests taking longer than this are answered with 408.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 15)]
    pub request_timeout_seconds: u64,

    /// Keys the gateway signs caller identities with, comma-separated (the platform's identity
    /// Secret); without them no caller identity is believed.
    #[arg(long, env = "IDENTITY_KEYS", hide_env_values = true)]
    pub identity_keys: Option<Secret>,

    /// `off` believes identity headers without the gateway's signature: local development only.
    #[arg(
        long,
        env = "IDENTITY_VERIFY",
        value_enum,
        ignore_case = true,
        default_value_t
    )]
    pub identity_verify: IdentityVerify,
}

impl CommonConfig {
    pub fn listen_address(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.port)
    }

    pub fn service_name_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.service_name.as_deref().unwrap_or(default)
    }

    /// `DATABASE_SCHEMA`, else the service's name.
    pub fn database_schema_or(&self, default_name: &str) -> Result<crate::db::SchemaName, String> {
        match &self.database_schema {
            Some(schema) => Ok(schema.clone()),
            None => self.service_name_or(default_name).parse(),
        }
    }

    /// Broker list with empty entries removed (an empty env var gives one empty entry).
    pub fn brokers(&self) -> Vec<String> {
        clean_list(&self.kafka_brokers)
    }

    /// The checked Kafka transport settings, with the CA bundle loaded.
    ///
    /// Empty values count as unset: a Secret key the renderer maps to an empty variable must not
    /// turn into an empty password or a CA path of "".
    pub fn kafka_security(&self) -> Result<kafka::Security, kafka::SecurityError> {
        let username = self
            .kafka_sasl_username
            .as_deref()
            .filter(|u| !u.is_empty());
        let password = self
            .kafka_sasl_password
            .as_ref()
            .filter(|p| !p.expose().is_empty());
        let credentials = match (username, password) {
            (None, None) => None,
            (username, password) => Some(SaslCredentials {
                mechanism: self.kafka_sasl_mechanism,
                username: username.unwrap_or_default().to_owned(),
                password: password.cloned().unwrap_or_else(|| Secret::new("")),
            }),
        };
        let ca_file = self
            .kafka_ca_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty());
        kafka::Security::new(self.kafka_security_protocol, ca_file, credentials)
    }

    /// How caller identities are checked (`IDENTITY_KEYS`, `IDENTITY_VERIFY`).
    pub fn identity_check(&self) -> Result<IdentityCheck, IdentityConfigError> {
        IdentityCheck::from_settings(self.identity_keys.as_ref(), self.identity_verify)
    }

    /// Topic list with empty entries removed.
    pub fn topics(&self) -> Vec<String> {
        clean_list(&self.kafka_topics)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }

    /// The SIGTERM sequence: unready for the delay, then the grace for in-flight requests.
    pub fn drain(&self) -> crate::server::Drain {
        crate::server::Drain {
            delay: Duration::from_secs(self.shutdown_delay_seconds),
            grace: self.shutdown_grace(),
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

/// A path, empty allowed (clap's own parser refuses ""): an empty variable counts as unset.
fn any_path(value: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(value))
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
    fn kafka_security_from_flags() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["svc", "--database-url", "postgres://h/db"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).unwrap().common
        };
        let plain = parse(&[]);
        assert_eq!(plain.kafka_security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(
            plain.kafka_security().unwrap().protocol(),
            SecurityProtocol::Plaintext
        );

        // Kafka's own spelling, any case; the password stays out of Debug.
        let sasl = parse(&[
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-mechanism",
            "SCRAM-SHA-256",
            "--kafka-sasl-username",
            "svc",
            "--kafka-sasl-password",
            "hunter2",
        ]);
        assert_eq!(sasl.kafka_security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(sasl.kafka_sasl_mechanism, SaslMechanism::ScramSha256);
        assert_eq!(
            sasl.kafka_security().unwrap().protocol(),
            SecurityProtocol::SaslSsl
        );
        assert!(!format!("{sasl:?}").contains("hunter2"));

        // Empty values (a Secret key mapped to an empty variable) count as unset.
        let empty = parse(&[
            "--kafka-sasl-username",
            "",
            "--kafka-sasl-password",
            "",
            "--kafka-ca-file",
            "",
        ]);
        assert!(empty.kafka_security().is_ok());
        let half = parse(&[
            "--kafka-security-protocol",
            "SASL_SSL",
            "--kafka-sasl-username",
            "svc",
        ]);
        assert!(matches!(
            half.kafka_security(),
            Err(kafka::SecurityError::MissingCredentials { .. })
        ));
        assert!(Cli::try_parse_from(["svc", "--kafka-security-protocol", "TLS"]).is_err());
    }

    #[test]
    fn identity_settings_from_flags() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["svc", "--database-url", "postgres://h/db"];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).unwrap().common
        };
        let key = "flag-test-identity-key-0123456789abcdef";
        let signed = parse(&["--identity-keys", key]);
        assert!(matches!(
            signed.identity_check(),
            Ok(IdentityCheck::Signed(_))
        ));
        assert!(!format!("{signed:?}").contains(key));
        // Verification is on by default: no keys believes nobody.
        assert!(matches!(
            parse(&[]).identity_check(),
            Ok(IdentityCheck::NoKeys)
        ));
        assert!(matches!(
            parse(&["--identity-keys", ""]).identity_check(),
            Ok(IdentityCheck::NoKeys)
        ));
        assert!(matches!(
            parse(&["--identity-verify", "OFF"]).identity_check(),
            Ok(IdentityCheck::Unverified)
        ));
        let short = parse(&["--identity-keys", "short"]).identity_check();
        let message = short.unwrap_err().to_string();
        assert!(message.starts_with("IDENTITY_KEYS"), "{message}");
        assert!(!message.contains("short,"), "{message}");
    }

    #[test]
    fn database_url_is_required() {
        assert!(
            Cli::try_parse_from(["svc"]).is_err() || std::env::var_os("DATABASE_URL").is_some()
        );
    }
}
