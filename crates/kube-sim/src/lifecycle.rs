//! What happens to an object on each write: identity and immutable fields, status subresource
//! separation, defaults, validation, managedFields, generation, no-op detection, dry-run,
//! finalizers and deletion.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::apply::{ApplyRequest, apply, empty_like, restrict_to_scope};
use crate::fieldset::{BuiltinListTypes, ListTypes, Scope};
use crate::managed::{track_update, without_timestamps};
use crate::object::{
    finalizers, is_deleting, meta, meta_str, now_rfc3339, remove_meta, resource_version,
    set_finalizers, set_meta, spec_part,
};
use crate::patch::{PatchType, apply_patch};
use crate::resources::ResourceType;
use crate::state::SimState;
use crate::status::{ApiError, ApiResult, Cause};
use crate::store::StoreError;

/// Options every write takes from its query string.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub manager: String,
    pub force: bool,
    /// The request targets the `/status` subresource.
    pub status: bool,
    /// `fieldValidation=Strict`: unknown fields in a custom resource are an error, not pruned.
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

pub fn lists_for(rt: &ResourceType) -> &dyn ListTypes {
    match &rt.schema {
        Some(s) => s.as_ref(),
        None => &BuiltinListTypes,
    }
}

fn scope(rt: &ResourceType, status: bool) -> Scope {
    if status {
        Scope::Status
    } else if rt.status_subresource {
        Scope::Main
    } else {
        Scope::All
    }
}

/// Presents a stored object at the version the client asked for (custom resources with several
/// versions use the `None` conversion strategy: only apiVersion changes).
pub fn present(rt: &ResourceType, obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(rt.api_version()));
    }
    out
}

fn store_conflict(rt: &ResourceType, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(rt, name),
        StoreError::AlreadyExists => ApiError::already_exists(rt, name),
        StoreError::Conflict { .. } => ApiError::stale_resource_version(rt, name),
        StoreError::Expired { requested, oldest } => {
            ApiError::gone(format!("too old resource version: {requested} ({oldest})"))
        }
    }
}

fn check_type(rt: &ResourceType, body: &mut Value) -> ApiResult<()> {
    let Some(m) = body.as_object_mut() else {
        return Err(ApiError::bad_request(
            "failed to decode object: the request body is not a JSON object",
        ));
    };
    let kind = m.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = m.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if (!kind.is_empty() && kind != rt.kind)
        || (!api_version.is_empty() && api_version != rt.api_version())
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({}) or kind {kind} is not {}",
            rt.api_version(),
            rt.kind
        )));
    }
    m.insert("apiVersion".into(), json!(rt.api_version()));
    m.insert("kind".into(), json!(rt.kind));
    if !m.get("metadata").is_some_and(Value::is_object) {
        m.insert("metadata".into(), json!({}));
    }
    if !rt.custom {
        // The apiserver decodes quantities and prints them back in canonical form.
        panthera_quantity::canonicalize_object(body);
        drop_empty_maps(body);
    }
    Ok(())
}

/// Go drops empty `omitempty` maps and lists when it decodes a built-in object: `labels: {}`,
/// `data: {}` or `finalizers: []` are not stored.
fn drop_empty_maps(body: &mut Value) {
    let empty = |v: &Value| match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        _ => false,
    };
    if let Some(m) = body.as_object_mut() {
        for k in ["data", "binaryData", "stringData"] {
            if m.get(k).is_some_and(empty) {
                m.remove(k);
            }
        }
    }
    if let Some(meta) = crate::object::meta_mut(body) {
        for k in ["labels", "annotations", "finalizers", "ownerReferences"] {
            if meta.get(k).is_some_and(empty) {
                meta.remove(k);
            }
        }
    }
}

/// Unknown fields of a built-in object: a 400 with `fieldValidation=Strict`, else dropped (the
/// apiserver's decoder drops them and warns).
fn check_unknown_fields(rt: &ResourceType, obj: &mut Value, strict: bool) -> ApiResult<()> {
    if rt.custom {
        return Ok(());
    }
    let unknown = crate::typed::unknown_fields(&rt.group, &rt.kind, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    if strict {
        let fields: Vec<String> = unknown
            .iter()
            .map(|p| format!("unknown field \"{}\"", crate::typed::dotted(p)))
            .collect();
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            rt.kind,
            rt.version,
            rt.kind,
            fields.join(", ")
        )));
    }
    crate::typed::remove(obj, &unknown);
    Ok(())
}

