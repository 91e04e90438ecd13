//! HTTP front end: routes API paths to verbs, applies faults and counters, and encodes responses
//! (JSON, Table, PartialObjectMetadata) the way clients expect.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, header};
use serde_json::{Value, json};

use crate::authz::Identity;
use crate::discovery;
use crate::lifecycle::{self, DeleteOptions, Propagation, WriteOptions, present};
use crate::object::meta_str;
use crate::patch::{PatchType, parse_json};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::state::SimState;
use crate::status::{ApiError, ApiResult};
use crate::watch::{self, WatchParams, partial_metadata};

pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(3 * 1024 * 1024))
        .with_state(state)
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    let mut resp = (code, v.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn bytes_response(code: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (code, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A request for a resource, parsed from the URL.
#[derive(Debug)]
struct ResourceRequest {
    group: String,
    version: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
    subresource: Option<String>,
    legacy_watch: bool,
}

fn parse_resource_path(segs: &[&str]) -> Option<ResourceRequest> {
    let (group, version, rest) = match segs {
        ["api", v, rest @ ..] => (String::new(), (*v).to_owned(), rest),
        ["apis", g, v, rest @ ..] => ((*g).to_owned(), (*v).to_owned(), rest),
        _ => return None,
    };
    let (legacy_watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let own = |s: Option<&&str>| s.map(|s| (*s).to_owned());
    let req = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !(tail.is_empty() && matches!(*plural, "status" | "finalize")) =>
        {
            ResourceRequest {
                group,
                version,
                namespace: Some((*ns).to_owned()),
                plural: (*plural).to_owned(),
                name: own(tail.first()),
                subresource: own(tail.get(1)),
                legacy_watch,
            }
        }
        [plural, tail @ ..] => ResourceRequest {
            group,
            version,
            namespace: None,
            plural: (*plural).to_owned(),
            name: own(tail.first()),
            subresource: own(tail.get(1)),
            legacy_watch,
        },
        [] => return None,
    };
    if rest.len() > 5 {
        return None;
    }
    Some(req)
}

async fn handle(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    while state.faults.unavailable() {
        // "Stopped answering": the request hangs like against a partitioned apiserver.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let latency = state.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let query: HashMap<String, String> = Query::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    match route(&state, &method, &uri, &headers, &query, body) {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

fn route(
    state: &Arc<SimState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: Bytes,
) -> ApiResult<Response> {
    let path = uri.path().trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    if *method == Method::GET {
        let registry = state.registry.read();
        let doc = match segs.as_slice() {
            ["version"] => Some(discovery::version()),
            ["api"] => Some(discovery::core_versions(&host)),
            ["apis"] => Some(discovery::group_list(&registry)),
            ["api", v] => discovery::resource_list(&registry, "", v),
            ["apis", g] => discovery::group(&registry, g),
            ["apis", g, v] => discovery::resource_list(&registry, g, v),
            ["healthz" | "readyz" | "livez"] => return Ok((StatusCode::OK, "ok").into_response()),
            ["openapi", "v3"] => Some(openapi_v3_index(&registry)),
            ["openapi", "v3", "api", v] => openapi_v3_group_version(&registry, "", v),
            ["openapi", "v3", "apis", g, v] => openapi_v3_group_version(&registry, g, v),
            ["openapi", ..] => {
                return Err(ApiError::not_implemented(format!(
                    "{path}: only the OpenAPI v3 operations index is served, without schemas"
                ))
                .with_code(404, "NotFound"));
            }
            _ => None,
        };
        if let Some(doc) = doc {
            return Ok(json_response(StatusCode::OK, &doc));
        }
        if matches!(segs.as_slice(), ["api", _] | ["apis", _] | ["apis", _, _]) {
            return Err(ApiError::bad_request(format!(
                "the server could not find the requested resource ({path})"
            ))
            .with_code(404, "NotFound"));
        }
    }
    let Some(req) = parse_resource_path(&segs) else {
        return Err(ApiError::bad_request(format!(
            "the server could not find the requested resource ({method} {path})"
        ))
        .with_code(404, "NotFound"));
    };
    let Some(rt) = state.lookup(&req.group, &req.version, &req.plural) else {
        return Err(ApiError::bad_request(format!(
            "the server could not find the requested resource ({method} {path}): no resource {:?} in {}",
            req.plural,
            if req.group.is_empty() { req.version.clone() } else { format!("{}/{}", req.group, req.version) }
        ))
        .with_code(404, "NotFound"));
    };
    let watch = req.legacy_watch || query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (method.as_str(), req.name.is_some()) {
        ("GET", true) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) if content_type(headers).starts_with("application/apply-patch") => "apply",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow method {m} on {path}"
            )));
        }
    };
    if let Some(who) = caller(state, headers)? {
        authorize(state, &who, &rt, &req, verb)?;
    }
    let manager = query.get("fieldManager").cloned().unwrap_or_default();
    let resource_label = match &req.subresource {
        Some(s) => format!("{}/{}", rt.plural, s),
        None => rt.plural.clone(),
    };
    state.counters.record(verb, &resource_label, &manager);
    if let Some(err) = state
        .faults
        .roll(verb, &rt.plural, req.name.as_deref().unwrap_or(""))
    {
        return Err(err);
    }
    let status = match req.subresource.as_deref() {
        None => false,
        Some("status") if rt.status_subresource => true,
        Some("finalize") if rt.kind == "Namespace" => false,
        Some("scale") if crate::scale::supported(&rt) => false,
        Some(other) => {
            return Err(ApiError::not_implemented(format!(
                "the {other:?} subresource of {}",
                rt.plural
            ))
            .with_code(404, "NotFound"));
        }
    };
    if rt.namespaced && req.namespace.is_none() && req.name.is_some() {
        return Err(ApiError::bad_request(format!(
            "the server could not find the requested resource: {} is namespaced",
            rt.plural
        ))
        .with_code(404, "NotFound"));
    }
    let ns = if rt.namespaced {
        req.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    };
    if !rt.namespaced && req.namespace.is_some() {
        return Err(ApiError::bad_request(format!(
            "the server could not find the requested resource: {} is cluster-scoped",
            rt.plural
        ))
        .with_code(404, "NotFound"));
    }
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            )));
        }
    };
    let default_manager = headers
        .get(header::USER_AGENT)
        .and_then(|h| h.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_owned();
    let opts = WriteOptions {
        dry_run,
        manager: if manager.is_empty() && verb != "apply" {
            default_manager
        } else {
            manager
        },
        force: query.get("force").is_some_and(|f| f == "true"),
        status,
        strict: query.get("fieldValidation").is_some_and(|v| v == "Strict"),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let output = Output::from_accept(&accept, query);
    let name = req.name.clone().unwrap_or_default();
    if req.subresource.as_deref() == Some("scale") {
        let ct = content_type(headers);
        let call = crate::scale::ScaleRequest {
            verb,
            content_type: &ct,
            body: &body,
        };
        let scale = crate::scale::handle(state, &rt, &ns, &name, &call, &opts)?;
        return Ok(json_response(StatusCode::OK, &scale));
    }
    match verb {
        "get" => {
            let obj = lifecycle::get(state, &rt, &ns, &name)?;
            Ok(output.single(&rt, &obj))
        }
        "list" => list(
            state,
            &rt,
            req.namespace.as_deref().filter(|_| rt.namespaced),
            query,
            &output,
        ),
        "watch" => {
            let mut params = watch_params(
                &rt,
                req.namespace.clone().filter(|_| rt.namespaced),
                query,
                state,
            )?;
            if let Some(n) = &req.name {
                params.fields = FieldSelector::parse(&format!("metadata.name={n}"), &rt.kind)?;
            }
            params.partial_metadata = output.partial_metadata;
            watch::start(state.clone(), rt, params)
        }
        "create" => {
            let obj = decode_body(headers, &body)?;
            let created = lifecycle::create(state, &rt, &ns, obj, &opts, false)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        "update" => {
            let obj = decode_body(headers, &body)?;
            Ok(json_response(
                StatusCode::OK,
                &lifecycle::replace(state, &rt, &ns, &name, obj, &opts)?,
            ))
        }
        "patch" | "apply" => {
            let kind = PatchType::from_content_type(&content_type(headers))?;
            let patched = lifecycle::patch(state, &rt, &ns, &name, kind, &body, &opts)?;
            let code = if patched.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(code, &patched.object))
        }
        "delete" => {
            let del = delete_options(query, &body, dry_run)?;
            let gone = lifecycle::delete(state, &rt, &ns, &name, &del)?;
            // An object still there (finalizers) comes back; one deleted at once is a Status.
            let answer = if gone
                .get("metadata")
                .and_then(|m| m.get("deletionTimestamp"))
                .is_some()
            {
                gone
            } else {
                ApiError::deleted_status(&rt, &name, meta_str(&gone, "uid"))
            };
            Ok(json_response(StatusCode::OK, &answer))
        }
        "deletecollection" => {
            let del = delete_options(query, &body, dry_run)?;
            let labels =
                LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
            let fields = FieldSelector::parse(
                query.get("fieldSelector").map_or("", String::as_str),
                &rt.kind,
            )?;
            let (items, _) = state.store.list(
                &rt.group_resource(),
                req.namespace.as_deref().filter(|_| rt.namespaced),
            );
            let mut deleted = Vec::new();
            for item in items
                .iter()
                .filter(|o| labels.matches(o) && fields.matches(o))
            {
                match lifecycle::delete(
                    state,
                    &rt,
                    meta_str(item, "namespace"),
                    meta_str(item, "name"),
                    &del,
                ) {
                    Ok(v) => deleted.push(v),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            let list = json!({
                "kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": state.store.current_resource_version().to_string()},
                "items": deleted,
            });
            Ok(json_response(StatusCode::OK, &list))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "unsupported verb {verb}"
        ))),
    }
}

