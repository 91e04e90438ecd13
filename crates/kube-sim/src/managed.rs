//! `metadata.managedFields` bookkeeping for non-apply writes (operation `Update`).

use serde_json::{Map, Value, json};

use crate::fieldset::{FieldSet, ListTypes, Scope, value_at};
use crate::object::{meta, meta_mut, now_rfc3339};
use crate::status::ApiResult;

#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub subresource: String,
    pub time: String,
    pub fields: FieldSet,
}

impl ManagedEntry {
    pub fn is_apply(&self) -> bool {
        self.operation == "Apply"
    }

    pub fn in_scope(&self, scope: Scope) -> bool {
        match scope {
            Scope::Status => self.subresource == "status",
            Scope::Main | Scope::All => self.subresource.is_empty(),
        }
    }
}

pub fn subresource_name(scope: Scope) -> &'static str {
    if scope == Scope::Status { "status" } else { "" }
}

pub fn read_entries(obj: &Value) -> Vec<ManagedEntry> {
    let Some(list) = meta(obj)
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            ManagedEntry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                subresource: s("subresource"),
                time: s("time"),
                fields: e
                    .get("fieldsV1")
                    .map(FieldSet::from_fields_v1)
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Seconds of an entry's time for ordering; an entry without time sorts first.
fn seconds(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

pub fn write_entries(obj: &mut Value, entries: &[ManagedEntry]) {
    let mut sorted: Vec<&ManagedEntry> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    // The apiserver's order: by operation (Apply before Update), time (seconds), manager,
    // subresource.
    sorted.sort_by(|a, b| {
        (&a.operation, seconds(&a.time), &a.manager, &a.subresource).cmp(&(
            &b.operation,
            seconds(&b.time),
            &b.manager,
            &b.subresource,
        ))
    });
    let list: Vec<Value> = sorted
        .into_iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), json!(e.manager));
            m.insert("operation".into(), json!(e.operation));
            m.insert("apiVersion".into(), json!(e.api_version));
            if !e.time.is_empty() {
                m.insert("time".into(), json!(e.time));
            }
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), e.fields.to_fields_v1());
            if !e.subresource.is_empty() {
                m.insert("subresource".into(), json!(e.subresource));
            }
            Value::Object(m)
        })
        .collect();
    if let Some(m) = meta_mut(obj) {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Records an `Update` by `manager`: it takes every field whose value it changed, other managers
/// lose those, and fields that no longer exist are dropped from every manager.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    scope: Scope,
    lists: &dyn ListTypes,
) -> ApiResult<()> {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let leaves = FieldSet::of_object(new, lists, scope)?;
    let new_all = leaves.union(&map_markers(&leaves, lists));
    let changed: FieldSet = match old {
        None => new_all.clone(),
        Some(old) => FieldSet(
            new_all
                .0
                .iter()
                .filter(|p| {
                    if p.last().is_some_and(|s| s == ".") {
                        value_at(old, p, lists).is_none()
                    } else {
                        value_at(old, p, lists) != value_at(new, p, lists)
                    }
                })
                .cloned()
                .collect(),
        ),
    };
    for e in entries.iter_mut().filter(|e| e.in_scope(scope)) {
        e.fields = e.fields.intersection(&new_all);
        if !(e.manager == manager && e.operation == "Update") {
            e.fields = e.fields.difference(&changed);
        }
    }
    if !changed.is_empty() {
        let sub = subresource_name(scope);
        match entries
            .iter_mut()
            .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == sub)
        {
            Some(e) => {
                e.fields = e.fields.union(&changed);
                e.time = now_rfc3339();
                e.api_version = api_version.to_owned();
            }
            None => entries.push(ManagedEntry {
                manager: manager.to_owned(),
                operation: "Update".into(),
                api_version: api_version.to_owned(),
                subresource: sub.to_owned(),
                time: now_rfc3339(),
                fields: changed,
            }),
        }
    }
    write_entries(new, &entries);
    Ok(())
}

/// The `"."` entries an `Update` records for maps and lists: the structured-merge-diff compares
/// the object with its previous version, in which Go's non-pointer structs (`spec`, `template`,
/// `resources`, ...) and non-omitempty lists (`containers`) always exist, while maps, pointers to
/// structs and omitempty lists (`labels`, `data`, `rollingUpdate`, `ports`) may be absent. So the
/// marker of such a node is in every field set that has children under it, and it is "changed"
/// when the node was absent before.
pub fn map_markers(leaves: &FieldSet, lists: &dyn ListTypes) -> FieldSet {
    let mut out = std::collections::BTreeSet::new();
    for path in &leaves.0 {
        let mut names: Vec<&str> = Vec::new();
        for i in 0..path.len().saturating_sub(1) {
            let Some(name) = path[i].strip_prefix("f:") else {
                continue;
            };
            names.push(name);
            // A child follows, so this node is a map, a struct or a list.
            if path.get(i + 1).is_some_and(|next| next == ".") {
                continue;
            }
            if lists.always_present(&names) {
                continue;
            }
            let mut marker = path[..=i].to_vec();
            marker.push(".".into());
            out.insert(marker);
        }
    }
    FieldSet(out)
}

/// The object without managedFields timestamps: two objects equal under this are a no-op write.
pub fn without_timestamps(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(list) = meta_mut(&mut v)
        .and_then(|m| m.get_mut("managedFields"))
        .and_then(Value::as_array_mut)
    {
        for e in list {
            if let Some(e) = e.as_object_mut() {
                e.remove("time");
            }
        }
    }
    v
}

/// Drops ownership of fields that are no longer in the object (e.g. pruned unknown fields).
pub fn prune_to_object(obj: &mut Value, lists: &dyn ListTypes) -> ApiResult<()> {
    let mut entries = read_entries(obj);
    if entries.is_empty() {
        return Ok(());
    }
    let all = FieldSet::of_object(obj, lists, Scope::All)?;
    let all = all.union(&map_markers(&all, lists));
    for e in &mut entries {
        e.fields = e.fields.intersection(&all);
    }
    write_entries(obj, &entries);
    Ok(())
}
