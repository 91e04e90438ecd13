//! The caller's identity, as the gateway passes it in the `x-panthera-*` headers
//! (`docs/contracts.md`).
//!
//! The gateway verifies the token, removes any `x-panthera-*` header a client sent, adds its own
//! and signs them together with the request's method and target and the time
//! (`x-panthera-signature`, see `panthera_identity`). A service believes an identity only when
//! that signature checks out with one of its keys ([`IdentityCheck`], from `IDENTITY_KEYS`): a
//! request sent to the service directly, around the gateway, is refused even where the network
//! plugin ignores the NetworkPolicy that should have stopped it. A handler that takes [`Caller`]
//! answers 401 to a request without a (believable) identity: a missing header never means
//! "anonymous is fine". Handlers that also serve anonymous callers take `Option<Caller>`, which
//! is `None` without identity headers and still 401 for an identity that fails the check.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use panthera_identity::{IdentityFields, KeyRing, Rejection, RequestLine};

use crate::error::ApiError;
use crate::secret::Secret;

pub const SUBJECT_HEADER: &str = "x-panthera-subject";
pub const ROLES_HEADER: &str = "x-panthera-roles";
pub const SCOPES_HEADER: &str = "x-panthera-scopes";
pub const TOKEN_ID_HEADER: &str = "x-panthera-token-id";
pub const SIGNATURE_HEADER: &str = panthera_identity::SIGNATURE_HEADER;

/// The role that the platform's services treat as administrator.
pub const ADMIN_ROLE: &str = "admin";

/// `IDENTITY_VERIFY`: whether the identity headers must carry the gateway's signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IdentityVerify {
    /// Believe only a signed identity (the default, and what the renderer runs).
    #[default]
    On,
    /// Believe the headers as they come: for a service run alone on a workstation, never in a
    /// cluster (anyone who reaches the service could claim to be anyone).
    Off,
}

/// Why the identity settings were refused; names the variable, never the keys.
#[derive(Debug, thiserror::Error)]
pub enum IdentityConfigError {
    #[error("IDENTITY_KEYS: {0}")]
    Keys(#[from] panthera_identity::KeyError),
}

/// How this service treats the identity headers; put on the router with [`Self::layer`].
#[derive(Clone, Debug)]
pub enum IdentityCheck {
    /// An identity is believed when one of these keys signed it for this request, lately.
    Signed(Arc<KeyRing>),
    /// No keys: no identity is believed, so every request that needs a caller is 401.
    NoKeys,
    /// `IDENTITY_VERIFY=off`: the headers are believed unsigned.
    Unverified,
}

impl IdentityCheck {
    /// From `IDENTITY_KEYS` (empty counts as unset) and `IDENTITY_VERIFY`.
    pub fn from_settings(
        keys: Option<&Secret>,
        verify: IdentityVerify,
    ) -> Result<Self, IdentityConfigError> {
        let keys = keys
            .map(Secret::expose)
            .filter(|keys| !keys.trim().is_empty());
        Ok(match (verify, keys) {
            (IdentityVerify::Off, _) => Self::Unverified,
            (IdentityVerify::On, None) => Self::NoKeys,
            (IdentityVerify::On, Some(keys)) => Self::Signed(Arc::new(KeyRing::parse(keys)?)),
        })
    }

    /// Verification with `keys` (tests, and callers that build the check themselves).
    pub fn signed(keys: KeyRing) -> Self {
        Self::Signed(Arc::new(keys))
    }

    /// The layer that makes this check the one [`Caller`] applies on a router.
    pub fn layer(&self) -> Extension<Self> {
        Extension(self.clone())
    }

    /// Says at start-up what the service will believe.
    pub fn log(&self) {
        match self {
            Self::Signed(keys) => tracing::info!(
                keys = ?keys.ids().map(|id| id.to_string()).collect::<Vec<_>>(),
                "caller identities are believed when the gateway signed them"
            ),
            Self::NoKeys => tracing::warn!(
                "IDENTITY_KEYS is not set: no caller identity is believed, so requests that need \
                 a caller are refused with 401 (IDENTITY_VERIFY=off believes unsigned headers, \
                 for local development only)"
            ),
            Self::Unverified => tracing::warn!(
                "IDENTITY_VERIFY=off: caller identities are believed without the gateway's \
                 signature; anyone who reaches this service can claim any identity"
            ),
        }
    }

    /// Whether the identity in `parts` may be believed.
    fn check(&self, parts: &Parts) -> Result<(), Rejection> {
        let keys = match self {
            Self::Unverified => return Ok(()),
            // Said at start-up (see `log`); each refusal is a 401.
            Self::NoKeys => return Err(Rejection::Missing),
            Self::Signed(keys) => keys,
        };
        let headers = &parts.headers;
        // One value each: with two, the service and the signature could read different ones.
        let mut raw = [&b""[..]; 5];
        for (slot, name) in raw.iter_mut().zip([
            SUBJECT_HEADER,
            ROLES_HEADER,
            SCOPES_HEADER,
            TOKEN_ID_HEADER,
            SIGNATURE_HEADER,
        ]) {
            let mut values = headers.get_all(name).iter();
            if let Some(value) = values.next() {
                *slot = value.as_bytes();
            }
            if values.next().is_some() {
                return Err(Rejection::Malformed);
            }
        }
        let [subject, roles, scopes, token_id, signature] = raw;
        if signature.is_empty() {
            return Err(Rejection::Missing);
        }
        // The target as the request line carried it, before any router rewrote it.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let request = RequestLine {
            method: parts.method.as_str(),
            target: uri.path_and_query().map_or("/", |target| target.as_str()),
        };
        let identity = IdentityFields::new(subject, roles, scopes, token_id);
        keys.verify(signature, panthera_identity::unix_now(), request, &identity)
    }
}