/// The identity behind a registered bearer token; `None` for everyone else (cluster-admin).
/// A request naming a token the simulator never issued in its `sim-sa-` form is refused.
fn caller(state: &SimState, headers: &HeaderMap) -> ApiResult<Option<Identity>> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return Ok(None);
    };
    match state.tokens.read().get(token) {
        Some(who) => Ok(Some(who.clone())),
        None if token.starts_with(crate::SERVICE_ACCOUNT_TOKEN_PREFIX) => {
            Err(ApiError::unauthorized())
        }
        None => Ok(None),
    }
}

/// RBAC for one resource request. Server-side apply is a `patch`, and also a `create` when the
/// object does not exist yet, as the apiserver checks it.
fn authorize(
    state: &SimState,
    who: &Identity,
    rt: &ResourceType,
    req: &ResourceRequest,
    verb: &str,
) -> ApiResult<()> {
    let namespace = if rt.namespaced {
        req.namespace.as_deref().unwrap_or("")
    } else {
        ""
    };
    let name = req.name.as_deref().unwrap_or("");
    let mut attributes = crate::authz::Attributes {
        verb: if verb == "apply" { "patch" } else { verb },
        group: &rt.group,
        resource: &rt.plural,
        subresource: req.subresource.as_deref(),
        namespace,
        name,
    };
    crate::authz::authorize(state, who, &attributes)?;
    if verb == "apply"
        && req.subresource.is_none()
        && state
            .store
            .get(&rt.group_resource(), namespace, name)
            .is_none()
    {
        attributes.verb = "create";
        crate::authz::authorize(state, who, &attributes)?;
    }
    Ok(())
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("application/json")
        .to_owned()
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = content_type(headers);
    let base = ct.split(';').next().unwrap_or("").trim();
    match base {
        "application/json" | "" | "*/*" => parse_json(body),
        "application/yaml" => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("failed to decode YAML body: {e}"))),
        _ => Err(ApiError::unsupported_media_type(&ct)),
    }
}

