//! Redis on ElastiCache: a replication group (cluster mode disabled, one primary) with in-transit
//! encryption and an AUTH token, in a cache subnet group of `spec.aws.subnetIds`.

use std::collections::BTreeMap;

use aws_sdk_elasticache::types::{AuthTokenUpdateStrategyType, ReplicationGroup, Tag};

use super::model::{self, Network, Observed, Owner, Planned, Settings, Store};
use super::{Ctx, Result};

fn ec_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
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

async fn tags_of(ctx: &Ctx<'_>, arn: &str) -> Result<BTreeMap<String, String>> {
    ctx.read();
    let out = ctx
        .clients
        .elasticache
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| ctx.err(&format!("list tags of {arn}"), &e))?;
    Ok(tag_map(out.tag_list()))
}

/// Engine version and security groups live on the member clusters.
async fn member(ctx: &Ctx<'_>, group: &ReplicationGroup) -> Result<(String, Vec<String>)> {
    let Some(id) = group.member_clusters().first() else {
        return Ok((String::new(), Vec::new()));
    };
    ctx.read();
    match ctx
        .clients
        .elasticache
        .describe_cache_clusters()
        .cache_cluster_id(id)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .cache_clusters()
            .first()
            .map(|c| {
                (
                    c.engine_version().unwrap_or_default().to_string(),
                    c.security_groups()
                        .iter()
                        .filter_map(|g| g.security_group_id().map(str::to_string))
                        .collect(),
                )
            })
            .unwrap_or_default()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_cache_cluster_not_found_fault()) =>
        {
            Ok((String::new(), Vec::new()))
        }
        Err(e) => Err(ctx.err(&format!("describe cache cluster {id}"), &e)),
    }
}

async fn observed(ctx: &Ctx<'_>, group: &ReplicationGroup) -> Result<Observed> {
    let arn = group.arn().unwrap_or_default().to_string();
    let tags = if arn.is_empty() {
        BTreeMap::new()
    } else {
        tags_of(ctx, &arn).await?
    };
    let (version, security_group_ids) = member(ctx, group).await?;
    let endpoint = group
        .node_groups()
        .first()
        .and_then(|n| n.primary_endpoint())
        .or(group.configuration_endpoint())
        .and_then(|e| {
            Some(format!(
                "{}:{}",
                e.address()?,
                e.port().unwrap_or(i32::from(model::REDIS_PORT))
            ))
        });
    let pending = group
        .pending_modified_values()
        .and_then(|p| p.auth_token_status())
        .map(|s| vec![format!("auth token {}", s.as_str().to_ascii_lowercase())])
        .unwrap_or_default();
    Ok(Observed {
        arn,
        status: group.status().unwrap_or_default().to_string(),
        endpoint,
        tags,
        settings: Some(Settings::Redis {
            node_type: group.cache_node_type().unwrap_or_default().to_string(),
            version,
        }),
        subnet_ids: Vec::new(),
        security_group_ids,
        pending,
        tls: group.transit_encryption_enabled().unwrap_or(false),
        auth: group.auth_token_enabled().unwrap_or(false),
        current_version: None,
        subnet_group: None,
    })
}

pub(super) async fn observe(ctx: &Ctx<'_>, identifier: &str) -> Result<Option<Observed>> {
    ctx.read();
    match ctx
        .clients
        .elasticache
        .describe_replication_groups()
        .replication_group_id(identifier)
        .send()
        .await
    {
        Ok(out) => match out.replication_groups().first() {
            Some(g) => Ok(Some(observed(ctx, g).await?)),
            None => Ok(None),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_replication_group_not_found_fault()) =>
        {
            Ok(None)
        }
        Err(e) => Err(ctx.err(
            &format!("describe ElastiCache replication group {identifier}"),
            &e,
        )),
    }
}

