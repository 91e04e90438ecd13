//! The real `panthera` binary with `backend: aws` data stores against moto (AWS APIs, started
//! by `scripts/test-services.sh`, `PANTHERA_TEST_AWS_ENDPOINT`) and kube-sim. Every test uses its
//! own platform names, so they run in parallel on one moto.
//!
//! moto's limits shape what is asserted: RDS instances and ElastiCache replication groups are
//! available at once, an ElastiCache group stays `deleting` forever, MSK clusters stay CREATING
//! (so no bootstrap brokers and no Kafka Secret), and moto keeps no ElastiCache snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

#[path = "aws/buckets.rs"]
mod buckets;
mod common;
#[path = "aws/edge.rs"]
mod edge;
#[path = "aws/engine.rs"]
mod engine;
#[path = "aws/production.rs"]
mod production;
#[path = "aws/search.rs"]
mod search;
#[path = "aws/world.rs"]
mod world;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_config::BehaviorVersion;
use common::{stderr, stdout};
use kube::api::Api;
use world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_exactly_the_expected_resources_and_a_reapply_writes_nothing() {
    let Some(w) = World::new().await else { return };
    let name = unique("a1");
    let file = w.platform(&name, "p.yaml", |t| t);

    let first = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&first);
    let (calls, writes) = aws_counts(&first);
    eprintln!("first apply: {calls} AWS calls, {writes} writes");
    // Per store a describe, Secrets Manager read/create, subnet group + create, a re-describe.
    assert!(writes >= 9, "{writes} writes: {}", stdout(&first));
    assert!(calls > writes);

    // RDS: exactly the two databases, tagged as this platform's.
    let mut dbs: Vec<(String, BTreeMap<String, String>, String, i32)> = Vec::new();
    let all = w.rds_all().await;
    for db in &all {
        let tags = rds_tags(db);
        if tags.get("panthera.dev/platform") == Some(&name) {
            dbs.push((
                db.db_instance_identifier().unwrap().to_string(),
                tags,
                db.db_instance_class().unwrap().to_string(),
                db.allocated_storage().unwrap(),
            ));
        }
    }
    dbs.sort();
    assert_eq!(
        dbs.iter().map(|d| d.0.clone()).collect::<Vec<_>>(),
        vec![format!("{name}-orders"), format!("{name}-users")]
    );
    let users = &dbs[1];
    assert_eq!(users.1["panthera.dev/namespace"], name);
    assert_eq!(users.1["panthera.dev/component"], "postgres/users");
    assert_eq!(users.1["panthera.dev/deletion-policy"], "Snapshot");
    assert_eq!(users.1["app.kubernetes.io/managed-by"], "panthera");
    assert_eq!((users.2.as_str(), users.3), ("db.t4g.medium", 20));
    assert_eq!((dbs[0].2.as_str(), dbs[0].3), ("db.t4g.medium", 50));
    let db = w.rds_instance(&format!("{name}-users")).await.unwrap();
    assert_eq!(
        db.db_subnet_group().unwrap().db_subnet_group_name(),
        Some(format!("{name}-users").as_str())
    );
    assert_eq!(db.engine(), Some("postgres"));

    // ElastiCache: one replication group, tagged.
    let group = w
        .elasticache()
        .describe_replication_groups()
        .replication_group_id(format!("{name}-redis"))
        .send()
        .await
        .unwrap();
    let group = group.replication_groups().first().unwrap();
    assert_eq!(group.cache_node_type(), Some("cache.t4g.small"));
    assert_eq!(group.transit_encryption_enabled(), Some(true));
    let tags = w
        .elasticache()
        .list_tags_for_resource()
        .resource_name(group.arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_list()
            .iter()
            .any(|t| t.key() == Some("panthera.dev/platform") && t.value() == Some(&name)),
        "{tags:?}"
    );

    // MSK: one cluster, tagged, still provisioning.
    let clusters = w.msk_clusters(&name).await;
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters[0]["clusterName"], format!("{name}-kafka"));
    assert_eq!(clusters[0]["tags"]["panthera.dev/platform"], name.as_str());
    assert_eq!(clusters[0]["tags"]["panthera.dev/component"], "kafka");
    assert_eq!(clusters[0]["state"], "CREATING");

    // Secrets Manager: the master credentials of the three stores that have one.
    for component in ["postgres-users", "postgres-orders", "redis"] {
        let id = format!("panthera/{name}/{name}/{component}");
        let value = w
            .secrets()
            .get_secret_value()
            .secret_id(&id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        assert!(value.secret_string().unwrap().contains("password"));
    }

    // The connection Secrets: same keys as the cluster backend, pointing at AWS; the password is
    // the one kept in Secrets Manager. MSK has no brokers yet, so no Kafka Secret.
    let secret = w.secret(&name, &format!("{name}-db-users")).await.unwrap();
    let address = db.endpoint().unwrap().address().unwrap();
    assert_eq!(secret["host"], address);
    assert_eq!(secret["port"], "5432");
    assert_eq!(secret["username"], "users");
    assert_eq!(secret["database"], "users");
    let stored = w
        .secrets()
        .get_secret_value()
        .secret_id(format!("panthera/{name}/{name}/postgres-users"))
        .send()
        .await
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    assert_eq!(secret["password"], stored["password"].as_str().unwrap());
    assert_eq!(
        secret["url"],
        format!(
            "postgres://users:{}@{address}:5432/users?sslmode=verify-full&sslrootcert=/etc/panthera/ca/ca-bundle.pem",
            secret["password"]
        )
    );
    let redis = w.secret(&name, &format!("{name}-redis")).await.unwrap();
    assert!(redis["url"].starts_with("rediss://:"), "TLS");
    assert_eq!(redis["port"], "6379");
    assert!(w.secret(&name, &format!("{name}-kafka")).await.is_none());
    let out = stdout(&first);
    assert!(
        out.contains("creating (MSK cluster provisioning)") && !out.contains(&secret["password"]),
        "{out}"
    );

    // A re-apply: AWS is described, nothing is written anywhere.
    w.sim.reset_counters();
    let second = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&second);
    let (calls, writes) = aws_counts(&second);
    eprintln!("re-apply: {calls} AWS calls, {writes} writes");
    assert_eq!(writes, 0, "{}", stdout(&second));
    assert!(calls > 0);
    assert_eq!(w.sim.counters().writes(), 0, "{:?}", w.sim.counters());
    assert!(
        stdout(&second).contains("0 created, 0 changed"),
        "{}",
        stdout(&second)
    );

    // status reads AWS too: ARN and endpoint per store, MSK provisioning.
    let status = w
        .panthera(&["status", "-f", path(&file), "-o", "json"])
        .await;
    ok(&status);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let components = status["components"].as_array().unwrap();
    let users = components
        .iter()
        .find(|c| c["kind"] == "postgres" && c["name"] == "users")
        .unwrap();
    assert_eq!(users["backend"], "aws");
    assert_eq!(users["ready"], true);
    assert_eq!(users["endpoint"], format!("{address}:5432"));
    assert!(
        users["message"].as_str().unwrap().contains("arn:aws:rds:"),
        "{users}"
    );
    let kafka = components.iter().find(|c| c["kind"] == "kafka").unwrap();
    assert_eq!(kafka["ready"], false);
    assert!(
        kafka["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:kafka:"),
        "{kafka}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_instance_class_is_planned_and_modified_in_place_and_a_replace_is_refused() {
    let Some(w) = World::new().await else { return };
    let name = unique("a2");
    let file = w.platform(&name, "p.yaml", |t| t);
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);

    let bigger = w.platform(&name, "bigger.yaml", |t| {
        t.replacen(
            "instanceClass: db.t4g.medium",
            "instanceClass: db.t4g.large",
            1,
        )
    });
    let plan = w
        .panthera(&["plan", "-f", path(&bigger), "--exit-code"])
        .await;
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains(&format!(
            "~ postgres/users: modify in place with reboot RDS instance {name}-users: instanceClass db.t4g.medium -> db.t4g.large (reboot)"
        )),
        "{text}"
    );
    assert!(
        text.contains("AWS: 0 to create, 1 to modify, 0 to replace, 3 unchanged."),
        "{text}"
    );

    let apply = w.panthera(&["apply", "-f", path(&bigger)]).await;
    ok(&apply);
    let (_, writes) = aws_counts(&apply);
    assert_eq!(writes, 1, "one ModifyDBInstance: {}", stdout(&apply));
    assert!(
        stdout(&apply).contains("aws postgres/users: modify in place with reboot"),
        "{}",
        stdout(&apply)
    );
    let db = w.rds_instance(&format!("{name}-users")).await.unwrap();
    assert_eq!(db.db_instance_class(), Some("db.t4g.large"));
    let again = w.panthera(&["apply", "-f", path(&bigger)]).await;
    ok(&again);
    assert_eq!(aws_counts(&again).1, 0);

    // Shrinking storage cannot be done in place: plan and apply refuse without --allow-replace.
    let smaller = w.platform(&name, "smaller.yaml", |t| {
        t.replacen("storage: 50Gi", "storage: 30Gi", 1).replacen(
            "instanceClass: db.t4g.medium",
            "instanceClass: db.t4g.large",
            1,
        )
    });
    let plan = w.panthera(&["plan", "-f", path(&smaller)]).await;
    assert_eq!(plan.status.code(), Some(1));
    assert!(
        stdout(&plan).contains(&format!(
            "-/+ postgres/orders: replace RDS instance {name}-orders: storage 50 -> 30 (replace) [refused without --allow-replace]"
        )),
        "{}",
        stdout(&plan)
    );
    assert!(
        stderr(&plan).contains("--allow-replace"),
        "{}",
        stderr(&plan)
    );
    let apply = w.panthera(&["apply", "-f", path(&smaller)]).await;
    assert_eq!(apply.status.code(), Some(1));
    assert!(
        stderr(&apply).contains("refusing to replace a data store"),
        "{}",
        stderr(&apply)
    );
    let orders = w.rds_instance(&format!("{name}-orders")).await.unwrap();
    assert_eq!(orders.allocated_storage(), Some(50), "nothing was written");

    // moto names the automated snapshot of a new instance `rds:{id}-{minute}`, keeps it when the
    // instance is deleted with its backups retained, and refuses a second one within the same
    // minute: drop the first instance's (AWS keeps retained backups apart, no such clash).
    let automated = w
        .rds()
        .describe_db_snapshots()
        .db_instance_identifier(format!("{name}-orders"))
        .snapshot_type("automated")
        .send()
        .await
        .unwrap();
    for snapshot in automated
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
    {
        w.rds()
            .delete_db_snapshot()
            .db_snapshot_identifier(snapshot)
            .send()
            .await
            .unwrap();
    }
    let password = w.secret(&name, &format!("{name}-db-orders")).await.unwrap()["password"].clone();

    // With --allow-replace, one apply deletes it by its policy (a final snapshot) and, the delete
    // being done, creates it again with the same master password and its ownership tags.
    let apply = w
        .panthera(&["apply", "-f", path(&smaller), "--allow-replace"])
        .await;
    ok(&apply);
    assert!(
        stdout(&apply).contains(&format!(
            "aws postgres/orders: replace RDS instance {name}-orders"
        )),
        "{}",
        stdout(&apply)
    );
    let orders = w.rds_instance(&format!("{name}-orders")).await.unwrap();
    assert_eq!(orders.allocated_storage(), Some(30));
    let finals = w
        .rds()
        .describe_db_snapshots()
        .db_instance_identifier(format!("{name}-orders"))
        .snapshot_type("manual")
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
        .filter(|s| s.starts_with(&format!("{name}-orders-final-")))
        .count();
    assert_eq!(finals, 1);
    let secret = w.secret(&name, &format!("{name}-db-orders")).await.unwrap();
    assert_eq!(secret["password"], password, "never rotated");
    assert_eq!(
        secret["host"],
        orders.endpoint().unwrap().address().unwrap()
    );
    // The new instance is the platform's: the next apply finds nothing to do.
    let again = w.panthera(&["apply", "-f", path(&smaller)]).await;
    ok(&again);
    assert_eq!(aws_counts(&again).1, 0, "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_snapshots_retains_untagged_and_deletes_by_each_policy() {
    let Some(w) = World::new().await else { return };
    let name = unique("a3");
    let file = w.platform(&name, "p.yaml", |t| {
        t.replacen(
            "storage: 50Gi\n      instanceClass: db.t4g.medium\n      deletionPolicy: Snapshot",
            "storage: 50Gi\n      instanceClass: db.t4g.medium\n      deletionPolicy: Retain",
            1,
        )
        .replacen(
            "nodeType: cache.t4g.small\n    deletionPolicy: Snapshot",
            "nodeType: cache.t4g.small\n    deletionPolicy: Delete",
            1,
        )
        .replacen(
            "    deletionPolicy: Snapshot\n    topics:",
            "    deletionPolicy: Delete\n    topics:",
            1,
        )
    });
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    let orders = w.rds_instance(&format!("{name}-orders")).await.unwrap();
    assert_eq!(rds_tags(&orders)["panthera.dev/deletion-policy"], "Retain");

    let destroy = w.destroy(&file).await;
    ok(&destroy);
    let out = stdout(&destroy);

    // Snapshot: a final snapshot, then the instance is gone.
    assert!(
        w.rds_instance(&format!("{name}-users")).await.is_none(),
        "{out}"
    );
    let snapshots = w
        .rds()
        .describe_db_snapshots()
        .db_instance_identifier(format!("{name}-users"))
        .send()
        .await
        .unwrap();
    let finals: Vec<&str> = snapshots
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
        .filter(|s| s.starts_with(&format!("{name}-users-final-")))
        .collect();
    assert_eq!(finals.len(), 1, "{snapshots:?}");

    // Retain: left in place, with none of Panthera's tags.
    let orders = w.rds_instance(&format!("{name}-orders")).await.unwrap();
    let tags = rds_tags(&orders);
    assert!(
        !tags
            .keys()
            .any(|k| k.starts_with("panthera.dev/") || k == "app.kubernetes.io/managed-by"),
        "{tags:?}"
    );
    // Delete: MSK gone; ElastiCache deleting (moto never finishes), reported as waiting.
    let clusters = w.msk_clusters(&name).await;
    assert!(clusters.is_empty(), "{clusters:?}");
    assert!(
        out.contains(&format!(
            "waiting: redis: ElastiCache replication group {name}-redis deleting, 0m"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "waiting: cache subnet group {name}-redis: deleted once its replication group is gone"
        )),
        "{out}"
    );
    assert!(out.contains("AWS is still deleting 2 resource(s)"), "{out}");
    // The Delete store's master credentials go too; the Snapshot store's stay for the snapshot.
    let redis_secret = w
        .secrets()
        .describe_secret()
        .secret_id(format!("panthera/{name}/{name}/redis"))
        .send()
        .await;
    assert!(
        redis_secret.map_or(true, |s| s.deleted_date().is_some()),
        "redis secret scheduled for deletion"
    );
    assert!(
        w.secrets()
            .get_secret_value()
            .secret_id(format!("panthera/{name}/{name}/postgres-users"))
            .send()
            .await
            .is_ok()
    );

    // Destroy again: the retained instance is no longer Panthera's and is not touched.
    let again = w.destroy(&file).await;
    ok(&again);
    assert!(w.rds_instance(&format!("{name}-orders")).await.is_some());
    assert!(
        stdout(&again).contains(&format!(
            "waiting: redis: ElastiCache replication group {name}-redis deleting"
        )),
        "{}",
        stdout(&again)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_without_pantheras_tags_is_never_modified_or_deleted_unless_adopted() {
    let Some(w) = World::new().await else { return };
    let name = unique("a4");
    // Someone else's database under the name Panthera would use.
    w.rds()
        .create_db_instance()
        .db_instance_identifier(format!("{name}-users"))
        .db_instance_class("db.t4g.micro")
        .engine("postgres")
        .engine_version("16")
        .allocated_storage(20)
        .master_username("owner")
        .master_user_password("not-pantheras-0")
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value("data")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let file = w.platform(&name, "p.yaml", |t| t);
    let apply = w.panthera(&["apply", "-f", path(&file)]).await;
    assert_eq!(apply.status.code(), Some(1), "{}", stdout(&apply));
    assert!(
        stderr(&apply).contains("already exists and was not created by Panthera"),
        "{}",
        stderr(&apply)
    );
    let plan = w.panthera(&["plan", "-f", path(&file)]).await;
    assert_eq!(plan.status.code(), Some(1));
    let db = w.rds_instance(&format!("{name}-users")).await.unwrap();
    assert_eq!(db.db_instance_class(), Some("db.t4g.micro"));
    assert_eq!(
        rds_tags(&db),
        BTreeMap::from([("team".to_string(), "data".to_string())])
    );
    // Nothing else was created either: every store is planned before anything is written.
    assert!(w.rds_instance(&format!("{name}-orders")).await.is_none());

    // destroy does not see it.
    ok(&w.destroy(&file).await);
    let db = w.rds_instance(&format!("{name}-users")).await.unwrap();
    assert_eq!(db.db_instance_status(), Some("available"));
    assert_eq!(rds_tags(&db).len(), 1);

    // Adoption only when the spec names it: then it is tagged, resized and its password reset.
    let adopt = w.platform(&name, "adopt.yaml", |t| {
        t.replacen(
            "    - name: users\n      backend: aws\n",
            &format!(
                "    - name: users\n      backend: aws\n      existingIdentifier: {name}-users\n"
            ),
            1,
        )
    });
    let apply = w.panthera(&["apply", "-f", path(&adopt)]).await;
    ok(&apply);
    assert!(
        stdout(&apply).contains(&format!(
            "aws postgres/users: adopt RDS instance {name}-users"
        )),
        "{}",
        stdout(&apply)
    );
    let db = w.rds_instance(&format!("{name}-users")).await.unwrap();
    let tags = rds_tags(&db);
    assert_eq!(tags["panthera.dev/platform"], name);
    assert_eq!(tags["team"], "data", "foreign tags are kept");
    assert_eq!(db.db_instance_class(), Some("db.t4g.medium"));
    assert_eq!(
        aws_counts(&w.panthera(&["apply", "-f", path(&adopt)]).await).1,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_are_explained_and_nothing_is_written() {
    let Some(w) = World::new().await else { return };
    let name = unique("a5");
    let file = w.platform(&name, "p.yaml", |t| t);
    let apply = w
        .panthera_env(
            &["apply", "-f", path(&file)],
            &[
                ("AWS_ACCESS_KEY_ID", None),
                ("AWS_SECRET_ACCESS_KEY", None),
                ("AWS_SHARED_CREDENTIALS_FILE", Some("/nonexistent")),
                ("AWS_CONFIG_FILE", Some("/nonexistent")),
            ],
        )
        .await;
    assert_eq!(apply.status.code(), Some(1), "{}", stdout(&apply));
    assert!(
        stderr(&apply).contains("no AWS credentials found"),
        "{}",
        stderr(&apply)
    );
    // The namespace exists (the user created it with the Secrets): nothing at all is written.
    assert_eq!(w.sim.counters().writes(), 0, "{:?}", w.sim.counters());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_times_out_naming_the_msk_cluster_still_provisioning() {
    let Some(w) = World::new().await else { return };
    let name = unique("a6");
    let file = w.platform(&name, "p.yaml", |t| t);
    let apply = w
        .panthera(&["apply", "-f", path(&file), "--wait", "--timeout", "3s"])
        .await;
    assert_eq!(apply.status.code(), Some(1), "{}", stdout(&apply));
    assert!(
        stderr(&apply).contains("timed out after 3s; not ready: kafka"),
        "{}",
        stderr(&apply)
    );
    assert!(
        stderr(&apply).contains("kafka: waiting for MSK cluster"),
        "progress names what it waits on: {}",
        stderr(&apply)
    );

    // Without MSK every store is available at once on moto: --wait goes through, phase by phase.
    let name = unique("a6");
    let file = w.platform(&name, "cluster-kafka.yaml", |t| {
        t.replacen(
            "  kafka:\n    backend: aws",
            "  kafka:\n    backend: cluster",
            1,
        )
        .replace("    clientAuthentication: scram\n", "")
        .replace("    scramKmsKey: alias/shop-msk-scram\n", "")
    });
    let apply = w
        .panthera(&["apply", "-f", path(&file), "--wait", "--timeout", "60s"])
        .await;
    ok(&apply);
    let out = stdout(&apply);
    assert!(
        out.lines()
            .any(|l| l.contains("users") && l.contains("aws") && l.contains("available")),
        "{out}"
    );
    assert!(
        w.secret(&name, &format!("{name}-db-orders"))
            .await
            .is_some()
    );
}

/// The interface the operator uses: the engine with an AWS client, as a library.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_prune_removes_a_store_dropped_from_the_spec_keeping_its_data() {
    let Some(w) = World::new().await else { return };
    let name = unique("a8");
    let file = w.platform(&name, "p.yaml", |t| t);
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    let without_orders = w.platform(&name, "without-orders.yaml", |t| {
        let t = t.replace("      database: orders\n", "      database: users\n");
        let (start, end) = (
            t.find("    - name: orders\n      backend: aws\n").unwrap(),
            t.find("  redis:\n").unwrap(),
        );
        format!("{}{}", &t[..start], &t[end..])
    });
    // Without --prune nothing happens to it.
    let apply = w.panthera(&["apply", "-f", path(&without_orders)]).await;
    ok(&apply);
    assert_eq!(aws_counts(&apply).1, 0);
    assert!(w.rds_instance(&format!("{name}-orders")).await.is_some());

    let apply = w
        .panthera(&["apply", "-f", path(&without_orders), "--prune"])
        .await;
    ok(&apply);
    let out = stdout(&apply);
    assert!(
        out.contains(&format!(
            "pruned postgres/orders: RDS instance {name}-orders deleted (final snapshot {name}-orders-final-"
        )),
        "{out}"
    );
    assert!(w.rds_instance(&format!("{name}-orders")).await.is_none());
    assert!(w.rds_instance(&format!("{name}-users")).await.is_some());
    for (group, exists) in [
        (format!("{name}-users"), true),
        (format!("{name}-orders"), false),
    ] {
        let found = w
            .rds()
            .describe_db_subnet_groups()
            .db_subnet_group_name(&group)
            .send()
            .await
            .is_ok();
        assert_eq!(found, exists, "{group}");
    }
    // The connection Secret that opens the snapshot is kept, like a cluster store's.
    assert!(
        w.secret(&name, &format!("{name}-db-orders"))
            .await
            .is_some()
    );

    let again = w
        .panthera(&["apply", "-f", path(&without_orders), "--prune"])
        .await;
    ok(&again);
    assert_eq!(aws_counts(&again).1, 0, "{}", stdout(&again));
}
