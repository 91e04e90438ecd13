//! Structural checks of a value against the CRD's openAPIV3Schema: the same bounds, patterns,
//! enums and list uniqueness the API server enforces, reported with field paths.

use std::collections::{BTreeSet, HashMap};

use regex::Regex;
use serde_json::Value;

/// One rule a value breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Field path, e.g. `spec.services[0].replicas`.
    pub path: String,
    /// What is expected.
    pub message: String,
}

impl Violation {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The bound of a size that a value breaks.
enum Bound {
    Min(u64),
    Max(u64),
}

/// `size` against the `(minimum, maximum)` keywords of `schema`; `message` says what a broken
/// bound expects.
fn check_size(
    schema: &Value,
    (min_key, max_key): (&str, &str),
    size: u64,
    path: &str,
    out: &mut Vec<Violation>,
    message: impl Fn(Bound) -> String,
) {
    let bound = |key: &str| schema.get(key).and_then(Value::as_u64);
    if let Some(min) = bound(min_key).filter(|min| size < *min) {
        out.push(Violation::new(path, message(Bound::Min(min))));
    }
    if let Some(max) = bound(max_key).filter(|max| size > *max) {
        out.push(Violation::new(path, message(Bound::Max(max))));
    }
}

/// Checks values against one schema; compiled patterns are kept between calls.
#[derive(Default)]
pub struct SchemaChecker {
    patterns: HashMap<String, Option<Regex>>,
}

impl SchemaChecker {
    /// Every violation of `schema` by `value`, depth first.
    pub fn check(&mut self, schema: &Value, value: &Value, path: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        self.walk(schema, value, path, &mut out);
        out
    }

    fn walk(&mut self, schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
        if value.is_null() {
            return;
        }
        let ty = schema.get("type").and_then(Value::as_str);
        let preserve = schema
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let type_ok = match ty {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            _ => true,
        };
        if !type_ok {
            out.push(Violation::new(
                path,
                format!(
                    "must be of type {}, got {}",
                    ty.unwrap_or("?"),
                    describe(value)
                ),
            ));
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
            out.push(Violation::new(
                path,
                format!("must be one of {}, got {value}", names.join(", ")),
            ));
        }
        match value {
            Value::String(s) => self.check_string(schema, s, path, out),
            Value::Number(n) => check_number(schema, n, path, out),
            Value::Array(items) => self.check_array(schema, items, path, out),
            Value::Object(map) => {
                let entries = map.len() as u64;
                let keys = ("minProperties", "maxProperties");
                check_size(schema, keys, entries, path, out, |bound| match bound {
                    Bound::Min(min) => format!("must have at least {min} entries"),
                    Bound::Max(max) => format!("must have at most {max} entries, got {entries}"),
                });
                if let Some(required) = schema.get("required").and_then(Value::as_array) {
                    for field in required.iter().filter_map(Value::as_str) {
                        if !map.contains_key(field) {
                            out.push(Violation::new(join(path, field), "is required"));
                        }
                    }
                }
                let properties = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties");
                for (key, child) in map {
                    let child_path = join(path, key);
                    if let Some(child_schema) = properties.and_then(|p| p.get(key)) {
                        self.walk(child_schema, child, &child_path, out);
                    } else if let Some(additional) = additional.filter(|a| a.is_object()) {
                        self.walk(additional, child, &child_path, out);
                    } else if properties.is_some() && !preserve {
                        out.push(Violation::new(child_path, "unknown field"));
                    }
                }
            }
            _ => {}
        }
    }

    fn check_string(&mut self, schema: &Value, s: &str, path: &str, out: &mut Vec<Violation>) {
        let len = s.chars().count() as u64;
        check_size(
            schema,
            ("minLength", "maxLength"),
            len,
            path,
            out,
            |bound| match bound {
                Bound::Min(min) => format!("must be at least {min} characters long"),
                Bound::Max(max) => format!("must be at most {max} characters long, got {len}"),
            },
        );
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            let compiled = self
                .patterns
                .entry(pattern.to_string())
                .or_insert_with(|| Regex::new(pattern).ok());
            if let Some(re) = compiled
                && !re.is_match(s)
            {
                out.push(Violation::new(path, format!("{s:?} must match {pattern}")));
            }
        }
    }

    fn check_array(
        &mut self,
        schema: &Value,
        items: &[Value],
        path: &str,
        out: &mut Vec<Violation>,
    ) {
        let n = items.len() as u64;
        check_size(
            schema,
            ("minItems", "maxItems"),
            n,
            path,
            out,
            |bound| match bound {
                Bound::Min(min) => format!("must have at least {min} item(s)"),
                Bound::Max(max) => format!("must have at most {max} items, got {n}"),
            },
        );
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let keys: Vec<&str> = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|k| k.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let key: Vec<String> = keys
                        .iter()
                        .map(|k| item.get(*k).map(Value::to_string).unwrap_or_default())
                        .collect();
                    if !seen.insert(key.clone()) {
                        out.push(Violation::new(
                            format!("{path}[{i}]"),
                            format!(
                                "duplicate entry: {} {} is already used",
                                keys.join("/"),
                                key.join("/")
                            ),
                        ));
                    }
                }
            }
            Some("set") => {
                let mut seen = BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    if !seen.insert(item.to_string()) {
                        out.push(Violation::new(
                            format!("{path}[{i}]"),
                            format!("duplicate value {item}"),
                        ));
                    }
                }
            }
            _ => {}
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.walk(item_schema, item, &format!("{path}[{i}]"), out);
            }
        }
    }
}

fn check_number(schema: &Value, n: &serde_json::Number, path: &str, out: &mut Vec<Violation>) {
    let Some(v) = n.as_f64() else { return };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && v < min
    {
        out.push(Violation::new(
            path,
            format!("must be greater than or equal to {min}, got {n}"),
        ));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && v > max
    {
        out.push(Violation::new(
            path,
            format!("must be less than or equal to {max}, got {n}"),
        ));
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reports_bounds_patterns_and_duplicates_with_paths() {
        let schema = json!({
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "maxItems": 2,
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {
                        "name": {"type": "string", "pattern": "^[a-z]+$"},
                        "n": {"type": "integer", "minimum": 1, "maximum": 3}
                    }}
                }
            }
        });
        let value = json!({"items": [{"name": "a", "n": 5}, {"name": "a"}, {"name": "B"}]});
        let violations = SchemaChecker::default().check(&schema, &value, "spec");
        let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.items",
                "spec.items[1]",
                "spec.items[0].n",
                "spec.items[2].name"
            ]
        );
    }
}
