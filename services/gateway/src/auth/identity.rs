//! The caller's verified identity and the headers that carry it upstream.
//!
//! The gateway removes every `x-panthera-*` header a client sent before adding its own, so a
//! client of the gateway cannot forge them; and it signs them (`x-panthera-signature`, see
//! `panthera_identity`), so a client that reaches a service without the gateway cannot either,
//! NetworkPolicy enforced or not. The names are part of `docs/contracts.md`.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use panthera_identity::IdentityFields;
use serde_json::{Map, Value};

use super::AuthError;

/// Reserved prefix: any request header starting with it is dropped before forwarding.
pub const RESERVED_PREFIX: &str = "x-panthera-";
pub static SUBJECT_HEADER: HeaderName = HeaderName::from_static("x-panthera-subject");
pub static ROLES_HEADER: HeaderName = HeaderName::from_static("x-panthera-roles");
pub static SCOPES_HEADER: HeaderName = HeaderName::from_static("x-panthera-scopes");
pub static TOKEN_ID_HEADER: HeaderName = HeaderName::from_static("x-panthera-token-id");
pub static SIGNATURE_HEADER: HeaderName =
    HeaderName::from_static(panthera_identity::SIGNATURE_HEADER);

/// Whether a (lower-case) request header name is one only the gateway may set.
pub fn is_reserved(name: &str) -> bool {
    name.len() > RESERVED_PREFIX.len()
        && name.as_bytes()[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes())
}

/// What a verified token says about its bearer; built once per token and cached with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: Option<Arc<str>>,
    pub roles: Box<[Box<str>]>,
    pub scopes: Box<[Box<str>]>,
    pub token_id: Option<Box<str>>,
    /// The identity headers, encoded once so that forwarding only copies bytes.
    pub headers: Box<[(HeaderName, HeaderValue)]>,
    /// The values of `headers` as the signature covers them (an absent header is empty).
    pub signed: IdentityFields,
}

impl Identity {
    /// Reads the identity out of verified claims. Roles and scopes are each an array of strings
    /// or a space-separated string; entries that could not travel in a header are dropped (no
    /// rule can name them: rule entries are plain words).
    pub fn from_claims(
        claims: &Map<String, Value>,
        roles_claim: &str,
        scopes_claim: &str,
    ) -> Result<Self, AuthError> {
        let subject = match claims.get("sub") {
            None | Some(Value::Null) => None,
            Some(Value::String(sub)) => Some(Arc::<str>::from(sub.as_str())),
            Some(_) => return Err(AuthError::InvalidClaims),
        };
        let token_id = match claims.get("jti") {
            Some(Value::String(jti)) => Some(Box::<str>::from(jti.as_str())),
            _ => None,
        };
        let roles = words(claims.get(roles_claim));
        let scopes = words(claims.get(scopes_claim));
        let mut headers = Vec::with_capacity(4);
        if let Some(subject) = &subject {
            // A subject that cannot be a header value cannot be passed on faithfully.
            let value = HeaderValue::from_str(subject).map_err(|_| AuthError::InvalidClaims)?;
            headers.push((SUBJECT_HEADER.clone(), value));
        }
        for (name, values) in [(&ROLES_HEADER, &roles), (&SCOPES_HEADER, &scopes)] {
            if let Ok(value) = HeaderValue::from_str(&values.join(" ")) {
                headers.push((name.clone(), value));
            }
        }
        if let Some(value) = token_id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            headers.push((TOKEN_ID_HEADER.clone(), value));
        }
        let sent = |name: &HeaderName| {
            headers
                .iter()
                .find(|(sent, _)| sent == name)
                .map_or(&b""[..], |(_, value)| value.as_bytes())
        };
        let signed = IdentityFields::new(
            sent(&SUBJECT_HEADER),
            sent(&ROLES_HEADER),
            sent(&SCOPES_HEADER),
            sent(&TOKEN_ID_HEADER),
        );
        Ok(Self {
            subject,
            roles,
            scopes,
            token_id,
            headers: headers.into_boxed_slice(),
            signed,
        })
    }

    /// Whether the token has one of `roles` or one of `scopes`; true when both are empty.
    pub fn has_any(&self, roles: &[Box<str>], scopes: &[Box<str>]) -> bool {
        (roles.is_empty() && scopes.is_empty())
            || roles.iter().any(|role| self.roles.contains(role))
            || scopes.iter().any(|scope| self.scopes.contains(scope))
    }
}

fn words(value: Option<&Value>) -> Box<[Box<str>]> {
    let usable = |word: &str| !word.is_empty() && word.bytes().all(|b| b.is_ascii_graphic());
    let mut out: Vec<Box<str>> = match value {
        Some(Value::String(text)) => text
            .split_ascii_whitespace()
            .filter(|word| usable(word))
            .map(Box::from)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|word| usable(word))
            .map(Box::from)
            .collect(),
        _ => Vec::new(),
    };
    out.dedup();
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(claims: Value, roles: &str, scopes: &str) -> Identity {
        Identity::from_claims(claims.as_object().unwrap(), roles, scopes).unwrap()
    }

    #[test]
    fn reads_space_separated_and_array_claims() {
        let id = identity(
            json!({"sub": "u1", "jti": "t1", "scope": "a b  c", "roles": ["admin", "has space", 3]}),
            "roles",
            "scope",
        );
        assert_eq!(
            &*id.scopes,
            &["a".into(), "b".into(), "c".into()] as &[Box<str>]
        );
        assert_eq!(&*id.roles, &["admin".into()] as &[Box<str>]);
        let names: Vec<&str> = id.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-panthera-subject",
                "x-panthera-roles",
                "x-panthera-scopes",
                "x-panthera-token-id"
            ]
        );
        let scp = identity(json!({"scp": ["catalog:write"]}), "roles", "scp");
        assert!(scp.has_any(&[], &["catalog:write".into()]));
        assert!(!scp.has_any(&["admin".into()], &["other".into()]));
        assert!(scp.has_any(&[], &[]));
    }

    #[test]
    fn a_subject_that_cannot_be_a_header_is_refused() {
        let claims = json!({"sub": "a\nb"});
        assert_eq!(
            Identity::from_claims(claims.as_object().unwrap(), "roles", "scope"),
            Err(AuthError::InvalidClaims)
        );
    }

    #[test]
    fn reserved_names_are_recognised() {
        assert!(is_reserved("x-panthera-subject"));
        assert!(is_reserved("X-Panthera-Anything"));
        assert!(!is_reserved("x-panthera-"));
        assert!(!is_reserved("x-request-id"));
    }
}
