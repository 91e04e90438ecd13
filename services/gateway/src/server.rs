//! Listeners (proxy and admin), graceful shutdown and configuration reload.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::body::GatewayBody;
use crate::config::{ConfigError, GatewayConfig};
use crate::proxy::{Gateway, GatewayOptions, Peer, ProxyError, error_response};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gateway(#[from] ProxyError),
    #[error("failed to bind the {listener} listener on {addr}: {source}")]
    Bind {
        listener: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to install the {0} signal handler: {1}")]
    Signal(&'static str, #[source] std::io::Error),
}

pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// How long in-flight requests may take to finish after shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);
/// A slow client must not hold a connection open forever before sending its headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// ConfigMap volumes are updated by swapping a symlink, which file watchers often miss; polling
/// the content is simple and reliable.
pub const CONFIG_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// A gateway with its listeners bound and serving.
pub struct RunningGateway {
    pub gateway: Arc<Gateway>,
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningGateway {
    /// Binds the configured listeners and starts serving.
    pub async fn start(config: GatewayConfig, options: GatewayOptions) -> Result<Self> {
        let proxy_addr = config.listen_addr()?;
        let admin_addr = config.admin_listen_addr()?;
        let gateway = Gateway::new(config, options)?;
        let bind = |listener: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind {
                    listener,
                    addr,
                    source,
                })
        };
        let proxy_listener = bind("proxy", proxy_addr).await?;
        let admin_listener = bind("admin", admin_addr).await?;
        let proxy_addr = proxy_listener.local_addr().unwrap_or(proxy_addr);
        let admin_addr = admin_listener.local_addr().unwrap_or(admin_addr);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let proxy_gateway = Arc::clone(&gateway);
        let proxy_task = tokio::spawn(serve(
            proxy_listener,
            shutdown_rx.clone(),
            // No wrapping async block: it would store the request future a second time.
            move |request, peer| Arc::clone(&proxy_gateway).handle(request, peer),
        ));
        let admin_gateway = Arc::clone(&gateway);
        let admin_task = tokio::spawn(serve(admin_listener, shutdown_rx, move |request, _| {
            let gateway = Arc::clone(&admin_gateway);
            async move { admin(&gateway, &request) }
        }));
        tracing::info!(%proxy_addr, %admin_addr, "gateway listening");
        Ok(Self {
            gateway,
            proxy_addr,
            admin_addr,
            shutdown,
            tasks: vec![proxy_task, admin_task],
        })
    }

    /// Polls `path` and reloads the configuration when its content changes; also on SIGHUP.
    pub fn watch_config(&mut self, path: PathBuf, interval: Duration) {
        let gateway = Arc::clone(&self.gateway);
        let mut shutdown = self.shutdown.subscribe();
        // Read before returning, so a change made right after this call is never taken as the
        // baseline.
        let mut last = std::fs::read(&path).ok();
        self.tasks.push(tokio::spawn(async move {
            #[cfg(unix)]
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                #[cfg(unix)]
                let hangup_signal = async {
                    match hangup.as_mut() {
                        Some(signal) => {
                            signal.recv().await;
                        }
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup_signal = std::future::pending::<()>();
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = hangup_signal => {}
                    _ = shutdown.changed() => return,
                }
                let Ok(current) = tokio::fs::read(&path).await else {
                    continue;
                };
                if last.as_deref() == Some(current.as_slice()) {
                    continue;
                }
                last = Some(current);
                reload_from(&gateway, &path).await;
            }
        }));
    }

    /// Stops accepting, lets in-flight requests finish (up to [`DRAIN_TIMEOUT`]) and returns.
    pub async fn shutdown(self) {
        self.gateway.start_draining();
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn reload_from(gateway: &Gateway, path: &Path) {
    match GatewayConfig::load(path) {
        Ok(config) => {
            if let Err(err) = gateway.reload(config).await {
                tracing::error!(error = %err, "configuration reload failed; keeping the current one");
            }
        }
        Err(err) => {
            gateway.metrics().observe_reload(false);
            tracing::error!(error = %err, "configuration reload failed; keeping the current one");
        }
    }
}

async fn serve<H, F>(listener: TcpListener, mut shutdown: watch::Receiver<bool>, handler: H)
where
    H: Fn(Request<Incoming>, Peer) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<GatewayBody>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        // Responses are small and arrive whole: one buffer and one write(2) beat queueing
        // head and body separately for writev(2).
        .writev(false);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let peer = Peer::new(client);
        let service = service_fn(move |request| {
            // The request future is a few KiB; boxing it once is cheaper than hyper moving it
            // by value several times per request.
            let response = Box::pin(handler(request, peer.clone()));
            async move { Ok::<_, Infallible>(response.await) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, %client, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain timeout reached; closing remaining connections");
    }
}

fn admin(gateway: &Gateway, request: &Request<Incoming>) -> Response<GatewayBody> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if gateway.is_ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/metrics" => match gateway.metrics().encode() {
            Ok(body) => {
                let mut response = Response::new(GatewayBody::full(body));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed"),
        },
        _ => error_response(StatusCode::NOT_FOUND, "not found"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<GatewayBody> {
    let mut response = Response::new(GatewayBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Runs until SIGTERM/SIGINT: serves, reloads `path` on change, then drains.
///
/// `drain_delay`: after the signal, `/readyz` fails but the listeners keep serving this long, so
/// that Kubernetes removes the pod from its endpoints before connections start being refused.
pub async fn run(path: PathBuf, options: GatewayOptions, drain_delay: Duration) -> Result<()> {
    let config = GatewayConfig::load(&path)?;
    let mut running = RunningGateway::start(config, options).await?;
    running.watch_config(path, CONFIG_POLL_INTERVAL);
    wait_for_shutdown_signal().await?;
    tracing::info!(
        delay_secs = drain_delay.as_secs_f64(),
        "shutdown signal received; failing readiness, then draining"
    );
    running.gateway.start_draining();
    tokio::time::sleep(drain_delay).await;
    running.shutdown().await;
    tracing::info!("gateway stopped");
    Ok(())
}

async fn wait_for_shutdown_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).map_err(|err| ServerError::Signal("SIGTERM", err))?;
        tokio::select! {
            _ = terminate.recv() => {}
            result = tokio::signal::ctrl_c() => {
                result.map_err(|err| ServerError::Signal("SIGINT", err))?;
            }
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .map_err(|err| ServerError::Signal("ctrl-c", err))?;
    Ok(())
}
