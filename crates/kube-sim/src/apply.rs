//! Server-side apply: merge an applied configuration into the live object, track field ownership
//! per manager, report conflicts, and remove fields the applier owned and no longer sends.

use serde_json::{Map, Value};

use crate::fieldset::{FieldSet, ListTypes, Scope, display_path, item_key, remove_at, value_at};
use crate::managed::{ManagedEntry, read_entries, subresource_name, write_entries};
use crate::object::now_rfc3339;
use crate::resources::ResourceType;
use crate::status::{ApiError, ApiResult, Cause};

pub struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub scope: Scope,
    pub lists: &'a dyn ListTypes,
    pub rt: &'a ResourceType,
    pub name: &'a str,
}

/// Drops what an apply to this endpoint cannot set (status through the main resource, anything
/// but status through `/status`).
pub fn restrict_to_scope(applied: &mut Value, scope: Scope) {
    if let Value::Object(m) = applied {
        match scope {
            Scope::All => {}
            Scope::Main => {
                m.remove("status");
            }
            Scope::Status => {
                m.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"))
            }
        }
        if scope == Scope::Status
            && let Some(Value::Object(meta)) = m.get_mut("metadata")
        {
            meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace"));
        }
    }
}

/// Returns the merged object with updated managedFields (identity fields still to be fixed up by
/// the caller).
pub fn apply(live: &Value, applied: &Value, req: &ApplyRequest<'_>) -> ApiResult<Value> {
    let lists = req.lists;
    let applied_set = FieldSet::of_object(applied, lists, req.scope)?;
    let mut entries = read_entries(live);
    let sub = subresource_name(req.scope);

    let mut conflicts = Vec::new();
    for e in entries
        .iter()
        .filter(|e| e.subresource == sub && e.manager != req.manager)
    {
        for path in e.fields.intersection(&applied_set).leaves() {
            if value_at(live, path, lists) != value_at(applied, path, lists) {
                conflicts.push((e.manager.clone(), e.api_version.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !req.force {
            let causes = conflicts
                .iter()
                .map(|(m, v, p)| {
                    Cause::new(
                        "FieldManagerConflict",
                        display_path(p),
                        if *v == req.rt.api_version() {
                            format!("conflict with \"{m}\"")
                        } else {
                            format!("conflict with \"{m}\" using {v}")
                        },
                    )
                })
                .collect();
            return Err(ApiError::apply_conflicts(req.rt, req.name, causes));
        }
        for (m, _, p) in &conflicts {
            for e in entries
                .iter_mut()
                .filter(|e| &e.manager == m && e.subresource == sub)
            {
                e.fields.0.remove(p);
            }
        }
    }

    let mut merged = live.clone();
    merge_into(&mut merged, applied, &mut Vec::new(), lists);

    let previous = entries
        .iter()
        .find(|e| e.manager == req.manager && e.is_apply() && e.subresource == sub)
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others = entries
        .iter()
        .filter(|e| e.subresource == sub && !(e.manager == req.manager && e.is_apply()))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.fields));
    let dropped = previous.difference(&applied_set);
    // Deepest first so removing a list item does not hide removals inside it.
    let mut to_remove: Vec<_> = dropped
        .0
        .iter()
        .filter(|p| !others.0.contains(*p))
        .cloned()
        .collect();
    to_remove.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in to_remove {
        if path.last().is_some_and(|s| s == ".") {
            let item = &path[..path.len() - 1];
            if others.has_prefix(item) || applied_set.has_prefix(item) {
                continue;
            }
        }
        remove_at(&mut merged, &path, lists);
    }

    entries.retain(|e| !(e.manager == req.manager && e.is_apply() && e.subresource == sub));
    let now_all = FieldSet::of_object(&merged, lists, req.scope)?;
    let now_all = now_all.union(&crate::managed::map_markers(&now_all, lists));
    for e in entries.iter_mut().filter(|e| e.subresource == sub) {
        e.fields = e.fields.intersection(&now_all);
    }
    let mine = ManagedEntry {
        manager: req.manager.to_owned(),
        operation: "Apply".into(),
        api_version: req.rt.api_version(),
        subresource: sub.to_owned(),
        time: now_rfc3339(),
        fields: applied_set,
    };
    // Keep the previous timestamp when ownership did not change, so a no-op apply stays a no-op.
    // A new manager whose apply changes no value gets no time at all, as on the apiserver.
    let content = |o: &Value| {
        let mut o = o.clone();
        if let Some(m) = crate::object::meta_mut(&mut o) {
            m.remove("managedFields");
        }
        o
    };
    let mine = match read_entries(live)
        .into_iter()
        .find(|e| e.manager == mine.manager && e.is_apply() && e.subresource == sub)
    {
        Some(prev) if prev.fields == mine.fields => ManagedEntry {
            time: prev.time,
            ..mine
        },
        None if content(&merged) == content(live) => ManagedEntry {
            time: String::new(),
            ..mine
        },
        _ => mine,
    };
    entries.push(mine);
    write_entries(&mut merged, &entries);
    Ok(merged)
}

/// Structural merge: maps recursively, associative lists by key, sets by value, the rest replaced.
pub fn merge_into(
    target: &mut Value,
    applied: &Value,
    names: &mut Vec<String>,
    lists: &dyn ListTypes,
) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a))
            if !lists.atomic_map(&names.iter().map(String::as_str).collect::<Vec<_>>()) =>
        {
            for (k, av) in a {
                names.push(k.clone());
                match t.get_mut(k) {
                    Some(tv) if !av.is_null() => merge_into(tv, av, names, lists),
                    _ => {
                        t.insert(k.clone(), av.clone());
                    }
                }
                names.pop();
            }
        }
        (Value::Array(t), Value::Array(a)) => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let lt = lists.list_type(&refs);
            if lt == crate::fieldset::ListType::Atomic {
                *t = a.clone();
                return;
            }
            for item in a {
                let key = item_key(item, &lt);
                match t
                    .iter_mut()
                    .find(|x| key.is_some() && item_key(x, &lt) == key)
                {
                    Some(existing) => merge_into(existing, item, names, lists),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// A fresh object for an apply that creates.
pub fn empty_like(applied: &Value) -> Value {
    let mut m = Map::new();
    for k in ["apiVersion", "kind"] {
        if let Some(v) = applied.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert("metadata".into(), Value::Object(Map::new()));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldset::BuiltinListTypes;
    use crate::resources::Registry;
    use serde_json::json;

    fn run(live: &Value, applied: &Value, manager: &str, force: bool) -> ApiResult<Value> {
        let rt = Registry::with_builtins()
            .lookup("apps", "v1", "deployments")
            .unwrap();
        let req = ApplyRequest {
            manager,
            force,
            scope: Scope::Main,
            lists: &BuiltinListTypes,
            rt: &rt,
            name: "web",
        };
        apply(live, applied, &req)
    }

    fn containers(images: &[(&str, &str)]) -> Value {
        let list: Vec<Value> = images
            .iter()
            .map(|(n, i)| json!({"name": n, "image": i}))
            .collect();
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": list}}}})
    }

    #[test]
    fn dropping_a_list_item_removes_only_what_the_applier_owned() {
        let live = empty_like(&containers(&[]));
        let live = run(
            &live,
            &containers(&[("app", "a:1"), ("extra", "e:1")]),
            "alice",
            false,
        )
        .unwrap();
        let live = run(&live, &containers(&[("sidecar", "s:1")]), "bob", false).unwrap();
        let after = run(&live, &containers(&[("app", "a:2")]), "alice", false).unwrap();
        let names: Vec<&str> = after["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["app", "sidecar"]);
        assert_eq!(
            after["spec"]["template"]["spec"]["containers"][0]["image"],
            "a:2"
        );
        let managers: Vec<&str> = after["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        // The apiserver's order: Apply entries by time, then by manager.
        assert_eq!(managers, vec!["alice", "bob"]);
    }

    #[test]
    fn conflicts_only_on_differing_values_and_force_transfers_ownership() {
        let live = run(
            &empty_like(&containers(&[])),
            &containers(&[("app", "a:1")]),
            "alice",
            false,
        )
        .unwrap();
        assert!(run(&live, &containers(&[("app", "a:1")]), "bob", false).is_ok());
        let err = run(&live, &containers(&[("app", "a:2")]), "bob", false).unwrap_err();
        assert_eq!(err.code, 409);
        assert!(
            err.message.contains("conflict with \"alice\""),
            "{}",
            err.message
        );
        let forced = run(&live, &containers(&[("app", "a:2")]), "bob", true).unwrap();
        let alice = read_entries(&forced)
            .into_iter()
            .find(|e| e.manager == "alice")
            .unwrap();
        assert!(
            !alice
                .fields
                .leaves()
                .any(|p| p.last().is_some_and(|s| s == "f:image"))
        );
    }
}