fn delete_options(
    query: &HashMap<String, String>,
    body: &[u8],
    dry_run: bool,
) -> ApiResult<DeleteOptions> {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        parse_json(body)?
    };
    let policy = query
        .get("propagationPolicy")
        .cloned()
        .or_else(|| {
            body.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .or_else(|| {
            body.get("orphanDependents")
                .and_then(Value::as_bool)
                .map(|o| {
                    if o {
                        "Orphan".into()
                    } else {
                        "Background".into()
                    }
                })
        });
    let propagation = match policy.as_deref() {
        None => None,
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))
            .with_code(422, "Invalid"));
        }
    };
    let body_dry_run = body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    let pre = body.get("preconditions");
    Ok(DeleteOptions {
        dry_run: dry_run || body_dry_run,
        propagation,
        precondition_uid: pre
            .and_then(|p| p.get("uid"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        precondition_rv: pre
            .and_then(|p| p.get("resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn parse_rv(s: Option<&String>) -> ApiResult<Option<u64>> {
    match s.map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: {v:?}: must be a non-negative integer"
            ))
        }),
    }
}

fn watch_params(
    rt: &ResourceType,
    namespace: Option<String>,
    query: &HashMap<String, String>,
    state: &SimState,
) -> ApiResult<WatchParams> {
    let timeout =
        match query.get("timeoutSeconds") {
            Some(t) => Duration::from_secs(t.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("timeoutSeconds: Invalid value: {t:?}"))
            })?),
            None => state.config.default_watch_timeout,
        };
    let send_initial_events = query.get("sendInitialEvents").is_some_and(|b| b == "true");
    if send_initial_events
        && query.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan")
    {
        return Err(ApiError::invalid_list_options(
            "resourceVersionMatch",
            "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    Ok(WatchParams {
        namespace,
        resource_version: parse_rv(query.get("resourceVersion"))?,
        labels: LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(
            query.get("fieldSelector").map_or("", String::as_str),
            &rt.kind,
        )?,
        bookmarks: query
            .get("allowWatchBookmarks")
            .is_some_and(|b| b == "true"),
        send_initial_events: query.get("sendInitialEvents").is_some_and(|b| b == "true"),
        timeout,
        partial_metadata: false,
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    start: String,
}

fn list(
    state: &SimState,
    rt: &Arc<ResourceType>,
    ns: Option<&str>,
    query: &HashMap<String, String>,
    output: &Output,
) -> ApiResult<Response> {
    use base64::Engine as _;
    let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(
        query.get("fieldSelector").map_or("", String::as_str),
        &rt.kind,
    )?;
    let limit = match query.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("limit: Invalid value: {l:?}")))?,
        None => 0,
    };
    let requested_rv = parse_rv(query.get("resourceVersion"))?;
    let (items, current_rv) = state.store.list(&rt.group_resource(), ns);
    let mut list_rv = current_rv;
    if let Some(rv) = requested_rv.filter(|rv| *rv > 0) {
        let exact = query
            .get("resourceVersionMatch")
            .is_some_and(|m| m == "Exact");
        if rv > current_rv {
            return Err(ApiError::timeout(format!(
                "Too large resource version: {rv}, current: {current_rv}"
            )));
        }
        if exact && rv != current_rv {
            return Err(ApiError::gone(format!(
                "kube-sim keeps no snapshots: an Exact list at resourceVersion {rv} (current {current_rv}) is not available"
            )));
        }
    }
    let mut start = String::new();
    if let Some(token) = query.get("continue").filter(|t| !t.is_empty()) {
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| serde_json::from_slice::<ContinueToken>(&b).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "continue key is not valid: failed to decode the continue token",
                )
            })?;
        if decoded.rv < state.store.oldest_resource_version() {
            return Err(ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        list_rv = decoded.rv;
        start = decoded.start;
    }
    let key = |o: &Value| format!("{}/{}", meta_str(o, "namespace"), meta_str(o, "name"));
    let mut selected = items
        .iter()
        .filter(|o| (start.is_empty() || key(o) > start) && labels.matches(o) && fields.matches(o));
    let mut page: Vec<&Arc<Value>> = Vec::new();
    let mut more = 0usize;
    for o in selected.by_ref() {
        if limit > 0 && page.len() >= limit {
            more = 1;
            break;
        }
        page.push(o);
    }
    let remaining = if more > 0 { more + selected.count() } else { 0 };
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if remaining > 0
        && let Some(last) = page.last()
    {
        let token = serde_json::to_vec(&ContinueToken {
            rv: list_rv,
            start: key(last),
        })
        .unwrap_or_default();
        meta["continue"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token));
        // The apiserver cannot count what a selector would keep, so it only counts without one.
        if labels.is_empty() && fields.is_empty() {
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    Ok(output.list(rt, page, meta))
}

/// What representation the client asked for.
struct Output {
    table: bool,
    table_include_object: bool,
    partial_metadata: bool,
}

impl Output {
    fn from_accept(accept: &str, query: &HashMap<String, String>) -> Self {
        // Clients list preferences; take the first one we can produce.
        let first = accept
            .split(',')
            .map(str::trim)
            .find(|a| a.starts_with("application/json") || a.starts_with("*/*") || a.is_empty())
            .unwrap_or("");
        Self {
            table: first.contains("as=Table"),
            table_include_object: query.get("includeObject").is_some_and(|v| v == "Object"),
            partial_metadata: first.contains("as=PartialObjectMetadata"),
        }
    }

    fn single(&self, rt: &ResourceType, obj: &Value) -> Response {
        if self.table {
            return json_response(
                StatusCode::OK,
                &self.table_json(
                    rt,
                    &[obj],
                    json!({"resourceVersion": meta_str(obj, "resourceVersion")}),
                ),
            );
        }
        if self.partial_metadata {
            return json_response(StatusCode::OK, &partial_metadata(obj));
        }
        json_response(StatusCode::OK, &present(rt, obj))
    }

    fn list(&self, rt: &ResourceType, items: Vec<&Arc<Value>>, meta: Value) -> Response {
        if self.table {
            let objs: Vec<&Value> = items.iter().map(|a| a.as_ref()).collect();
            return json_response(StatusCode::OK, &self.table_json(rt, &objs, meta));
        }
        let (kind, api_version) = if self.partial_metadata {
            (
                "PartialObjectMetadataList".to_owned(),
                "meta.k8s.io/v1".to_owned(),
            )
        } else {
            (format!("{}List", rt.kind), rt.api_version())
        };
        // Written by hand so 25,000 items are not copied into one big Value first.
        let mut buf = Vec::with_capacity(items.len() * 512 + 128);
        buf.extend_from_slice(b"{\"kind\":");
        let _ = serde_json::to_writer(&mut buf, &kind);
        buf.extend_from_slice(b",\"apiVersion\":");
        let _ = serde_json::to_writer(&mut buf, &api_version);
        buf.extend_from_slice(b",\"metadata\":");
        let _ = serde_json::to_writer(&mut buf, &meta);
        buf.extend_from_slice(b",\"items\":[");
        let same_version =
            |o: &Value| o.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str());
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            if self.partial_metadata {
                let _ = serde_json::to_writer(&mut buf, &partial_metadata(item));
            } else if same_version(item) {
                let _ = serde_json::to_writer(&mut buf, item.as_ref());
            } else {
                let _ = serde_json::to_writer(&mut buf, &present(rt, item));
            }
        }
        buf.extend_from_slice(b"]}");
        bytes_response(StatusCode::OK, buf)
    }

    fn table_json(&self, rt: &ResourceType, items: &[&Value], meta: Value) -> Value {
        let rows: Vec<Value> = items
            .iter()
            .map(|o| {
                let object = if self.table_include_object { present(rt, o) } else { partial_metadata(o) };
                json!({"cells": [meta_str(o, "name"), age(meta_str(o, "creationTimestamp"))], "object": object})
            })
            .collect();
        json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0},
                {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}
            ],
            "rows": rows,
        })
    }
}

