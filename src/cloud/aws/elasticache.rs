//! Redis on ElastiCache: a replication group (cluster mode disabled, one primary) with in-transit
//! encryption and an AUTH token, in a cache subnet group of `spec.aws.subnetIds`.

use std::collections::BTreeMap;

use aws_sdk_elasticache::Client;
use aws_sdk_elasticache::operation::create_cache_subnet_group::CreateCacheSubnetGroupError;
use aws_sdk_elasticache::operation::delete_replication_group::DeleteReplicationGroupError;
use aws_sdk_elasticache::operation::describe_cache_clusters::DescribeCacheClustersError;
use aws_sdk_elasticache::operation::describe_replication_groups::DescribeReplicationGroupsError;
use aws_sdk_elasticache::types::{
    AuthTokenUpdateStrategyType, AutomaticFailoverStatus, ReplicationGroup, Tag,
};

use super::Counted::{Read, Write};
use super::model::{self, Observed, Owner, Planned, RedisCopies, RedisSettings, Service, Settings};
use super::service::{
    Create, Delete, GroupDeleted, Modify, ServiceApi, SubnetGroups, Tags, key_value_tags,
    tagging_calls, tags_of_resource,
};
use super::{Ctx, Result};

key_value_tags!(Tag);
// Tags are not in the description of a group: one more call.
tags_of_resource!();

/// Engine version and security groups live on the member clusters.
async fn member(
    ec: &Client,
    ctx: &Ctx<'_>,
    group: &ReplicationGroup,
) -> Result<(String, Vec<String>)> {
    let Some(id) = group.member_clusters().first() else {
        return Ok((String::new(), Vec::new()));
    };
    let sent = ec.describe_cache_clusters().cache_cluster_id(id).send();
    let action = format!("describe cache cluster {id}");
    let not_found = |e: &DescribeCacheClustersError| e.is_cache_cluster_not_found_fault();
    let out = ctx.call_or_none(Read, &action, sent, not_found).await?;
    let Some(cluster) = out.as_ref().and_then(|out| out.cache_clusters().first()) else {
        return Ok((String::new(), Vec::new()));
    };
    let groups = cluster.security_groups().iter();
    let groups = groups.filter_map(|g| g.security_group_id().map(str::to_string));
    let version = cluster.engine_version().unwrap_or_default();
    Ok((version.to_string(), groups.collect()))
}

