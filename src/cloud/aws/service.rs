//! One shape for the calls Panthera makes to RDS, ElastiCache and MSK. [`ServiceApi`] is
//! implemented over each SDK's client and holds only what differs between the services: building
//! the SDK requests and reading the answers into [`Observed`]. When the calls are made, and in
//! which order, is written once (reconcile.rs, teardown.rs), through [`Api`]: the one place that
//! chooses the service of a store.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{self, Network, Observed, Owner, Planned, Store};
use super::{Ctx, Result};

/// The calls of one managed service. Implementations count each call on the [`Ctx`] (a read, or a
/// write with its operation name) and name the failed action in their errors.
pub(super) trait ServiceApi {
    /// The resource named `identifier`, `None` when there is none.
    async fn describe(&self, ctx: &Ctx<'_>, identifier: &str) -> Result<Option<Observed>>;

    /// Every resource tagged as `owner`'s, with its identifier, over all pages of the listing.
    async fn list_owned(&self, ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>>;

    /// Create `store` (and the subnet group it needs) tagged with `tags`; `password` is the master
    /// password or AUTH token, for the services that take one.
    async fn create(
        &self,
        ctx: &Ctx<'_>,
        store: &Store,
        network: &Network,
        tags: &BTreeMap<String, String>,
        password: &str,
    ) -> Result<()>;

    /// Apply `planned` to the existing resource: its tags first (adoption), then the changes.
    /// `adopt_password`: the password an adopted store is given. Returns why a change waits, when
    /// one does.
    async fn modify(
        &self,
        ctx: &Ctx<'_>,
        store: &Store,
        network: &Network,
        observed: &Observed,
        planned: &Planned,
        adopt_password: Option<&str>,
    ) -> Result<Option<String>>;

    /// Add `tags` to the resource `arn` (at least one).
    async fn add_tags(
        &self,
        ctx: &Ctx<'_>,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()>;

    /// Remove the tags `keys` from the resource `arn` (at least one).
    async fn remove_tags(&self, ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()>;

    /// Delete the resource, after a final snapshot when one is named; one already gone is no
    /// error.
    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        identifier: &str,
        observed: &Observed,
        final_snapshot: Option<&str>,
    ) -> Result<()>;

    /// Retain hands the resource back to its owner: remove Panthera's tags from what it still
    /// uses as well (RDS: its DB subnet group). Nothing for the others.
    async fn release_dependents(
        &self,
        _ctx: &Ctx<'_>,
        _observed: &Observed,
        _owner: &Owner,
    ) -> Result<()> {
        Ok(())
    }

    /// Teardown's last step: delete (or untag, when retained) the subnet groups `owner` created
    /// for stores that are gone, except those in `keep`; what waits is returned. `busy`: a store
    /// of this service is still being deleted, so its group is in use. MSK has none.
    async fn cleanup_subnet_groups(
        &self,
        _ctx: &Ctx<'_>,
        _owner: &Owner,
        _busy: bool,
        _keep: &BTreeSet<String>,
    ) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Add `tags` to `arn`; no call when there are none.
    async fn tag(&self, ctx: &Ctx<'_>, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        self.add_tags(ctx, arn, tags).await
    }

    /// Remove the tags `keys` from `arn`; no call when there are none.
    async fn untag(&self, ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.remove_tags(ctx, arn, keys).await
    }
}

/// The client of a store's service. An enum rather than `dyn ServiceApi`: native async trait
/// methods cannot be called through `dyn`.
#[derive(Clone, Copy)]
pub(super) enum Api<'a> {
    Rds(&'a aws_sdk_rds::Client),
    ElastiCache(&'a aws_sdk_elasticache::Client),
    Msk(&'a aws_sdk_kafka::Client),
}

/// `$call` on whichever client `$api` holds, bound to `$client`.
macro_rules! each {
    ($api:expr, $client:ident => $call:expr) => {
        match $api {
            Api::Rds($client) => $call,
            Api::ElastiCache($client) => $call,
            Api::Msk($client) => $call,
        }
    };
}

impl ServiceApi for Api<'_> {
    async fn describe(&self, ctx: &Ctx<'_>, identifier: &str) -> Result<Option<Observed>> {
        each!(self, c => c.describe(ctx, identifier).await)
    }

    async fn list_owned(&self, ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>> {
        each!(self, c => c.list_owned(ctx, owner).await)
    }

    async fn create(
        &self,
        ctx: &Ctx<'_>,
        store: &Store,
        network: &Network,
        tags: &BTreeMap<String, String>,
        password: &str,
    ) -> Result<()> {
        each!(self, c => c.create(ctx, store, network, tags, password).await)
    }

    async fn modify(
        &self,
        ctx: &Ctx<'_>,
        store: &Store,
        network: &Network,
        observed: &Observed,
        planned: &Planned,
        adopt_password: Option<&str>,
    ) -> Result<Option<String>> {
        each!(self, c => c.modify(ctx, store, network, observed, planned, adopt_password).await)
    }

    async fn add_tags(
        &self,
        ctx: &Ctx<'_>,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        each!(self, c => c.add_tags(ctx, arn, tags).await)
    }

    async fn remove_tags(&self, ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()> {
        each!(self, c => c.remove_tags(ctx, arn, keys).await)
    }

    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        identifier: &str,
        observed: &Observed,
        final_snapshot: Option<&str>,
    ) -> Result<()> {
        each!(self, c => c.delete(ctx, identifier, observed, final_snapshot).await)
    }

    async fn release_dependents(
        &self,
        ctx: &Ctx<'_>,
        observed: &Observed,
        owner: &Owner,
    ) -> Result<()> {
        each!(self, c => c.release_dependents(ctx, observed, owner).await)
    }

    async fn cleanup_subnet_groups(
        &self,
        ctx: &Ctx<'_>,
        owner: &Owner,
        busy: bool,
        keep: &BTreeSet<String>,
    ) -> Result<Vec<String>> {
        each!(self, c => c.cleanup_subnet_groups(ctx, owner, busy, keep).await)
    }
}

/// What a delete of a subnet group came to, when AWS did not refuse it for good.
pub(super) enum GroupDeleted {
    /// Deleted, or already gone.
    Done,
    /// A store still uses it (AWS deletes stores asynchronously).
    InUse,
}

/// The subnet groups Panthera creates for RDS instances and ElastiCache replication groups (one
/// per store, named after it), which teardown deletes once their stores are gone.
pub(super) trait SubnetGroups: ServiceApi {
    /// `DB subnet group`, `cache subnet group`.
    const KIND: &str;
    /// What uses one: `instance`, `replication group`.
    const USER: &str;
    /// Longest identifier of the service: the group names of a platform start with its name cut
    /// to this.
    const MAX_IDENTIFIER: usize;

    /// `(name, arn)` of every subnet group, over all pages.
    async fn list_groups(&self, ctx: &Ctx<'_>) -> Result<Vec<(String, String)>>;

    /// The tags of the group `arn`; `None` when the group is passed over (ElastiCache: unreadable
    /// tags).
    async fn group_tags(
        &self,
        ctx: &Ctx<'_>,
        arn: &str,
    ) -> Result<Option<BTreeMap<String, String>>>;

    /// Delete the group `name`; an error when AWS refuses for another reason than its use.
    async fn delete_group(&self, ctx: &Ctx<'_>, name: &str) -> Result<GroupDeleted>;

    /// See [`ServiceApi::cleanup_subnet_groups`].
    async fn cleanup_groups(
        &self,
        ctx: &Ctx<'_>,
        owner: &Owner,
        busy: bool,
        keep: &BTreeSet<String>,
    ) -> Result<Vec<String>> {
        let (kind, user) = (Self::KIND, Self::USER);
        let prefix = model::identifier(&owner.platform, Self::MAX_IDENTIFIER);
        let mut waiting = Vec::new();
        for (name, arn) in self.list_groups(ctx).await? {
            if !name.starts_with(&prefix) || keep.contains(&name) {
                continue;
            }
            let Some(tags) = self.group_tags(ctx, &arn).await? else {
                continue;
            };
            if !owner.owns(&tags) {
                continue;
            }
            if model::policy_of(&tags) == crate::api::DeletionPolicy::Retain {
                self.untag(ctx, &arn, &model::panthera_tags_on(&tags))
                    .await?;
                continue;
            }
            if busy {
                waiting.push(format!("{kind} {name}: deleted once its {user} is gone"));
                continue;
            }
            match self.delete_group(ctx, &name).await {
                Ok(GroupDeleted::Done) => {}
                Ok(GroupDeleted::InUse) => {
                    waiting.push(format!("{kind} {name}: in use until its {user} is deleted"))
                }
                Err(e) if e.terminal => return Err(e),
                Err(_) => waiting.push(format!(
                    "{kind} {name}: not deleted yet (AWS busy), tried again on the next destroy"
                )),
            }
        }
        Ok(waiting)
    }
}

/// The conversions between a tag map and an SDK's list of `Tag { key, value }` (RDS and
/// ElastiCache each have their own `Tag` type of that shape).
macro_rules! key_value_tags {
    ($tag:ty) => {
        fn sdk_tags(tags: &std::collections::BTreeMap<String, String>) -> Vec<$tag> {
            tags.iter()
                .map(|(k, v)| <$tag>::builder().key(k).value(v).build())
                .collect()
        }

        fn tag_map(tags: &[$tag]) -> std::collections::BTreeMap<String, String> {
            tags.iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect()
        }
    };
}
pub(super) use key_value_tags;
