//! Kafka connectivity through rskafka: client, topic creation, partition handles, readiness, and
//! the transport security of the connection (TLS, SASL/SCRAM).
//!
//! Panthera's topics have one partition: every event of a topic is totally ordered, which is what
//! the outbox relay and the consumers rely on. Producing and consuming address partition 0.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rskafka::BackoffConfig;
use rskafka::client::error::{Error as RsKafkaError, ProtocolError};
use rskafka::client::partition::{PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::secret::Secret;

/// Header carrying the event's UUID; consumers deduplicate on it.
pub const EVENT_ID_HEADER: &str = "event-id";
/// Header carrying the event's type, e.g. `order.created`.
pub const EVENT_TYPE_HEADER: &str = "event-type";
/// The single partition of Panthera's topics.
pub const PARTITION: i32 = 0;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("connecting to Kafka brokers {brokers:?}")]
    Connect {
        brokers: Vec<String>,
        #[source]
        source: RsKafkaError,
    },
    #[error("creating Kafka topic {topic}")]
    CreateTopic {
        topic: String,
        #[source]
        source: RsKafkaError,
    },
    #[error("opening partition {PARTITION} of Kafka topic {topic}")]
    Partition {
        topic: String,
        #[source]
        source: RsKafkaError,
    },
}

pub type Result<T, E = KafkaError> = std::result::Result<T, E>;

/// How the connection to the brokers is protected, with the names of Kafka's `security.protocol`
/// (what MSK and every Kafka client document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SecurityProtocol {
    #[default]
    #[value(name = "PLAINTEXT")]
    Plaintext,
    /// TLS, no client authentication.
    #[value(name = "SSL")]
    Ssl,
    /// SASL authentication over plain TCP: the SCRAM exchange never reveals the password, but
    /// the records travel in clear.
    #[value(name = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL authentication inside TLS (MSK's SCRAM listener, port 9096).
    #[value(name = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// The SASL mechanisms offered: SCRAM only, because PLAIN hands the password to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// The one MSK supports.
    #[default]
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

/// SASL/SCRAM login of a service.
#[derive(Debug, Clone)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(
        "KAFKA_SECURITY_PROTOCOL {protocol:?} authenticates with SASL: KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must both be set"
    )]
    MissingCredentials { protocol: SecurityProtocol },
    #[error(
        "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD are set but KAFKA_SECURITY_PROTOCOL {protocol:?} does not use SASL (SASL_SSL or SASL_PLAINTEXT)"
    )]
    CredentialsWithoutSasl { protocol: SecurityProtocol },
    #[error(
        "KAFKA_CA_FILE is set but KAFKA_SECURITY_PROTOCOL {protocol:?} does not use TLS (SSL or SASL_SSL)"
    )]
    CaFileWithoutTls { protocol: SecurityProtocol },
    #[error("reading the Kafka CA bundle {}", path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the Kafka CA bundle {} holds no certificate", path.display())]
    NoCertificates { path: PathBuf },
    #[error("a certificate of the Kafka CA bundle {} is not a usable CA", path.display())]
    BadCertificate {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("setting up TLS for Kafka")]
    Tls(#[source] rustls::Error),
}

/// TLS and SASL settings of a Kafka connection, checked and loaded once at start (a missing CA
/// file stops the service there rather than at every reconnection).
#[derive(Clone, Default)]
pub struct Security {
    protocol: SecurityProtocol,
    tls: Option<Arc<rustls::ClientConfig>>,
    sasl: Option<SaslConfig>,
    username: Option<String>,
}

