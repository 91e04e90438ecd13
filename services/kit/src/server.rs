//! Assembles a service's router with the operational endpoints and middleware, and serves it until
//! SIGTERM/SIGINT with a bounded grace period.

use std::time::Duration;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{not_found_fallback, problem_for_bare_errors};
use crate::health::{self, Readiness};
use crate::metrics::{self, Metrics};

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// `api` plus `/metrics`, `/healthz`, `/readyz`, problem+json 404s, request metrics, tracing,
/// body limit and timeout; while draining, every response closes its connection.
pub fn app(api: Router, metrics: Metrics, readiness: Readiness, limits: HttpLimits) -> Router {
    let draining = readiness.clone();
    let ops = Router::new()
        .route(
            "/metrics",
            get(metrics::handler).with_state(metrics.clone()),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz).with_state(readiness));
    api.merge(ops)
        .fallback(not_found_fallback)
        .route_layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(record_response),
        )
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::map_response(problem_for_bare_errors))
        .layer(axum::middleware::map_response(
            move |response: axum::response::Response| {
                let draining = draining.is_draining();
                async move { close_while_draining(draining, response) }
            },
        ))
}

/// The request's server span (OpenTelemetry HTTP semantic conventions), named by the route
/// template rather than the path so that spans of one route group together; it continues the
/// trace context the gateway sent.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let method = request.method().as_str();
    let span = tracing::info_span!(
        "request",
        otel.name = format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    if panthera_otel::enabled() {
        panthera_otel::adopt(&span, request.headers(), panthera_otel::Incoming::Continue);
    }
    span
}

fn record_response<B>(
    response: &axum::http::Response<B>,
    _latency: Duration,
    span: &tracing::Span,
) {
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    // Server spans are errors on 5xx only: a 4xx is the client's (semantic conventions).
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// A client that keeps a connection alive (the gateway's pool) would go on sending requests to
/// a terminating replica over it: `Connection: close` makes it open a new one, which the Service
/// routes to a replica that stays.
fn close_while_draining(
    draining: bool,
    mut response: axum::response::Response,
) -> axum::response::Response {
    if draining {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// How a service stops on SIGTERM without losing a request.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    /// Unready but still serving, while the endpoints controller and every kube-proxy take the
    /// replica out of the Service.
    pub delay: Duration,
    /// Then: no new connections, and in-flight requests get at most this long.
    pub grace: Duration,
}

/// Serves `app` until `shutdown` is cancelled; then drains: `readiness` fails and responses close
/// their connections for `drain.delay`, then the listener closes and in-flight requests get
/// `drain.grace`.
pub async fn serve_draining(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    readiness: Readiness,
    drain: Drain,
) -> std::io::Result<()> {
    let stop_accepting = CancellationToken::new();
    let delayed = stop_accepting.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        readiness.start_draining();
        tracing::info!(delay = ?drain.delay, "draining: unready, still serving");
        tokio::time::sleep(drain.delay).await;
        delayed.cancel();
    });
    serve(listener, app, stop_accepting, drain.grace).await
}

/// Cancels `token` on SIGTERM (Kubernetes) or Ctrl-C.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the service");
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutdown requested");
        token.cancel();
    });
}

/// Serves `app` until `shutdown` is cancelled, then lets in-flight requests finish for at most
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let signal = shutdown.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        signal.cancelled().await;
    });
    let server = server.into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(?grace, "in-flight requests did not finish within the grace period");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn test_app() -> Router {
        let api = Router::new().route("/v1/ping", get(|| async { "pong" }));
        app(
            api,
            Metrics::new("test"),
            Readiness::new(),
            HttpLimits::default(),
        )
    }

    #[tokio::test]
    async fn ops_endpoints_and_problem_404() {
        let app = test_app();
        let response = app
            .clone()
            .oneshot(Request::get("/v1/ping").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = app
            .clone()
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = app
            .clone()
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = app
            .clone()
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let response = app
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let text = String::from_utf8(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        assert!(text.contains("route=\"/v1/ping\""), "{text}");
    }

    /// One HTTP/1.1 request on a fresh connection: the status line and headers, lower-cased.
    async fn get_head(address: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes())
            .await?;
        let mut buffer = vec![0; 4096];
        let n = stream.read(&mut buffer).await?;
        Ok(String::from_utf8_lossy(&buffer[..n]).to_lowercase())
    }

    #[tokio::test]
    async fn sigterm_keeps_serving_unready_for_the_delay_then_closes_the_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let readiness = Readiness::new();
        let api = Router::new().route("/v1/ping", get(|| async { "pong" }));
        let app = app(
            api,
            Metrics::new("test"),
            readiness.clone(),
            HttpLimits::default(),
        );
        let shutdown = CancellationToken::new();
        let drain = Drain {
            delay: Duration::from_millis(600),
            grace: Duration::from_secs(1),
        };
        let server = tokio::spawn(serve_draining(
            listener,
            app,
            shutdown.clone(),
            readiness,
            drain,
        ));
        let before = get_head(address, "/readyz").await.unwrap();
        assert!(before.starts_with("http/1.1 200"), "{before}");
        assert!(!before.contains("connection: close"), "{before}");

        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Within the delay: unready, but requests are still served, on connections that close.
        let ready = get_head(address, "/readyz").await.unwrap();
        assert!(ready.starts_with("http/1.1 503"), "{ready}");
        let ping = get_head(address, "/v1/ping").await.unwrap();
        assert!(ping.starts_with("http/1.1 200"), "{ping}");
        assert!(ping.contains("connection: close"), "{ping}");

        // After it the listener is closed and the server returns.
        tokio::time::timeout(Duration::from_secs(3), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(get_head(address, "/v1/ping").await.is_err());
    }

    #[tokio::test]
    async fn bare_errors_become_problems() {
        let api = Router::new()
            .route(
                "/v1/echo",
                axum::routing::post(|body: String| async move { body }),
            )
            .route(
                "/v1/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            );
        let limits = HttpLimits {
            max_body_bytes: 16,
            request_timeout: Duration::from_millis(50),
        };
        let app = app(api, Metrics::new("test"), Readiness::new(), limits);
        let cases = [
            (
                Request::get("/v1/echo").body(Body::empty()).unwrap(),
                StatusCode::METHOD_NOT_ALLOWED,
            ),
            (
                Request::post("/v1/echo")
                    .body(Body::from("x".repeat(64)))
                    .unwrap(),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                Request::get("/v1/slow").body(Body::empty()).unwrap(),
                StatusCode::REQUEST_TIMEOUT,
            ),
        ];
        for (request, expected) in cases {
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), expected);
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            if expected == StatusCode::METHOD_NOT_ALLOWED {
                assert!(response.headers().contains_key("allow"));
            }
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["status"], expected.as_u16());
        }
        let ok = app
            .oneshot(Request::post("/v1/echo").body(Body::from("short")).unwrap())
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()["content-type"], "text/plain; charset=utf-8");
    }

    #[tokio::test]
    async fn serve_stops_when_cancelled() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            test_app(),
            token.clone(),
            Duration::from_secs(5),
        ));
        token.cancel();
        let result = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert!(matches!(result, Ok(Ok(Ok(())))));
    }
}
