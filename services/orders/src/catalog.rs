//! Client of the catalog's reservation API (`CATALOG_URL`).

use std::time::Duration;

use panthera_kit::{FieldError, spans};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use uuid::Uuid;

use crate::model::NewItem;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedItem {
    pub product_id: Uuid,
    pub quantity: i32,
    pub unit_price_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub order_id: Uuid,
    pub state: String,
    pub items: Vec<ReservedItem>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReservationRequest<'a> {
    order_id: Uuid,
    items: &'a [NewItem],
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    detail: String,
    #[serde(default)]
    errors: Vec<ProblemField>,
}

#[derive(Deserialize)]
struct ProblemField {
    field: String,
    message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the catalog service is not configured (CATALOG_URL)")]
    NotConfigured,
    #[error("calling the catalog service")]
    Unreachable(#[source] reqwest::Error),
    #[error("the catalog service answered {0}")]
    Unexpected(StatusCode),
    /// 409 from the catalog: not enough stock (the detail says which product).
    #[error("{0}")]
    Rejected(String),
    /// 422 from the catalog: the fields it names, e.g. `items[1].productId`.
    #[error("the catalog rejected the items")]
    InvalidItems(Vec<FieldError>),
}

#[derive(Debug, Clone)]
pub struct CatalogClient {
    http: reqwest::Client,
    base: Option<String>,
}

impl CatalogClient {
    pub fn new(base: Option<String>, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .build()?;
        Ok(Self {
            http,
            base: base
                .map(|b| b.trim_end_matches('/').to_owned())
                .filter(|b| !b.is_empty()),
        })
    }

    /// The client span of a call to the catalog, `server.address` its base URL's host.
    fn span(&self, method: &'static str, route: &'static str) -> tracing::Span {
        let host = self
            .base
            .as_deref()
            .and_then(|base| base.split_once("://").map(|(_, rest)| rest))
            .and_then(|rest| rest.split(['/', ':']).next())
            .unwrap_or("");
        spans::http_client(method, route, host)
    }

    fn url(&self, path: &str) -> Result<String, CatalogError> {
        let base = self.base.as_ref().ok_or(CatalogError::NotConfigured)?;
        Ok(format!("{base}{path}"))
    }

    /// Reserves all items for the order, or none. Idempotent per order id.
    pub async fn reserve(
        &self,
        order_id: Uuid,
        items: &[NewItem],
    ) -> Result<Reservation, CatalogError> {
        let url = self.url("/v1/reservations")?;
        let span = self.span("POST", "/v1/reservations");
        let response = self
            .http
            .post(url)
            .headers(spans::propagation_headers(&span))
            .json(&ReservationRequest { order_id, items })
            .send()
            .instrument(span.clone())
            .await
            .map_err(CatalogError::Unreachable)?;
        let status = response.status();
        spans::record_status(&span, status.as_u16());
        match status {
            StatusCode::CREATED | StatusCode::OK => {
                response.json().await.map_err(CatalogError::Unreachable)
            }
            StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => {
                let problem: Problem = response.json().await.map_err(CatalogError::Unreachable)?;
                if status == StatusCode::CONFLICT {
                    Err(CatalogError::Rejected(problem.detail))
                } else {
                    Err(CatalogError::InvalidItems(
                        problem
                            .errors
                            .into_iter()
                            .map(|e| FieldError::new(e.field, e.message))
                            .collect(),
                    ))
                }
            }
            other => Err(CatalogError::Unexpected(other)),
        }
    }

    /// Gives the reserved stock back (the order could not be recorded).
    pub async fn release(&self, order_id: Uuid) -> Result<(), CatalogError> {
        let url = self.url(&format!("/v1/reservations/{order_id}"))?;
        let span = self.span("DELETE", "/v1/reservations/{id}");
        let response = self
            .http
            .delete(url)
            .headers(spans::propagation_headers(&span))
            .send()
            .instrument(span.clone())
            .await
            .map_err(CatalogError::Unreachable)?;
        spans::record_status(&span, response.status().as_u16());
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            other => Err(CatalogError::Unexpected(other)),
        }
    }
}
