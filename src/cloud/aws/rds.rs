//! PostgreSQL on RDS: a DB instance in a DB subnet group of `spec.aws.subnetIds`.

use std::collections::BTreeMap;

use aws_sdk_rds::types::{DbInstance, Tag};

use super::model::{self, Class, Network, Observed, Owner, Planned, Settings, Store};
use super::{Ctx, Result};

fn rds_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

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
        settings: Some(Settings::Postgres {
            instance_class,
            version,
            storage_gib,
        }),
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

pub(super) async fn observe(ctx: &Ctx<'_>, identifier: &str) -> Result<Option<Observed>> {
    ctx.read();
    match ctx
        .clients
        .rds
        .describe_db_instances()
        .db_instance_identifier(identifier)
        .send()
        .await
    {
        Ok(out) => Ok(out.db_instances().first().map(observed)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            Ok(None)
        }
        Err(e) => Err(ctx.err(&format!("describe RDS instance {identifier}"), &e)),
    }
}

/// Every DB instance tagged as `owner`'s.
pub(super) async fn list_owned(ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        ctx.read();
        let page = ctx
            .clients
            .rds
            .describe_db_instances()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| ctx.err("list RDS instances", &e))?;
        for db in page.db_instances() {
            let o = observed(db);
            if owner.owns(&o.tags) {
                out.push((
                    db.db_instance_identifier().unwrap_or_default().to_string(),
                    o,
                ));
            }
        }
        marker = page.marker().map(str::to_string);
        if marker.is_none() {
            return Ok(out);
        }
    }
}

pub(super) async fn create(
    ctx: &Ctx<'_>,
    store: &Store,
    network: &Network,
    tags: &BTreeMap<String, String>,
    password: &str,
) -> Result<()> {
    let Settings::Postgres {
        instance_class,
        version,
        storage_gib,
    } = &store.settings
    else {
        return Ok(());
    };
    let group = store.identifier.clone();
    if !network.subnet_ids.is_empty() {
        ctx.write("CreateDBSubnetGroup", &group);
        let created = ctx
            .clients
            .rds
            .create_db_subnet_group()
            .db_subnet_group_name(&group)
            .db_subnet_group_description(format!("Panthera {}", store.component))
            .set_subnet_ids(Some(network.subnet_ids.clone()))
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Left by an interrupted apply: it is only referenced, never changed here.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_subnet_group_already_exists_fault()) => {}
            Err(e) => return Err(ctx.err(&format!("create DB subnet group {group}"), &e)),
        }
    }
    ctx.write("CreateDBInstance", &store.identifier);
    ctx.clients
        .rds
        .create_db_instance()
        .db_instance_identifier(&store.identifier)
        .db_instance_class(instance_class)
        .engine("postgres")
        .engine_version(version)
        .allocated_storage(*storage_gib)
        .storage_type("gp3")
        .storage_encrypted(true)
        .publicly_accessible(false)
        .copy_tags_to_snapshot(true)
        .master_username(&store.username)
        .master_user_password(password)
        .db_name(&store.username)
        .set_db_subnet_group_name((!network.subnet_ids.is_empty()).then_some(group))
        .set_vpc_security_group_ids(
            (!network.security_group_ids.is_empty()).then(|| network.security_group_ids.clone()),
        )
        .set_tags(Some(rds_tags(tags)))
        .send()
        .await
        .map_err(|e| ctx.err(&format!("create RDS instance {}", store.identifier), &e))?;
    Ok(())
}

/// Apply `planned`: tags first (adoption), then what can change now, then what waits for the
/// maintenance window. Changes other than tags wait until the instance is available.
pub(super) async fn modify(
    ctx: &Ctx<'_>,
    store: &Store,
    network: &Network,
    observed: &Observed,
    planned: &Planned,
    reset_password: Option<&str>,
) -> Result<Option<String>> {
    if !planned.tags.is_empty() {
        tag(ctx, &observed.arn, &planned.tags).await?;
    }
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
    let Settings::Postgres {
        instance_class,
        version,
        storage_gib,
    } = &store.settings
    else {
        return Ok(None);
    };
    let rds = &ctx.clients.rds;
    let mut now = rds
        .modify_db_instance()
        .db_instance_identifier(&store.identifier)
        .apply_immediately(true);
    let mut now_any = false;
    let mut window = rds
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
                if !subnet_group_owned(ctx, &group, &planned.tags, observed).await? {
                    return Ok(Some(format!(
                        "DB subnet group {group} was not created by Panthera: change its subnets yourself"
                    )));
                }
                ctx.write("ModifyDBSubnetGroup", &group);
                rds.modify_db_subnet_group()
                    .db_subnet_group_name(&group)
                    .set_subnet_ids(Some(network.subnet_ids.clone()))
                    .send()
                    .await
                    .map_err(|e| ctx.err(&format!("modify DB subnet group {group}"), &e))?;
            }
            ("instanceClass", _) => {
                now = now.db_instance_class(instance_class);
                now_any = true;
            }
            ("storage", _) => {
                now = now.allocated_storage(*storage_gib);
                now_any = true;
            }
            ("securityGroupIds", _) => {
                now = now.set_vpc_security_group_ids(Some(network.security_group_ids.clone()));
                now_any = true;
            }
            ("version", Class::MaintenanceWindow) => {
                window = window
                    .engine_version(version)
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
    if now_any {
        ctx.write("ModifyDBInstance", &store.identifier);
        now.send()
            .await
            .map_err(|e| ctx.err(&format!("modify RDS instance {}", store.identifier), &e))?;
    }
    if window_any {
        ctx.write("ModifyDBInstance", &store.identifier);
        window.send().await.map_err(|e| {
            ctx.err(
                &format!("schedule the upgrade of RDS instance {}", store.identifier),
                &e,
            )
        })?;
    }
    Ok(None)
}