/// A Secret's `stringData` is write-only: the apiserver folds it into `data` (base64), its keys
/// winning over the same keys of `data`.
fn fold_string_data(rt: &ResourceType, obj: &mut Value) {
    use base64::Engine as _;
    if !(rt.group.is_empty() && rt.kind == "Secret") {
        return;
    }
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let Some(string_data) = m.remove("stringData") else {
        return;
    };
    let Value::Object(string_data) = string_data else {
        return;
    };
    if string_data.is_empty() {
        return;
    }
    let data = m
        .entry("data")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if !data.is_object() {
        *data = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(data) = data {
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default();
            data.insert(
                k,
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

fn check_namespace(state: &SimState, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<()> {
    if !rt.namespaced {
        return Ok(());
    }
    let Some(ns_rt) = state.core("namespaces") else {
        return Ok(());
    };
    match state.store.get(&ns_rt.group_resource(), "", ns) {
        None => Err(ApiError::namespace_not_found(ns)),
        Some(n) if is_deleting(&n) => Err(ApiError::namespace_terminating(rt, name, ns)),
        Some(_) => Ok(()),
    }
}

fn validate_custom(
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
    name: &str,
    strict: bool,
) -> ApiResult<()> {
    if let Some(schema) = &rt.schema {
        let before = strict.then(|| obj.clone());
        schema.default_and_prune(obj);
        if let Some(before) = before {
            let unknown = crate::validation::pruned_paths(&before, obj);
            if !unknown.is_empty() {
                let fields: Vec<String> = unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                    rt.kind,
                    rt.version,
                    rt.kind,
                    fields.join(", ")
                )));
            }
        }
        let causes = schema.validate(obj, old);
        if !causes.is_empty() {
            return Err(ApiError::invalid(rt, name, causes));
        }
        crate::managed::prune_to_object(obj, schema.as_ref())?;
    }
    Ok(())
}

/// Creates an object; `applied` carries managedFields already computed by server-side apply.
pub fn create(
    state: &SimState,
    rt: &ResourceType,
    ns: &str,
    mut body: Value,
    opts: &WriteOptions,
    applied: bool,
) -> ApiResult<Value> {
    check_type(rt, &mut body)?;
    check_unknown_fields(rt, &mut body, opts.strict)?;
    if opts.status {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource (create on a status subresource)",
        ));
    }
    if !meta_str(&body, "resourceVersion").is_empty() {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut name = meta_str(&body, "name").to_owned();
    if name.is_empty() {
        let prefix = meta_str(&body, "generateName").to_owned();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                rt,
                "",
                vec![Cause::new(
                    "FieldValueRequired",
                    "metadata.name",
                    "Required value: name or generateName is required",
                )],
            ));
        }
        name = format!("{prefix}{}", crate::defaults::random_suffix());
        set_meta(&mut body, "name", json!(name));
    }
    if let Some(cause) = crate::defaults::validate_name(&rt.kind, &rt.group, &name) {
        return Err(ApiError::invalid(rt, &name, vec![cause]));
    }
    let body_ns = meta_str(&body, "namespace").to_owned();
    if rt.namespaced {
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        set_meta(&mut body, "namespace", json!(ns));
    } else {
        remove_meta(&mut body, "namespace");
    }
    check_namespace(state, rt, ns, &name)?;
    fold_string_data(rt, &mut body);
    set_meta(&mut body, "uid", json!(uuid::Uuid::new_v4().to_string()));
    set_meta(&mut body, "creationTimestamp", json!(now_rfc3339()));
    for f in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        remove_meta(&mut body, f);
    }
    if rt.tracks_generation || rt.custom {
        set_meta(&mut body, "generation", json!(1));
    } else {
        remove_meta(&mut body, "generation");
    }
    if rt.status_subresource
        && let Some(m) = body.as_object_mut()
    {
        m.remove("status");
    }
    crate::defaults::apply_builtin_defaults(&rt.kind, &rt.group, &mut body, true);
    validate_custom(rt, &mut body, None, &name, opts.strict)?;
    let causes = crate::defaults::validate_object(&rt.kind, &rt.group, &body);
    if !causes.is_empty() {
        return Err(ApiError::invalid(rt, &name, causes));
    }
    if rt.group == "apiextensions.k8s.io" {
        crate::crd::prepare(state, &mut body)?;
    }
    if !applied {
        remove_meta(&mut body, "managedFields");
        track_update(
            None,
            &mut body,
            &opts.manager,
            &rt.api_version(),
            scope(rt, false),
            lists_for(rt),
        )?;
    }
    crate::defaults::prepare_for_create(
        &rt.kind,
        &rt.group,
        &mut body,
        state.store.current_resource_version(),
    );
    if opts.dry_run {
        return Ok(present(rt, &body));
    }
    let stored = state
        .store
        .create(&rt.group_resource(), body)
        .map_err(|e| store_conflict(rt, &name, e))?;
    if rt.group == "apiextensions.k8s.io" {
        crate::crd::sync(state, &stored);
    }
    Ok(present(rt, &stored))
}

