//! The `scale` subresource of Deployments and StatefulSets (`kubectl scale`, HPAs).

use serde_json::{Value, json};

use crate::lifecycle::{self, WriteOptions};
use crate::object::meta_str;
use crate::patch::{PatchType, apply_patch, parse_json};
use crate::resources::ResourceType;
use crate::state::SimState;
use crate::status::{ApiError, ApiResult};

pub fn supported(rt: &ResourceType) -> bool {
    rt.group == "apps" && matches!(rt.kind.as_str(), "Deployment" | "StatefulSet")
}

/// `autoscaling/v1` Scale for an object, as the apiserver derives it.
fn scale_of(obj: &Value) -> Value {
    let replicas = obj
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .cloned()
        .unwrap_or(json!(1));
    let status_replicas = obj
        .get("status")
        .and_then(|s| s.get("replicas"))
        .cloned()
        .unwrap_or(json!(0));
    let selector = obj
        .get("spec")
        .and_then(|s| s.get("selector"))
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta_str(obj, "name"),
            "namespace": meta_str(obj, "namespace"),
            "uid": meta_str(obj, "uid"),
            "resourceVersion": meta_str(obj, "resourceVersion"),
            "creationTimestamp": meta_str(obj, "creationTimestamp"),
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": status_replicas, "selector": selector},
    })
}

/// One request to `/scale`.
pub struct ScaleRequest<'a> {
    pub verb: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
}

/// Handles get, update and patch of `/scale`; returns the resulting Scale.
pub fn handle(
    state: &SimState,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    req: &ScaleRequest<'_>,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let ScaleRequest {
        verb,
        content_type,
        body,
    } = *req;
    let current = lifecycle::get(state, rt, ns, name)?;
    let scale = scale_of(&current);
    let desired = match verb {
        "get" => return Ok(scale),
        "update" => parse_json(body)?,
        "patch" => apply_patch(
            &scale,
            PatchType::from_content_type(content_type)?,
            body,
            &crate::fieldset::BuiltinListTypes,
            false,
        )?,
        other => {
            return Err(ApiError::method_not_allowed(format!(
                "{other} is not supported on the scale subresource"
            )));
        }
    };
    let sent_rv = meta_str(&desired, "resourceVersion");
    if !sent_rv.is_empty() && sent_rv != meta_str(&current, "resourceVersion") {
        return Err(ApiError::stale_resource_version(rt, name));
    }
    let Some(replicas) = desired
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
    else {
        return Err(ApiError::invalid(
            rt,
            name,
            vec![crate::status::Cause::new(
                "FieldValueRequired",
                "spec.replicas",
                "Required value",
            )],
        ));
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            rt,
            name,
            vec![crate::status::Cause::new(
                "FieldValueInvalid",
                "spec.replicas",
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    let patch = json!({"spec": {"replicas": replicas}}).to_string();
    let main_opts = WriteOptions {
        status: false,
        ..opts.clone()
    };
    let patched = lifecycle::patch(
        state,
        rt,
        ns,
        name,
        PatchType::Merge,
        patch.as_bytes(),
        &main_opts,
    )?;
    Ok(scale_of(&patched.object))
}
