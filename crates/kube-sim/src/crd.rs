//! CustomResourceDefinitions: validating them, marking them Established and serving their kinds.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::object::{is_deleting, meta_str, now_rfc3339};
use crate::resources::{GroupResource, ResourceType};
use crate::state::SimState;
use crate::status::{ApiError, ApiResult, Cause};
use crate::validation::{StructuralSchema, empty_object_schema, version_schema};

fn crd_type(state: &SimState) -> Option<Arc<ResourceType>> {
    state.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Validates a CRD and fills the status a real apiserver reports once it serves the kind.
pub fn prepare(state: &SimState, crd: &mut Value) -> ApiResult<()> {
    let Some(rt) = crd_type(state) else {
        return Ok(());
    };
    let name = meta_str(crd, "name").to_owned();
    let group = s(crd, &["spec", "group"]).to_owned();
    let plural = s(crd, &["spec", "names", "plural"]).to_owned();
    let kind = s(crd, &["spec", "names", "kind"]).to_owned();
    let scope = s(crd, &["spec", "scope"]).to_owned();
    let mut causes = Vec::new();
    if group.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.group",
            "Required value",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if kind.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    if !matches!(scope.as_str(), "Namespaced" | "Cluster") {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
        ));
    }
    if name != format!("{plural}.{group}") {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let versions = crd
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.versions",
            "Required value: must have exactly one version marked as storage version",
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: \"array\": must have exactly one version marked as storage version",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if let Some(schema) = version_schema(crd, v)
            && let Err(e) = StructuralSchema::compile(schema)
        {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!("spec.versions[{i}].schema.openAPIV3Schema"),
                format!("Invalid value: \"object\": {e}"),
            ));
        }
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&rt, &name, causes));
    }
    let now = now_rfc3339();
    let stored: Vec<Value> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    if let Some(m) = crd.as_object_mut() {
        m.insert(
            "status".into(),
            json!({
                "acceptedNames": crd_names(m.get("spec")),
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now}
                ],
                "storedVersions": stored,
            }),
        );
    }
    Ok(())
}

fn crd_names(spec: Option<&Value>) -> Value {
    spec.and_then(|s| s.get("names"))
        .cloned()
        .unwrap_or_else(|| json!({}))
}

/// Registers (or, once the CRD is gone or being deleted, removes) the kinds a CRD serves.
pub fn sync(state: &SimState, crd: &Value) {
    let group = s(crd, &["spec", "group"]).to_owned();
    let plural = s(crd, &["spec", "names", "plural"]).to_owned();
    let gr = GroupResource {
        group: group.clone(),
        resource: plural.clone(),
    };
    let still_stored = state
        .store
        .get(
            &GroupResource {
                group: "apiextensions.k8s.io".into(),
                resource: "customresourcedefinitions".into(),
            },
            "",
            meta_str(crd, "name"),
        )
        .is_some();
    if !still_stored || is_deleting(crd) {
        state.registry.write().remove_group_resource(&gr);
        if !still_stored {
            // Deleting a CRD deletes all its objects.
            let (items, _) = state.store.list(&gr, None);
            for item in items {
                let _ = state.store.remove(
                    &gr,
                    meta_str(&item, "namespace"),
                    meta_str(&item, "name"),
                    None,
                );
            }
        }
        return;
    }
    let spec = crd.get("spec").cloned().unwrap_or_default();
    let names = spec.get("names").cloned().unwrap_or_default();
    let list = |k: &str| -> Vec<String> {
        names
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut registry = state.registry.write();
    registry.remove_group_resource(&gr);
    for v in spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let schema = version_schema(crd, v).unwrap_or_else(empty_object_schema);
        let Ok(schema) = StructuralSchema::compile(schema) else {
            continue;
        };
        registry.insert(ResourceType {
            group: group.clone(),
            version: s(v, &["name"]).to_owned(),
            kind: s(&names, &["kind"]).to_owned(),
            plural: plural.clone(),
            singular: match s(&names, &["singular"]) {
                "" => s(&names, &["kind"]).to_lowercase(),
                other => other.to_owned(),
            },
            namespaced: s(&spec, &["scope"]) == "Namespaced",
            short_names: list("shortNames"),
            categories: list("categories"),
            status_subresource: v
                .get("subresources")
                .and_then(|s| s.get("status"))
                .is_some(),
            tracks_generation: true,
            schema: Some(Arc::new(schema)),
            custom: true,
        });
    }
}
