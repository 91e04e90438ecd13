//! Field sets as in `metadata.managedFields[].fieldsV1`: which fields of an object a manager owns.
//!
//! A set holds paths such as `["f:spec", "f:containers", "k:{\"name\":\"app\"}", "f:image"]`; a
//! path ending in `"."` means the list item or map itself is owned.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::status::{ApiError, ApiResult};

pub type FieldPath = Vec<String>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(pub BTreeSet<FieldPath>);

/// How a list merges and how its items are named in field paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Answers "what kind of list is at this path" (path = field names from the root).
pub trait ListTypes {
    fn list_type(&self, path: &[&str]) -> ListType;

    /// Whether the map or struct at this path is atomic (`x-kubernetes-map-type: atomic`): owned
    /// and replaced as a whole, recorded as one field (`f:selector: {}`).
    fn atomic_map(&self, path: &[&str]) -> bool {
        builtin_atomic_map(path)
    }

    /// Whether the node at this path exists in every object of the kind (so an `Update` never
    /// records a `"."` for it): `metadata` always; for built-in kinds also Go's non-pointer
    /// structs and non-omitempty lists.
    fn always_present(&self, path: &[&str]) -> bool {
        builtin_always_present(path)
    }
}

pub fn builtin_always_present(path: &[&str]) -> bool {
    match path {
        ["metadata"] => true,
        ["metadata", ..] => false,
        _ => matches!(
            path.last().copied().unwrap_or(""),
            "spec"
                | "status"
                | "metadata"
                | "template"
                | "strategy"
                | "updateStrategy"
                | "resources"
                | "containers"
                | "jobTemplate"
        ),
    }
}

/// The atomic maps and structs of the built-in kinds: `LabelSelector` wherever it is used, a
/// Service's and a Pod's `selector`/`nodeSelector` maps, and the key and field references of
/// environment variables.
pub fn builtin_atomic_map(path: &[&str]) -> bool {
    path.first() != Some(&"metadata")
        && matches!(
            path.last().copied().unwrap_or(""),
            "selector"
                | "podSelector"
                | "namespaceSelector"
                | "labelSelector"
                | "nodeSelector"
                | "secretKeyRef"
                | "configMapKeyRef"
                | "fieldRef"
                | "resourceFieldRef"
        )
}

/// Merge keys of the built-in kinds Panthera uses (the `patchMergeKey`/`listMapKeys` tags of the
/// Go types); any other list is atomic.
pub struct BuiltinListTypes;

impl ListTypes for BuiltinListTypes {
    fn list_type(&self, path: &[&str]) -> ListType {
        let last = path.last().copied().unwrap_or("");
        let parent = path
            .len()
            .checked_sub(2)
            .and_then(|i| path.get(i))
            .copied()
            .unwrap_or("");
        let keys = |k: &[&str]| ListType::Map(k.iter().map(|s| (*s).to_owned()).collect());
        match last {
            "finalizers" if path.len() == 2 && parent == "metadata" => ListType::Set,
            "ownerReferences" => keys(&["uid"]),
            "containers"
            | "initContainers"
            | "ephemeralContainers"
            | "volumes"
            | "env"
            | "imagePullSecrets"
            | "containerStatuses"
            | "initContainerStatuses"
            | "resourceClaims" => keys(&["name"]),
            "volumeMounts" => keys(&["mountPath"]),
            "volumeDevices" => keys(&["devicePath"]),
            "conditions" => keys(&["type"]),
            "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
            "hostAliases" => keys(&["ip"]),
            "ports" if path.first() == Some(&"spec") && path.len() == 2 => {
                keys(&["port", "protocol"])
            }
            "ports"
                if matches!(
                    parent,
                    "containers" | "initContainers" | "ephemeralContainers"
                ) =>
            {
                keys(&["containerPort", "protocol"])
            }
            _ => ListType::Atomic,
        }
    }
}

/// Fields never tracked in managedFields.
fn ignored(path: &[&str]) -> bool {
    match path {
        ["apiVersion"] | ["kind"] | ["status"] => false,
        ["metadata", f] => matches!(
            *f,
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "managedFields"
                | "deletionTimestamp"
                | "deletionGracePeriodSeconds"
                | "selfLink"
                | "generateName"
        ),
        _ => false,
    }
}