/// Human-readable age as kubectl prints it (`5s`, `3m`, `2h`, `4d`).
fn age(created: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(created) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 2 => format!("{}m", s / 60),
        s if s < 86400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A minimal OpenAPI v3 index: one entry per group-version, so clients that look for it find it.
fn openapi_v3_index(registry: &crate::resources::Registry) -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "api/v1".into(),
        json!({"serverRelativeURL": "/openapi/v3/api/v1"}),
    );
    for (g, vs) in registry.groups() {
        for v in vs {
            paths.insert(
                format!("apis/{g}/{v}"),
                json!({"serverRelativeURL": format!("/openapi/v3/apis/{g}/{v}")}),
            );
        }
    }
    json!({"paths": paths})
}

/// The operations of one group-version, without schemas: enough for clients (kubectl) to see that
/// PATCH accepts `fieldValidation` and so validate on the server instead of downloading schemas.
fn openapi_v3_group_version(
    registry: &crate::resources::Registry,
    group: &str,
    version: &str,
) -> Option<Value> {
    let types: Vec<_> = registry
        .all()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let params: Vec<Value> = ["dryRun", "fieldManager", "fieldValidation", "force"]
        .iter()
        .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string"}, "uniqueItems": true}))
        .collect();
    let mut paths = serde_json::Map::new();
    for rt in types {
        let gvk = json!({"group": rt.group, "version": rt.version, "kind": rt.kind});
        let item = if rt.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("{prefix}/{}/{{name}}", rt.plural)
        };
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", rt.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            })
        };
        paths.insert(item, json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kube-sim)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
