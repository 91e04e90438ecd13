#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use super::*;
use crate::api::{DeletionPolicy, PantheraPlatform};

fn platform(yaml: &str) -> PantheraPlatform {
    serde_yaml::from_str(yaml).unwrap()
}

fn aws_example() -> PantheraPlatform {
    platform(include_str!("../../../../examples/aws.yaml"))
}

fn observed_like(store: &Store, network: &Network, owner: &Owner) -> Observed {
    Observed {
        arn: "arn:aws:rds:us-east-1:123456789012:db:x".into(),
        status: "available".into(),
        endpoint: Some("x.rds.amazonaws.com:5432".into()),
        tags: tags(owner, store),
        settings: Some(store.settings.clone()),
        subnet_ids: network.subnet_ids.clone(),
        security_group_ids: network.security_group_ids.clone(),
        ..Observed::default()
    }
}

#[test]
fn the_aws_example_has_one_store_per_managed_service() {
    let p = aws_example();
    let stores = stores(&p);
    let ids: Vec<(&str, &str, Service)> = stores
        .iter()
        .map(|s| (s.component.as_str(), s.identifier.as_str(), s.service))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("postgres/users", "shop-aws-users", Service::Rds),
            ("postgres/orders", "shop-aws-orders", Service::Rds),
            ("redis", "shop-aws-redis", Service::ElastiCache),
            ("kafka", "shop-aws-kafka", Service::Msk),
        ]
    );
    assert_eq!(
        stores[0].settings,
        Settings::Postgres(PostgresSettings {
            instance_class: "db.t4g.medium".into(),
            version: "16".into(),
            storage_gib: 20,
            rds: RdsOptions {
                multi_az: true,
                backup_retention_days: 14,
                backup_window: Some("03:00-03:30".into()),
                maintenance_window: Some("sun:04:00-sun:04:30".into()),
                max_storage_gib: Some(100),
                deletion_protection: true,
            },
        })
    );
    assert!(matches!(
        &stores[2].settings,
        Settings::Redis(RedisSettings { copies, .. }) if copies.replicas == 1 && copies.failover
    ));
    assert!(stores[3].has_password(), "MSK's SCRAM login");
    assert_eq!(stores[3].kms_key.as_deref(), Some("alias/shop-msk-scram"));
    assert_eq!(network(&p).subnet_ids.len(), 3);
}

#[test]
fn identifiers_follow_the_strictest_aws_rules() {
    assert_eq!(identifier("shop--a-users", 63), "shop-a-users");
    assert_eq!(identifier("Shop_A", 63), "shop-a");
    assert_eq!(identifier("9lives", 63), "p9lives");
    assert_eq!(identifier("abcdef-ghij", 7), "abcdef");
    assert!(identifier(&"a".repeat(100), 40).len() <= 40);
    let snap = final_snapshot_id("shop-users", "2026-11-25T01:02:03Z");
    assert_eq!(snap, "shop-users-final-20261125010203");
}

#[test]
fn storage_sizes_round_up_to_gib() {
    assert_eq!(storage_gib("20Gi"), 20);
    assert_eq!(storage_gib("1Ti"), 1024);
    assert_eq!(storage_gib("512Mi"), 1);
    assert_eq!(storage_gib("1025Mi"), 2);
    // RDS has a floor.
    let p = platform(
        "apiVersion: panthera.dev/v1alpha1\nkind: PantheraPlatform\nmetadata: {name: p, namespace: n}\nspec:\n  aws: {subnetIds: [subnet-00000001, subnet-00000002]}\n  databases: [{name: d, backend: aws, storage: 5Gi}]\n",
    );
    assert!(matches!(
        stores(&p)[0].settings,
        Settings::Postgres(PostgresSettings {
            storage_gib: 20,
            ..
        })
    ));
}

#[test]
fn tags_name_the_owner_and_the_policy() {
    let p = aws_example();
    let owner = Owner::of(&p);
    let t = tags(&owner, &stores(&p)[0]);
    assert_eq!(t[TAG_PLATFORM], "shop-aws");
    assert_eq!(t[TAG_NAMESPACE], "shop-aws");
    assert_eq!(t[TAG_COMPONENT], "postgres/users");
    assert_eq!(t[TAG_DELETION_POLICY], "Snapshot");
    assert_eq!(t[TAG_MANAGED_BY], "panthera");
    assert!(owner.owns(&t));
    assert!(!Owner::new("shop-aws", "other").owns(&t));
    assert_eq!(policy_of(&t), DeletionPolicy::Snapshot);
    let mut extra = t.clone();
    extra.insert("team".into(), "x".into());
    assert!(tags_to_add(&t, &extra).is_empty(), "foreign tags are left");
    assert_eq!(panthera_tags_on(&extra).len(), 5);
    assert_eq!(
        secret_name(&owner, "postgres/users"),
        "panthera/shop-aws/shop-aws/postgres-users"
    );
}

