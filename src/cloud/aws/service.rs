//! One shape for the calls Panthera makes to RDS, ElastiCache, MSK and OpenSearch Service. [`ServiceApi`] is
//! implemented over each SDK's client and holds only what differs between the services: building
//! the SDK requests and reading the answers into [`Observed`]. When the calls are made, and in
//! which order, is written once (reconcile.rs, teardown.rs), through [`Api`]: the one place that
//! chooses the service of a store.

use std::collections::BTreeSet;

use super::model::{self, Network, Observed, Owner, Planned, Service, Store};
use aws_sdk_rds::error::SdkError;

use super::error::{RawResponse, ServiceError};
use super::{Ctx, Result};

pub(super) use super::model::Tags;

/// What a create writes: the store as the spec wants it, where it runs, its tags, and its
/// password.
#[derive(Clone, Copy)]
pub(super) struct Create<'a> {
    pub store: &'a Store,
    pub network: &'a Network,
    pub tags: &'a Tags,
    /// The master password (RDS, OpenSearch Service) or AUTH token (ElastiCache); MSK's SCRAM
    /// login is associated from Secrets Manager instead ([`ServiceApi::settle`]).
    pub password: &'a str,
    /// The name in Secrets Manager of the store's credentials, created before the store.
    pub secret: &'a str,
}

impl Create<'_> {
    /// Send the `request` creating the store, counted as `operation`; a failure names the store
    /// as a `what` (`RDS instance`).
    pub(super) async fn send<T, E, R>(
        &self,
        ctx: &Ctx<'_>,
        (operation, what): (&str, &str),
        request: impl Future<Output = std::result::Result<T, SdkError<E, R>>> + Send,
    ) -> Result<()>
    where
        E: ServiceError + Send,
        R: RawResponse + Send,
    {
        let id = &self.store.identifier;
        let counted = super::Counted::Write(operation, id);
        ctx.call(counted, &format!("create {what} {id}"), request)
            .await?;
        Ok(())
    }
}

/// What a modification needs: the store as the spec wants it, where it runs, what AWS has, the
/// plan, and the password an adopted store is given.
#[derive(Clone, Copy)]
pub(super) struct Modify<'a> {
    pub store: &'a Store,
    pub network: &'a Network,
    pub observed: &'a Observed,
    pub planned: &'a Planned,
    pub adopt_password: Option<&'a str>,
}

/// What a delete names: the resource (by its identifier or its ARN, as the service wants) and
/// the final snapshot to take first, when one is named.
#[derive(Clone, Copy)]
pub(super) struct Delete<'a> {
    pub identifier: &'a str,
    pub arn: &'a str,
    pub final_snapshot: Option<&'a str>,
}

/// A store that exists, with the credentials secret it uses (by name).
#[derive(Clone, Copy)]
pub(super) struct Settle<'a> {
    pub store: &'a Store,
    pub observed: &'a Observed,
    pub secret: &'a str,
}

