use serde_json::json;

use super::*;
use crate::api::{Backend, LABEL_COMPONENT, LABEL_PLATFORM, LABEL_PLATFORM_COMPONENT};
use crate::render::ComponentPlan;

fn object(kind: &str, name: &str, spec: Value) -> Object {
    Object {
        template: "test".into(),
        value: json!({
            "apiVersion": Kind::named(kind).map_or("v1", |k| k.api_version),
            "kind": kind,
            "metadata": {"name": name, "labels": {LABEL_PLATFORM: "shop"}},
            "spec": spec,
        }),
    }
}

fn component(kind: Option<ComponentKind>, name: &str, objects: Vec<Object>) -> ComponentPlan {
    ComponentPlan {
        name: name.into(),
        kind,
        backend: Backend::Cluster,
        objects,
        external: None,
    }
}

/// The `users` service with `objects`.
fn users(objects: Vec<Object>) -> ComponentPlan {
    component(Some(ComponentKind::Service), "users", objects)
}

fn plan(components: Vec<ComponentPlan>) -> Plan {
    Plan {
        platform: "shop".into(),
        namespace: "shop".into(),
        components,
    }
}

/// A live child of `platform` (None: unlabelled), as the server stores what was applied.
fn live_of(kind: &str, name: &str, platform: Option<&str>, annotations: Value) -> Value {
    let mut o =
        json!({"kind": kind, "metadata": {"name": name, "labels": {}, "annotations": annotations}});
    if let Some(p) = platform {
        o["metadata"]["labels"][LABEL_PLATFORM] = json!(p);
        o["metadata"]["labels"][LABEL_COMPONENT] = json!("service");
        o["metadata"]["labels"][LABEL_PLATFORM_COMPONENT] = json!("users");
    }
    o
}

fn live(objects: Vec<Value>) -> Live {
    let mut live = Live::default();
    for o in objects {
        let kind = o["kind"].as_str().unwrap_or_default().to_string();
        live.insert(&kind, o);
    }
    live
}

#[test]
fn new_objects_are_added_applied_ones_unchanged_and_drift_is_a_change() {
    let p = plan(vec![users(vec![
        object("ConfigMap", "a", json!({"x": 1})),
        object("Deployment", "b", json!({"replicas": 2})),
        object("Service", "c", json!({"port": 80})),
    ])]);
    let applied_b = prepare(&p.components[0].objects[1].value);
    let mut drifted_c = prepare(&p.components[0].objects[2].value);
    drifted_c["spec"]["port"] = json!(81);
    let live = live(vec![applied_b, drifted_c]);
    let d = decide(&p, &BTreeSet::new(), &live, "shop", false).unwrap();
    let actions: Vec<(String, Action)> = d
        .objects()
        .map(|(_, o)| (o.object.id(), o.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("ConfigMap/a".to_string(), Action::Add),
            ("Deployment/b".to_string(), Action::Unchanged),
            ("Service/c".to_string(), Action::Change),
        ]
    );
    assert!(d.prune.is_empty(), "no prune unless asked");
}

#[test]
fn phases_put_data_stores_first_and_the_gateway_last() {
    let p = plan(vec![
        component(Some(ComponentKind::Gateway), "gateway", vec![]),
        component(Some(ComponentKind::Service), "users", vec![]),
        component(None, "platform", vec![]),
        component(Some(ComponentKind::Postgres), "users", vec![]),
    ]);
    let d = decide(&p, &BTreeSet::new(), &Live::default(), "shop", false).unwrap();
    let phases: Vec<(Phase, Vec<String>)> = d
        .phases
        .iter()
        .map(|(phase, cs)| (*phase, cs.iter().map(|c| c.id.clone()).collect()))
        .collect();
    assert_eq!(
        phases,
        vec![
            (
                Phase::DataStores,
                vec!["platform".to_string(), "postgres/users".to_string()]
            ),
            (Phase::Services, vec!["service/users".to_string()]),
            (Phase::Gateway, vec!["gateway".to_string()]),
        ]
    );
}

#[test]
fn an_object_of_another_owner_refuses_the_whole_plan() {
    let p = plan(vec![users(vec![
        object("ConfigMap", "mine", json!({})),
        object("Service", "taken", json!({})),
    ])]);
    let theirs = live(vec![live_of("Service", "taken", None, json!({}))]);
    let e = decide(&p, &BTreeSet::new(), &theirs, "shop", true).unwrap_err();
    assert_eq!(e.id, "Service/taken");
    assert_eq!(e.owner, None);
    let other = live(vec![live_of("Service", "taken", Some("blog"), json!({}))]);
    let e = decide(&p, &BTreeSet::new(), &other, "shop", true).unwrap_err();
    assert_eq!(e.owner.as_deref(), Some("blog"));
}

#[test]
fn prune_takes_stale_children_in_apply_order_and_keeps_data_and_the_unowned() {
    let p = plan(vec![users(vec![object("Deployment", "kept", json!({}))])]);
    let delete = json!({DELETION_POLICY: "Delete"});
    let snapshot = live(vec![
        live_of("Deployment", "kept", Some("shop"), json!({})),
        live_of("Deployment", "stale", Some("shop"), json!({})),
        live_of("ConfigMap", "stale", Some("shop"), json!({})),
        live_of("Ingress", "old", Some("shop"), json!({})),
        live_of(
            "Secret",
            "db",
            Some("shop"),
            json!({DELETION_POLICY: "Snapshot"}),
        ),
        live_of("Secret", "aws-db", Some("shop"), delete.clone()),
        live_of("Secret", "cache", Some("shop"), delete),
        live_of("Service", "someone-elses", None, json!({})),
        live_of("Service", "other-platform", Some("blog"), json!({})),
    ]);
    let keep = BTreeSet::from([("Secret".to_string(), "aws-db".to_string())]);
    let d = decide(&p, &keep, &snapshot, "shop", true).unwrap();
    let ids: Vec<String> = d.prune.iter().map(Prune::id).collect();
    assert_eq!(
        ids,
        vec!["ConfigMap/stale", "Deployment/stale", "Ingress/old"],
        "a connection Secret opens data: prune keeps it whatever its policy"
    );
    assert_eq!(d.prune[0].component, "service/users");
}

#[test]
fn data_goes_only_when_its_policy_deletes_it_and_data_is_not_kept() {
    let pvc = |policy: &str| {
        live_of(
            "PersistentVolumeClaim",
            "d",
            Some("shop"),
            json!({DELETION_POLICY: policy}),
        )
    };
    assert!(!may_delete(
        "PersistentVolumeClaim",
        &pvc("Snapshot"),
        false
    ));
    assert!(!may_delete("PersistentVolumeClaim", &pvc("Retain"), false));
    assert!(!may_delete("PersistentVolumeClaim", &pvc("Delete"), true));
    assert!(may_delete("PersistentVolumeClaim", &pvc("Delete"), false));
    let plain_secret = live_of("Secret", "s", Some("shop"), json!({}));
    assert!(
        may_delete("Secret", &plain_secret, true),
        "generated, not data"
    );
    assert!(may_delete("Deployment", &pvc("Retain"), true));
}

#[test]
fn teardown_goes_from_the_edge_inwards() {
    let mut labels = vec![
        Some("postgres"),
        None,
        Some("gateway"),
        Some("kafka-topics"),
        Some("service"),
    ];
    labels.sort_by_key(|l| teardown_rank(*l));
    assert_eq!(
        labels,
        vec![
            Some("gateway"),
            Some("service"),
            Some("postgres"),
            Some("kafka-topics"),
            None
        ]
    );
}