#[test]
fn missing_resources_are_created_and_matching_ones_unchanged() {
    let p = aws_example();
    let (owner, net) = (Owner::of(&p), network(&p));
    for store in stores(&p) {
        let planned = plan(&owner, &store, &net, None).unwrap();
        assert_eq!(planned.action, Action::Create);
        assert!(
            planned.summary.starts_with("create "),
            "{}",
            planned.summary
        );
        let o = observed_like(&store, &net, &owner);
        let planned = plan(&owner, &store, &net, Some(&o)).unwrap();
        assert_eq!(planned.action, Action::Unchanged, "{planned:?}");
        assert!(!planned.writes());
    }
}

#[test]
fn changes_are_classified_by_how_aws_applies_them() {
    let p = aws_example();
    let (owner, net) = (Owner::of(&p), network(&p));
    let stores = stores(&p);
    let class_of = |store: &Store, observed: Settings| {
        let mut o = observed_like(store, &net, &owner);
        o.settings = Some(observed);
        plan(&owner, store, &net, Some(&o)).unwrap()
    };
    let Settings::Postgres(PostgresSettings { rds, .. }) = stores[0].settings.clone() else {
        panic!("a database")
    };
    let pg = |class: &str, version: &str, gib| {
        Settings::Postgres(PostgresSettings {
            instance_class: class.into(),
            version: version.into(),
            storage_gib: gib,
            rds: rds.clone(),
        })
    };
    let planned = class_of(&stores[0], pg("db.t4g.micro", "16.4", 20));
    assert_eq!(planned.action, Action::Reboot);
    assert_eq!(
        planned.summary,
        "modify in place with reboot RDS instance shop-aws-users: instanceClass db.t4g.micro -> db.t4g.medium (reboot)"
    );
    assert_eq!(
        class_of(&stores[0], pg("db.t4g.medium", "15.7", 20)).action,
        Action::MaintenanceWindow
    );
    assert_eq!(
        class_of(&stores[0], pg("db.t4g.medium", "17.1", 20)).action,
        Action::Replace
    );
    assert_eq!(
        class_of(&stores[0], pg("db.t4g.medium", "16", 10)).action,
        Action::Modify
    );
    assert_eq!(
        class_of(&stores[0], pg("db.t4g.medium", "16", 30)).action,
        Action::Replace,
        "storage never shrinks"
    );
    let Settings::Redis(RedisSettings { copies, .. }) = stores[2].settings.clone() else {
        panic!("redis")
    };
    let redis = |node: &str, v: &str| {
        Settings::Redis(RedisSettings {
            node_type: node.into(),
            version: v.into(),
            copies: copies.clone(),
        })
    };
    assert_eq!(
        class_of(&stores[2], redis("cache.t4g.small", "7.1.0")).action,
        Action::Unchanged
    );
    assert_eq!(
        class_of(&stores[2], redis("cache.t4g.micro", "7.1")).action,
        Action::Modify
    );
    assert_eq!(
        class_of(&stores[2], redis("cache.t4g.small", "7.2")).action,
        Action::Replace
    );
    let kafka = |brokers, gib| {
        Settings::Kafka(KafkaSettings {
            instance_type: "kafka.t3.small".into(),
            version: "3.9.0".into(),
            brokers,
            storage_gib: gib,
            access: MskAccess::Scram,
        })
    };
    assert_eq!(
        class_of(&stores[3], kafka(3, 100)).action,
        Action::Unchanged
    );
    assert_eq!(class_of(&stores[3], kafka(2, 100)).action, Action::Modify);
    assert_eq!(class_of(&stores[3], kafka(6, 100)).action, Action::Replace);
    assert_eq!(class_of(&stores[3], kafka(3, 200)).action, Action::Replace);
}