/// The calls of one managed service. Implementations count each call on the [`Ctx`] (a read, or a
/// write with its operation name) and name the failed action in their errors.
pub(super) trait ServiceApi {
    /// The resource named `identifier`, `None` when there is none.
    async fn describe(&self, ctx: &Ctx<'_>, identifier: &str) -> Result<Option<Observed>>;

    /// Every resource tagged as `owner`'s, with its identifier, over all pages of the listing.
    async fn list_owned(&self, ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>>;

    /// Create the store, and the subnet group it needs.
    async fn create(&self, ctx: &Ctx<'_>, new: Create<'_>) -> Result<()>;

    /// Apply the changes of a plan to the existing resource, once it is tagged as the plan says.
    /// Returns why a change waits, when one does.
    async fn modify(&self, ctx: &Ctx<'_>, change: Modify<'_>) -> Result<Option<String>>;

    /// Add `tags` to the resource `arn` (at least one).
    async fn add_tags(&self, ctx: &Ctx<'_>, arn: &str, tags: &Tags) -> Result<()>;

    /// Remove the tags `keys` from the resource `arn` (at least one).
    async fn remove_tags(&self, ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()>;

    /// Delete the resource (by its identifier or its ARN, as the service wants), after a final
    /// snapshot when one is named; one already gone is no error.
    async fn delete(&self, ctx: &Ctx<'_>, gone: Delete<'_>) -> Result<()>;

    /// Lift what keeps AWS from deleting the resource (RDS deletion protection); called only
    /// when the deletion policy deletes it. Nothing for the others.
    async fn lift_protection(&self, _ctx: &Ctx<'_>, _identifier: &str) -> Result<()> {
        Ok(())
    }

    /// What a store needs once it exists, whatever the plan (MSK: its SCRAM secret associated).
    /// Returns what still waits.
    async fn settle(&self, _ctx: &Ctx<'_>, _settle: Settle<'_>) -> Result<Option<String>> {
        Ok(None)
    }

    /// Retain hands the resource back to its owner: remove Panthera's tags from what it still
    /// uses as well (RDS: its DB subnet group). Nothing for the others.
    async fn release(&self, _ctx: &Ctx<'_>, _observed: &Observed, _owner: &Owner) -> Result<()> {
        Ok(())
    }

    /// Add `tags` to `arn`; no call when there are none.
    async fn tag(&self, ctx: &Ctx<'_>, arn: &str, tags: &Tags) -> Result<()> {
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
    OpenSearch(&'a aws_sdk_opensearch::Client),
    S3(&'a aws_sdk_s3::Client),
    Edge(&'a super::edge::EdgeClients),
}

/// `$call` on whichever client `$api` holds, bound to `$client`.
macro_rules! each {
    ($api:expr, $client:ident => $call:expr) => {
        match $api {
            Api::Rds($client) => $call,
            Api::ElastiCache($client) => $call,
            Api::Msk($client) => $call,
            Api::OpenSearch($client) => $call,
            Api::S3($client) => $call,
            Api::Edge($client) => $call,
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

    async fn create(&self, ctx: &Ctx<'_>, new: Create<'_>) -> Result<()> {
        each!(self, c => c.create(ctx, new).await)
    }

    async fn modify(&self, ctx: &Ctx<'_>, change: Modify<'_>) -> Result<Option<String>> {
        each!(self, c => c.modify(ctx, change).await)
    }

    async fn add_tags(&self, ctx: &Ctx<'_>, arn: &str, tags: &Tags) -> Result<()> {
        each!(self, c => ServiceApi::add_tags(*c, ctx, arn, tags).await)
    }

    async fn remove_tags(&self, ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()> {
        each!(self, c => ServiceApi::remove_tags(*c, ctx, arn, keys).await)
    }

    async fn delete(&self, ctx: &Ctx<'_>, gone: Delete<'_>) -> Result<()> {
        each!(self, c => c.delete(ctx, gone).await)
    }

    async fn release(&self, ctx: &Ctx<'_>, observed: &Observed, owner: &Owner) -> Result<()> {
        each!(self, c => c.release(ctx, observed, owner).await)
    }

    async fn lift_protection(&self, ctx: &Ctx<'_>, identifier: &str) -> Result<()> {
        each!(self, c => c.lift_protection(ctx, identifier).await)
    }

    async fn settle(&self, ctx: &Ctx<'_>, settle: Settle<'_>) -> Result<Option<String>> {
        each!(self, c => c.settle(ctx, settle).await)
    }
}

/// What a delete of a subnet group came to, when AWS did not refuse it for good.
pub(super) enum GroupDeleted {
    /// Deleted, or already gone.
    Done,
    /// A store still uses it (AWS deletes stores asynchronously).
    InUse,
}

impl GroupDeleted {
    /// Send the delete `request` of the subnet group `name`, counted as `operation`: `in_use`
    /// and `gone` pick the service errors that mean a store still uses it, or it is gone.
    pub(super) async fn send<T, E: ServiceError, R: RawResponse>(
        ctx: &Ctx<'_>,
        (operation, name): (&str, &str),
        request: impl Future<Output = std::result::Result<T, SdkError<E, R>>>,
        in_use: impl FnOnce(&E) -> bool,
        gone: impl FnOnce(&E) -> bool,
    ) -> Result<Self> {
        ctx.count(super::Counted::Write(operation, name));
        let Err(e) = request.await else {
            return Ok(Self::Done);
        };
        match e.as_service_error() {
            Some(s) if in_use(s) => Ok(Self::InUse),
            Some(s) if gone(s) => Ok(Self::Done),
            _ => Err(ctx.err(&format!("delete subnet group {name}"), &e)),
        }
    }
}

/// The subnet groups Panthera creates for RDS instances and ElastiCache replication groups (one
/// per store, named after it), which teardown deletes once their stores are gone.
pub(super) trait SubnetGroups: ServiceApi {
    /// `DB subnet group`, `cache subnet group`.
    const KIND: &str;
    /// What uses one: `instance`, `replication group`.
    const USER: &str;
    /// The service: the group names of a platform start with its name cut to the service's
    /// longest identifier.
    const SERVICE: Service;

    /// `(name, arn)` of every subnet group, over all pages.
    async fn list_groups(&self, ctx: &Ctx<'_>) -> Result<Vec<(String, String)>>;

    /// The tags of the group `arn`; `None` when the group is passed over (ElastiCache: unreadable
    /// tags).
    async fn group_tags(&self, ctx: &Ctx<'_>, arn: &str) -> Result<Option<Tags>>;

    /// Delete the group `name`; an error when AWS refuses for another reason than its use.
    async fn delete_group(&self, ctx: &Ctx<'_>, name: &str) -> Result<GroupDeleted>;

    /// Teardown's last step: delete (or untag, when retained) the subnet groups `owner` created
    /// for stores that are gone, except those in `keep`; what waits is returned. `busy`: a store
    /// of this service is still being deleted, so its group may be in use.
    async fn cleanup_groups(
        &self,
        ctx: &Ctx<'_>,
        owner: &Owner,
        busy: bool,
        keep: &BTreeSet<String>,
    ) -> Result<Vec<String>> {
        let (kind, user) = (Self::KIND, Self::USER);
        let prefix = model::identifier(&owner.platform, Self::SERVICE.max_identifier());
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

/// `add_tags` and `remove_tags`, expanded inside `impl ServiceApi`: the services tag a resource
/// named by its ARN with requests of the same shape on types of their own. Given the requests'
/// builder methods and operation names, the builder setting the ARN, and the conversion of a tag
/// map to the SDK's tags.
macro_rules! tagging_calls {
    ($add:ident = $add_op:literal, $remove:ident = $remove_op:literal, $arn:ident, $convert:ident) => {
        async fn add_tags(&self, ctx: &Ctx<'_>, arn: &str, tags: &Tags) -> Result<()> {
            let sent = self.$add().$arn(arn).set_tags(Some($convert(tags))).send();
            let counted = super::Counted::Write($add_op, arn);
            ctx.call(counted, &format!("tag {arn}"), sent).await?;
            Ok(())
        }

        async fn remove_tags(&self, ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()> {
            let sent = self.$remove().$arn(arn).set_tag_keys(Some(keys.to_vec()));
            let counted = super::Counted::Write($remove_op, arn);
            ctx.call(counted, &format!("untag {arn}"), sent.send())
                .await?;
            Ok(())
        }
    };
}
pub(super) use tagging_calls;

/// The tags of a resource by its ARN (`ListTagsForResource`, the ARN as `ResourceName`), for RDS
/// and ElastiCache, whose descriptions lack them.
macro_rules! tags_of_resource {
    () => {
        async fn tags_of(client: &Client, ctx: &Ctx<'_>, arn: &str) -> Result<Tags> {
            let request = client.list_tags_for_resource().resource_name(arn);
            let action = format!("list tags of {arn}");
            let out = ctx
                .call(super::Counted::Read, &action, request.send())
                .await?;
            Ok(tag_map(out.tag_list()))
        }
    };
}
pub(super) use tags_of_resource;
