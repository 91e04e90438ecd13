//! A thin OpenSearch client: reqwest (rustls) and serde types for the few endpoints the catalog
//! uses (index and alias administration, `_bulk`, `_search`).
//!
//! Why not the official `opensearch` crate: it brings a second HTTP stack configuration (its own
//! transport, TLS and credential plumbing, optional AWS signing) and takes request bodies as
//! untyped JSON anyway, while the catalog needs eight endpoints, and `reqwest` 0.12 with rustls
//! is already in the workspace (orders, users). Owning the client also keeps every call under
//! the same timeouts, the same basic-auth handling (the password never leaves [`Secret`]) and
//! errors that name the failed action.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use panthera_kit::Secret;
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::Value;

/// Connecting to the node must be quick: a search waiting on it falls back to PostgreSQL.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Administration and bulk writes (index creation waits for the primary shard to start).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Error text kept from an answer: enough for the cause, bounded for logs.
const MAX_REASON_CHARS: usize = 300;

pub type Result<T, E = SearchError> = std::result::Result<T, E>;

/// Why the client could not be built (the catalog does not start).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("SEARCH_ENDPOINT is not an http(s) URL")]
    Endpoint,
    #[error(
        "SEARCH_ENDPOINT carries credentials; give them as SEARCH_USERNAME and SEARCH_PASSWORD"
    )]
    CredentialsInEndpoint,
    #[error(
        "SEARCH_INDEX {0:?} is not a valid alias name (lower-case letters, digits, '.', '_', '-')"
    )]
    Alias(String),
    #[error("reading the OpenSearch CA bundle {}", path.display())]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the OpenSearch CA bundle {} holds no usable CA certificate", path.display())]
    NoCertificates { path: std::path::PathBuf },
    #[error("setting up TLS for OpenSearch")]
    Tls(#[source] rustls::Error),
    #[error("building the OpenSearch HTTP client")]
    Client(#[source] reqwest::Error),
}

/// A failed call; `action` says which (e.g. "searching products in products").
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{action}: OpenSearch did not answer")]
    Transport {
        action: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{action}: OpenSearch answered {status}: {reason}")]
    Status {
        action: String,
        status: u16,
        reason: String,
    },
    #[error("{action}: unexpected answer from OpenSearch")]
    Decode {
        action: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{action}: {failed} of {total} bulk items failed; first: {first}")]
    Bulk {
        action: String,
        failed: usize,
        total: usize,
        first: String,
    },
    #[error("{action}: the alias {alias} does not exist")]
    AliasMissing { action: String, alias: String },
    #[error("search skipped: OpenSearch failed moments ago")]
    CircuitOpen,
}

impl SearchError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Status { status: 404, .. })
    }
}

/// The connection settings of [`SearchClient::new`].
#[derive(Debug, Clone)]
pub struct Connection<'a> {
    pub endpoint: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a Secret>,
    pub ca_file: Option<&'a Path>,
}

#[derive(Clone)]
pub struct SearchClient {
    http: reqwest::Client,
    base: Arc<Url>,
    credentials: Option<(Arc<str>, Secret)>,
}

impl std::fmt::Debug for SearchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchClient")
            .field("endpoint", &self.base.as_str())
            .field(
                "username",
                &self.credentials.as_ref().map(|(user, _)| user.as_ref()),
            )
            .finish_non_exhaustive()
    }
}

/// Per-item outcome of `_bulk`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkSummary {
    pub applied: usize,
    /// Refused because the index holds a newer version: a replayed or late event.
    pub stale: usize,
}

