//! Custom resources: structural-schema defaulting, pruning and validation (OpenAPI v3 keywords and
//! CEL `x-kubernetes-validations`), reported with the apiserver's field paths and messages.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::fieldset::{ListType, ListTypes};
use crate::status::Cause;

/// One version's `openAPIV3Schema`, with its CEL rules and regexes compiled once.
pub struct StructuralSchema {
    root: Value,
    env: Arc<cel::Env>,
    programs: HashMap<String, Arc<cel::Program>>,
    patterns: HashMap<String, regex::Regex>,
}

impl std::fmt::Debug for StructuralSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StructuralSchema")
            .field("root", &self.root)
            .field("rules", &self.programs.len())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("failed to compile CEL rule {rule:?}: {message}")]
    Cel { rule: String, message: String },
    #[error("failed to compile pattern {pattern:?}: {message}")]
    Pattern { pattern: String, message: String },
}

fn cel_env() -> cel::Env {
    let mut env = cel::Env::stdlib();
    // Kubernetes enables the strings extension library; a failure just leaves it out.
    let _ = env.add_extension(cel::extensions::strings);
    env
}

impl StructuralSchema {
    pub fn compile(root: Value) -> Result<Self, SchemaError> {
        let env = Arc::new(cel_env());
        let mut programs = HashMap::new();
        let mut patterns = HashMap::new();
        let mut stack = vec![&root];
        while let Some(node) = stack.pop() {
            if let Some(rules) = node
                .get("x-kubernetes-validations")
                .and_then(Value::as_array)
            {
                for r in rules {
                    if let Some(rule) = r.get("rule").and_then(Value::as_str) {
                        let program = env.compile(rule).map_err(|e| SchemaError::Cel {
                            rule: rule.into(),
                            message: e.to_string(),
                        })?;
                        programs.insert(rule.to_owned(), Arc::new(program));
                    }
                }
            }
            if let Some(p) = node.get("pattern").and_then(Value::as_str) {
                let re = regex::Regex::new(p).map_err(|e| SchemaError::Pattern {
                    pattern: p.into(),
                    message: e.to_string(),
                })?;
                patterns.insert(p.to_owned(), re);
            }
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                stack.extend(props.values());
            }
            for k in ["items", "additionalProperties"] {
                if let Some(child) = node.get(k).filter(|c| c.is_object()) {
                    stack.push(child);
                }
            }
        }
        Ok(Self {
            root,
            env,
            programs,
            patterns,
        })
    }

    /// Applies defaults and drops fields the schema does not know, as the apiserver does before
    /// validating and storing a custom resource.
    pub fn default_and_prune(&self, obj: &mut Value) {
        if let (Value::Object(m), Some(props)) =
            (obj, self.root.get("properties").and_then(Value::as_object))
        {
            let preserve = preserves_unknown(&self.root);
            m.retain(|k, _| {
                matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                    || preserve
                    || props.contains_key(k)
            });
            for (k, s) in props {
                if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(v) = m.get_mut(k) {
                    default_and_prune(v, s);
                } else if let Some(d) = s.get("default") {
                    let mut d = d.clone();
                    default_and_prune(&mut d, s);
                    m.insert(k.clone(), d);
                }
            }
        }
    }

    /// All violations, each with the field path the apiserver would report.
    pub fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
        let mut causes = self.validate_pass(obj, old, false);
        if causes.is_empty() {
            return self.validate_pass(obj, old, true);
        }
        if !self.programs.is_empty() {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "<nil>",
                "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        }
        causes
    }

    fn validate_pass(&self, obj: &Value, old: Option<&Value>, cel: bool) -> Vec<Cause> {
        let mut causes = Vec::new();
        let mut v = Validator {
            schema: self,
            causes: &mut causes,
            cel,
        };
        if let (Some(props), Value::Object(m)) =
            (self.root.get("properties").and_then(Value::as_object), obj)
        {
            for (k, s) in props {
                if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(val) = m.get(k) {
                    v.check(val, old.and_then(|o| o.get(k)), s, k);
                }
            }
            if let Some(req) = self.root.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) && !matches!(r, "apiVersion" | "kind" | "metadata") {
                        v.causes
                            .push(Cause::new("FieldValueRequired", r, "Required value"));
                    }
                }
            }
            v.cel(obj, old, &self.root, "");
        }
        causes
    }

    fn node_at(&self, names: &[&str]) -> Option<&Value> {
        let mut node = &self.root;
        for n in names {
            if let Some(p) = node.get("properties").and_then(|p| p.get(*n)) {
                node = p;
            } else if let Some(items) = node.get("items") {
                node = items.get("properties")?.get(*n)?;
            } else if let Some(ap) = node.get("additionalProperties").filter(|a| a.is_object()) {
                node = ap;
            } else {
                return None;
            }
        }
        Some(node)
    }
}

