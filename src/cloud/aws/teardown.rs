//! Destroy and prune: delete (or retain and untag) the resources a platform owns, by each one's
//! deletion policy, and report what AWS is still deleting.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::{DeletionPolicy, PantheraPlatform};

use super::client::Ctx;
use super::model::{self, Observed, Owner, Service};
use super::service::{Delete, ServiceApi, SubnetGroups};
use super::{Aws, Result, Teardown, secrets};

impl Aws {
    /// Delete one resource: a final snapshot first under Snapshot.
    pub(super) async fn delete_store(
        &self,
        ctx: &Ctx<'_>,
        service: Service,
        identifier: &str,
        observed: &Observed,
        policy: DeletionPolicy,
    ) -> Result<String> {
        let now = crate::api::now_rfc3339();
        let snapshot = (policy == DeletionPolicy::Snapshot && service.final_snapshots())
            .then(|| model::final_snapshot_id(identifier, &now));
        let mut marks = BTreeMap::from([(model::TAG_DELETION_REQUESTED.to_string(), now)]);
        if let Some(s) = &snapshot {
            marks.insert(model::TAG_FINAL_SNAPSHOT.to_string(), s.clone());
        }
        // Marked first, so that a later destroy can say since when and into which snapshot.
        let api = ctx.api(service);
        api.tag(ctx, &observed.arn, &marks).await?;
        // The policy deletes this instance: only now is its protection lifted, right before the
        // delete (which, under Snapshot, AWS carries out only after the final snapshot).
        let protected = observed.deletion_protection();
        if protected {
            api.lift_protection(ctx, identifier).await?;
        }
        let gone = Delete {
            identifier,
            arn: &observed.arn,
            final_snapshot: snapshot.as_deref(),
        };
        api.delete(ctx, gone).await?;
        let what = match snapshot {
            Some(s) => format!("final snapshot {s}"),
            None => "no final snapshot".into(),
        };
        Ok(if protected {
            format!("{what}; deletion protection lifted first")
        } else {
            what
        })
    }

    /// Delete (or retain and untag) every resource `owner` has in AWS, by each one's deletion
    /// policy tag. With `keep_data`, `Delete` is treated as `Snapshot` (RDS, ElastiCache) or
    /// `Retain` (MSK, which has no snapshots), like the cluster backend keeps volumes. Call again
    /// until `waiting` is empty: AWS deletes asynchronously.
    pub async fn destroy(
        &self,
        owner: &Owner,
        region: Option<&str>,
        keep_data: bool,
    ) -> Result<Teardown> {
        self.teardown(owner, region, keep_data, &BTreeSet::new(), &BTreeSet::new())
            .await
    }

    /// Remove the stores of `platform` that its spec no longer has (apply `--prune`), by their
    /// deletion policy with data kept (`Delete` acts as `Snapshot`, MSK's as `Retain`), like
    /// prune keeps the volumes of cluster stores. Reads only when there is nothing to prune.
    pub async fn prune(&self, platform: &PantheraPlatform) -> Result<Teardown> {
        let owner = Owner::of(platform);
        let network = model::network(platform);
        let stores = model::stores(platform);
        let keep: BTreeSet<String> = stores.iter().map(|s| s.identifier.clone()).collect();
        // A store that moved to a restored instance keeps both: the restored one runs it, the
        // one it was restored from holds the data from before.
        let components: BTreeSet<String> = stores.into_iter().map(|s| s.component).collect();
        self.teardown(&owner, network.region.as_deref(), true, &keep, &components)
            .await
    }