#[test]
fn production_settings_are_classified_by_how_aws_applies_them() {
    let p = aws_example();
    let (owner, net) = (Owner::of(&p), network(&p));
    let stores = stores(&p);
    let planned = |store: &Store, edit: &dyn Fn(&mut Settings)| {
        let mut o = observed_like(store, &net, &owner);
        let mut settings = store.settings.clone();
        edit(&mut settings);
        o.settings = Some(settings);
        plan(&owner, store, &net, Some(&o)).unwrap()
    };
    let rds_planned = |edit: &dyn Fn(&mut RdsOptions)| {
        planned(&stores[0], &|s: &mut Settings| {
            if let Settings::Postgres(PostgresSettings { rds, .. }) = s {
                edit(rds)
            }
        })
    };
    let single_az = rds_planned(&|r| r.multi_az = false);
    assert_eq!(single_az.action, Action::Modify);
    assert_eq!(
        single_az.summary,
        "modify in place RDS instance shop-aws-users: highAvailability false -> true"
    );
    let no_backups = rds_planned(&|r| r.backup_retention_days = 0);
    assert_eq!(no_backups.action, Action::Reboot, "backups on restart RDS");
    let shorter = rds_planned(&|r| r.backup_retention_days = 7);
    assert_eq!(shorter.action, Action::Modify);
    for edit in [
        &(|r: &mut RdsOptions| r.deletion_protection = false) as &dyn Fn(&mut RdsOptions),
        &|r| r.maintenance_window = Some("mon:01:00-mon:01:30".into()),
        &|r| r.backup_window = Some("01:00-01:30".into()),
        &|r| r.max_storage_gib = None,
    ] {
        let p = rds_planned(edit);
        assert_eq!(p.action, Action::Modify, "{}", p.summary);
        assert_eq!(p.changes.len(), 1, "{}", p.summary);
    }
    // A window the spec leaves to AWS is whatever AWS chose.
    let mut unset = stores[0].clone();
    if let Settings::Postgres(PostgresSettings { rds, .. }) = &mut unset.settings {
        rds.backup_window = None;
        rds.maintenance_window = None;
    }
    let o = observed_like(&stores[0], &net, &owner);
    assert_eq!(
        plan(&owner, &unset, &net, Some(&o)).unwrap().action,
        Action::Unchanged
    );
    let no_replica = planned(&stores[2], &|s| {
        if let Settings::Redis(RedisSettings { copies, .. }) = s {
            copies.replicas = 0;
            copies.failover = false;
        }
    });
    assert_eq!(no_replica.action, Action::Modify);
    assert_eq!(
        no_replica
            .changes
            .iter()
            .map(|c| c.field)
            .collect::<Vec<_>>(),
        ["replicas", "automaticFailover"]
    );
    let plaintext = planned(&stores[3], &|s| {
        if let Settings::Kafka(KafkaSettings { access, .. }) = s {
            *access = MskAccess::TlsPlaintext;
        }
    });
    assert_eq!(plaintext.action, Action::Modify);
    assert_eq!(
        plaintext.changes[0].to_string(),
        "clientAuthentication tls+plaintext -> scram"
    );
}

#[test]
fn subnets_and_security_groups_are_compared_as_sets() {
    let p = aws_example();
    let (owner, net) = (Owner::of(&p), network(&p));
    let stores = stores(&p);
    let mut o = observed_like(&stores[0], &net, &owner);
    o.subnet_ids.reverse();
    assert!(differences(&stores[0], &net, &o).is_empty());
    o.subnet_ids.pop();
    let d = differences(&stores[0], &net, &o);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].class, Class::InPlace);
    let mut o = observed_like(&stores[3], &net, &owner);
    o.subnet_ids.pop();
    assert_eq!(differences(&stores[3], &net, &o)[0].class, Class::Replace);
    // Unknown (empty) observed lists are not a difference.
    let mut o = observed_like(&stores[2], &net, &owner);
    o.security_group_ids.clear();
    assert!(differences(&stores[2], &net, &o).is_empty());
}

#[test]
fn foreign_resources_are_refused_unless_adopted() {
    let p = aws_example();
    let (owner, net) = (Owner::of(&p), network(&p));
    let mut store = stores(&p).remove(0);
    let mut o = observed_like(&store, &net, &owner);
    o.tags = BTreeMap::from([("team".to_string(), "data".to_string())]);
    let err = plan(&owner, &store, &net, Some(&o)).unwrap_err();
    assert!(err.contains("not created by Panthera"), "{err}");
    o.tags = tags(&Owner::new("other", "ns"), &store);
    let err = plan(&owner, &store, &net, Some(&o)).unwrap_err();
    assert!(
        err.contains("belongs to platform other in namespace ns"),
        "{err}"
    );
    // Adoption: only when the spec names it, and never from another platform.
    store.adopt = true;
    assert!(plan(&owner, &store, &net, Some(&o)).is_err());
    o.tags = BTreeMap::new();
    let planned = plan(&owner, &store, &net, Some(&o)).unwrap();
    assert_eq!(planned.action, Action::Adopt);
    assert_eq!(planned.tags.len(), 5);
    assert!(
        plan(&owner, &store, &net, None).is_err(),
        "adopting nothing"
    );
}