/// Every replication group tagged as `owner`'s (tags are one call per group).
pub(super) async fn list_owned(ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        ctx.read();
        let page = ctx
            .clients
            .elasticache
            .describe_replication_groups()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| ctx.err("list ElastiCache replication groups", &e))?;
        for group in page.replication_groups() {
            let Some(arn) = group.arn() else { continue };
            let tags = tags_of(ctx, arn).await?;
            if owner.owns(&tags) {
                let o = observed(ctx, group).await?;
                out.push((
                    group.replication_group_id().unwrap_or_default().to_string(),
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
    let Settings::Redis { node_type, version } = &store.settings else {
        return Ok(());
    };
    let group = store.identifier.clone();
    let ec = &ctx.clients.elasticache;
    if !network.subnet_ids.is_empty() {
        ctx.write("CreateCacheSubnetGroup", &group);
        match ec
            .create_cache_subnet_group()
            .cache_subnet_group_name(&group)
            .cache_subnet_group_description(format!("Panthera {}", store.component))
            .set_subnet_ids(Some(network.subnet_ids.clone()))
            .set_tags(Some(ec_tags(tags)))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_cache_subnet_group_already_exists_fault()) => {}
            Err(e) => return Err(ctx.err(&format!("create cache subnet group {group}"), &e)),
        }
    }
    ctx.write("CreateReplicationGroup", &store.identifier);
    ec.create_replication_group()
        .replication_group_id(&store.identifier)
        .replication_group_description(format!("Panthera {}", store.component))
        .engine("redis")
        .engine_version(version)
        .cache_node_type(node_type)
        .num_cache_clusters(1)
        .transit_encryption_enabled(true)
        .at_rest_encryption_enabled(true)
        .auth_token(password)
        .set_cache_subnet_group_name((!network.subnet_ids.is_empty()).then_some(group))
        .set_security_group_ids(
            (!network.security_group_ids.is_empty()).then(|| network.security_group_ids.clone()),
        )
        .set_tags(Some(ec_tags(tags)))
        .send()
        .await
        .map_err(|e| {
            ctx.err(
                &format!("create ElastiCache replication group {}", store.identifier),
                &e,
            )
        })?;
    Ok(())
}

pub(super) async fn modify(
    ctx: &Ctx<'_>,
    store: &Store,
    observed: &Observed,
    planned: &Planned,
    adopt_password: Option<&str>,
) -> Result<Option<String>> {
    if !planned.tags.is_empty() {
        tag(ctx, &observed.arn, &planned.tags).await?;
    }
    // An adopted group keeps working with its old token while Panthera's is added (ROTATE).
    let rotate = adopt_password.filter(|_| observed.auth && observed.tls);
    if planned.changes.is_empty() && rotate.is_none() {
        return Ok(None);
    }
    if model::phase(store.service, &observed.status) != model::Phase::Available {
        return Ok(Some(
            "waiting for the replication group to be available before modifying".into(),
        ));
    }
    let Settings::Redis { node_type, version } = &store.settings else {
        return Ok(None);
    };
    let mut request = ctx
        .clients
        .elasticache
        .modify_replication_group()
        .replication_group_id(&store.identifier)
        .apply_immediately(true);
    for change in &planned.changes {
        request = match change.field {
            "nodeType" => request.cache_node_type(node_type),
            "version" => request.engine_version(version),
            "securityGroupIds" => request
                .set_security_group_ids(Some(planned_security_groups(planned).unwrap_or_default())),
            _ => request,
        };
    }
    if let Some(p) = rotate {
        request = request
            .auth_token(p)
            .auth_token_update_strategy(AuthTokenUpdateStrategyType::Rotate);
    }
    ctx.write("ModifyReplicationGroup", &store.identifier);
    request.send().await.map_err(|e| {
        ctx.err(
            &format!("modify ElastiCache replication group {}", store.identifier),
            &e,
        )
    })?;
    Ok(None)
}

fn planned_security_groups(planned: &Planned) -> Option<Vec<String>> {
    planned
        .changes
        .iter()
        .find(|c| c.field == "securityGroupIds")
        .map(|c| {
            c.to.trim_matches(|ch| ch == '[' || ch == ']')
                .split(", ")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
}

pub(super) async fn tag(ctx: &Ctx<'_>, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    ctx.write("AddTagsToResource", arn);
    ctx.clients
        .elasticache
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(ec_tags(tags)))
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
        .elasticache
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
    ctx.write("DeleteReplicationGroup", identifier);
    match ctx
        .clients
        .elasticache
        .delete_replication_group()
        .replication_group_id(identifier)
        .retain_primary_cluster(false)
        .set_final_snapshot_identifier(final_snapshot.map(str::to_string))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_replication_group_not_found_fault()) =>
        {
            Ok(())
        }
        Err(e) => Err(ctx.err(
            &format!("delete ElastiCache replication group {identifier}"),
            &e,
        )),
    }
}

/// Delete (or, for retained groups, untag) the cache subnet groups `owner` created.
/// `busy`: a store of `owner` is still being deleted, so its subnet group is in use. Groups named
/// in `keep` (the subnet groups of stores that stay) are left alone.
pub(super) async fn cleanup_subnet_groups(
    ctx: &Ctx<'_>,
    owner: &Owner,
    busy: bool,
    keep: &std::collections::BTreeSet<String>,
) -> Result<Vec<String>> {
    let mut waiting = Vec::new();
    let prefix = model::identifier(&owner.platform, 40);
    let mut marker = None;
    loop {
        ctx.read();
        let page = ctx
            .clients
            .elasticache
            .describe_cache_subnet_groups()
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| ctx.err("list cache subnet groups", &e))?;
        for group in page.cache_subnet_groups() {
            let (Some(name), Some(arn)) = (group.cache_subnet_group_name(), group.arn()) else {
                continue;
            };
            if !name.starts_with(&prefix) || keep.contains(name) {
                continue;
            }
            let Ok(tags) = tags_of(ctx, arn).await else {
                continue;
            };
            if !owner.owns(&tags) {
                continue;
            }
            if model::policy_of(&tags) == crate::api::DeletionPolicy::Retain {
                untag(ctx, arn, &model::panthera_tags_on(&tags)).await?;
                continue;
            }
            if busy {
                waiting.push(format!(
                    "cache subnet group {name}: deleted once its replication group is gone"
                ));
                continue;
            }
            ctx.write("DeleteCacheSubnetGroup", name);
            match ctx
                .clients
                .elasticache
                .delete_cache_subnet_group()
                .cache_subnet_group_name(name)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_cache_subnet_group_in_use()) =>
                {
                    waiting.push(format!(
                        "cache subnet group {name}: in use until its replication group is deleted"
                    ));
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_cache_subnet_group_not_found_fault()) => {}
                Err(e) => {
                    let e = ctx.err(&format!("delete cache subnet group {name}"), &e);
                    if e.terminal {
                        return Err(e);
                    }
                    waiting.push(format!(
                        "cache subnet group {name}: not deleted yet (AWS busy), tried again on the next destroy"
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
