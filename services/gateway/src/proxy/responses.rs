//! The gateway's own answers: errors and problem details, never request data or secrets.

use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::auth::AuthError;
use crate::body::GatewayBody;

/// A small JSON error body; messages are fixed strings, never request data or secrets.
pub fn error_response(status: StatusCode, message: &'static str) -> Response<GatewayBody> {
    let body = format!("{{\"error\":\"{message}\",\"status\":{}}}", status.as_u16());
    let mut response = Response::new(GatewayBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// RFC 9457 problem details, as the services answer errors. `reason` repeats `detail` for
/// clients of the gateway's earlier `{"error","reason","status"}` body.
fn problem(status: StatusCode, slug: &str, title: &str, detail: &str) -> Response<GatewayBody> {
    let body = serde_json::json!({
        "type": format!("https://panthera.dev/problems/{slug}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
        "error": slug,
        "reason": detail,
    });
    let mut response = Response::new(GatewayBody::full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// A valid token without a role or scope the route's rule asks for. The rule itself is not
/// disclosed, only that this token is not enough.
pub(super) fn forbidden() -> Response<GatewayBody> {
    problem(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Forbidden",
        "the token lacks a role or scope this route requires",
    )
}

pub(super) fn unauthorized(error: &AuthError) -> Response<GatewayBody> {
    let description = error.to_string();
    let mut response = problem(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        &description,
    );
    let challenge = if matches!(error, AuthError::MissingToken) {
        "Bearer".to_owned()
    } else {
        format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