impl SearchClient {
    pub fn new(connection: &Connection<'_>) -> Result<Self, SetupError> {
        let mut base = Url::parse(connection.endpoint).map_err(|_| SetupError::Endpoint)?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(SetupError::Endpoint);
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(SetupError::CredentialsInEndpoint);
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(connection.ca_file)?)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(ADMIN_TIMEOUT)
            .build()
            .map_err(SetupError::Client)?;
        let credentials = connection.username.map(|user| {
            (
                Arc::from(user),
                connection
                    .password
                    .cloned()
                    .unwrap_or_else(|| Secret::new("")),
            )
        });
        Ok(Self {
            http,
            base: Arc::new(base),
            credentials,
        })
    }

    /// The endpoint without credentials, for logs.
    pub fn endpoint(&self) -> &str {
        self.base.as_str()
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        // Paths are built from validated index and alias names only.
        let url = self
            .base
            .join(path)
            .unwrap_or_else(|_| self.base.as_ref().clone());
        let request = self.http.request(method, url);
        match &self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password.expose())),
            None => request,
        }
    }

    async fn send(&self, action: &str, request: RequestBuilder) -> Result<(StatusCode, Value)> {
        let response = request
            .send()
            .await
            .map_err(|source| SearchError::Transport {
                action: action.to_owned(),
                source,
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| SearchError::Transport {
                action: action.to_owned(),
                source,
            })?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|source| SearchError::Decode {
                action: action.to_owned(),
                source,
            })?
        };
        Ok((status, body))
    }

    /// Sends and requires a 2xx answer.
    async fn call(&self, action: &str, request: RequestBuilder) -> Result<Value> {
        let (status, body) = self.send(action, request).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(SearchError::Status {
                action: action.to_owned(),
                status: status.as_u16(),
                reason: reason(&body),
            })
        }
    }

    /// The indices behind `alias`; empty when the alias does not exist.
    pub async fn alias_indices(&self, alias: &str) -> Result<Vec<String>> {
        let action = format!("reading the alias {alias}");
        let (status, body) = self
            .send(
                &action,
                self.request(Method::GET, &format!("_alias/{alias}")),
            )
            .await?;
        match status {
            StatusCode::NOT_FOUND => Ok(Vec::new()),
            status if status.is_success() => Ok(body
                .as_object()
                .map(|indices| indices.keys().cloned().collect())
                .unwrap_or_default()),
            status => Err(SearchError::Status {
                action,
                status: status.as_u16(),
                reason: reason(&body),
            }),
        }
    }

    /// Indices whose names start with `prefix`.
    pub async fn indices_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let body = self
            .call(
                &format!("listing the indices {prefix}*"),
                self.request(Method::GET, &format!("_cat/indices/{prefix}*"))
                    .query(&[("format", "json"), ("h", "index")]),
            )
            .await?;
        Ok(body
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|row| row["index"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub async fn create_index(&self, name: &str, body: &Value) -> Result<()> {
        self.call(
            &format!("creating the index {name}"),
            self.request(Method::PUT, name)
                .query(&[("wait_for_active_shards", "1")])
                .json(body),
        )
        .await
        .map(|_| ())
    }

    /// Deletes the index; one already gone is fine.
    pub async fn delete_index(&self, name: &str) -> Result<()> {
        match self
            .call(
                &format!("deleting the index {name}"),
                self.request(Method::DELETE, name),
            )
            .await
        {
            Err(error) if error.is_not_found() => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// `POST /_aliases`: all `actions` at once, atomically.
    pub async fn update_aliases(&self, action: &str, actions: Value) -> Result<()> {
        self.call(
            action,
            self.request(Method::POST, "_aliases")
                .json(&serde_json::json!({ "actions": actions })),
        )
        .await
        .map(|_| ())
    }

    pub async fn put_settings(&self, index: &str, settings: &Value) -> Result<()> {
        self.call(
            &format!("changing the settings of {index}"),
            self.request(Method::PUT, &format!("{index}/_settings"))
                .json(settings),
        )
        .await
        .map(|_| ())
    }

    /// `PUT {target}/_mapping`: adds fields to the mapping of the index (or the indices behind
    /// the alias) `target`; fields already mapped the same way are accepted as they are.
    pub async fn put_mapping(&self, target: &str, mapping: &Value) -> Result<()> {
        self.call(
            &format!("adding fields to the mapping of {target}"),
            self.request(Method::PUT, &format!("{target}/_mapping"))
                .json(mapping),
        )
        .await
        .map(|_| ())
    }

    pub async fn refresh(&self, index: &str) -> Result<()> {
        self.call(
            &format!("refreshing {index}"),
            self.request(Method::POST, &format!("{index}/_refresh")),
        )
        .await
        .map(|_| ())
    }

    /// `_bulk` of `ndjson` into `target`. With `require_alias`, a missing alias is an error rather
    /// than an index created on the fly with guessed field types.
    pub async fn bulk(
        &self,
        target: &str,
        ndjson: String,
        require_alias: bool,
    ) -> Result<BulkSummary> {
        let action = format!("bulk indexing into {target}");
        let body = self
            .call(
                &action,
                self.request(Method::POST, &format!("{target}/_bulk"))
                    .query(&[(
                        "require_alias",
                        if require_alias { "true" } else { "false" },
                    )])
                    .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                    .body(ndjson),
            )
            .await?;
        let answer: BulkAnswer =
            serde_json::from_value(body).map_err(|source| SearchError::Decode {
                action: action.clone(),
                source,
            })?;
        let mut summary = BulkSummary::default();
        let mut failed = Vec::new();
        for item in answer.items.iter().flat_map(|item| item.values()) {
            match (item.status, &item.error) {
                (200..=299, _) => summary.applied += 1,
                (409, _) => summary.stale += 1,
                (_, Some(error)) if error.kind == "index_not_found_exception" => {
                    return Err(SearchError::AliasMissing {
                        action,
                        alias: target.to_owned(),
                    });
                }
                (status, error) => failed.push(format!(
                    "{status} {}",
                    error.as_ref().map_or("", |e| e.reason.as_str())
                )),
            }
        }
        match failed.first() {
            None => Ok(summary),
            Some(first) => Err(SearchError::Bulk {
                action,
                failed: failed.len(),
                total: answer.items.len(),
                first: truncate(first),
            }),
        }
    }

    /// `_search` on `index` (an alias), under `timeout`.
    pub async fn search(&self, index: &str, body: &Value, timeout: Duration) -> Result<Value> {
        self.call(
            &format!("searching products in {index}"),
            self.request(Method::POST, &format!("{index}/_search"))
                .timeout(timeout)
                .json(body),
        )
        .await
    }

    /// `GET /{index}/_doc/{id}`; `None` when there is no such document.
    pub async fn get_document(&self, index: &str, id: &str) -> Result<Option<Value>> {
        match self
            .call(
                &format!("reading the document {id} of {index}"),
                self.request(Method::GET, &format!("{index}/_doc/{id}")),
            )
            .await
        {
            Ok(body) => Ok(Some(body)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[derive(Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, BulkItem>>,
}

#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: String,
}

/// `type: reason` of an OpenSearch error body, bounded.
fn reason(body: &Value) -> String {
    let error = &body["error"];
    let text = match (error["type"].as_str(), error["reason"].as_str()) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        _ if error.is_string() => error.as_str().unwrap_or_default().to_owned(),
        _ => body.to_string(),
    };
    truncate(&text)
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_REASON_CHARS).collect()
}

/// The CAs of `ca_file`, or the public web PKI roots (a managed OpenSearch behind a public
/// certificate). The provider is named rather than taken from the process default, as in the
/// kit's Kafka TLS, so the config never depends on which crate installed one first.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let wrap = |source| SetupError::CaFile {
                path: path.to_owned(),
                source,
            };
            for certificate in CertificateDer::pem_file_iter(path).map_err(wrap)? {
                // A bundle may hold certificates rustls cannot use as anchors; the others count.
                let _ = roots.add(certificate.map_err(wrap)?);
            }
            if roots.is_empty() {
                return Err(SetupError::NoCertificates {
                    path: path.to_owned(),
                });
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(SetupError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Whether `alias` is a name OpenSearch accepts and that cannot escape a URL path segment.
pub fn valid_alias(alias: &str) -> bool {
    let mut chars = alias.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && alias.len() <= 200
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str) -> Result<SearchClient, SetupError> {
        SearchClient::new(&Connection {
            endpoint,
            username: Some("catalog"),
            password: Some(&Secret::new("hunter2")),
            ca_file: None,
        })
    }

    #[test]
    fn endpoints_are_checked_and_credentials_stay_hidden() {
        let ok = client("https://search.example.com:9200").unwrap();
        assert_eq!(ok.endpoint(), "https://search.example.com:9200/");
        assert!(!format!("{ok:?}").contains("hunter2"));
        assert!(matches!(
            client("https://u:p@search.example.com"),
            Err(SetupError::CredentialsInEndpoint)
        ));
        assert!(matches!(client("search:9200"), Err(SetupError::Endpoint)));
        assert!(matches!(client("ftp://search"), Err(SetupError::Endpoint)));
    }

    #[test]
    fn aliases_are_plain_names() {
        assert!(valid_alias("products"));
        assert!(valid_alias("shop.products_v-2"));
        assert!(!valid_alias("Products"));
        assert!(!valid_alias("_products"));
        assert!(!valid_alias("a/b"));
        assert!(!valid_alias("a*"));
        assert!(!valid_alias(""));
    }

    #[test]
    fn error_reasons_are_short() {
        let body = serde_json::json!({"error": {"type": "x", "reason": "y".repeat(1000)}});
        assert_eq!(reason(&body).chars().count(), MAX_REASON_CHARS);
    }
}