impl ListTypes for StructuralSchema {
    fn list_type(&self, path: &[&str]) -> ListType {
        let Some(node) = self.node_at(path) else {
            return crate::fieldset::BuiltinListTypes.list_type(path);
        };
        match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                node.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ if path.first() == Some(&"metadata") => {
                crate::fieldset::BuiltinListTypes.list_type(path)
            }
            _ => ListType::Atomic,
        }
    }

    fn always_present(&self, path: &[&str]) -> bool {
        path == ["metadata"]
    }

    fn atomic_map(&self, path: &[&str]) -> bool {
        if path.first() == Some(&"metadata") {
            return false;
        }
        self.node_at(path).is_some_and(|node| {
            matches!(
                node.get("x-kubernetes-map-type").and_then(Value::as_str),
                Some("atomic")
            )
        })
    }
}

fn preserves_unknown(s: &Value) -> bool {
    s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn default_and_prune(v: &mut Value, s: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                if !preserves_unknown(s) {
                    m.retain(|k, _| props.contains_key(k));
                }
                for (k, ps) in props {
                    if let Some(child) = m.get_mut(k) {
                        default_and_prune(child, ps);
                    } else if let Some(d) = ps.get("default") {
                        let mut d = d.clone();
                        default_and_prune(&mut d, ps);
                        m.insert(k.clone(), d);
                    }
                }
            } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for child in m.values_mut() {
                    default_and_prune(child, ap);
                }
            } else if !preserves_unknown(s)
                && s.get("type").and_then(Value::as_str) == Some("object")
                && s.get("additionalProperties").is_none()
            {
                m.clear();
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items") {
                for i in items {
                    default_and_prune(i, is);
                }
            }
        }
        _ => {}
    }
}

/// How the apiserver prints a value in "Invalid value: X".
fn show(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

struct Validator<'a> {
    schema: &'a StructuralSchema,
    causes: &'a mut Vec<Cause>,
    /// CEL rules run only once the object passed the schema's other checks.
    cel: bool,
}

