//! Request extractors whose rejections are [`ApiError`]s, so a malformed body, query or path gets the
//! same problem+json answer as any other error instead of axum's plain-text rejections.
//!
//! Body syntax errors are 400; a well-formed body or query with a wrong or missing field is 422 and
//! names the field.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// JSON body extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("the request body could not be read".to_owned())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses a JSON document, classifying failures as 400 (not JSON) or 422 (wrong shape).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let message = strip_position(&inner.to_string());
                    ApiError::Validation(vec![field_error(&path, &message)])
                }
                _ => ApiError::BadRequest(format!(
                    "the request body is not valid JSON: {}",
                    strip_position(&inner.to_string())
                )),
            });
        }
    };
    deserializer.end().map_err(|_| {
        ApiError::BadRequest(
            "the request body has trailing characters after the JSON document".to_owned(),
        )
    })?;
    Ok(value)
}

/// serde reports a missing field at the path of its parent; put the field's name into the path so
/// clients see `email`, not `.`. (Unknown fields already carry their name in the path.)
fn field_error(path: &str, message: &str) -> FieldError {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = match (named, path) {
        (Some(name), "." | "") => name.to_owned(),
        (Some(name), path) if path == name || path.ends_with(&format!(".{name}")) => {
            path.to_owned()
        }
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, "." | "") => "body".to_owned(),
        (None, path) => path.to_owned(),
    };
    FieldError::new(field, message)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

/// Query string extractor.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        ApiError::Validation(vec![field_error(&path, &message)])
    })
}

/// Path parameters extractor; a parameter of the wrong type (e.g. an id that is not a UUID) is 404,
/// because no resource can exist at that path.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        first_name: String,
        #[allow(dead_code)]
        age: Option<u8>,
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        let error = parse_json::<Body>(br#"{"firstName": "#).unwrap_err();
        assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
        let error = parse_json::<Body>(br#"{"firstName": "a"} x"#).unwrap_err();
        assert!(matches!(error, ApiError::BadRequest(_)), "{error:?}");
    }

    #[test]
    fn data_errors_name_the_field() {
        let ApiError::Validation(errors) = parse_json::<Body>(br#"{}"#).unwrap_err() else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "firstName");
        let ApiError::Validation(errors) =
            parse_json::<Body>(br#"{"firstName": "a", "age": "x"}"#).unwrap_err()
        else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "age");
        assert!(!errors[0].message.contains("line"));
    }

    #[derive(Debug, Deserialize)]
    struct Query {
        limit: Option<i64>,
    }

    #[test]
    fn query_errors_name_the_field() {
        assert_eq!(parse_query::<Query>("limit=5").unwrap().limit, Some(5));
        assert_eq!(parse_query::<Query>("").unwrap().limit, None);
        let ApiError::Validation(errors) = parse_query::<Query>("limit=abc").unwrap_err() else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "limit");
    }
}
