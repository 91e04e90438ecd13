//! Label and field selectors, parsed the way the apiserver parses the query parameters.

use serde_json::{Map, Value};

use crate::object::{labels, lookup_path};
use crate::status::{ApiError, ApiResult};

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

/// Splits on commas that are not inside `( )`.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

fn invalid_selector(sel: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: {why} in label selector {sel:?}"
    ))
}

impl LabelSelector {
    pub fn parse(sel: &str) -> ApiResult<Self> {
        let mut reqs = Vec::new();
        if sel.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for part in split_top_level(sel) {
            let part = part.trim();
            if part.is_empty() {
                return Err(invalid_selector(sel, "empty requirement"));
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Equals(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                let set =
                    parse_set(rest).ok_or_else(|| invalid_selector(sel, "expected a set ( )"))?;
                Requirement::NotIn(k.trim().to_owned(), set)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                let set =
                    parse_set(rest).ok_or_else(|| invalid_selector(sel, "expected a set ( )"))?;
                Requirement::In(k.trim().to_owned(), set)
            } else if part.contains(char::is_whitespace) || part.contains(['(', ')', '<', '>']) {
                return Err(invalid_selector(sel, "unsupported operator"));
            } else {
                Requirement::Exists(part.to_owned())
            };
            let key = match &req {
                Requirement::Equals(k, _)
                | Requirement::NotEquals(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::NotExists(k) => k,
            };
            if key.is_empty() {
                return Err(invalid_selector(sel, "key is empty"));
            }
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let empty = Map::new();
        let labels = labels(obj).unwrap_or(&empty);
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, set) => get(k).is_some_and(|l| set.iter().any(|s| s == l)),
            Requirement::NotIn(k, set) => get(k).is_none_or(|l| !set.iter().any(|s| s == l)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Field labels the apiserver accepts beyond `metadata.name`/`metadata.namespace`, per kind.
fn supported_field(kind: &str, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match kind {
        "Pod" => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        "Event" => {
            field.starts_with("involvedObject.")
                || matches!(
                    field,
                    "reason"
                        | "reportingComponent"
                        | "source"
                        | "type"
                        | "regarding.name"
                        | "regarding.kind"
                        | "regarding.namespace"
                        | "regarding.uid"
                )
        }
        "Secret" => field == "type",
        "Namespace" => field == "status.phase",
        "Job" => field == "status.successful",
        "ReplicaSet" | "ReplicationController" => field == "status.replicas",
        _ => false,
    }
}

impl FieldSelector {
    pub fn parse(sel: &str, kind: &str) -> ApiResult<Self> {
        let mut reqs = Vec::new();
        for part in sel.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, eq, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{sel}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !supported_field(kind, field) {
                return Err(ApiError::bad_request(format!(
                    "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                )));
            }
            reqs.push((field.to_owned(), eq, value.trim().to_owned()));
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, eq, want)| {
            let actual = match lookup_path(obj, field) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *want) == *eq
        })
    }
}

impl LabelSelector {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FieldSelector {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_operators() {
        let obj = json!({"metadata": {"labels": {"app": "web", "tier": "front"}}});
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web, db)",
            "env notin (prod)",
            "tier",
            "!env",
            "app=web,tier=front",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&obj), "{s}");
        }
        let no = ["app=db", "app notin (web)", "env", "!tier", "app in (db)"];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&obj), "{s}");
        }
        assert!(LabelSelector::parse("app=web,,").is_err());
    }

    #[test]
    fn field_selector_rejects_unknown_fields() {
        assert!(FieldSelector::parse("spec.foo=bar", "ConfigMap").is_err());
        let sel = FieldSelector::parse("metadata.name=a,status.phase!=Running", "Pod").unwrap();
        assert!(sel.matches(&json!({"metadata": {"name": "a"}, "status": {"phase": "Pending"}})));
        assert!(!sel.matches(&json!({"metadata": {"name": "a"}, "status": {"phase": "Running"}})));
    }
}