#[test]
fn a_deleting_resource_is_waited_for() {
    let p = aws_example();
    let (owner, net) = (Owner::of(&p), network(&p));
    let store = stores(&p).remove(0);
    let mut o = observed_like(&store, &net, &owner);
    o.status = "deleting".into();
    let planned = plan(&owner, &store, &net, Some(&o)).unwrap();
    assert_eq!(planned.action, Action::WaitDeleted);
}

#[test]
fn progress_reads_each_services_status_words() {
    let o = |status: &str, endpoint: Option<&str>| Observed {
        status: status.into(),
        endpoint: endpoint.map(String::from),
        ..Observed::default()
    };
    assert_eq!(
        progress(Service::Rds, &o("available", Some("h:5432"))),
        (true, "available".into())
    );
    assert_eq!(
        progress(Service::Rds, &o("creating", None)),
        (false, "creating".into())
    );
    let (ready, msg) = progress(Service::Msk, &o("CREATING", None));
    assert!(!ready);
    assert!(msg.contains("provisioning"), "{msg}");
    assert_eq!(phase(Service::Rds, "incompatible-network"), Phase::Failed);
    assert_eq!(phase(Service::ElastiCache, "create-failed"), Phase::Failed);
    assert_eq!(phase(Service::Msk, "UPDATING"), Phase::Modifying);
    let (ready, msg) = progress(Service::Rds, &o("available", None));
    assert!(!ready);
    assert!(msg.contains("endpoint not published"), "{msg}");
}

/// The aws example with a search domain of `search` (YAML flow mapping) added.
fn with_search(search: &str) -> (PantheraPlatform, Store, Network, Owner) {
    let mut p = aws_example();
    p.spec.search = Some(serde_yaml::from_str(search).unwrap());
    let store = stores(&p)
        .into_iter()
        .find(|s| s.service == Service::OpenSearch)
        .expect("a search store");
    let (network, owner) = (network(&p), Owner::of(&p));
    (p, store, network, owner)
}

fn search_of(o: &mut Observed) -> &mut SearchSettings {
    match o.settings.as_mut() {
        Some(Settings::Search(s)) => s,
        other => panic!("not a domain: {other:?}"),
    }
}

#[test]
fn a_search_domain_takes_one_subnet_per_zone_and_every_protection() {
    let (_, store, network, owner) = with_search(
        "{backend: aws, instanceCount: 4, availabilityZones: 2, storage: 100Gi, dedicatedMasters: {instanceType: m7g.medium.search}}",
    );
    assert_eq!(store.identifier, "shop-aws-search");
    assert_eq!(store.component, "search");
    assert_eq!(store.username, "panthera");
    let Settings::Search(s) = &store.settings else {
        panic!("{:?}", store.settings)
    };
    assert_eq!((s.instance_count, s.zones, s.storage_gib), (4, 2, 100));
    assert_eq!(s.version, "2.19");
    assert_eq!(
        s.masters,
        Some(DedicatedMasters {
            instance_type: "m7g.medium.search".into(),
            count: 3
        })
    );
    assert_eq!(s.security, DomainSecurity::default());
    assert!(s.security.encryption_at_rest && s.security.fine_grained && s.security.https_only);
    assert_eq!(
        network.subnets_of(&store),
        network.subnet_ids[..2].to_vec(),
        "the first subnet of each zone"
    );
    let planned = plan(&owner, &store, &network, None).unwrap();
    assert_eq!(planned.action, Action::Create);
    assert!(planned.summary.contains("4 x m7g.large.search, OpenSearch 2.19, 100 GiB per node, 2 zones, dedicated masters 3 x m7g.medium.search"), "{}", planned.summary);
    assert!(!Service::OpenSearch.final_snapshots());
    let generated = "a".repeat(32);
    let password = password_for(Service::OpenSearch, generated.clone());
    assert!(password.starts_with(&generated));
    assert!(password.chars().any(|c| c.is_ascii_uppercase()));
    assert!(password.chars().any(|c| c.is_ascii_digit()));
    assert!(password.chars().any(|c| !c.is_ascii_alphanumeric()));
    assert_eq!(password_for(Service::Rds, generated.clone()), generated);
}

