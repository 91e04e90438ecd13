//! The one error type of every HTTP handler, rendered as RFC 9457 `application/problem+json`.
//!
//! Client errors say what was wrong with the request; server errors are logged with their cause and
//! answered with a generic message, so SQL, hostnames or stack details never reach a client.

use std::error::Error as StdError;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field of a request, reported in a 422 problem's `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, e.g. `email` or `items[0].quantity`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI reference naming the problem type.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Present on validation problems (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("authentication failed: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error while {action}")]
    Internal {
        action: &'static str,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    pub fn internal(
        action: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            action,
            source: source.into(),
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status();
        let (slug, title) = match self {
            Self::Validation(_) => ("validation", "Validation failed"),
            Self::BadRequest(_) => ("bad-request", "Malformed request"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::Unauthorized(_) => ("unauthorized", "Unauthorized"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::PayloadTooLarge => ("payload-too-large", "Payload too large"),
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::Internal { .. } => ("internal", "Internal server error"),
        };
        let detail = match self {
            Self::Validation(_) => "One or more fields are invalid.".to_owned(),
            // The cause is in the log; the client only learns that it was our fault.
            Self::Internal { .. } => {
                "The request could not be completed; the error was logged.".to_owned()
            }
            Self::Unavailable(_) => "The service cannot handle the request right now.".to_owned(),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("https://panthera.dev/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            errors: match self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal { action, source } => {
                tracing::error!(action = *action, error = %source, "request failed");
            }
            Self::Unavailable(reason) => tracing::warn!(%reason, "request refused: unavailable"),
            _ => {}
        }
        let status = self.status();
        let mut response = (status, Json(self.problem())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // RFC 9110: a 401 names the scheme that would authenticate the request.
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Turns any error into [`ApiError::Internal`] naming the action that failed.
pub trait ResultExt<T> {
    fn or_internal(self, action: &'static str) -> Result<T>;
}

impl<T, E> ResultExt<T> for std::result::Result<T, E>
where
    E: StdError + Send + Sync + 'static,
{
    fn or_internal(self, action: &'static str) -> Result<T> {
        self.map_err(|e| ApiError::internal(action, e))
    }
}

/// Whether a database error is a unique-constraint violation (for 409 responses).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Middleware giving the bare error responses of axum and tower-http (405, 408, 413, ...) the same
/// problem+json body as every other error, keeping their headers (e.g. `Allow`).
pub async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|value| value.starts_with("text/plain"));
    if !is_error || !bare {
        return response;
    }
    let title = status.canonical_reason().unwrap_or("Error");
    let problem = Problem {
        problem_type: format!("https://panthera.dev/problems/http-{}", status.as_u16()),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: title.to_owned(),
        errors: None,
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut rebuilt = (parts, Json(problem)).into_response();
    rebuilt.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    rebuilt
}

/// 404 for routes that do not exist, in the same problem format.
pub async fn not_found_fallback() -> ApiError {
    ApiError::NotFound("route")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(error: ApiError) -> (StatusCode, String, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            serde_json::from_slice(&bytes).unwrap(),
        )
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let source =
            std::io::Error::other("password authentication failed for user app at 10.0.0.7");
        let (status, content_type, body) =
            body_of(ApiError::internal("loading a user", source)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type, "application/problem+json");
        let text = body.to_string();
        assert!(
            !text.contains("10.0.0.7") && !text.contains("password"),
            "{text}"
        );
        assert_eq!(body["status"], 500);
    }

    #[tokio::test]
    async fn validation_errors_list_fields() {
        let (status, _, body) = body_of(ApiError::field("email", "must be an email address")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["field"], "email");
        assert_eq!(body["type"], "https://panthera.dev/problems/validation");
    }
}