async fn observed(ec: &Client, ctx: &Ctx<'_>, group: &ReplicationGroup) -> Result<Observed> {
    let arn = group.arn().unwrap_or_default().to_string();
    let tags = if arn.is_empty() {
        BTreeMap::new()
    } else {
        tags_of(ec, ctx, &arn).await?
    };
    let (version, security_group_ids) = member(ec, ctx, group).await?;
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
    let failover = matches!(
        group.automatic_failover(),
        Some(AutomaticFailoverStatus::Enabled | AutomaticFailoverStatus::Enabling)
    );
    let copies = RedisCopies {
        // Cluster mode disabled: the member clusters are the primary and its replicas.
        replicas: i32::try_from(group.member_clusters().len().saturating_sub(1)).unwrap_or(0),
        failover,
        snapshot_retention_days: group.snapshot_retention_limit().unwrap_or_default(),
        snapshot_window: group.snapshot_window().map(str::to_string),
    };
    Ok(Observed {
        arn,
        status: group.status().unwrap_or_default().to_string(),
        endpoint,
        tags,
        settings: Some(Settings::Redis(RedisSettings {
            node_type: group.cache_node_type().unwrap_or_default().to_string(),
            version,
            copies,
        })),
        subnet_ids: Vec::new(),
        security_group_ids,
        pending,
        tls: group.transit_encryption_enabled().unwrap_or(false),
        auth: group.auth_token_enabled().unwrap_or(false),
        current_version: None,
        subnet_group: None,
    })
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

fn observed_replicas(observed: &Observed) -> i32 {
    match &observed.settings {
        Some(Settings::Redis(RedisSettings { copies, .. })) => copies.replicas,
        _ => 0,
    }
}

/// `IncreaseReplicaCount` or `DecreaseReplicaCount` to `replicas`, applied now; what else the
/// plan holds waits for the next apply.
async fn replicas(
    ec: &Client,
    ctx: &Ctx<'_>,
    store: &model::Store,
    replicas: i32,
    adding: bool,
    planned: &Planned,
) -> Result<Option<String>> {
    let id = &store.identifier;
    let action = format!("change the replicas of ElastiCache replication group {id} to {replicas}");
    // The two requests are distinct types of the same shape.
    macro_rules! send {
        ($request:ident, $operation:literal) => {{
            let request = ec
                .$request()
                .replication_group_id(id)
                .new_replica_count(replicas);
            let sent = request.apply_immediately(true).send();
            ctx.call(Write($operation, id), &action, sent).await?;
        }};
    }
    if adding {
        send!(increase_replica_count, "IncreaseReplicaCount");
    } else {
        send!(decrease_replica_count, "DecreaseReplicaCount");
    }
    let rest: Vec<String> = planned
        .changes
        .iter()
        .filter(|c| c.field != "replicas")
        .map(ToString::to_string)
        .collect();
    Ok((!rest.is_empty()).then(|| format!("next apply: {}", rest.join("; "))))
}

impl ServiceApi for Client {
    async fn describe(&self, ctx: &Ctx<'_>, identifier: &str) -> Result<Option<Observed>> {
        let request = self
            .describe_replication_groups()
            .replication_group_id(identifier);
        let action = format!("describe ElastiCache replication group {identifier}");
        let not_found =
            |e: &DescribeReplicationGroupsError| e.is_replication_group_not_found_fault();
        let out = ctx
            .call_or_none(Read, &action, request.send(), not_found)
            .await?;
        let Some(group) = out
            .as_ref()
            .and_then(|out| out.replication_groups().first())
        else {
            return Ok(None);
        };
        Ok(Some(observed(self, ctx, group).await?))
    }

    /// Tags are one call per group: the description of the others is not read.
    async fn list_owned(&self, ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>> {
        let send = |marker| self.describe_replication_groups().set_marker(marker).send();
        let action = "list ElastiCache replication groups";
        let pages = ctx.pages(action, send, |p| p.marker()).await?;
        let mut out = Vec::new();
        for group in pages.iter().flat_map(|page| page.replication_groups()) {
            let Some(arn) = group.arn() else { continue };
            if owner.owns(&tags_of(self, ctx, arn).await?) {
                let id = group.replication_group_id().unwrap_or_default();
                out.push((id.to_string(), observed(self, ctx, group).await?));
            }
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, new: Create<'_>) -> Result<()> {
        let (store, network, tags) = (new.store, new.network, new.tags);
        let Settings::Redis(redis) = &store.settings else {
            return Ok(());
        };
        let copies = &redis.copies;
        let group = network.subnet_group(&store.identifier);
        if let Some(group) = &group {
            // One left by an interrupted apply is only referenced, never changed here.
            let request = self
                .create_cache_subnet_group()
                .cache_subnet_group_name(group);
            let sent = request
                .cache_subnet_group_description(format!("Panthera {}", store.component))
                .set_subnet_ids(Some(network.subnet_ids.clone()))
                .set_tags(Some(sdk_tags(tags)))
                .send();
            let exists =
                |e: &CreateCacheSubnetGroupError| e.is_cache_subnet_group_already_exists_fault();
            let action = format!("create cache subnet group {group}");
            let counted = Write("CreateCacheSubnetGroup", group);
            ctx.call_or_none(counted, &action, sent, exists).await?;
        }
        let request = self
            .create_replication_group()
            .replication_group_id(&store.identifier)
            .replication_group_description(format!("Panthera {}", store.component))
            .engine("redis")
            .engine_version(&redis.version)
            .cache_node_type(&redis.node_type)
            // One shard (cluster mode disabled) with its replicas.
            .replicas_per_node_group(copies.replicas)
            .automatic_failover_enabled(copies.failover)
            .multi_az_enabled(copies.failover)
            .snapshot_retention_limit(copies.snapshot_retention_days)
            .set_snapshot_window(copies.snapshot_window.clone())
            .transit_encryption_enabled(true)
            .at_rest_encryption_enabled(true)
            .auth_token(new.password)
            .set_cache_subnet_group_name(group)
            .set_security_group_ids(network.security_groups())
            .set_tags(Some(sdk_tags(tags)));
        let what = ("CreateReplicationGroup", "ElastiCache replication group");
        new.send(ctx, what, request.send()).await
    }

    /// An adopted group keeps working with its old token while Panthera's is added (ROTATE).
    async fn modify(&self, ctx: &Ctx<'_>, change: Modify<'_>) -> Result<Option<String>> {
        let (store, observed, planned) = (change.store, change.observed, change.planned);
        let rotate = change
            .adopt_password
            .filter(|_| observed.auth && observed.tls);
        if planned.changes.is_empty() && rotate.is_none() {
            return Ok(None);
        }
        if model::phase(store.service, &observed.status) != model::Phase::Available {
            return Ok(Some(
                "waiting for the replication group to be available before modifying".into(),
            ));
        }
        let Settings::Redis(redis) = &store.settings else {
            return Ok(None);
        };
        let copies = &redis.copies;
        // A replica count is its own request. AWS wants a replica before failover is turned
        // on and failover off before the last replica goes: the other half waits for the next
        // apply (the group is modifying until then).
        if planned.changes.iter().any(|c| c.field == "replicas") {
            let adding = copies.replicas > observed_replicas(observed);
            let failover_later = planned
                .changes
                .iter()
                .any(|c| c.field == "automaticFailover");
            if adding || !failover_later {
                return replicas(self, ctx, store, copies.replicas, adding, planned).await;
            }
        }
        let mut request = self
            .modify_replication_group()
            .replication_group_id(&store.identifier)
            .apply_immediately(true);
        for change in &planned.changes {
            request = match change.field {
                "nodeType" => request.cache_node_type(&redis.node_type),
                "version" => request.engine_version(&redis.version),
                "securityGroupIds" => request.set_security_group_ids(Some(
                    planned_security_groups(planned).unwrap_or_default(),
                )),
                "automaticFailover" => request
                    .automatic_failover_enabled(copies.failover)
                    .multi_az_enabled(copies.failover),
                "snapshotRetentionDays" => {
                    request.snapshot_retention_limit(copies.snapshot_retention_days)
                }
                "snapshotWindow" => request.set_snapshot_window(copies.snapshot_window.clone()),
                _ => request,
            };
        }
        if let Some(p) = rotate {
            request = request
                .auth_token(p)
                .auth_token_update_strategy(AuthTokenUpdateStrategyType::Rotate);
        }
        let action = format!("modify ElastiCache replication group {}", store.identifier);
        let counted = Write("ModifyReplicationGroup", &store.identifier);
        ctx.call(counted, &action, request.send()).await?;
        Ok(None)
    }

    tagging_calls!(
        add_tags_to_resource = "AddTagsToResource",
        remove_tags_from_resource = "RemoveTagsFromResource",
        resource_name,
        sdk_tags
    );

    async fn delete(&self, ctx: &Ctx<'_>, gone: Delete<'_>) -> Result<()> {
        let (identifier, final_snapshot) = (gone.identifier, gone.final_snapshot);
        let request = self
            .delete_replication_group()
            .replication_group_id(identifier)
            .retain_primary_cluster(false)
            .set_final_snapshot_identifier(final_snapshot.map(str::to_string));
        let action = format!("delete ElastiCache replication group {identifier}");
        let not_found = |e: &DeleteReplicationGroupError| e.is_replication_group_not_found_fault();
        let counted = Write("DeleteReplicationGroup", identifier);
        ctx.call_or_none(counted, &action, request.send(), not_found)
            .await?;
        Ok(())
    }
}

impl SubnetGroups for Client {
    const KIND: &str = "cache subnet group";
    const USER: &str = "replication group";
    const SERVICE: Service = Service::ElastiCache;

    async fn list_groups(&self, ctx: &Ctx<'_>) -> Result<Vec<(String, String)>> {
        let send = |marker| {
            self.describe_cache_subnet_groups()
                .set_marker(marker)
                .send()
        };
        let pages = ctx
            .pages("list cache subnet groups", send, |p| p.marker())
            .await?;
        let groups = pages.iter().flat_map(|page| page.cache_subnet_groups());
        let named = groups.filter_map(|g| {
            Some((
                g.cache_subnet_group_name()?.to_string(),
                g.arn()?.to_string(),
            ))
        });
        Ok(named.collect())
    }

    /// A group whose tags cannot be read is passed over: teardown goes on with the others.
    async fn group_tags(&self, ctx: &Ctx<'_>, arn: &str) -> Result<Option<Tags>> {
        Ok(tags_of(self, ctx, arn).await.ok())
    }

    async fn delete_group(&self, ctx: &Ctx<'_>, name: &str) -> Result<GroupDeleted> {
        let request = self
            .delete_cache_subnet_group()
            .cache_subnet_group_name(name);
        GroupDeleted::send(
            ctx,
            ("DeleteCacheSubnetGroup", name),
            request.send(),
            |e| e.is_cache_subnet_group_in_use(),
            |e| e.is_cache_subnet_group_not_found_fault(),
        )
        .await
    }
}
