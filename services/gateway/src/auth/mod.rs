//! Bearer-token authentication for protected routes.

pub mod identity;
pub mod jwks;
pub mod jwt;

pub use identity::Identity;
pub use jwks::{JwksCache, JwksError};
pub use jwt::{AuthError, JwtValidator, VerifiedToken};

/// The token in an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &http::HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::MissingToken)?;
    let value = value.to_str().map_err(|_| AuthError::MalformedToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::MalformedToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MalformedToken);
    }
    Ok(token)
}