enum Prepared {
    NoOp,
    Write(Value),
    Remove(Value),
}

/// Turns a client's new version of an object into what would be stored.
fn prepare_update(
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    opts: &WriteOptions,
    applied: bool,
) -> ApiResult<Prepared> {
    check_type(rt, &mut new)?;
    check_unknown_fields(rt, &mut new, opts.strict)?;
    let name = meta_str(old, "name").to_owned();
    let new_name = meta_str(&new, "name");
    if !new_name.is_empty() && new_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({new_name}) does not match the name on the URL ({name})"
        )));
    }
    let new_ns = meta_str(&new, "namespace");
    if rt.namespaced && !new_ns.is_empty() && new_ns != meta_str(old, "namespace") {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let sent_rv = meta_str(&new, "resourceVersion").to_owned();
    if !sent_rv.is_empty() && sent_rv != meta_str(old, "resourceVersion") {
        return Err(ApiError::stale_resource_version(rt, &name));
    }
    if opts.status {
        // Through /status only status changes; everything else stays as stored.
        let status = new.get("status").cloned();
        // A status apply has already computed its managedFields; keep them.
        let applied_fields = if applied {
            meta(&new).and_then(|m| m.get("managedFields")).cloned()
        } else {
            None
        };
        new = old.clone();
        if let Some(mf) = applied_fields {
            set_meta(&mut new, "managedFields", mf);
        }
        if let Some(m) = new.as_object_mut() {
            match status {
                Some(s) => m.insert("status".into(), s),
                None => m.remove("status"),
            };
        }
    } else {
        let old_meta = meta(old).cloned().unwrap_or_default();
        for f in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(f) {
                Some(v) => set_meta(&mut new, f, v.clone()),
                None => {
                    remove_meta(&mut new, f);
                }
            }
        }
        if rt.status_subresource
            && let Some(m) = new.as_object_mut()
        {
            match old.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.remove("status"),
            };
        }
    }
    set_meta(
        &mut new,
        "resourceVersion",
        json!(meta_str(old, "resourceVersion")),
    );
    if is_deleting(old) {
        let before = finalizers(old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                rt,
                &name,
                vec![Cause::new(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                )],
            ));
        }
    }
    fold_string_data(rt, &mut new);
    crate::defaults::apply_builtin_defaults(&rt.kind, &rt.group, &mut new, false);
    crate::defaults::keep_allocated(&rt.kind, &rt.group, old, &mut new);
    if !opts.status {
        validate_custom(rt, &mut new, Some(old), &name, opts.strict)?;
        let causes = crate::defaults::validate_object(&rt.kind, &rt.group, &new);
        if !causes.is_empty() {
            return Err(ApiError::invalid(rt, &name, causes));
        }
    } else if let Some(schema) = &rt.schema {
        schema.default_and_prune(&mut new);
        let causes = schema.validate(&new, Some(old));
        if !causes.is_empty() {
            return Err(ApiError::invalid(rt, &name, causes));
        }
    }
    if !applied {
        if let (Some(m), Some(mf)) = (
            crate::object::meta_mut(&mut new),
            meta(old).and_then(|m| m.get("managedFields")),
        ) {
            m.insert("managedFields".into(), mf.clone());
        } else {
            remove_meta(&mut new, "managedFields");
        }
        track_update(
            Some(old),
            &mut new,
            &opts.manager,
            &rt.api_version(),
            scope(rt, opts.status),
            lists_for(rt),
        )?;
    }
    if (rt.tracks_generation || rt.custom) && spec_part(old) != spec_part(&new) {
        let generation = meta(old)
            .and_then(|m| m.get("generation"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        set_meta(&mut new, "generation", json!(generation + 1));
    }
    let namespace_finalizers = rt.kind == "Namespace"
        && new
            .get("spec")
            .and_then(|s| s.get("finalizers"))
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
    if is_deleting(&new) && finalizers(&new).is_empty() && !namespace_finalizers {
        return Ok(Prepared::Remove(new));
    }
    if without_timestamps(&new) == without_timestamps(old) {
        return Ok(Prepared::NoOp);
    }
    Ok(Prepared::Write(new))
}

/// Writes `prepared` if the object is still at `old`'s resourceVersion.
fn commit(
    state: &SimState,
    rt: &ResourceType,
    old: &Arc<Value>,
    prepared: Prepared,
    dry_run: bool,
) -> Result<Value, StoreError> {
    let gr = rt.group_resource();
    let old_rv = resource_version(old);
    let out = match prepared {
        Prepared::NoOp => return Ok(present(rt, old)),
        Prepared::Write(new) if dry_run => return Ok(present(rt, &new)),
        Prepared::Remove(new) if dry_run => return Ok(present(rt, &new)),
        Prepared::Write(new) => state.store.update(&gr, old_rv, new)?,
        Prepared::Remove(_) => state.store.remove(
            &gr,
            meta_str(old, "namespace"),
            meta_str(old, "name"),
            Some(old_rv),
        )?,
    };
    if rt.group == "apiextensions.k8s.io" {
        crate::crd::sync(state, &out);
    }
    Ok(present(rt, &out))
}

pub fn get(state: &SimState, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Arc<Value>> {
    state
        .store
        .get(&rt.group_resource(), ns, name)
        .ok_or_else(|| ApiError::not_found(rt, name))
}

/// PUT: replaces the object, 409 if the body's resourceVersion is stale.
pub fn replace(
    state: &SimState,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    body: Value,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let old = get(state, rt, ns, name)?;
    if rt.custom && meta_str(&body, "resourceVersion").is_empty() {
        return Err(ApiError::invalid(
            rt,
            name,
            vec![Cause::new(
                "FieldValueInvalid",
                "metadata.resourceVersion",
                "Invalid value: 0x0: must be specified for an update",
            )],
        ));
    }
    let prepared = prepare_update(rt, &old, body, opts, false)?;
    commit(state, rt, &old, prepared, opts.dry_run).map_err(|e| store_conflict(rt, name, e))
}

/// Outcome of a patch: apply may create the object.
pub struct Patched {
    pub object: Value,
    pub created: bool,
}

/// PATCH of any type; retries internally when a concurrent write changed the object, like the
/// apiserver's GuaranteedUpdate.
pub fn patch(
    state: &SimState,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    kind: PatchType,
    body: &[u8],
    opts: &WriteOptions,
) -> ApiResult<Patched> {
    let lists = lists_for(rt);
    for _ in 0..16 {
        let current = state.store.get(&rt.group_resource(), ns, name);
        let result = match (kind, current) {
            (PatchType::Apply, current) => {
                let mut applied = parse_apply_body(body)?;
                let a_kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
                let a_version = applied
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if a_kind.is_empty() || a_version.is_empty() {
                    return Err(ApiError::bad_request(
                        "failed to decode apply configuration: apiVersion and kind must be set",
                    ));
                }
                let a_name = meta_str(&applied, "name");
                if !a_name.is_empty() && a_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({a_name}) does not match the name on the URL ({name})"
                    )));
                }
                check_type(rt, &mut applied)?;
                if !rt.custom
                    && let Some(path) =
                        crate::typed::unknown_fields(&rt.group, &rt.kind, &applied).first()
                {
                    // Server-side apply has no "ignore": whatever fieldValidation says.
                    return Err(ApiError::apply_undeclared_field(format!(
                        "failed to create typed patch object ({}/{}; {}, Kind={}): .{}: field not declared in schema",
                        meta_str(&applied, "namespace"),
                        name,
                        rt.api_version(),
                        rt.kind,
                        crate::typed::dotted(path)
                    )));
                }
                if opts.manager.is_empty() {
                    return Err(ApiError::apply_without_manager());
                }
                restrict_to_scope(&mut applied, scope(rt, opts.status));
                let req = ApplyRequest {
                    manager: &opts.manager,
                    force: opts.force,
                    scope: scope(rt, opts.status),
                    lists,
                    rt,
                    name,
                };
                match current {
                    None => {
                        if opts.status {
                            return Err(ApiError::not_found(rt, name));
                        }
                        let mut base = empty_like(&applied);
                        set_meta(&mut base, "name", json!(name));
                        let mut merged = apply(&base, &applied, &req)?;
                        set_meta(&mut merged, "name", json!(name));
                        let object = create(state, rt, ns, merged, opts, true);
                        match object {
                            Err(e) if e.reason == "AlreadyExists" => continue,
                            other => {
                                return other.map(|object| Patched {
                                    object,
                                    created: true,
                                });
                            }
                        }
                    }
                    Some(current) => {
                        let merged = apply(&current, &applied, &req)?;
                        let prepared = prepare_update(rt, &current, merged, opts, true)?;
                        commit(state, rt, &current, prepared, opts.dry_run)
                    }
                }
            }
            (_, None) => return Err(ApiError::not_found(rt, name)),
            (kind, Some(current)) => {
                let mut patched = apply_patch(&current, kind, body, lists, rt.custom)?;
                // A patch that does not mention resourceVersion must not trip the stale check.
                if meta_str(&patched, "resourceVersion").is_empty() {
                    set_meta(
                        &mut patched,
                        "resourceVersion",
                        json!(meta_str(&current, "resourceVersion")),
                    );
                }
                let prepared = prepare_update(rt, &current, patched, opts, false)?;
                commit(state, rt, &current, prepared, opts.dry_run)
            }
        };
        match result {
            Ok(object) => {
                return Ok(Patched {
                    object,
                    created: false,
                });
            }
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => continue,
            Err(e) => return Err(store_conflict(rt, name, e)),
        }
    }
    Err(ApiError::conflict(
        rt,
        name,
        "the object is being modified too often; try again",
    ))
}