/// Who is calling: the verified token's subject, roles, scopes and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub subject: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    pub token_id: Option<String>,
}

impl Caller {
    /// The identity the headers claim, unchecked; `None` when there is no (usable) subject
    /// header. Extraction ([`FromRequestParts`]) also checks the gateway's signature.
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
            // The signature covers an absent and an empty header alike.
            token_id: text(TOKEN_ID_HEADER)
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
        })
    }

    /// The believable caller of a request: `None` without a subject header, an error for an
    /// identity the service's [`IdentityCheck`] does not accept. A router without the check's
    /// layer believes nobody.
    fn from_parts(parts: &Parts) -> Result<Option<Self>, ApiError> {
        let Some(caller) = Self::from_headers(&parts.headers) else {
            return Ok(None);
        };
        let check = parts
            .extensions
            .get::<IdentityCheck>()
            .unwrap_or(&IdentityCheck::NoKeys);
        match check.check(parts) {
            Ok(()) => Ok(Some(caller)),
            Err(rejection) => {
                // The reason helps whoever set up the platform; the client learns only 401.
                tracing::warn!(reason = %rejection, "refused a caller identity");
                Err(ApiError::Unauthorized(
                    "the caller's identity is not signed by the platform's gateway".to_owned(),
                ))
            }
        }
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
        Self::from_parts(parts)?.ok_or_else(|| {
            ApiError::Unauthorized("this endpoint needs an authenticated caller".to_owned())
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Self::from_parts(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{IDENTITY_KEYS, identity_check, identity_signature};
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use axum::response::IntoResponse;

    const ADMIN: [(&str, &str); 4] = [
        (SUBJECT_HEADER, "u-1"),
        (ROLES_HEADER, "admin user"),
        (SCOPES_HEADER, "catalog:write"),
        (TOKEN_ID_HEADER, "t-1"),
    ];

    /// A request to `method target` with `headers`, through a router checking with `check`.
    fn parts(
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        check: Option<IdentityCheck>,
    ) -> Parts {
        let mut builder = Request::builder().method(method).uri(target);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut parts = builder.body(Body::empty()).unwrap().into_parts().0;
        if let Some(check) = check {
            parts.extensions.insert(check);
        }
        parts
    }

    /// `identity` with the signature the gateway would add for `method target` now.
    fn signed(
        method: &str,
        target: &str,
        identity: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, String)> {
        let mut headers: Vec<(&str, String)> = identity
            .iter()
            .map(|(n, v)| (*n, (*v).to_owned()))
            .collect();
        headers.push((
            SIGNATURE_HEADER,
            identity_signature(IDENTITY_KEYS, method, target, identity),
        ));
        headers
    }

    fn borrowed<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
        headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
    }

    async fn extract(parts: &mut Parts) -> Result<Caller, ApiError> {
        <Caller as FromRequestParts<()>>::from_request_parts(parts, &()).await
    }

    async fn extract_optional(parts: &mut Parts) -> Result<Option<Caller>, ApiError> {
        <Caller as OptionalFromRequestParts<()>>::from_request_parts(parts, &()).await
    }

    #[tokio::test]
    async fn reads_a_signed_identity() {
        let headers = signed("GET", "/v1/users?limit=5", &ADMIN);
        let mut parts = parts(
            Method::GET,
            "/v1/users?limit=5",
            &borrowed(&headers),
            Some(identity_check()),
        );
        let caller = extract(&mut parts).await.unwrap();
        assert_eq!(caller.subject, "u-1");
        assert!(caller.is_admin());
        assert!(caller.has_scope("catalog:write"));
        assert_eq!(caller.token_id.as_deref(), Some("t-1"));
        assert!(caller.require_admin_or_scope("x").is_ok());
        assert_eq!(extract_optional(&mut parts).await.unwrap(), Some(caller));
    }

    #[tokio::test]
    async fn a_request_without_identity_is_401_with_a_challenge() {
        for headers in [vec![], vec![(SUBJECT_HEADER, "  ")]] {
            let mut parts = parts(Method::GET, "/", &headers, Some(identity_check()));
            let response = extract(&mut parts).await.unwrap_err().into_response();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
            assert!(extract_optional(&mut parts).await.unwrap().is_none());
        }
    }

    /// Every way an identity can fail the check is a 401, for `Caller` and `Option<Caller>`.
    #[tokio::test]
    async fn an_identity_the_gateway_did_not_sign_for_this_request_is_refused() {
        let target = "/v1/users/u-2";
        let good = signed("DELETE", target, &ADMIN);
        let with = |name: &'static str, value: &str| {
            let mut headers: Vec<(&'static str, String)> =
                good.iter().filter(|(n, _)| *n != name).cloned().collect();
            headers.push((name, value.to_owned()));
            headers
        };
        let stale = {
            let keys = KeyRing::parse(IDENTITY_KEYS).unwrap();
            let fields = IdentityFields::new(b"u-1", b"admin user", b"catalog:write", b"t-1");
            let request = RequestLine {
                method: "DELETE",
                target,
            };
            let then = panthera_identity::unix_now() - panthera_identity::MAX_SKEW_SECONDS - 5;
            keys.sign(then, request, &fields).as_str().to_owned()
        };
        let other_key = identity_signature(
            "someone-elses-key-0123456789abcdef0123",
            "DELETE",
            target,
            &ADMIN,
        );
        let unsigned: Vec<(&'static str, String)> =
            ADMIN.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
        let without_token_id: Vec<(&'static str, String)> = good
            .iter()
            .filter(|(n, _)| *n != TOKEN_ID_HEADER)
            .cloned()
            .collect();
        let mut duplicated = good.clone();
        duplicated.push((ROLES_HEADER, "admin".to_owned()));
        let cases = [
            ("forged, unsigned", Method::DELETE, target, unsigned),
            (
                "roles raised",
                Method::DELETE,
                target,
                with(ROLES_HEADER, "admin root"),
            ),
            (
                "subject changed",
                Method::DELETE,
                target,
                with(SUBJECT_HEADER, "u-9"),
            ),
            (
                "scope added",
                Method::DELETE,
                target,
                with(SCOPES_HEADER, "orders:fulfil"),
            ),
            ("token id dropped", Method::DELETE, target, without_token_id),
            (
                "another target",
                Method::DELETE,
                "/v1/users/u-3",
                good.clone(),
            ),
            ("another method", Method::PATCH, target, good.clone()),
            (
                "stale",
                Method::DELETE,
                target,
                with(SIGNATURE_HEADER, &stale),
            ),
            (
                "another key",
                Method::DELETE,
                target,
                with(SIGNATURE_HEADER, &other_key),
            ),
            (
                "garbage",
                Method::DELETE,
                target,
                with(SIGNATURE_HEADER, "v1;kid=x;t=1;sig=y"),
            ),
            ("a header twice", Method::DELETE, target, duplicated),
        ];
        for (case, method, uri, headers) in cases {
            let mut parts = parts(method, uri, &borrowed(&headers), Some(identity_check()));
            let error = extract(&mut parts).await.unwrap_err();
            assert_eq!(error.status(), StatusCode::UNAUTHORIZED, "{case}");
            let error = extract_optional(&mut parts).await.unwrap_err();
            assert_eq!(error.status(), StatusCode::UNAUTHORIZED, "{case}");
        }
        // The untouched request passes: each case above fails for its change alone.
        let mut parts = parts(
            Method::DELETE,
            target,
            &borrowed(&good),
            Some(identity_check()),
        );
        assert!(extract(&mut parts).await.is_ok());
    }

    #[tokio::test]
    async fn without_keys_nobody_is_believed_unless_verification_is_off() {
        let headers = signed("GET", "/", &ADMIN);
        let headers = borrowed(&headers);
        for check in [None, Some(IdentityCheck::NoKeys)] {
            let mut parts = parts(Method::GET, "/", &headers, check);
            assert_eq!(
                extract(&mut parts).await.unwrap_err().status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let mut parts = parts(Method::GET, "/", &ADMIN, Some(IdentityCheck::Unverified));
        assert_eq!(extract(&mut parts).await.unwrap().subject, "u-1");
    }

    #[test]
    fn settings_decide_the_check() {
        let keys = Secret::new(IDENTITY_KEYS);
        assert!(matches!(
            IdentityCheck::from_settings(Some(&keys), IdentityVerify::On),
            Ok(IdentityCheck::Signed(_))
        ));
        assert!(matches!(
            IdentityCheck::from_settings(Some(&keys), IdentityVerify::Off),
            Ok(IdentityCheck::Unverified)
        ));
        assert!(matches!(
            IdentityCheck::from_settings(None, IdentityVerify::On),
            Ok(IdentityCheck::NoKeys)
        ));
        let error = IdentityCheck::from_settings(Some(&Secret::new("short")), IdentityVerify::On)
            .unwrap_err();
        assert!(error.to_string().contains("IDENTITY_KEYS"), "{error}");
        let debug = format!("{:?}", identity_check());
        assert!(!debug.contains(IDENTITY_KEYS), "{debug}");
    }

    #[test]
    fn ordinary_callers_are_forbidden_admin_operations() {
        let parts = parts(Method::GET, "/", &[(SUBJECT_HEADER, "u-2")], None);
        let caller = Caller::from_headers(&parts.headers).unwrap();
        let error = caller.require_admin().unwrap_err();
        assert_eq!(error.status(), StatusCode::FORBIDDEN);
        assert!(caller.require_admin_or_scope("orders:fulfil").is_err());
    }
}