pub fn item_key(item: &Value, list: &ListType) -> Option<String> {
    match list {
        ListType::Atomic => None,
        ListType::Set => Some(format!(
            "v:{}",
            serde_json::to_string(item).unwrap_or_default()
        )),
        ListType::Map(keys) => {
            let mut k = Map::new();
            for key in keys {
                if let Some(v) = item.get(key) {
                    k.insert(key.clone(), v.clone());
                } else if key == "protocol" && !k.is_empty() {
                    // The apiserver defaults port protocols before computing keys.
                    k.insert(key.clone(), Value::String("TCP".into()));
                }
            }
            if k.is_empty() {
                return None;
            }
            Some(format!(
                "k:{}",
                serde_json::to_string(&Value::Object(k)).unwrap_or_default()
            ))
        }
    }
}

/// Which top-level fields a field set covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything (kinds without a status subresource).
    All,
    /// Everything but `status`.
    Main,
    /// Only `status`.
    Status,
}

impl FieldSet {
    /// The fields set in `obj`.
    pub fn of_object(obj: &Value, lists: &dyn ListTypes, scope: Scope) -> ApiResult<Self> {
        let mut set = FieldSet::default();
        if let Value::Object(m) = obj {
            for (k, v) in m {
                if matches!(k.as_str(), "apiVersion" | "kind") {
                    continue;
                }
                let in_scope = match scope {
                    Scope::All => true,
                    Scope::Main => k != "status",
                    Scope::Status => k == "status",
                };
                if in_scope {
                    let mut names = vec![k.as_str()];
                    let mut path = vec![format!("f:{k}")];
                    collect(v, &mut names, &mut path, lists, &mut set.0)?;
                }
            }
        }
        Ok(set)
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any path in the set lies under `prefix` (or is it).
    pub fn has_prefix(&self, prefix: &[String]) -> bool {
        self.0.iter().any(|p| p.starts_with(prefix))
    }

    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.0 {
            let mut node = &mut root;
            for seg in path {
                let entry = node
                    .entry(seg.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                let Value::Object(next) = entry else { break };
                node = next;
            }
        }
        Value::Object(root)
    }

    pub fn from_fields_v1(v: &Value) -> FieldSet {
        fn walk(v: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
            match v.as_object() {
                Some(m) if !m.is_empty() => {
                    for (k, child) in m {
                        path.push(k.clone());
                        if k == "." {
                            out.insert(path.clone());
                        } else {
                            walk(child, path, out);
                        }
                        path.pop();
                    }
                }
                _ => {
                    out.insert(path.clone());
                }
            }
        }
        let mut out = BTreeSet::new();
        if let Some(m) = v.as_object() {
            for (k, child) in m {
                let mut path = vec![k.clone()];
                walk(child, &mut path, &mut out);
            }
        }
        FieldSet(out)
    }

    /// Paths that name a value (not a "this item exists" marker).
    pub fn leaves(&self) -> impl Iterator<Item = &FieldPath> {
        self.0.iter().filter(|p| p.last().is_some_and(|s| s != "."))
    }
}

fn collect<'a>(
    v: &'a Value,
    names: &mut Vec<&'a str>,
    path: &mut FieldPath,
    lists: &dyn ListTypes,
    out: &mut BTreeSet<FieldPath>,
) -> ApiResult<()> {
    if ignored(names) {
        return Ok(());
    }
    match v {
        Value::Object(m) if !m.is_empty() && !lists.atomic_map(names) => {
            for (k, child) in m {
                names.push(k.as_str());
                path.push(format!("f:{k}"));
                let r = collect(child, names, path, lists, out);
                path.pop();
                names.pop();
                r?;
            }
        }
        Value::Array(items) => {
            let lt = lists.list_type(names);
            if lt == ListType::Atomic || items.is_empty() {
                out.insert(path.clone());
                return Ok(());
            }
            for item in items {
                let Some(key) = item_key(item, &lt) else {
                    return Err(ApiError::bad_request(format!(
                        "failed to compute managed fields: .{}: associative list with keys has an element that omits all key fields {:?}",
                        names.join("."),
                        match &lt {
                            ListType::Map(k) => k.clone(),
                            _ => vec![],
                        }
                    )));
                };
                path.push(key);
                if matches!(lt, ListType::Map(_)) {
                    path.push(".".into());
                    out.insert(path.clone());
                    path.pop();
                    if let Value::Object(fields) = item {
                        for (k, child) in fields {
                            names.push(k.as_str());
                            path.push(format!("f:{k}"));
                            let r = collect(child, names, path, lists, out);
                            path.pop();
                            names.pop();
                            r?;
                        }
                    }
                } else {
                    out.insert(path.clone());
                }
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
    Ok(())
}

/// The value a path names in `obj` (`None` if absent).
pub fn value_at<'a>(obj: &'a Value, path: &[String], lists: &dyn ListTypes) -> Option<&'a Value> {
    let mut cur = obj;
    let mut names: Vec<String> = Vec::new();
    for seg in path {
        if seg == "." {
            return Some(cur);
        }
        if let Some(field) = seg.strip_prefix("f:") {
            cur = cur.get(field)?;
            names.push(field.to_owned());
        } else {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let lt = lists.list_type(&refs);
            let items = cur.as_array()?;
            cur = items
                .iter()
                .find(|i| item_key(i, &lt).as_deref() == Some(seg.as_str()))?;
        }
    }
    Some(cur)
}

/// Removes the field a path names; a path ending in `"."` removes the whole list item.
pub fn remove_at(obj: &mut Value, path: &[String], lists: &dyn ListTypes) {
    fn go(cur: &mut Value, path: &[String], names: &mut Vec<String>, lists: &dyn ListTypes) {
        let Some((seg, rest)) = path.split_first() else {
            return;
        };
        let is_last = rest.is_empty() || rest == ["."];
        if let Some(field) = seg.strip_prefix("f:") {
            let Some(m) = cur.as_object_mut() else { return };
            if rest.is_empty() {
                m.remove(field);
            } else if let Some(child) = m.get_mut(field) {
                names.push(field.to_owned());
                go(child, rest, names, lists);
                names.pop();
            }
        } else {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let lt = lists.list_type(&refs);
            let Some(items) = cur.as_array_mut() else {
                return;
            };
            if is_last {
                items.retain(|i| item_key(i, &lt).as_deref() != Some(seg.as_str()));
            } else if let Some(item) = items
                .iter_mut()
                .find(|i| item_key(i, &lt).as_deref() == Some(seg.as_str()))
            {
                go(item, rest, names, lists);
            }
        }
    }
    go(obj, path, &mut Vec::new(), lists);
}

/// Renders a path for messages: `.spec.containers[name="app"].image`.
pub fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for seg in path {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:") {
            let inner = serde_json::from_str::<Map<String, Value>>(k)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|_| k.to_owned());
            s.push('[');
            s.push_str(&inner);
            s.push(']');
        } else if let Some(v) = seg.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_fields_v1() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"a": "b"}, "finalizers": ["f1"]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "i", "args": ["x"]}]}}}
        });
        let set = FieldSet::of_object(&obj, &BuiltinListTypes, Scope::Main).unwrap();
        let v1 = set.to_fields_v1();
        assert_eq!(
            v1["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["."],
            json!({})
        );
        assert_eq!(v1["f:metadata"]["f:finalizers"]["v:\"f1\""], json!({}));
        assert!(v1["f:metadata"].get("f:name").is_none());
        assert_eq!(FieldSet::from_fields_v1(&v1), set);
        let image: FieldPath = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"app\"}",
            "f:image",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(value_at(&obj, &image, &BuiltinListTypes), Some(&json!("i")));
        let mut obj2 = obj.clone();
        remove_at(&mut obj2, &image, &BuiltinListTypes);
        assert!(
            obj2["spec"]["template"]["spec"]["containers"][0]
                .get("image")
                .is_none()
        );
        assert_eq!(
            display_path(&image),
            ".spec.template.spec.containers[name=\"app\"].image"
        );
    }
}
