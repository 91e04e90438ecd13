//! Shared helpers: a test upstream, a gateway on 127.0.0.1:0 and a small HTTP client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use panthera_gateway::{Environment, GatewayConfig, GatewayOptions, RunningGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A test upstream that echoes what it received as JSON and counts requests.
pub struct TestUpstream {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
}

impl TestUpstream {
    pub async fn start(name: &'static str) -> Self {
        Self::start_on(name, "127.0.0.1:0".parse().unwrap()).await
    }

    /// The same on a given address (one that refused connections a moment ago).
    pub async fn start_on(name: &'static str, addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let counter = Arc::clone(&counter);
                        async move {
                            let hit = counter.fetch_add(1, Ordering::SeqCst) + 1;
                            Ok::<_, Infallible>(echo(name, hit, request).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn echo(
    name: &str,
    hit: usize,
    request: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    if path.ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let json = serde_json::json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""),
        "headers": headers,
        "body_len": body.len(),
        "hit": hit,
    });
    let mut response = Response::new(Full::new(Bytes::from(json.to_string())));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    if path.ends_with("/cacheable") {
        response
            .headers_mut()
            .insert("cache-control", "public, max-age=60".parse().unwrap());
    }
    if path.ends_with("/nostore") {
        response
            .headers_mut()
            .insert("cache-control", "no-store".parse().unwrap());
    }
    if path.ends_with("/hop") {
        response
            .headers_mut()
            .insert("connection", "x-secret-hop".parse().unwrap());
        response
            .headers_mut()
            .insert("x-secret-hop", "1".parse().unwrap());
    }
    response
}

/// Accepts connections and closes the first `failures` right after reading the request, then
/// answers 200. Counts connections.
pub struct FlakyUpstream {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

impl FlakyUpstream {
    pub async fn start(failures: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = stream.read(&mut buf).await;
                    if n < failures {
                        drop(stream);
                        return;
                    }
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        Self { addr, connections }
    }

    pub fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A loopback address nothing listens on (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A port free on 127.0.0.1 right now, for a binary started with it in its config.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to 10 s) until something listens on 127.0.0.1:`port`: a spawned binary is up.
pub async fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a gateway from YAML; listeners are forced onto 127.0.0.1:0.
pub async fn start_gateway(yaml: &str, env: &[(&str, &str)]) -> RunningGateway {
    start_gateway_with(yaml, env, "panthera:test:").await
}

pub async fn start_gateway_with(
    yaml: &str,
    env: &[(&str, &str)],
    redis_key_prefix: &str,
) -> RunningGateway {
    let text = format!("listen: \"127.0.0.1:0\"\nadminListen: \"127.0.0.1:0\"\n{yaml}");
    let config = GatewayConfig::from_yaml(&text).unwrap();
    let options = GatewayOptions {
        redis_key_prefix: redis_key_prefix.to_owned(),
        access_log: true,
        environment: Environment::from_pairs(env.iter().copied()),
        jwks_min_refresh_interval: Duration::ZERO,
    };
    RunningGateway::start(config, options).await.unwrap()
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body.into())).unwrap();
    let response = client().request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(Method::GET, url, headers, Bytes::new()).await
}

/// The Redis URL for tests, or `None` (skip) outside CI.
pub fn redis_url() -> Option<String> {
    match std::env::var("PANTHERA_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "PANTHERA_TEST_REDIS_URL is not set but CI is: start Redis with scripts/test-services.sh"
        ),
        _ => {
            eprintln!(
                "skipping: PANTHERA_TEST_REDIS_URL is not set (scripts/test-services.sh start)"
            );
            None
        }
    }
}

/// A random suffix for keys and names, so parallel test processes never collide.
pub fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    format!("{:016x}", hasher.finish())
}

/// Serves a JWKS document that tests can replace; counts fetches.
pub struct JwksServer {
    pub addr: SocketAddr,
    pub document: Arc<std::sync::Mutex<String>>,
    pub fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(document: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let document = Arc::new(std::sync::Mutex::new(document.to_owned()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (Arc::clone(&document), Arc::clone(&fetches));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (doc, count) = (Arc::clone(&doc), Arc::clone(&count));
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        count.fetch_add(1, Ordering::SeqCst);
                        let body = doc.lock().unwrap().clone();
                        async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            document,
            fetches,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    pub fn replace(&self, document: &str) {
        *self.document.lock().unwrap() = document.to_owned();
    }
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}