#[test]
fn domain_changes_are_classified_as_opensearch_service_applies_them() {
    let (_, store, network, owner) =
        with_search("{backend: aws, instanceCount: 2, storage: 100Gi}");
    let classes = |edit: &dyn Fn(&mut Observed)| {
        let mut o = observed_like(&store, &network, &owner);
        o.subnet_ids = network.subnets_of(&store);
        edit(&mut o);
        let planned = plan(&owner, &store, &network, Some(&o)).unwrap();
        let changes: Vec<(&str, Class)> =
            planned.changes.iter().map(|d| (d.field, d.class)).collect();
        (planned.action, changes)
    };
    assert_eq!(classes(&|_| {}), (Action::Unchanged, vec![]));
    // Without dedicated masters even the node count is a blue/green deployment.
    assert_eq!(
        classes(&|o| search_of(o).instance_type = "r7g.large.search".into()),
        (Action::BlueGreen, vec![("instanceType", Class::BlueGreen)])
    );
    assert_eq!(
        classes(&|o| search_of(o).instance_count = 3),
        (Action::BlueGreen, vec![("instanceCount", Class::BlueGreen)])
    );
    // A volume grows online up to 3 TiB per node; it shrinks by blue/green.
    assert_eq!(
        classes(&|o| search_of(o).storage_gib = 50),
        (Action::Modify, vec![("storage", Class::InPlace)])
    );
    assert_eq!(
        classes(&|o| search_of(o).storage_gib = 200),
        (Action::BlueGreen, vec![("storage", Class::BlueGreen)])
    );
    // The endpoint's TLS and the access policy change online; encryption and fine-grained
    // access control are turned on by blue/green.
    assert_eq!(
        classes(&|o| {
            let s = search_of(o);
            s.security.tls_policy = "Policy-Min-TLS-1-0-2019-07".into();
            s.security.open_to_login = false;
        }),
        (
            Action::Modify,
            vec![
                ("endpointTls", Class::InPlace),
                ("accessPolicy", Class::InPlace)
            ]
        )
    );
    assert_eq!(
        classes(&|o| search_of(o).security.encryption_at_rest = false),
        (
            Action::BlueGreen,
            vec![("encryptionAtRest", Class::BlueGreen)]
        )
    );
    // Other subnets move the domain by blue/green; an older version is a replace.
    assert_eq!(
        classes(&|o| o.subnet_ids = vec!["subnet-0000000000000000f".into()]),
        (Action::BlueGreen, vec![("subnetIds", Class::BlueGreen)])
    );
    assert_eq!(
        classes(&|o| search_of(o).version = "2.17".into()),
        (Action::BlueGreen, vec![("version", Class::BlueGreen)])
    );
    assert_eq!(
        classes(&|o| search_of(o).version = "3.1".into()),
        (Action::Replace, vec![("version", Class::Replace)])
    );

    // With dedicated masters, node counts and the masters' type change online.
    let (_, store, network, owner) = with_search(
        "{backend: aws, instanceCount: 2, dedicatedMasters: {instanceType: m7g.large.search}}",
    );
    let mut o = observed_like(&store, &network, &owner);
    o.subnet_ids = network.subnets_of(&store);
    let s = search_of(&mut o);
    s.instance_count = 4;
    s.masters = Some(DedicatedMasters {
        instance_type: "m7g.medium.search".into(),
        count: 3,
    });
    let planned = plan(&owner, &store, &network, Some(&o)).unwrap();
    assert_eq!(planned.action, Action::Modify, "{}", planned.summary);
    assert_eq!(
        planned.summary,
        "modify in place OpenSearch Service domain shop-aws-search: instanceCount 4 -> 2; dedicatedMasters 3 x m7g.medium.search -> 3 x m7g.large.search"
    );
    // Turning the masters off is a blue/green deployment.
    search_of(&mut o).masters = None;
    search_of(&mut o).instance_count = 2;
    let planned = plan(&owner, &store, &network, Some(&o)).unwrap();
    assert_eq!(planned.action, Action::BlueGreen);
    assert_eq!(
        planned.changes[0].to_string(),
        "dedicatedMasters none -> 3 x m7g.large.search (blue/green)"
    );
}
