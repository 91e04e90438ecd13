//! Kubernetes `Status` errors, shaped exactly like the apiserver's so clients decode them the same way.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::resources::ResourceType;

/// One entry of `details.causes`: which field failed and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A failed API request: becomes a `kind: Status` body with the same code, reason and details the
/// real apiserver sends.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after_s: Option<u64>,
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// `deployments.apps` or `configmaps`: how the apiserver names a resource in messages.
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_owned()
    } else {
        format!("{plural}.{group}")
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after_s: None,
        }
    }

    fn with_details(mut self, mut details: Value) -> Self {
        // `group` is omitempty in StatusDetails: core kinds carry none.
        if let Value::Object(d) = &mut details
            && d.get("group").is_some_and(|g| g == "")
        {
            d.remove("group");
        }
        self.details = Some(details);
        self
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(&rt.group, &rt.plural)),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{name}\" already exists",
                qualified(&rt.group, &rt.plural)
            ),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    pub fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(&rt.group, &rt.plural)
            ),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    pub fn stale_resource_version(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 from server-side apply; each cause names the manager that owns the field.
    pub fn apply_conflicts(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        let n = causes.len();
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.message, c.field))
            .collect();
        let plural = if n == 1 { "conflict" } else { "conflicts" };
        let message = if n == 1 {
            format!("Apply failed with 1 conflict: {}", summary.join(""))
        } else {
            format!("Apply failed with {n} {plural}: {}", summary.join("\n"))
        };
        let _ = (rt, name);
        Self::new(409, "Conflict", message).with_details(json!({"causes": causes_json(&causes)}))
    }

    /// 422 Invalid: `Kind "name" is invalid: field: message`.
    pub fn invalid(rt: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        let parts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if parts.len() == 1 {
            parts.join("")
        } else {
            format!("[{}]", parts.join(", "))
        };
        let gk = if rt.group.is_empty() {
            rt.kind.clone()
        } else {
            format!("{}.{}", rt.kind, rt.group)
        };
        Self::new(
            422,
            "Invalid",
            format!("{gk} \"{name}\" is invalid: {joined}"),
        )
        .with_details(json!({
            "name": name, "group": rt.group, "kind": rt.kind, "causes": causes_json(&causes),
        }))
    }

    /// A JSON patch whose operation failed (a `test` that did not match, a missing path).
    pub fn json_patch_failed() -> Self {
        Self::new(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
        .with_details(json!({}))
    }

    /// `Status` `Success` for an object deleted at once, as the apiserver answers a DELETE.
    pub fn deleted_status(rt: &ResourceType, name: &str, uid: &str) -> Value {
        let mut details = json!({"name": name, "group": rt.group, "kind": rt.plural, "uid": uid});
        if let Value::Object(d) = &mut details
            && rt.group.is_empty()
        {
            d.remove("group");
        }
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
    }

    /// 422 for server-side apply without `fieldManager`, as the apiserver validates PatchOptions.
    pub fn apply_without_manager() -> Self {
        Self::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        )
        .with_details(json!({
            "group": "meta.k8s.io", "kind": "PatchOptions",
            "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}],
        }))
    }

    /// 422 for invalid list/watch options.
    pub fn invalid_list_options(field: &str, message: &str) -> Self {
        let reason = if message.starts_with("Forbidden") {
            "FieldValueForbidden"
        } else {
            "FieldValueInvalid"
        };
        Self::new(
            422,
            "Invalid",
            format!("ListOptions.meta.k8s.io \"\" is invalid: {field}: {message}"),
        )
        .with_details(json!({
            "group": "meta.k8s.io", "kind": "ListOptions",
            "causes": [{"reason": reason, "message": message, "field": field}],
        }))
    }

    /// The apiserver's 500 (without a reason) for an apply configuration with a field the
    /// built-in kind does not declare.
    pub fn apply_undeclared_field(message: String) -> Self {
        Self::new(500, "", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn forbidden(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: {why}",
                qualified(&rt.group, &rt.plural)
            ),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    /// A 403 with the authorizer's own message and details.
    pub fn forbidden_because(message: String, details: Value) -> Self {
        Self::new(403, "Forbidden", message).with_details(details)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn namespace_terminating(rt: &ResourceType, name: &str, ns: &str) -> Self {
        let mut e = Self::forbidden(
            rt,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        );
        if let Some(Value::Object(d)) = &mut e.details {
            d.insert(
                "causes".into(),
                json!([{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]),
            );
        }
        e
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// Something the simulator deliberately does not implement: a clear 501 instead of a silent
    /// wrong answer.
    pub fn not_implemented(what: impl Into<String>) -> Self {
        Self::new(
            501,
            "NotImplemented",
            format!("kube-sim does not implement {}", what.into()),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn too_many_requests(retry_after_s: u64) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        )
        .with_details(json!({"retryAfterSeconds": retry_after_s}));
        e.retry_after_s = Some(retry_after_s);
        e
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    pub fn to_status_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty()
            && let Value::Object(m) = &mut v
        {
            m.remove("reason");
        }
        if let (Some(d), Value::Object(m)) = (&self.details, &mut v) {
            m.insert("details".into(), d.clone());
        }
        v
    }
}

fn causes_json(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect(),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.to_status_json().to_string();
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl ApiError {
    /// Same message, different status code and reason.
    pub fn with_code(mut self, code: u16, reason: &'static str) -> Self {
        self.code = code;
        self.reason = reason;
        self
    }
}