fn parse_apply_body(body: &[u8]) -> ApiResult<Value> {
    // YAML is a superset of JSON, so one parser handles both apply content types.
    let v: Value = serde_yaml::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("failed to decode apply configuration as YAML: {e}"))
    })?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "failed to decode apply configuration: not an object",
        ));
    }
    Ok(v)
}

/// Applies a change from inside the simulator (controllers, GC); retries on conflicts.
/// `f` returns false to leave the object alone.
pub fn mutate(
    state: &SimState,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    manager: &str,
    status: bool,
    f: &dyn Fn(&mut Value) -> bool,
) -> ApiResult<Option<Value>> {
    let opts = WriteOptions {
        manager: manager.to_owned(),
        status,
        ..WriteOptions::default()
    };
    for _ in 0..16 {
        let Some(current) = state.store.get(&rt.group_resource(), ns, name) else {
            return Ok(None);
        };
        let mut new = (*current).clone();
        if !f(&mut new) {
            return Ok(Some(present(rt, &current)));
        }
        let prepared = prepare_update(rt, &current, new, &opts, false)?;
        match commit(state, rt, &current, prepared, false) {
            Ok(v) => return Ok(Some(v)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(store_conflict(rt, name, e)),
        }
    }
    Err(ApiError::conflict(
        rt,
        name,
        "the object is being modified too often; try again",
    ))
}

/// DELETE: honours preconditions, finalizers and the propagation policy.
pub fn delete(
    state: &SimState,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<Value> {
    for _ in 0..16 {
        let current = get(state, rt, ns, name)?;
        if let Some(uid) = &opts.precondition_uid
            && uid != meta_str(&current, "uid")
        {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&current, "uid")
                ),
            ));
        }
        if let Some(rv) = &opts.precondition_rv
            && rv != meta_str(&current, "resourceVersion")
        {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    meta_str(&current, "resourceVersion")
                ),
            ));
        }
        let default_policy = if rt.group == "batch" {
            Propagation::Orphan
        } else {
            Propagation::Background
        };
        let policy = opts.propagation.unwrap_or(default_policy);
        let mut new = (*current).clone();
        let mut fins = finalizers(&new);
        match policy {
            Propagation::Foreground if !fins.iter().any(|f| f == "foregroundDeletion") => {
                fins.push("foregroundDeletion".into())
            }
            Propagation::Orphan if !fins.iter().any(|f| f == "orphan") => {
                fins.push("orphan".into())
            }
            _ => {}
        }
        let namespace_pending = rt.group.is_empty() && rt.kind == "Namespace";
        let result = if fins.is_empty() && !namespace_pending {
            if opts.dry_run {
                return Ok(present(rt, &current));
            }
            state.store.remove(
                &rt.group_resource(),
                ns,
                name,
                Some(resource_version(&current)),
            )
        } else {
            if is_deleting(&current) && fins == finalizers(&current) {
                return Ok(present(rt, &current));
            }
            set_finalizers(&mut new, fins);
            if !is_deleting(&new) {
                set_meta(&mut new, "deletionTimestamp", json!(now_rfc3339()));
                set_meta(&mut new, "deletionGracePeriodSeconds", json!(0));
            }
            if namespace_pending
                && let Some(status) = new.get_mut("status").and_then(Value::as_object_mut)
            {
                status.insert("phase".into(), json!("Terminating"));
            }
            if opts.dry_run {
                return Ok(present(rt, &new));
            }
            state
                .store
                .update(&rt.group_resource(), resource_version(&current), new)
        };
        match result {
            Ok(v) => {
                if rt.group == "apiextensions.k8s.io" {
                    crate::crd::sync(state, &v);
                }
                return Ok(present(rt, &v));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_conflict(rt, name, e)),
        }
    }
    Err(ApiError::conflict(
        rt,
        name,
        "the object is being modified too often; try again",
    ))
}
