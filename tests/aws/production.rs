//! The production settings of the AWS stores against moto: each reaches AWS on create, a change
//! is planned and applied as AWS applies it with one write per store, deletion protection is
//! lifted only when the deletion policy deletes, and `panthera restore` moves a database into a
//! new instance and its connection Secret with it.
//!
//! moto cannot show: MSK becoming ACTIVE (so the SCRAM secret is never associated and no Kafka
//! Secret is written), replica count changes (no IncreaseReplicaCount), ElastiCache snapshot
//! window changes (ModifyReplicationGroup ignores it), real restore contents or durations.

use super::*;

fn db_by_id<'a>(
    all: &'a [aws_sdk_rds::types::DbInstance],
    id: &str,
) -> &'a aws_sdk_rds::types::DbInstance {
    all.iter()
        .find(|d| d.db_instance_identifier() == Some(id))
        .unwrap_or_else(|| panic!("no RDS instance {id}"))
}

impl World {
    /// The hash of the AWS endpoints on the pod template of a service's Deployment.
    async fn endpoints_hash(&self, platform: &str, service: &str) -> Option<String> {
        let api: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.sim.client().unwrap(), platform);
        api.get(&format!("{platform}-{service}"))
            .await
            .unwrap()
            .spec?
            .template
            .metadata?
            .annotations?
            .get("panthera.dev/store-endpoints")
            .cloned()
    }

    async fn redis_group(&self, id: &str) -> aws_sdk_elasticache::types::ReplicationGroup {
        self.elasticache()
            .describe_replication_groups()
            .replication_group_id(id)
            .send()
            .await
            .unwrap()
            .replication_groups()
            .first()
            .cloned()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_settings_reach_aws_on_create() {
    let Some(w) = World::new().await else { return };
    let name = unique("p1");
    let file = w.platform(&name, "p.yaml", |t| t);
    let first = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&first);

    let users = w.rds_instance(&format!("{name}-users")).await.unwrap();
    assert_eq!(users.multi_az(), Some(true));
    assert_eq!(users.backup_retention_period(), Some(14));
    assert_eq!(users.preferred_backup_window(), Some("03:00-03:30"));
    assert_eq!(
        users.preferred_maintenance_window(),
        Some("sun:04:00-sun:04:30")
    );
    assert_eq!(users.max_allocated_storage(), Some(100));
    assert_eq!(users.deletion_protection(), Some(true));
    let orders = w.rds_instance(&format!("{name}-orders")).await.unwrap();
    assert_eq!(orders.max_allocated_storage(), Some(200));
    assert_eq!(orders.deletion_protection(), Some(true), "on by default");

    let redis = w.redis_group(&format!("{name}-redis")).await;
    assert_eq!(redis.member_clusters().len(), 2, "a primary and a replica");
    assert_eq!(
        redis.automatic_failover().map(|f| f.as_str()),
        Some("enabled")
    );
    assert_eq!(redis.multi_az().map(|m| m.as_str()), Some("enabled"));
    assert_eq!(redis.snapshot_retention_limit(), Some(7));
    assert_eq!(redis.snapshot_window(), Some("05:00-06:00"));

    // MSK: TLS only between clients and brokers, SASL/SCRAM on, no unauthenticated access.
    let clusters = w.msk_clusters(&name).await;
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters[0]["clientBroker"], "TLS", "{clusters:?}");
    assert_eq!(clusters[0]["scram"], true, "{clusters:?}");
    assert_ne!(clusters[0]["unauthenticated"], true, "{clusters:?}");
    // The SCRAM login, in the secret MSK requires: named AmazonMSK_..., under the spec's key.
    let secret = w
        .secrets()
        .describe_secret()
        .secret_id(format!("AmazonMSK_panthera_{name}_{name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(secret.kms_key_id(), Some("alias/shop-msk-scram"));
    let tags: BTreeMap<&str, &str> = secret
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    assert_eq!(tags.get("panthera.dev/platform"), Some(&name.as_str()));
    // moto keeps MSK CREATING: the association waits for ACTIVE, and says so.
    assert!(
        stdout(&first).contains("SCRAM secret associated once the cluster is active"),
        "{}",
        stdout(&first)
    );

    let again = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&again);
    assert_eq!(aws_counts(&again).1, 0, "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_planned_as_aws_applies_it_with_one_write_per_store() {
    let Some(w) = World::new().await else { return };
    let name = unique("p2");
    // Backups may be turned off below: that needs deletionPolicy Delete from the start.
    let delete = |t: String| {
        t.replacen(
            "      deletionProtection: true\n      deletionPolicy: Snapshot",
            "      deletionProtection: true\n      deletionPolicy: Delete",
            1,
        )
    };
    let file = w.platform(&name, "p.yaml", delete);
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);

    let changed = w.platform(&name, "changed.yaml", |t| {
        delete(t)
            .replacen("      highAvailability: true\n", "", 1)
            .replacen("retentionDays: 14", "retentionDays: 21", 1)
            .replacen("sun:04:00-sun:04:30", "mon:05:00-mon:05:30", 1)
            .replacen("maxStorage: 100Gi", "maxStorage: 150Gi", 1)
            .replacen("      retentionDays: 7\n", "      retentionDays: 3\n", 1)
    });
    let plan = w.panthera(&["plan", "-f", path(&changed)]).await;
    ok(&plan);
    let text = stdout(&plan);
    assert!(
        text.contains(&format!(
            "~ postgres/users: modify in place RDS instance {name}-users: highAvailability true -> false; backupRetentionDays 14 -> 21; maintenanceWindow sun:04:00-sun:04:30 -> mon:05:00-mon:05:30; maxStorage 100 -> 150"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "~ redis: modify in place ElastiCache replication group {name}-redis: snapshotRetentionDays 7 -> 3"
        )),
        "{text}"
    );
    assert!(
        text.contains("AWS: 0 to create, 2 to modify, 0 to replace, 2 unchanged."),
        "{text}"
    );
    let apply = w.panthera(&["apply", "-f", path(&changed)]).await;
    ok(&apply);
    assert_eq!(
        aws_counts(&apply).1,
        2,
        "one ModifyDBInstance, one ModifyReplicationGroup: {}",
        stdout(&apply)
    );
    let users = w.rds_instance(&format!("{name}-users")).await.unwrap();
    assert_eq!(users.multi_az(), Some(false));
    assert_eq!(users.backup_retention_period(), Some(21));
    assert_eq!(
        users.preferred_maintenance_window(),
        Some("mon:05:00-mon:05:30")
    );
    assert_eq!(users.max_allocated_storage(), Some(150));
    let redis = w.redis_group(&format!("{name}-redis")).await;
    assert_eq!(redis.snapshot_retention_limit(), Some(3));
    let again = w.panthera(&["apply", "-f", path(&changed)]).await;
    ok(&again);
    assert_eq!(aws_counts(&again).1, 0, "{}", stdout(&again));

    // Backups off is a restart of the instance: planned as such, still one write.
    let off = w.platform(&name, "off.yaml", |t| {
        delete(t)
            .replacen("      highAvailability: true\n", "", 1)
            .replacen("sun:04:00-sun:04:30", "mon:05:00-mon:05:30", 1)
            .replacen("maxStorage: 100Gi", "maxStorage: 150Gi", 1)
            .replacen("      retentionDays: 7\n", "      retentionDays: 3\n", 1)
            .replacen(
                "        retentionDays: 14\n        window: \"03:00-03:30\"\n",
                "        retentionDays: 0\n",
                1,
            )
    });
    let plan = w.panthera(&["plan", "-f", path(&off)]).await;
    ok(&plan);
    assert!(
        stdout(&plan).contains(&format!(
            "~ postgres/users: modify in place with reboot RDS instance {name}-users: backupRetentionDays 21 -> 0 (reboot)"
        )),
        "{}",
        stdout(&plan)
    );
    let apply = w.panthera(&["apply", "-f", path(&off)]).await;
    ok(&apply);
    assert_eq!(aws_counts(&apply).1, 1, "{}", stdout(&apply));
    let users = w.rds_instance(&format!("{name}-users")).await.unwrap();
    assert_eq!(users.backup_retention_period(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_protection_is_lifted_only_when_the_policy_deletes() {
    let Some(w) = World::new().await else { return };
    let name = unique("p3");
    let file = w.platform(&name, "p.yaml", |t| {
        t.replacen(
            "      deletionProtection: true\n      deletionPolicy: Snapshot",
            "      deletionProtection: true\n      deletionPolicy: Delete",
            1,
        )
        .replacen(
            "      instanceClass: db.t4g.medium\n      deletionPolicy: Snapshot\n      maxStorage: 200Gi",
            "      instanceClass: db.t4g.medium\n      deletionPolicy: Retain\n      maxStorage: 200Gi",
            1,
        )
    });
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    // The protection is AWS's own: a delete by anyone else is refused.
    let refused = w
        .rds()
        .delete_db_instance()
        .db_instance_identifier(format!("{name}-users"))
        .skip_final_snapshot(true)
        .send()
        .await;
    assert!(refused.is_err(), "moto enforces deletion protection");

    let destroy = w.destroy(&file).await;
    ok(&destroy);
    // What was deleted is printed as it goes (stderr), what waits at the end (stdout).
    let out = format!("{}{}", stderr(&destroy), stdout(&destroy));
    // Delete: lifted and deleted at once, without a snapshot.
    assert!(
        out.contains(&format!(
            "postgres/users: RDS instance {name}-users deleted (no final snapshot; deletion protection lifted first)"
        )),
        "{out}"
    );
    assert!(w.rds_instance(&format!("{name}-users")).await.is_none());
    // Retain: still there, still protected, no longer Panthera's.
    let orders = w.rds_instance(&format!("{name}-orders")).await.unwrap();
    assert_eq!(orders.deletion_protection(), Some(true), "{out}");
    assert!(
        out.contains(&format!(
            "postgres/orders: RDS instance {name}-orders retained (Panthera's tags removed; deletion protection kept)"
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_a_point_in_time_and_from_a_snapshot_switches_the_secret() {
    let Some(w) = World::new().await else { return };
    let name = unique("p4");
    let file = w.platform(&name, "p.yaml", |t| t);
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    let old = format!("{name}-users");
    let secret = w.secret(&name, &format!("{name}-db-users")).await.unwrap();
    let old_host = secret["host"].clone();
    let rollout_before = w.endpoints_hash(&name, "users").await;
    assert!(
        rollout_before.is_some(),
        "the pods carry the endpoints' hash"
    );

    // Within the retention window: moto's latest restorable time is now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let to = (chrono::Utc::now() - chrono::Duration::seconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let dry = w
        .panthera(&[
            "restore",
            "-f",
            path(&file),
            "users",
            "--to-time",
            &to,
            "--dry-run",
        ])
        .await;
    ok(&dry);
    assert!(
        stdout(&dry).starts_with(&format!(
            "would restore postgres/users (RDS instance {old}) to {to} into RDS instance {old}-r"
        )),
        "{}",
        stdout(&dry)
    );
    let count = |all: &[aws_sdk_rds::types::DbInstance]| {
        all.iter()
            .filter(|d| rds_tags(d).get("panthera.dev/platform") == Some(&name))
            .count()
    };
    assert_eq!(count(&w.rds_all().await), 2, "a dry run writes nothing");

    let restore = w
        .panthera(&["restore", "-f", path(&file), "users", "--to-time", &to])
        .await;
    ok(&restore);
    let out = stdout(&restore);
    let all = w.rds_all().await;
    let new: Vec<&aws_sdk_rds::types::DbInstance> = all
        .iter()
        .filter(|d| {
            d.db_instance_identifier()
                .is_some_and(|id| id.starts_with(&format!("{old}-r")))
        })
        .collect();
    assert_eq!(new.len(), 1, "{out}");
    let new = new[0];
    let new_id = new.db_instance_identifier().unwrap().to_string();
    let tags = rds_tags(new);
    assert_eq!(tags["panthera.dev/component"], "postgres/users");
    assert_eq!(tags["panthera.dev/platform"], name);
    assert_eq!(tags["panthera.dev/restored-from"], old);
    assert_eq!(new.deletion_protection(), Some(true));
    // The old instance is kept, protected, and marked as superseded.
    let kept = db_by_id(&all, &old);
    assert_eq!(kept.deletion_protection(), Some(true));
    assert_eq!(rds_tags(kept)["panthera.dev/superseded-by"], new_id);
    assert!(
        out.contains(&format!("kept RDS instance {old}")) && out.contains("delete-db-instance"),
        "{out}"
    );
    // The Secret points at the new instance, with the same password; the services roll.
    let switched = w.secret(&name, &format!("{name}-db-users")).await.unwrap();
    assert_eq!(
        switched["host"],
        new.endpoint().unwrap().address().unwrap(),
        "{out}"
    );
    assert_ne!(switched["host"], old_host);
    assert_eq!(switched["password"], secret["password"]);
    assert_ne!(
        w.endpoints_hash(&name, "users").await,
        rollout_before,
        "the services roll"
    );
    // The store is the new instance now: a re-apply writes nothing.
    let again = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&again);
    assert_eq!(aws_counts(&again).1, 0, "{}", stdout(&again));

    // From a snapshot of the database.
    let snapshot = format!("{name}-users-manual");
    w.rds()
        .create_db_snapshot()
        .db_instance_identifier(&new_id)
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let restore = w
        .panthera(&[
            "restore",
            "-f",
            path(&file),
            "users",
            "--from-snapshot",
            &snapshot,
        ])
        .await;
    ok(&restore);
    let all = w.rds_all().await;
    let third = all
        .iter()
        .find(|d| rds_tags(d).get("panthera.dev/restored-from") == Some(&new_id))
        .unwrap_or_else(|| panic!("{}", stdout(&restore)));
    let switched = w.secret(&name, &format!("{name}-db-users")).await.unwrap();
    assert_eq!(
        switched["host"],
        third.endpoint().unwrap().address().unwrap()
    );
    assert_eq!(count(&all), 4, "nothing was deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_is_refused_for_a_missing_or_foreign_store_and_outside_the_retention() {
    let Some(w) = World::new().await else { return };
    let name = unique("p5");
    let file = w.platform(&name, "p.yaml", |t| t);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Missing: nothing was applied yet.
    let missing = w
        .panthera(&["restore", "-f", path(&file), "users", "--to-time", &now])
        .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains(&format!("RDS instance {name}-users does not exist")),
        "{}",
        stderr(&missing)
    );
    let unknown = w
        .panthera(&["restore", "-f", path(&file), "nope", "--to-time", &now])
        .await;
    assert!(
        stderr(&unknown).contains("no database of that name"),
        "{}",
        stderr(&unknown)
    );
    // Foreign: someone else's instance under the store's name is never restored from.
    w.rds()
        .create_db_instance()
        .db_instance_identifier(format!("{name}-orders"))
        .db_instance_class("db.t4g.micro")
        .engine("postgres")
        .allocated_storage(20)
        .master_username("owner")
        .master_user_password("not-pantheras-0")
        .send()
        .await
        .unwrap();
    let foreign = w
        .panthera(&["restore", "-f", path(&file), "orders", "--to-time", &now])
        .await;
    assert_eq!(foreign.status.code(), Some(1));
    assert!(
        stderr(&foreign).contains("was not created by Panthera"),
        "{}",
        stderr(&foreign)
    );
    // Outside the retention window (and before the instance existed).
    let users_only = w.platform(&name, "users.yaml", |t| {
        let (start, end) = (
            t.find("    - name: orders\n      backend: aws\n").unwrap(),
            t.find("  redis:\n").unwrap(),
        );
        format!("{}{}", &t[..start], &t[end..]).replace("database: orders", "database: users")
    });
    ok(&w.panthera(&["apply", "-f", path(&users_only)]).await);
    let old = (chrono::Utc::now() - chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let outside = w
        .panthera(&[
            "restore",
            "-f",
            path(&users_only),
            "users",
            "--to-time",
            &old,
        ])
        .await;
    assert_eq!(outside.status.code(), Some(1));
    assert!(
        stderr(&outside).contains("outside the retention window"),
        "{}",
        stderr(&outside)
    );
    let bad = w
        .panthera(&[
            "restore",
            "-f",
            path(&users_only),
            "users",
            "--to-time",
            "yesterday",
        ])
        .await;
    assert!(
        stderr(&bad).contains("--to-time yesterday"),
        "{}",
        stderr(&bad)
    );
    let all = w.rds_all().await;
    assert!(
        !all.iter().any(|d| d
            .db_instance_identifier()
            .is_some_and(|id| id.starts_with(&format!("{name}-users-r")))),
        "nothing restored"
    );
}