impl fmt::Debug for Security {
    // By hand: rskafka's `Credentials` derive `Debug` with the password in it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Security")
            .field("protocol", &self.protocol)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Security {
    /// Plain TCP, no authentication: the in-cluster broker.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// `ca_file` holds the PEM certificates of the CAs that sign the brokers' certificates; without
    /// it the public web PKI roots are trusted (enough for MSK, whose certificates chain to Amazon
    /// Trust Services). The broker's certificate must name the host of every broker address, as
    /// given in the bootstrap list and as the brokers advertise themselves.
    pub fn new(
        protocol: SecurityProtocol,
        ca_file: Option<&Path>,
        credentials: Option<SaslCredentials>,
    ) -> Result<Self, SecurityError> {
        let sasl = match (protocol.uses_sasl(), credentials) {
            (true, Some(credentials))
                if !credentials.username.is_empty()
                    && !credentials.password.expose().is_empty() =>
            {
                Some(credentials)
            }
            (true, _) => return Err(SecurityError::MissingCredentials { protocol }),
            (false, Some(_)) => return Err(SecurityError::CredentialsWithoutSasl { protocol }),
            (false, None) => None,
        };
        let tls = match (protocol.uses_tls(), ca_file) {
            (true, ca_file) => Some(Arc::new(tls_config(ca_file)?)),
            (false, Some(_)) => return Err(SecurityError::CaFileWithoutTls { protocol }),
            (false, None) => None,
        };
        let username = sasl.as_ref().map(|c| c.username.clone());
        let sasl = sasl.map(|c| {
            let login = Credentials::new(c.username, c.password.expose().to_owned());
            match c.mechanism {
                SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(login),
                SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(login),
            }
        });
        Ok(Self {
            protocol,
            tls,
            sasl,
            username,
        })
    }

    pub fn protocol(&self) -> SecurityProtocol {
        self.protocol
    }
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, SecurityError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let wrap = |source| SecurityError::CaFile {
                path: path.to_owned(),
                source,
            };
            for certificate in CertificateDer::pem_file_iter(path).map_err(wrap)? {
                roots.add(certificate.map_err(wrap)?).map_err(|source| {
                    SecurityError::BadCertificate {
                        path: path.to_owned(),
                        source,
                    }
                })?;
            }
            if roots.is_empty() {
                return Err(SecurityError::NoCertificates {
                    path: path.to_owned(),
                });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    // The provider is named rather than taken from the process default, so the config does not
    // depend on which crate installed a default first (or panic when none did).
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(SecurityError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn backoff() -> BackoffConfig {
    // rskafka retries forever by default; a bounded deadline turns an unreachable broker into an
    // error the caller can log and retry on its own schedule.
    BackoffConfig {
        init_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        base: 2.0,
        deadline: Some(Duration::from_secs(10)),
    }
}

/// The rskafka builder [`connect_with`] uses: its backoff, TLS and SASL.
pub fn client_builder(brokers: &[String], client_id: &str, security: &Security) -> ClientBuilder {
    let mut builder = ClientBuilder::new(brokers.to_vec())
        .client_id(client_id.to_owned())
        .backoff_config(backoff());
    if let Some(tls) = &security.tls {
        builder = builder.tls_config(Arc::clone(tls));
    }
    if let Some(sasl) = &security.sasl {
        builder = builder.sasl_config(sasl.clone());
    }
    builder
}

/// Connects over plain TCP without authentication.
pub async fn connect(brokers: &[String], client_id: &str) -> Result<Arc<Client>> {
    connect_with(brokers, client_id, &Security::plaintext()).await
}

pub async fn connect_with(
    brokers: &[String],
    client_id: &str,
    security: &Security,
) -> Result<Arc<Client>> {
    client_builder(brokers, client_id, security)
        .build()
        .await
        .map(Arc::new)
        .map_err(|source| KafkaError::Connect {
            brokers: brokers.to_vec(),
            source,
        })
}

/// Creates the topic with one partition unless it exists.
pub async fn ensure_topic(client: &Client, topic: &str) -> Result<()> {
    let wrap = |source| KafkaError::CreateTopic {
        topic: topic.to_owned(),
        source,
    };
    let controller = client.controller_client().map_err(wrap)?;
    match controller.create_topic(topic, 1, 1, 5_000).await {
        Ok(()) => Ok(()),
        Err(RsKafkaError::ServerError {
            protocol_error: ProtocolError::TopicAlreadyExists,
            ..
        }) => Ok(()),
        Err(source) => Err(wrap(source)),
    }
}

pub async fn partition(client: &Client, topic: &str) -> Result<PartitionClient> {
    client
        .partition_client(topic.to_owned(), PARTITION, UnknownTopicHandling::Retry)
        .await
        .map_err(|source| KafkaError::Partition {
            topic: topic.to_owned(),
            source,
        })
}

/// Adds a `kafka` readiness check (a metadata request to the brokers).
pub fn readiness(
    readiness: crate::health::Readiness,
    client: Arc<Client>,
) -> crate::health::Readiness {
    readiness.with_check("kafka", move || {
        let client = Arc::clone(&client);
        Box::pin(async move {
            client
                .list_topics()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    })
}

/// The Kafka client once connected. Services start serving HTTP without waiting for the broker
/// (so liveness probes pass), connect in the background and report `kafka` unready until then.
pub type SharedClient = Arc<std::sync::OnceLock<Arc<Client>>>;

/// Connects with retries until it succeeds or `shutdown` is cancelled, then runs `then`.
pub fn connect_in_background<F, Fut>(
    brokers: Vec<String>,
    security: Security,
    client_id: String,
    shutdown: tokio_util::sync::CancellationToken,
    then: F,
) -> SharedClient
where
    F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let shared: SharedClient = Arc::default();
    let cell = Arc::clone(&shared);
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(500);
        let client = loop {
            let attempt = tokio::select! {
                () = shutdown.cancelled() => return,
                attempt = connect_with(&brokers, &client_id, &security) => attempt,
            };
            match attempt {
                Ok(client) => break client,
                Err(error) => {
                    tracing::warn!(error = %crate::outbox::error_chain(&error), ?delay, "Kafka not reachable yet; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        };
        tracing::info!(?brokers, protocol = ?security.protocol(), "connected to Kafka");
        let _ = cell.set(Arc::clone(&client));
        then(client).await;
    });
    shared
}

/// Adds a `kafka` readiness check on a client that may not be connected yet.
pub fn readiness_shared(
    readiness: crate::health::Readiness,
    shared: SharedClient,
) -> crate::health::Readiness {
    readiness.with_check("kafka", move || {
        let client = shared.get().cloned();
        Box::pin(async move {
            match client {
                Some(client) => client
                    .list_topics()
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => Err("not connected yet".to_owned()),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA certificate (its key was thrown away), to load as a bundle.
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBrzCCAVWgAwIBAgIUFJlEh5yfgXPpZv5k4P186yo7yB4wCgYIKoZIzj0EAwIw
JDEiMCAGA1UEAwwZcGFudGhlcmEta2l0LXVuaXQtdGVzdC1jYTAgFw0yNjEyMDIx
MzU1NDRaGA8yMTI2MTEwODEzNTU0NFowJDEiMCAGA1UEAwwZcGFudGhlcmEta2l0
LXVuaXQtdGVzdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABARvu2G2rvrF
vW9nz6V6UjENPmmucRdERMJOrBLJDIQYQmnaJoR/3Ai9TgmtTHtSg7hf4olsXcIk
Ht0uihUfhu2jYzBhMB0GA1UdDgQWBBSYMrsYELJohMFaH24pFgZUkJLY+DAfBgNV
HSMEGDAWgBSYMrsYELJohMFaH24pFgZUkJLY+DAPBgNVHRMBAf8EBTADAQH/MA4G
A1UdDwEB/wQEAwIBBjAKBggqhkjOPQQDAgNIADBFAiEAnmUVPy9qOXlXLfNq0TVb
NDdscaFBHhD9g1Nrrb+zK5kCIC2Xh3JEdIFfEJJA3lbydhwF+8391RJJ+OqPfOqR
yLkK
-----END CERTIFICATE-----\n";

    fn write_temp(contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("kit-kafka-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn login() -> Option<SaslCredentials> {
        Some(SaslCredentials {
            mechanism: SaslMechanism::ScramSha512,
            username: "svc".to_owned(),
            password: Secret::new("hunter2"),
        })
    }

    #[test]
    fn sasl_ssl_loads_the_ca_bundle_and_keeps_the_password_out_of_debug() {
        let ca = write_temp(&format!("{CA_PEM}{CA_PEM}"));
        let security = Security::new(SecurityProtocol::SaslSsl, Some(&ca), login()).unwrap();
        std::fs::remove_file(&ca).unwrap();
        assert!(security.tls.is_some());
        assert!(matches!(security.sasl, Some(SaslConfig::ScramSha512(_))));
        let debug = format!("{security:?}");
        assert!(
            debug.contains("svc") && !debug.contains("hunter2"),
            "{debug}"
        );
    }

    #[test]
    fn tls_without_a_ca_file_trusts_the_public_roots() {
        let security = Security::new(SecurityProtocol::Ssl, None, None).unwrap();
        assert!(security.tls.is_some() && security.sasl.is_none());
        let plaintext = Security::plaintext();
        assert!(plaintext.tls.is_none() && plaintext.sasl.is_none());
    }

    #[test]
    fn inconsistent_settings_are_refused() {
        for protocol in [SecurityProtocol::SaslSsl, SecurityProtocol::SaslPlaintext] {
            assert!(matches!(
                Security::new(protocol, None, None),
                Err(SecurityError::MissingCredentials { .. })
            ));
            let mut empty_password = login();
            if let Some(c) = empty_password.as_mut() {
                c.password = Secret::new("");
            }
            assert!(matches!(
                Security::new(protocol, None, empty_password),
                Err(SecurityError::MissingCredentials { .. })
            ));
        }
        assert!(matches!(
            Security::new(SecurityProtocol::Ssl, None, login()),
            Err(SecurityError::CredentialsWithoutSasl { .. })
        ));
        let ca = write_temp(CA_PEM);
        assert!(matches!(
            Security::new(SecurityProtocol::Plaintext, Some(&ca), None),
            Err(SecurityError::CaFileWithoutTls { .. })
        ));
        std::fs::remove_file(&ca).unwrap();
    }

    #[test]
    fn a_missing_or_empty_ca_bundle_is_an_error() {
        let missing = std::env::temp_dir().join("kit-kafka-no-such-ca.pem");
        assert!(matches!(
            Security::new(SecurityProtocol::Ssl, Some(&missing), None),
            Err(SecurityError::CaFile { .. })
        ));
        let empty = write_temp("not a certificate\n");
        assert!(matches!(
            Security::new(SecurityProtocol::Ssl, Some(&empty), None),
            Err(SecurityError::NoCertificates { .. })
        ));
        std::fs::remove_file(&empty).unwrap();
    }
}
