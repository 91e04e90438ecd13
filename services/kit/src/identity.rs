//! The caller's identity, as the gateway passes it in the `x-panthera-*` headers
//! (`docs/contracts.md`).
//!
//! The gateway verifies the token, removes any `x-panthera-*` header a client sent and adds its
//! own; the NetworkPolicy lets only the gateway reach a service. A handler that takes [`Caller`]
//! therefore answers 401 to a request that did not come through a protected gateway route (defence
//! in depth: a missing header never means "anonymous is fine"). Handlers that also serve anonymous
//! callers take `Option<Caller>`.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::error::ApiError;

pub const SUBJECT_HEADER: &str = "x-panthera-subject";
pub const ROLES_HEADER: &str = "x-panthera-roles";
pub const SCOPES_HEADER: &str = "x-panthera-scopes";
pub const TOKEN_ID_HEADER: &str = "x-panthera-token-id";

/// The role that the platform's services treat as administrator.
pub const ADMIN_ROLE: &str = "admin";

/// Who is calling: the verified token's subject, roles, scopes and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub token_id: Option<String>,
}

impl Caller {
    /// `None` when there is no (usable) subject header.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let subject = text(SUBJECT_HEADER)?.trim();
        if subject.is_empty() {
            return None;
        }
        let words = |name: &str| {
            text(name)
                .unwrap_or("")
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect()
        };
        Some(Self {
            subject: subject.to_owned(),
            roles: words(ROLES_HEADER),
            scopes: words(SCOPES_HEADER),
            token_id: text(TOKEN_ID_HEADER).map(str::to_owned),
        })
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(ADMIN_ROLE)
    }

    /// Ok when the caller is an administrator or holds `scope`; otherwise 403.
    pub fn require_admin_or_scope(&self, scope: &str) -> Result<(), ApiError> {
        if self.is_admin() || self.has_scope(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this operation needs the administrator role or a scope the caller lacks",
            ))
        }
    }

    /// Ok for administrators only; otherwise 403.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this operation needs the administrator role",
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_headers(&parts.headers).ok_or_else(|| {
            ApiError::Unauthorized("this endpoint needs an authenticated caller".to_owned())
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use axum::response::IntoResponse;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder();
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap().into_parts().0
    }

    #[tokio::test]
    async fn reads_the_identity_headers() {
        let mut parts = parts(&[
            (SUBJECT_HEADER, "u-1"),
            (ROLES_HEADER, "admin user"),
            (SCOPES_HEADER, "catalog:write"),
            (TOKEN_ID_HEADER, "t-1"),
        ]);
        let caller = <Caller as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(caller.subject, "u-1");
        assert!(caller.is_admin());
        assert!(caller.has_scope("catalog:write"));
        assert_eq!(caller.token_id.as_deref(), Some("t-1"));
        assert!(caller.require_admin_or_scope("x").is_ok());
    }

    #[tokio::test]
    async fn a_request_without_identity_is_401_with_a_challenge() {
        for headers in [vec![], vec![(SUBJECT_HEADER, "  ")]] {
            let mut parts = parts(&headers);
            let error = <Caller as FromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await
                .unwrap_err();
            let response = error.into_response();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
            let optional =
                <Caller as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
                    .await
                    .unwrap();
            assert!(optional.is_none());
        }
    }

    #[test]
    fn ordinary_callers_are_forbidden_admin_operations() {
        let caller = Caller::from_headers(&parts(&[(SUBJECT_HEADER, "u-2")]).headers).unwrap();
        let error = caller.require_admin().unwrap_err();
        assert_eq!(error.status(), StatusCode::FORBIDDEN);
        assert!(caller.require_admin_or_scope("orders:fulfil").is_err());
    }
}
