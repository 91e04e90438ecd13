//! Loading a `PantheraPlatform` file: parse, type-check, then the CRD's own schema and CEL rules,
//! every problem reported with `file:line:column`, the field path and what is expected.

mod depth;
mod positions;
mod rules;
mod schema;

use std::fmt;
use std::path::Path;

use kube::CustomResourceExt;
use serde_json::Value;

pub use positions::{Position, Positions};
pub use schema::{SchemaChecker, Violation};

use crate::api::{API_VERSION, KIND, PantheraPlatform};

/// A problem in an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name as the user gave it.
    pub file: String,
    /// Where in the file, when known.
    pub position: Option<Position>,
    /// Field path, when the problem is about a field.
    pub path: Option<String>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": ")?;
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Every problem found in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

type Result<T, E = Diagnostics> = std::result::Result<T, E>;

/// Read and fully validate a platform file.
pub fn load_file(path: &Path) -> Result<PantheraPlatform> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: file.clone(),
            position: None,
            path: None,
            message: format!("cannot read the file: {e}"),
        }])
    })?;
    load_str(&file, &text)
}

/// Parse and fully validate a platform from text; `file` names it in diagnostics.
pub fn load_str(file: &str, text: &str) -> Result<PantheraPlatform> {
    if let Some(position) = depth::too_deep(text, depth::MAX_DEPTH) {
        return Err(Diagnostics(vec![Diagnostic {
            file: file.to_string(),
            position: Some(position),
            path: None,
            message: format!(
                "nested more than {} levels deep: a platform nests about ten",
                depth::MAX_DEPTH
            ),
        }]));
    }
    let loader = Loader {
        file,
        positions: Positions::index(text),
    };
    let raw = loader.parse(text)?;
    loader.check_envelope(&raw)?;
    let platform = loader.deserialize(text)?;
    loader.validate(&platform)?;
    Ok(platform)
}

/// Validate a platform that is already typed (e.g. read from the cluster).
pub fn validate(platform: &PantheraPlatform) -> Result<()> {
    Loader {
        file: "<object>",
        positions: Positions::default(),
    }
    .validate(platform)
}

struct Loader<'a> {
    file: &'a str,
    positions: Positions,
}

