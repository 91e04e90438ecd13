//! `/healthz` (the process is alive) and `/readyz` (its dependencies answer), as the Kubernetes
//! probes of `docs/contracts.md` expect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

/// How long one dependency check may take. The rendered readiness probe's `timeoutSeconds` is
/// longer, so a slow dependency fails the check instead of the probe timing out.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// Named checks run on each `/readyz`, and whether the service is draining (shutting down:
/// unready whatever the checks say, so the endpoints move away before the listener closes).
/// Clones share the draining flag.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Arc<CheckFn>)>,
    draining: Arc<AtomicBool>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.checks.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Readiness").field("checks", &names).finish()
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check; its error text is logged, never returned to the prober.
    pub fn with_check<F>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        self.checks.push((name, Arc::new(check)));
        self
    }

    /// From now on `/readyz` answers 503 `draining` and responses close their connection.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn with_postgres(self, pool: sqlx::PgPool) -> Self {
        self.with_check("postgres", move || {
            let pool = pool.clone();
            Box::pin(async move {
                sqlx::query("SELECT 1")
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
    }

    /// Runs every check concurrently; `true` when all passed.
    pub async fn check(&self) -> (bool, Map<String, Value>) {
        let results =
            futures::future::join_all(self.checks.iter().map(|(name, check)| async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                (*name, outcome)
            }))
            .await;
        let mut ready = true;
        let mut report = Map::new();
        for (name, outcome) in results {
            match outcome {
                Ok(()) => {
                    report.insert(name.to_owned(), json!("ok"));
                }
                Err(error) => {
                    ready = false;
                    tracing::warn!(check = name, %error, "readiness check failed");
                    report.insert(name.to_owned(), json!("unavailable"));
                }
            }
        }
        (ready, report)
    }
}

/// `GET /healthz`
pub async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
}

/// `GET /readyz`
pub async fn readyz(State(readiness): State<Readiness>) -> Response {
    if readiness.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
            .into_response();
    }
    let (ready, checks) = readiness.check().await;
    let (status, word) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    (status, Json(json!({"status": word, "checks": checks}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failing_check_makes_the_service_unready_without_leaking_the_error() {
        let readiness = Readiness::new()
            .with_check("ok", || Box::pin(async { Ok(()) }))
            .with_check("broker", || {
                Box::pin(async { Err("connect 10.1.2.3:9092 refused".to_owned()) })
            });
        let (ready, report) = readiness.check().await;
        assert!(!ready);
        assert_eq!(report["ok"], "ok");
        assert_eq!(report["broker"], "unavailable");
        assert!(Readiness::new().check().await.0);
    }
}