impl Validator<'_> {
    fn invalid(&mut self, path: &str, v: &Value, why: String) {
        self.causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {}: {why}", show(v)),
        ));
    }

    fn check(&mut self, v: &Value, old: Option<&Value>, s: &Value, path: &str) {
        if v.is_null() {
            if !s.get("nullable").and_then(Value::as_bool).unwrap_or(false)
                && let Some(t) = s.get("type").and_then(Value::as_str)
            {
                self.causes.push(Cause::new(
                    "FieldValueTypeInvalid",
                    path,
                    format!(
                        "Invalid value: \"null\": {path} in body must be of type {t}: \"null\""
                    ),
                ));
            }
            return;
        }
        let int_or_string = s
            .get("x-kubernetes-int-or-string")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let actual = type_name(v);
            let ok = actual == t
                || (t == "number" && actual == "integer")
                || (int_or_string && matches!(actual, "integer" | "string"));
            if !ok {
                self.causes.push(Cause::new(
                    "FieldValueTypeInvalid",
                    path,
                    format!("Invalid value: \"{actual}\": {path} in body must be of type {t}: \"{actual}\""),
                ));
                return;
            }
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array)
            && !allowed.contains(v)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            self.causes.push(Cause::new(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    v,
                    list.join(", ")
                ),
            ));
        }
        match v {
            Value::String(st) => {
                if let Some(p) = s.get("pattern").and_then(Value::as_str)
                    && let Some(re) = self.schema.patterns.get(p)
                    && !re.is_match(st)
                {
                    self.invalid(path, v, format!("{path} in body should match '{p}'"));
                }
                let len = st.chars().count() as u64;
                if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                    && len > max
                {
                    self.causes.push(Cause::new(
                        "FieldValueTooLong",
                        path,
                        format!("Too long: may not be more than {max} bytes"),
                    ));
                }
                if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                    && len < min
                {
                    self.invalid(
                        path,
                        v,
                        format!("{path} in body should be at least {min} chars long"),
                    );
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(0.0);
                let excl_max = s
                    .get("exclusiveMaximum")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let excl_min = s
                    .get("exclusiveMinimum")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                    if excl_max && x >= max {
                        self.invalid(
                            path,
                            v,
                            format!("{path} in body should be less than {}", s["maximum"]),
                        );
                    } else if x > max {
                        self.invalid(
                            path,
                            v,
                            format!(
                                "{path} in body should be less than or equal to {}",
                                s["maximum"]
                            ),
                        );
                    }
                }
                if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                    if excl_min && x <= min {
                        self.invalid(
                            path,
                            v,
                            format!("{path} in body should be greater than {}", s["minimum"]),
                        );
                    } else if x < min {
                        self.invalid(
                            path,
                            v,
                            format!(
                                "{path} in body should be greater than or equal to {}",
                                s["minimum"]
                            ),
                        );
                    }
                }
            }
            Value::Array(items) => {
                if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                    && items.len() as u64 > max
                {
                    self.causes.push(Cause::new(
                        "FieldValueTooMany",
                        path,
                        format!("Too many: {}: must have at most {max} items", items.len()),
                    ));
                }
                if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                    && (items.len() as u64) < min
                {
                    self.invalid(
                        path,
                        v,
                        format!("{path} in body should have at least {min} items"),
                    );
                }
                if let Some(is) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item, None, is, &format!("{path}[{i}]"));
                    }
                }
            }
            Value::Object(m) => {
                if let Some(props) = s.get("properties").and_then(Value::as_object) {
                    for (k, ps) in props {
                        if let Some(child) = m.get(k) {
                            self.check(child, old.and_then(|o| o.get(k)), ps, &join(path, k));
                        }
                    }
                } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                    for (k, child) in m {
                        self.check(
                            child,
                            old.and_then(|o| o.get(k)),
                            ap,
                            &format!("{path}[{k}]"),
                        );
                    }
                }
                if let Some(req) = s.get("required").and_then(Value::as_array) {
                    for r in req.iter().filter_map(Value::as_str) {
                        if !m.contains_key(r) {
                            self.causes.push(Cause::new(
                                "FieldValueRequired",
                                join(path, r),
                                "Required value",
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
        self.cel(v, old, s, path);
    }

    fn cel(&mut self, v: &Value, old: Option<&Value>, s: &Value, path: &str) {
        if !self.cel {
            return;
        }
        let Some(rules) = s.get("x-kubernetes-validations").and_then(Value::as_array) else {
            return;
        };
        for r in rules {
            let Some(rule) = r.get("rule").and_then(Value::as_str) else {
                continue;
            };
            let Some(program) = self.schema.programs.get(rule) else {
                continue;
            };
            let uses_old = program.references().has_variable("oldSelf");
            // Transition rules only run on updates where the old value exists.
            if uses_old && old.is_none() {
                continue;
            }
            let mut ctx = cel::Context::with_env(self.schema.env.clone());
            let bind = |ctx: &mut cel::Context<'_, '_>, name: &str, val: &Value| -> bool {
                match cel::to_value(val)
                    .ok()
                    .map(integers_as_int)
                    .and_then(|cv| Box::<dyn cel::common::value::Val>::try_from(cv).ok())
                {
                    Some(b) => {
                        ctx.add_variable_as_val(name, b);
                        true
                    }
                    None => false,
                }
            };
            if !bind(&mut ctx, "self", v)
                || (uses_old && !old.is_some_and(|o| bind(&mut ctx, "oldSelf", o)))
            {
                self.causes.push(Cause::new(
                    "InternalError",
                    path,
                    format!("failed to evaluate rule {rule:?}: value not representable in CEL"),
                ));
                continue;
            }
            let field = match r.get("fieldPath").and_then(Value::as_str) {
                Some(fp) => format!("{path}{fp}"),
                None => path.to_owned(),
            };
            let reason = match r.get("reason").and_then(Value::as_str) {
                Some("FieldValueForbidden") => "FieldValueForbidden",
                Some("FieldValueRequired") => "FieldValueRequired",
                Some("FieldValueDuplicate") => "FieldValueDuplicate",
                _ => "FieldValueInvalid",
            };
            match program.execute(&ctx) {
                Ok(cel::Value::Bool(true)) => {}
                Ok(cel::Value::Bool(false)) => {
                    let msg = r
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!("failed rule: {rule}"));
                    let text = match reason {
                        "FieldValueForbidden" => format!("Forbidden: {msg}"),
                        "FieldValueRequired" => format!("Required value: {msg}"),
                        // The apiserver omits the value of a failed rule.
                        _ => format!("Invalid value: {msg}"),
                    };
                    self.causes.push(Cause::new(reason, field, text));
                }
                Ok(other) => self.causes.push(Cause::new(
                    "FieldValueInvalid",
                    field,
                    format!(
                        "Invalid value: {}: rule {rule:?} must evaluate to a bool, got {other:?}",
                        show(v)
                    ),
                )),
                Err(e) => self.causes.push(Cause::new(
                    "FieldValueInvalid",
                    field,
                    format!("Invalid value: {}: rule evaluation error: {e}", show(v)),
                )),
            }
        }
    }
}

/// Dotted paths present in `before` but not in `after` (what pruning removed).
pub fn pruned_paths(before: &Value, after: &Value) -> Vec<String> {
    fn walk(b: &Value, a: Option<&Value>, path: &str, out: &mut Vec<String>) {
        let Value::Object(bm) = b else { return };
        for (k, bv) in bm {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match a.and_then(|a| a.get(k)) {
                None => out.push(p),
                Some(av) => walk(bv, Some(av), &p, out),
            }
        }
    }
    let mut out = Vec::new();
    walk(before, Some(after), "", &mut out);
    out
}

/// The schema of each served version of a CRD (`spec.versions[].schema.openAPIV3Schema`).
pub fn version_schema(crd: &Value, version: &Value) -> Option<Value> {
    version
        .get("schema")
        .or_else(|| crd.get("spec").and_then(|s| s.get("validation")))
        .and_then(|s| s.get("openAPIV3Schema"))
        .cloned()
}

pub fn empty_object_schema() -> Value {
    let mut m = Map::new();
    m.insert("type".into(), Value::String("object".into()));
    m.insert(
        "x-kubernetes-preserve-unknown-fields".into(),
        Value::Bool(true),
    );
    Value::Object(m)
}

/// JSON numbers serialize as CEL `uint` when non-negative; the API server types every
/// `integer` field as CEL `int`, so `self.replicas % 2` must not fail with "int % uint".
fn integers_as_int(value: cel::Value) -> cel::Value {
    match value {
        cel::Value::UInt(n) => i64::try_from(n).map_or(cel::Value::UInt(n), cel::Value::Int),
        cel::Value::List(items) => cel::Value::List(std::sync::Arc::new(
            items.iter().cloned().map(integers_as_int).collect(),
        )),
        cel::Value::Map(map) => cel::Value::Map(cel::objects::Map {
            map: std::sync::Arc::new(
                map.map
                    .iter()
                    .map(|(k, v)| (k.clone(), integers_as_int(v.clone())))
                    .collect(),
            ),
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> StructuralSchema {
        StructuralSchema::compile(json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "x-kubernetes-validations": [{"rule": "self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"}],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z]+$"},
                        "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                        "maxReplicas": {"type": "integer", "default": 5},
                        "tier": {"type": "string", "enum": ["gold", "silver"]}
                    }
                }
            }
        }))
        .unwrap()
    }

    #[test]
    fn defaults_prunes_and_validates() {
        let s = schema();
        let mut obj = json!({"spec": {"name": "ok", "unknown": 1}, "junk": true});
        s.default_and_prune(&mut obj);
        assert_eq!(
            obj,
            json!({"spec": {"name": "ok", "replicas": 1, "maxReplicas": 5}})
        );
        assert!(s.validate(&obj, None).is_empty());

        let bad =
            json!({"spec": {"name": "BAD", "replicas": 11, "maxReplicas": 5, "tier": "bronze"}});
        let causes = s.validate(&bad, None);
        let fields: Vec<_> = causes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"spec.name"));
        assert!(fields.contains(&"spec.replicas"));
        assert!(fields.contains(&"spec.tier"));
        // Like the apiserver: CEL rules wait until the schema's other checks pass.
        assert!(
            causes.iter().any(|c| c.field == "<nil>"
                && c.message.contains("some validation rules were not checked")),
            "{causes:?}"
        );
        let causes = s.validate(
            &json!({"spec": {"name": "ok", "replicas": 6, "maxReplicas": 5}}),
            None,
        );
        assert!(
            causes
                .iter()
                .any(|c| c.field == "spec" && c.message.contains("replicas must not exceed")),
            "{causes:?}"
        );
        let missing = s.validate(&json!({"spec": {}}), None);
        assert!(
            missing
                .iter()
                .any(|c| c.field == "spec.name" && c.reason == "FieldValueRequired")
        );
    }

    #[test]
    fn integers_are_cel_ints_like_on_the_api_server() {
        let s = StructuralSchema::compile(json!({
            "type": "object",
            "x-kubernetes-validations": [{"rule": "self.brokers % size(self.zones) == 0", "message": "brokers per zone"}],
            "properties": {
                "brokers": {"type": "integer", "minimum": 1},
                "zones": {"type": "array", "items": {"type": "string"}}
            }
        }))
        .unwrap();
        assert!(
            s.validate(&json!({"brokers": 3, "zones": ["a", "b", "c"]}), None)
                .is_empty()
        );
        let causes = s.validate(&json!({"brokers": 4, "zones": ["a", "b", "c"]}), None);
        assert!(
            causes
                .iter()
                .any(|c| c.message.contains("brokers per zone")),
            "{causes:?}"
        );
    }
}