pub(super) async fn tag(ctx: &Ctx<'_>, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    ctx.write("AddTagsToResource", arn);
    ctx.clients
        .rds
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(rds_tags(tags)))
        .send()
        .await
        .map_err(|e| ctx.err(&format!("tag {arn}"), &e))?;
    Ok(())
}

pub(super) async fn untag(ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    ctx.write("RemoveTagsFromResource", arn);
    ctx.clients
        .rds
        .remove_tags_from_resource()
        .resource_name(arn)
        .set_tag_keys(Some(keys.to_vec()))
        .send()
        .await
        .map_err(|e| ctx.err(&format!("untag {arn}"), &e))?;
    Ok(())
}

pub(super) async fn delete(
    ctx: &Ctx<'_>,
    identifier: &str,
    final_snapshot: Option<&str>,
) -> Result<()> {
    ctx.write("DeleteDBInstance", identifier);
    let result = ctx
        .clients
        .rds
        .delete_db_instance()
        .db_instance_identifier(identifier)
        .skip_final_snapshot(final_snapshot.is_none())
        .set_final_db_snapshot_identifier(final_snapshot.map(str::to_string))
        .delete_automated_backups(final_snapshot.is_none())
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
        {
            Ok(())
        }
        Err(e) => Err(ctx.err(&format!("delete RDS instance {identifier}"), &e)),
    }
}

async fn subnet_group_tags(ctx: &Ctx<'_>, arn: &str) -> Result<BTreeMap<String, String>> {
    ctx.read();
    let out = ctx
        .clients
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| ctx.err(&format!("list tags of {arn}"), &e))?;
    Ok(tag_map(out.tag_list()))
}

/// Whether the DB subnet group `name` carries the same ownership tags as its instance.
async fn subnet_group_owned(
    ctx: &Ctx<'_>,
    name: &str,
    adding: &BTreeMap<String, String>,
    observed: &Observed,
) -> Result<bool> {
    ctx.read();
    let out = ctx
        .clients
        .rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await
        .map_err(|e| ctx.err(&format!("describe DB subnet group {name}"), &e))?;
    let Some(arn) = out
        .db_subnet_groups()
        .first()
        .and_then(|g| g.db_subnet_group_arn())
    else {
        return Ok(false);
    };
    let tags = subnet_group_tags(ctx, arn).await?;
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

/// Remove Panthera's tags from the DB subnet group of a retained instance (it stays in use).
pub(super) async fn untag_subnet_group(ctx: &Ctx<'_>, name: &str, owner: &Owner) -> Result<()> {
    ctx.read();
    let Ok(out) = ctx
        .clients
        .rds
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
        let tags = subnet_group_tags(ctx, arn).await?;
        if owner.owns(&tags) {
            untag(ctx, arn, &model::panthera_tags_on(&tags)).await?;
        }
    }
    Ok(())
}

/// Delete the DB subnet groups `owner` created whose instance is gone; the ones still in use
/// are returned as waiting.
/// `busy`: a store of `owner` is still being deleted, so its subnet group is in use. Groups named
/// in `keep` (the subnet groups of stores that stay) are left alone.
pub(super) async fn cleanup_subnet_groups(
    ctx: &Ctx<'_>,
    owner: &Owner,
    busy: bool,
    keep: &std::collections::BTreeSet<String>,
) -> Result<Vec<String>> {
    let mut waiting = Vec::new();
    let mut marker = None;
    let prefix = model::identifier(&owner.platform, 63);
    loop {
        ctx.read();
        let page = ctx
            .clients
            .rds
            .describe_db_subnet_groups()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| ctx.err("list DB subnet groups", &e))?;
        for group in page.db_subnet_groups() {
            let (Some(name), Some(arn)) =
                (group.db_subnet_group_name(), group.db_subnet_group_arn())
            else {
                continue;
            };
            if !name.starts_with(&prefix) || keep.contains(name) {
                continue;
            }
            let tags = subnet_group_tags(ctx, arn).await?;
            if !owner.owns(&tags) {
                continue;
            }
            if model::policy_of(&tags) == crate::api::DeletionPolicy::Retain {
                untag(ctx, arn, &model::panthera_tags_on(&tags)).await?;
                continue;
            }
            if busy {
                waiting.push(format!(
                    "DB subnet group {name}: deleted once its instance is gone"
                ));
                continue;
            }
            ctx.write("DeleteDBSubnetGroup", name);
            match ctx
                .clients
                .rds
                .delete_db_subnet_group()
                .db_subnet_group_name(name)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error().is_some_and(|s| {
                        s.is_invalid_db_subnet_group_state_fault()
                            || s.is_invalid_db_subnet_state_fault()
                    }) =>
                {
                    waiting.push(format!(
                        "DB subnet group {name}: in use until its instance is deleted"
                    ));
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_db_subnet_group_not_found_fault()) => {}
                Err(e) => {
                    let e = ctx.err(&format!("delete DB subnet group {name}"), &e);
                    if e.terminal {
                        return Err(e);
                    }
                    waiting.push(format!(
                        "DB subnet group {name}: not deleted yet (AWS busy), tried again on the next destroy"
                    ));
                }
            }
        }
        marker = page.marker().map(str::to_string);
        if marker.is_none() {
            return Ok(waiting);
        }
    }
}
