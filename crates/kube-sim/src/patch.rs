//! Non-apply patch types: JSON merge patch, JSON patch and strategic merge patch.

use serde_json::{Map, Value};

use crate::fieldset::{ListType, ListTypes, item_key};
use crate::status::{ApiError, ApiResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    StrategicMerge,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> ApiResult<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/strategic-merge-patch+json" => Ok(Self::StrategicMerge),
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Ok(Self::Apply),
            _ => Err(ApiError::unsupported_media_type(ct)),
        }
    }
}

pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("failed to decode request body as JSON: {e}")))
}

/// Applies a merge, JSON or strategic-merge patch to `target`.
pub fn apply_patch(
    target: &Value,
    kind: PatchType,
    body: &[u8],
    lists: &dyn ListTypes,
    custom: bool,
) -> ApiResult<Value> {
    match kind {
        PatchType::Merge => {
            let patch = parse_json(body)?;
            let mut out = target.clone();
            json_patch::merge(&mut out, &patch);
            Ok(out)
        }
        PatchType::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("failed to decode JSON patch: {e}")))?;
            let mut out = target.clone();
            for (index, op) in patch.0.iter().enumerate() {
                // Like the API server's JSON patch library: a missing path tests equal to
                // null. kube-rs' finalizer helper relies on it to add the first finalizer.
                if let json_patch::PatchOperation::Test(test) = op
                    && test.value.is_null()
                    && out.pointer(test.path.as_str()).is_none()
                {
                    continue;
                }
                json_patch::patch(&mut out, std::slice::from_ref(op)).map_err(|e| {
                    tracing::debug!("JSON patch operation /{index} failed: {e}");
                    // The apiserver answers a failed operation with this generic message.
                    ApiError::json_patch_failed()
                })?;
            }
            Ok(out)
        }
        PatchType::StrategicMerge => {
            if custom {
                // Like the apiserver: CRDs have no Go struct tags to drive a strategic merge.
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json (strategic merge patch is not supported for custom resources)",
                ));
            }
            let patch = parse_json(body)?;
            let mut out = target.clone();
            strategic_merge(&mut out, &patch, &mut Vec::new(), lists)?;
            Ok(out)
        }
        PatchType::Apply => Err(ApiError::internal(
            "failed to patch: apply patches go through server-side apply",
        )),
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn strategic_merge(
    target: &mut Value,
    patch: &Value,
    names: &mut Vec<String>,
    lists: &dyn ListTypes,
) -> ApiResult<()> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = strip_directives(patch);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return Ok(());
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown patch directive $patch: {other}"
            )));
        }
        None => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    for (k, pv) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(existing)), Value::Array(remove)) = (t.get_mut(field), pv) {
                existing.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            // $setElementOrder and $retainKeys only affect ordering/pruning; order is not kept here.
            continue;
        }
        names.push(k.clone());
        match pv {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(_) if t.get(k).is_some_and(Value::is_object) => {
                if let Some(tv) = t.get_mut(k) {
                    strategic_merge(tv, pv, names, lists)?;
                }
            }
            Value::Array(items) => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let lt = lists.list_type(&refs);
                let replace = items
                    .iter()
                    .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
                match (&lt, t.get_mut(k)) {
                    (ListType::Atomic, _) | (_, None) => {
                        let kept: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .map(strip_directives)
                            .collect();
                        t.insert(k.clone(), Value::Array(kept));
                    }
                    _ if replace => {
                        let kept: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .map(strip_directives)
                            .collect();
                        t.insert(k.clone(), Value::Array(kept));
                    }
                    (_, Some(existing)) => {
                        if !existing.is_array() {
                            *existing = Value::Array(Vec::new());
                        }
                        if let Value::Array(list) = existing {
                            for item in items {
                                let key_src = strip_directives(item);
                                let key = item_key(&key_src, &lt);
                                let pos = key.as_ref().and_then(|key| {
                                    list.iter()
                                        .position(|x| item_key(x, &lt).as_ref() == Some(key))
                                });
                                let delete =
                                    item.get("$patch").and_then(Value::as_str) == Some("delete");
                                match (pos, delete) {
                                    (Some(i), true) => {
                                        list.remove(i);
                                    }
                                    (None, true) => {}
                                    (Some(i), false) => {
                                        if let Some(x) = list.get_mut(i) {
                                            strategic_merge(x, item, names, lists)?;
                                        }
                                    }
                                    (None, false) => list.push(key_src),
                                }
                            }
                        }
                    }
                }
            }
            _ => {
                t.insert(k.clone(), strip_directives(pv));
            }
        }
        names.pop();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldset::BuiltinListTypes;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let target = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "b", "image": "b:2"}, {"name": "a", "$patch": "delete"}, {"name": "c", "image": "c:1"}]}}}});
        let out = apply_patch(
            &target,
            PatchType::StrategicMerge,
            patch.to_string().as_bytes(),
            &BuiltinListTypes,
            false,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}])
        );
    }

    #[test]
    fn json_patch_test_of_null_passes_on_a_missing_path() {
        let target = json!({"metadata": {"name": "a"}});
        let body = br#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["f"]}]"#;
        let out = apply_patch(&target, PatchType::Json, body, &BuiltinListTypes, true).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["f"]));
        let wrong = br#"[{"op":"test","path":"/metadata/name","value":null}]"#;
        assert!(apply_patch(&target, PatchType::Json, wrong, &BuiltinListTypes, true).is_err());
    }

    #[test]
    fn json_patch_failure_is_422() {
        let err = apply_patch(
            &json!({}),
            PatchType::Json,
            br#"[{"op":"test","path":"/a","value":1}]"#,
            &BuiltinListTypes,
            false,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
    }
}