    /// Delete or retain every resource of `owner` except the identifiers in `keep` and the
    /// resources of the components in `keep_components`.
    async fn teardown(
        &self,
        owner: &Owner,
        region: Option<&str>,
        keep_data: bool,
        keep: &BTreeSet<String>,
        keep_components: &BTreeSet<String>,
    ) -> Result<Teardown> {
        let mut out = Teardown::default();
        let found = {
            let ctx = self.ctx(region, "aws");
            let mut found = Vec::new();
            for service in Service::ALL {
                for (id, o) in ctx.api(service).list_owned(&ctx, owner).await? {
                    found.push((service, id, o));
                }
            }
            found.retain(|(_, id, o)| {
                !keep.contains(id)
                    && o.tags
                        .get(model::TAG_COMPONENT)
                        .is_none_or(|c| !keep_components.contains(c))
            });
            found
        };
        for (service, identifier, observed) in found {
            let component = observed
                .tags
                .get(model::TAG_COMPONENT)
                .cloned()
                .unwrap_or_else(|| service.kind().as_str().to_string());
            let ctx = self.ctx(region, &component);
            let mut policy = model::policy_of(&observed.tags);
            if keep_data && policy == DeletionPolicy::Delete && service.holds_data() {
                policy = DeletionPolicy::Snapshot;
            }
            if !service.final_snapshots() && policy == DeletionPolicy::Snapshot {
                // MSK and OpenSearch Service keep no final snapshot: keeping the data means
                // keeping the resource.
                policy = DeletionPolicy::Retain;
            }
            let resource = service.resource();
            if policy == DeletionPolicy::Retain {
                let keys = model::panthera_tags_on(&observed.tags);
                let api = ctx.api(service);
                api.untag(&ctx, &observed.arn, &keys).await?;
                api.release(&ctx, &observed, owner).await?;
                secrets::untag(&ctx, &model::secret_name(owner, &component)).await?;
                out.deleted.push(format!(
                    "{component}: {resource} {identifier} retained (Panthera's tags removed{})",
                    if observed.deletion_protection() {
                        "; deletion protection kept"
                    } else {
                        ""
                    }
                ));
                continue;
            }
            if model::is_deleting(service, &observed.status) {
                out.waiting
                    .push(waiting_line(&component, resource, &identifier, &observed));
                continue;
            }
            let what = match self
                .delete_store(&ctx, service, &identifier, &observed, policy)
                .await
            {
                Ok(what) => what,
                // Busy (creating, modifying, backing up): AWS refuses the delete for now.
                Err(e) if !e.terminal => {
                    out.waiting.push(format!(
                        "{component}: {resource} {identifier} is {}; deleted once AWS accepts it ({})",
                        observed.status.to_ascii_lowercase(),
                        e.message
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if policy == DeletionPolicy::Delete {
                secrets::delete(&ctx, &model::secret_name(owner, &component)).await?;
            }
            match ctx.api(service).describe(&ctx, &identifier).await? {
                Some(o) => out
                    .waiting
                    .push(waiting_line(&component, resource, &identifier, &o)),
                None => out.deleted.push(format!(
                    "{component}: {resource} {identifier} deleted ({what})"
                )),
            }
        }
        let ctx = self.ctx(region, "aws");
        // A store still being deleted keeps its subnet group in use. MSK brokers have none.
        let busy = |service: Service| {
            let resource = service.resource();
            out.waiting.iter().any(|w| w.contains(resource))
        };
        let (rds_busy, ec_busy) = (busy(Service::Rds), busy(Service::ElastiCache));
        let clients = &ctx.clients;
        let rds = clients
            .rds
            .cleanup_groups(&ctx, owner, rds_busy, keep)
            .await?;
        let ec = clients
            .elasticache
            .cleanup_groups(&ctx, owner, ec_busy, keep)
            .await?;
        out.waiting.extend(rds.into_iter().chain(ec));
        Ok(out)
    }
}

/// `postgres/users: RDS instance shop-users deleting (final snapshot ...), 2m10s`.
fn waiting_line(component: &str, resource: &str, identifier: &str, o: &Observed) -> String {
    let snapshot = o
        .tags
        .get(model::TAG_FINAL_SNAPSHOT)
        .map(|s| format!(" (final snapshot {s})"))
        .unwrap_or_default();
    let since = o
        .tags
        .get(model::TAG_DELETION_REQUESTED)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0);
            format!(", {}m{:02}s", secs / 60, secs % 60)
        })
        .unwrap_or_default();
    format!(
        "{component}: {resource} {identifier} {}{snapshot}{since}",
        o.status.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_lines_say_what_and_for_how_long() {
        let o = Observed {
            status: "deleting".into(),
            tags: BTreeMap::from([
                (
                    model::TAG_FINAL_SNAPSHOT.to_string(),
                    "shop-users-final-20261125010203".to_string(),
                ),
                (
                    model::TAG_DELETION_REQUESTED.to_string(),
                    (chrono::Utc::now() - chrono::Duration::seconds(130))
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
            ]),
            ..Observed::default()
        };
        let line = waiting_line("postgres/users", "RDS instance", "shop-users", &o);
        assert!(
            line.starts_with("postgres/users: RDS instance shop-users deleting (final snapshot shop-users-final-20261125010203), 2m1"),
            "{line}"
        );
    }
}