impl Loader<'_> {
    fn diag(&self, path: Option<String>, message: String) -> Diagnostic {
        let position = path.as_deref().and_then(|p| self.positions.find(p));
        Diagnostic {
            file: self.file.to_string(),
            position,
            path,
            message,
        }
    }

    fn parse(&self, text: &str) -> Result<serde_yaml::Value> {
        let mut documents = Vec::new();
        for document in serde_yaml::Deserializer::from_str(text) {
            let value =
                serde::Deserialize::deserialize(document).map_err(|e| self.yaml_error(&e, None))?;
            if !matches!(value, serde_yaml::Value::Null) {
                documents.push(value);
            }
        }
        match documents.len() {
            1 => Ok(documents.remove(0)),
            0 => Err(Diagnostics(vec![self.diag(
                None,
                "the file is empty: expected one PantheraPlatform document".into(),
            )])),
            n => Err(Diagnostics(vec![self.diag(
                None,
                format!("the file holds {n} YAML documents: expected exactly one PantheraPlatform"),
            )])),
        }
    }

    fn yaml_error(&self, e: &serde_yaml::Error, path: Option<String>) -> Diagnostics {
        let position = e
            .location()
            .map(|l| Position {
                line: l.line(),
                column: l.column(),
            })
            .or_else(|| path.as_deref().and_then(|p| self.positions.find(p)));
        let mut message = e.to_string();
        // serde_yaml appends " at line L column C"; the position is printed in front already.
        if let Some(cut) = message.find(" at line ") {
            message.truncate(cut);
        }
        // serde_yaml also prefixes the parent's path; the full path is printed separately.
        if path.is_some()
            && let Some((prefix, rest)) = message.split_once(": ")
            && !prefix.contains(' ')
        {
            message = rest.to_string();
        }
        Diagnostics(vec![Diagnostic {
            file: self.file.to_string(),
            position,
            path,
            message,
        }])
    }

    fn check_envelope(&self, raw: &serde_yaml::Value) -> Result<()> {
        let mut problems = Vec::new();
        let Some(map) = raw.as_mapping() else {
            return Err(Diagnostics(vec![self.diag(
                None,
                "expected a mapping (a PantheraPlatform object)".into(),
            )]));
        };
        let field = |k: &str| {
            map.get(k)
                .and_then(serde_yaml::Value::as_str)
                .map(str::to_string)
        };
        for (key, expected) in [("apiVersion", API_VERSION), ("kind", KIND)] {
            let found = field(key);
            if found.as_deref() != Some(expected) {
                let found = found.as_deref().unwrap_or("nothing");
                let message = format!("expected {key} {expected}, got {found}");
                problems.push(self.diag(Some(key.into()), message));
            }
        }
        for key in map.keys() {
            let name = key.as_str().unwrap_or_default();
            if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&name) {
                problems.push(self.diag(
                    Some(name.to_string()),
                    "unknown field: expected apiVersion, kind, metadata, spec".into(),
                ));
            }
        }
        if !map.contains_key("spec") {
            problems.push(self.diag(None, "spec is required".into()));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(problems))
        }
    }

    fn deserialize(&self, text: &str) -> Result<PantheraPlatform> {
        let de = serde_yaml::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = (path != "." && !path.is_empty()).then_some(path);
            self.yaml_error(e.inner(), path)
        })
    }

    fn validate(&self, platform: &PantheraPlatform) -> Result<()> {
        let mut problems = Vec::new();
        problems.extend(self.check_metadata(platform));
        let value = match serde_json::to_value(platform) {
            Ok(v) => v,
            Err(e) => {
                return Err(Diagnostics(vec![
                    self.diag(None, format!("cannot serialize the platform: {e}")),
                ]));
            }
        };
        let schema = crd_schema();
        if let Some(spec_schema) = schema.pointer("/properties/spec") {
            let spec = value.get("spec").cloned().unwrap_or(Value::Null);
            for v in SchemaChecker::default().check(spec_schema, &spec, "spec") {
                problems.push(self.diag(Some(v.path), v.message));
            }
        }
        // Rules only on a structurally valid object, like the API server does.
        if problems.is_empty() {
            for (path, message) in rules::check(platform) {
                problems.push(self.diag(Some(path), message));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(problems))
        }
    }

    fn check_metadata(&self, platform: &PantheraPlatform) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let dns = regex_lite_dns();
        match platform.metadata.name.as_deref() {
            None => out.push(self.diag(Some("metadata.name".into()), "is required".into())),
            Some(name) if !dns(name) || name.len() > 24 => out.push(self.diag(
                Some("metadata.name".into()),
                format!("{name:?} must be a DNS-1123 label of at most 24 characters (lowercase letters, digits, '-')"),
            )),
            _ => {}
        }
        if let Some(ns) = platform.metadata.namespace.as_deref()
            && (!dns(ns) || ns.len() > 63)
        {
            out.push(self.diag(
                Some("metadata.namespace".into()),
                format!("{ns:?} must be a DNS-1123 label (lowercase letters, digits, '-')"),
            ));
        }
        out
    }
}

fn regex_lite_dns() -> impl Fn(&str) -> bool {
    |s: &str| {
        let bytes = s.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_lowercase()
            && bytes
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    }
}

/// The openAPIV3Schema of the generated CRD, as JSON.
fn crd_schema() -> Value {
    PantheraPlatform::crd()
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null)
}

/// The CRD's CEL rules evaluated by kube-cel: what an API server would say. `validate` uses the
/// native rules; this is their reference (see the equivalence tests).
pub fn cel_messages(platform: &PantheraPlatform) -> Vec<String> {
    let schema = crd_schema();
    let value = serde_json::to_value(platform).unwrap_or(Value::Null);
    match kube::core::cel::Validator::new().validate(&schema, &value, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_vec().into_iter().map(|e| e.message).collect(),
    }
}

/// The native rules' messages for the same platform.
pub fn native_messages(platform: &PantheraPlatform) -> Vec<String> {
    rules::check(platform).into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests;
