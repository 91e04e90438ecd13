//! PostgreSQL on RDS: a DB instance in a DB subnet group of `spec.aws.subnetIds`.

use aws_sdk_rds::Client;
use aws_sdk_rds::operation::create_db_subnet_group::CreateDBSubnetGroupError;
use aws_sdk_rds::operation::delete_db_instance::DeleteDBInstanceError;
use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
use aws_sdk_rds::types::{DbInstance, Tag};

use super::Counted::{Read, Write};
use super::model::{self, Class, Observed, Owner, PostgresSettings, RdsOptions, Service, Settings};
use super::service::{
    Create, Delete, GroupDeleted, Modify, ServiceApi, SubnetGroups, Tags, key_value_tags,
    tagging_calls, tags_of_resource,
};
use super::{Ctx, Result};

key_value_tags!(Tag);
tags_of_resource!();

fn observed(db: &DbInstance) -> Observed {
    let pending = db.pending_modified_values();
    let instance_class = pending
        .and_then(|p| p.db_instance_class())
        .or(db.db_instance_class())
        .unwrap_or_default()
        .to_string();
    let version = pending
        .and_then(|p| p.engine_version())
        .or(db.engine_version())
        .unwrap_or_default()
        .to_string();
    let storage_gib = pending
        .and_then(|p| p.allocated_storage())
        .or(db.allocated_storage())
        .unwrap_or_default();
    let rds = RdsOptions {
        multi_az: pending
            .and_then(|p| p.multi_az())
            .or(db.multi_az())
            .unwrap_or_default(),
        backup_retention_days: pending
            .and_then(|p| p.backup_retention_period())
            .or(db.backup_retention_period())
            .unwrap_or_default(),
        backup_window: db.preferred_backup_window().map(str::to_string),
        maintenance_window: db.preferred_maintenance_window().map(str::to_string),
        max_storage_gib: db.max_allocated_storage(),
        deletion_protection: db.deletion_protection().unwrap_or_default(),
    };
    let mut waiting = Vec::new();
    if let Some(p) = pending {
        if let Some(c) = p.db_instance_class() {
            waiting.push(format!("instanceClass {c}"));
        }
        if let Some(v) = p.engine_version() {
            waiting.push(format!("version {v}"));
        }
        if let Some(s) = p.allocated_storage() {
            waiting.push(format!("storage {s} GiB"));
        }
        if let Some(m) = p.multi_az() {
            waiting.push(format!("highAvailability {m}"));
        }
        if let Some(r) = p.backup_retention_period() {
            waiting.push(format!("backupRetentionDays {r}"));
        }
    }
    Observed {
        arn: db.db_instance_arn().unwrap_or_default().to_string(),
        status: db.db_instance_status().unwrap_or_default().to_string(),
        endpoint: db.endpoint().and_then(|e| {
            Some(format!(
                "{}:{}",
                e.address()?,
                e.port().unwrap_or(i32::from(model::POSTGRES_PORT))
            ))
        }),
        tags: tag_map(db.tag_list()),
        settings: Some(Settings::Postgres(PostgresSettings {
            instance_class,
            version,
            storage_gib,
            rds,
        })),
        subnet_ids: db
            .db_subnet_group()
            .map(|g| {
                g.subnets()
                    .iter()
                    .filter_map(|s| s.subnet_identifier().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        security_group_ids: db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect(),
        pending: waiting,
        tls: true,
        auth: true,
        current_version: None,
        subnet_group: db
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_string),
    }
}

/// The DB instance `id` as RDS describes it, `None` when there is none.
pub(super) async fn instance(rds: &Client, ctx: &Ctx<'_>, id: &str) -> Result<Option<DbInstance>> {
    let request = rds.describe_db_instances().db_instance_identifier(id);
    let action = format!("describe RDS instance {id}");
    let not_found = |e: &DescribeDBInstancesError| e.is_db_instance_not_found_fault();
    let out = ctx.call_or_none(Read, &action, request.send(), not_found);
    Ok(out
        .await?
        .and_then(|out| out.db_instances().first().cloned()))
}

impl ServiceApi for Client {
    async fn describe(&self, ctx: &Ctx<'_>, identifier: &str) -> Result<Option<Observed>> {
        Ok(instance(self, ctx, identifier)
            .await?
            .as_ref()
            .map(observed))
    }

    async fn list_owned(&self, ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>> {
        let send = |marker| self.describe_db_instances().set_marker(marker).send();
        let pages = ctx.pages("list RDS instances", send, |p| p.marker());
        let mut owned = Vec::new();
        for db in pages.await?.iter().flat_map(|page| page.db_instances()) {
            let observed = observed(db);
            if owner.owns(&observed.tags) {
                let id = db.db_instance_identifier().unwrap_or_default();
                owned.push((id.to_string(), observed));
            }
        }
        Ok(owned)
    }

    async fn create(&self, ctx: &Ctx<'_>, new: Create<'_>) -> Result<()> {
        let (store, network, tags) = (new.store, new.network, new.tags);
        let Settings::Postgres(pg) = &store.settings else {
            return Ok(());
        };
        let rds = &pg.rds;
        let group = network.subnet_group(&store.identifier);
        if let Some(group) = &group {
            // One left by an interrupted apply is only referenced, never changed here.
            let request = self.create_db_subnet_group().db_subnet_group_name(group);
            let sent = request
                .db_subnet_group_description(format!("Panthera {}", store.component))
                .set_subnet_ids(Some(network.subnet_ids.clone()))
                .set_tags(Some(sdk_tags(tags)))
                .send();
            let exists = |e: &CreateDBSubnetGroupError| e.is_db_subnet_group_already_exists_fault();
            let action = format!("create DB subnet group {group}");
            let counted = Write("CreateDBSubnetGroup", group);
            ctx.call_or_none(counted, &action, sent, exists).await?;
        }
        let request = self
            .create_db_instance()
            .db_instance_identifier(&store.identifier)
            .db_instance_class(&pg.instance_class)
            .engine("postgres")
            .engine_version(&pg.version)
            .allocated_storage(pg.storage_gib)
            .storage_type("gp3")
            .storage_encrypted(true)
            .publicly_accessible(false)
            .copy_tags_to_snapshot(true)
            .multi_az(rds.multi_az)
            .backup_retention_period(rds.backup_retention_days)
            .set_preferred_backup_window(rds.backup_window.clone())
            .set_preferred_maintenance_window(rds.maintenance_window.clone())
            .set_max_allocated_storage(rds.max_storage_gib.filter(|m| *m > pg.storage_gib))
            .deletion_protection(rds.deletion_protection)
            .master_username(&store.username)
            .master_user_password(new.password)
            .db_name(&store.username)
            .set_db_subnet_group_name(group)
            .set_vpc_security_group_ids(network.security_groups())
            .set_tags(Some(sdk_tags(tags)));
        new.send(ctx, ("CreateDBInstance", "RDS instance"), request.send())
            .await
    }

    /// What can change now, then what waits for the maintenance window; nothing until the
    /// instance is available. An adopted instance's master password is reset to Panthera's.
    async fn modify(&self, ctx: &Ctx<'_>, change: Modify<'_>) -> Result<Option<String>> {
        let (store, network, observed) = (change.store, change.network, change.observed);
        let (planned, reset_password) = (change.planned, change.adopt_password);
        if planned.changes.is_empty() && reset_password.is_none() {
            return Ok(None);
        }
        if model::phase(store.service, &observed.status) != model::Phase::Available {
            return Ok(Some(format!(
                "waiting for the instance to be available before modifying ({})",
                planned
                    .changes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        let Settings::Postgres(pg) = &store.settings else {
            return Ok(None);
        };
        let rds = &pg.rds;
        let mut now = self
            .modify_db_instance()
            .db_instance_identifier(&store.identifier)
            .apply_immediately(true);
        let mut now_any = false;
        let mut window = self
            .modify_db_instance()
            .db_instance_identifier(&store.identifier)
            .apply_immediately(false);
        let mut window_any = false;
        for change in &planned.changes {
            match (change.field, change.class) {
                ("subnetIds", _) => {
                    let group = observed
                        .subnet_group
                        .clone()
                        .unwrap_or_else(|| store.identifier.clone());
                    if !subnet_group_owned(self, ctx, &group, &planned.tags, observed).await? {
                        return Ok(Some(format!(
                            "DB subnet group {group} was not created by Panthera: change its subnets yourself"
                        )));
                    }
                    let request = self.modify_db_subnet_group().db_subnet_group_name(&group);
                    let sent = request
                        .set_subnet_ids(Some(network.subnet_ids.clone()))
                        .send();
                    let action = format!("modify DB subnet group {group}");
                    ctx.call(Write("ModifyDBSubnetGroup", &group), &action, sent)
                        .await?;
                }
                ("instanceClass", _) => {
                    now = now.db_instance_class(&pg.instance_class);
                    now_any = true;
                }
                ("storage", _) => {
                    now = now.allocated_storage(pg.storage_gib);
                    now_any = true;
                }
                ("securityGroupIds", _) => {
                    now = now.set_vpc_security_group_ids(Some(network.security_group_ids.clone()));
                    now_any = true;
                }
                // Availability, backups and protection go with the other changes of this apply
                // in the one request that applies now.
                ("highAvailability", _) => {
                    now = now.multi_az(rds.multi_az);
                    now_any = true;
                }
                ("backupRetentionDays", _) => {
                    now = now.backup_retention_period(rds.backup_retention_days);
                    now_any = true;
                }
                ("backupWindow", _) => {
                    now = now.set_preferred_backup_window(rds.backup_window.clone());
                    now_any = true;
                }
                ("maintenanceWindow", _) => {
                    now = now.set_preferred_maintenance_window(rds.maintenance_window.clone());
                    now_any = true;
                }
                ("maxStorage", _) => {
                    // The size itself turns autoscaling off.
                    now = now.max_allocated_storage(
                        rds.max_storage_gib
                            .filter(|m| *m > pg.storage_gib)
                            .unwrap_or(pg.storage_gib),
                    );
                    now_any = true;
                }
                ("deletionProtection", _) => {
                    now = now.deletion_protection(rds.deletion_protection);
                    now_any = true;
                }
                ("version", Class::MaintenanceWindow) => {
                    window = window
                        .engine_version(&pg.version)
                        .allow_major_version_upgrade(true);
                    window_any = true;
                }
                _ => {}
            }
        }
        if let Some(p) = reset_password {
            now = now.master_user_password(p);
            now_any = true;
        }
        let counted = Write("ModifyDBInstance", &store.identifier);
        if now_any {
            let action = format!("modify RDS instance {}", store.identifier);
            ctx.call(counted, &action, now.send()).await?;
        }
        if window_any {
            let action = format!("schedule the upgrade of RDS instance {}", store.identifier);
            ctx.call(counted, &action, window.send()).await?;
        }
        Ok(None)
    }

    tagging_calls!(
        add_tags_to_resource = "AddTagsToResource",
        remove_tags_from_resource = "RemoveTagsFromResource",
        resource_name,
        sdk_tags
    );

    async fn lift_protection(&self, ctx: &Ctx<'_>, identifier: &str) -> Result<()> {
        let request = self
            .modify_db_instance()
            .db_instance_identifier(identifier)
            .deletion_protection(false)
            .apply_immediately(true);
        let action = format!("lift the deletion protection of RDS instance {identifier}");
        let counted = Write("ModifyDBInstance", identifier);
        ctx.call(counted, &action, request.send()).await?;
        Ok(())
    }

    async fn delete(&self, ctx: &Ctx<'_>, gone: Delete<'_>) -> Result<()> {
        let (identifier, final_snapshot) = (gone.identifier, gone.final_snapshot);
        let request = self
            .delete_db_instance()
            .db_instance_identifier(identifier)
            .skip_final_snapshot(final_snapshot.is_none())
            .set_final_db_snapshot_identifier(final_snapshot.map(str::to_string))
            .delete_automated_backups(final_snapshot.is_none());
        let action = format!("delete RDS instance {identifier}");
        let not_found = |e: &DeleteDBInstanceError| e.is_db_instance_not_found_fault();
        let counted = Write("DeleteDBInstance", identifier);
        ctx.call_or_none(counted, &action, request.send(), not_found)
            .await?;
        Ok(())
    }

    /// The DB subnet group of a retained instance stays in use: it loses Panthera's tags too.
    async fn release(&self, ctx: &Ctx<'_>, observed: &Observed, owner: &Owner) -> Result<()> {
        let Some(name) = &observed.subnet_group else {
            return Ok(());
        };
        ctx.count(Read);
        let Ok(out) = self
            .describe_db_subnet_groups()
            .db_subnet_group_name(name)
            .send()
            .await
        else {
            return Ok(());
        };
        for group in out.db_subnet_groups() {
            let Some(arn) = group.db_subnet_group_arn() else {
                continue;
            };
            let tags = tags_of(self, ctx, arn).await?;
            if owner.owns(&tags) {
                self.untag(ctx, arn, &model::panthera_tags_on(&tags))
                    .await?;
            }
        }
        Ok(())
    }
}

impl SubnetGroups for Client {
    const KIND: &str = "DB subnet group";
    const USER: &str = "instance";
    const SERVICE: Service = Service::Rds;

    async fn list_groups(&self, ctx: &Ctx<'_>) -> Result<Vec<(String, String)>> {
        let send = |marker| self.describe_db_subnet_groups().set_marker(marker).send();
        let pages = ctx
            .pages("list DB subnet groups", send, |p| p.marker())
            .await?;
        let groups = pages.iter().flat_map(|page| page.db_subnet_groups());
        let named = groups.filter_map(|g| {
            let (name, arn) = (g.db_subnet_group_name()?, g.db_subnet_group_arn()?);
            Some((name.to_string(), arn.to_string()))
        });
        Ok(named.collect())
    }

    async fn group_tags(&self, ctx: &Ctx<'_>, arn: &str) -> Result<Option<Tags>> {
        tags_of(self, ctx, arn).await.map(Some)
    }

    async fn delete_group(&self, ctx: &Ctx<'_>, name: &str) -> Result<GroupDeleted> {
        let request = self.delete_db_subnet_group().db_subnet_group_name(name);
        GroupDeleted::send(
            ctx,
            ("DeleteDBSubnetGroup", name),
            request.send(),
            |e| e.is_invalid_db_subnet_group_state_fault() || e.is_invalid_db_subnet_state_fault(),
            |e| e.is_db_subnet_group_not_found_fault(),
        )
        .await
    }
}

/// Whether the DB subnet group `name` carries the same ownership tags as its instance (with the
/// tags `adding` gives it).
async fn subnet_group_owned(
    rds: &Client,
    ctx: &Ctx<'_>,
    name: &str,
    adding: &Tags,
    observed: &Observed,
) -> Result<bool> {
    let request = rds.describe_db_subnet_groups().db_subnet_group_name(name);
    let action = format!("describe DB subnet group {name}");
    let out = ctx.call(Read, &action, request.send()).await?;
    let Some(arn) = out
        .db_subnet_groups()
        .first()
        .and_then(|g| g.db_subnet_group_arn())
    else {
        return Ok(false);
    };
    let tags = tags_of(rds, ctx, arn).await?;
    let mut instance = observed.tags.clone();
    instance.extend(adding.clone());
    Ok(
        match (
            instance.get(model::TAG_PLATFORM),
            instance.get(model::TAG_NAMESPACE),
        ) {
            (Some(platform), Some(namespace)) => Owner::new(platform, namespace).owns(&tags),
            _ => false,
        },
    )
}
