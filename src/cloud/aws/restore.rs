//! `panthera restore`: a database into a NEW RDS instance, to a point in time or from a
//! snapshot. A restore never deletes: the instance the store ran on is kept (still protected,
//! still tagged) and marked [`model::TAG_SUPERSEDED_BY`], which dereference follows, so the store
//! IS the restored instance from then on (plan, apply, status, the operator).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use aws_sdk_rds::operation::describe_db_snapshots::DescribeDBSnapshotsError;
use aws_sdk_rds::primitives::DateTime as SdkTime;
use aws_sdk_rds::types::{DbInstance, Tag};

use crate::api::PantheraPlatform;

use super::client::Counted::{Read, Write};
use super::client::Ctx;
use super::model::{self, Owner, Phase, Service, Settings, Store};
use super::service::{ServiceApi, key_value_tags};

key_value_tags!(Tag);
use super::{Aws, Error, Result, rds};

/// What a restore starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreSource {
    /// The database as it was at this time (within the backup retention).
    PointInTime(DateTime<Utc>),
    /// A DB snapshot of the database (final or manual).
    Snapshot(String),
}

impl RestoreSource {
    /// A point in time from RFC 3339 text (`2026-12-02T09:55:00Z`).
    pub fn point_in_time(text: &str) -> std::result::Result<Self, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| Self::PointInTime(t.with_timezone(&Utc)))
            .map_err(|e| format!("not an RFC 3339 time like 2026-12-02T09:55:00Z ({e})"))
    }
}

/// What a restore did, or would do on a dry run.
#[derive(Clone, Debug)]
pub struct Restored {
    pub component: String,
    /// The instance the store ran on.
    pub from: String,
    /// The new instance.
    pub to: String,
    /// `restore postgres/users (RDS instance a) to T into RDS instance b`.
    pub summary: String,
    /// Where the old instance is, that it is kept, and how to remove it.
    pub keep_note: String,
}

impl Aws {
    /// Restore the database `database` of `platform` from `source` into a new instance, tagged
    /// as the store, and mark the instance it ran on as superseded by it. Refused, before any
    /// write, for a database that is not on RDS, an instance that is missing or not this
    /// platform's, a time outside the retention window, or a snapshot of another instance.
    pub async fn restore(
        &self,
        platform: &PantheraPlatform,
        database: &str,
        source: &RestoreSource,
        dry_run: bool,
    ) -> Result<Restored> {
        let component = format!("postgres/{database}");
        let store = model::stores(platform)
            .into_iter()
            .find(|s| s.service == Service::Rds && s.name == database)
            .ok_or_else(|| {
                Error::terminal(&component, "restore: not a database with backend: aws")
            })?;
        let owner = Owner::of(platform);
        let network = model::network(platform);
        self.check_region(&network, &component)?;
        let ctx = self.ctx(network.region.as_deref(), &component);
        let (current, db) = current_instance(&ctx, &owner, &store).await?;
        let what = match source {
            RestoreSource::PointInTime(t) => {
                check_window(&ctx, &current, &db, *t)?;
                format!(
                    "to {}",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            }
            RestoreSource::Snapshot(id) => {
                check_snapshot(&ctx, &store, &current, id).await?;
                format!("from snapshot {id}")
            }
        };
        let stamp = Utc::now().format("%Y%m%d%H%M%S");
        let to = format!("{}-r{stamp}", restored_base(&store));
        let summary =
            format!("restore {component} (RDS instance {current}) {what} into RDS instance {to}");
        let keep_note = format!(
            "kept RDS instance {current} (the data before the restore; deletion protection and tags unchanged). Once the restored data is checked, remove it with:\n    aws rds modify-db-instance --db-instance-identifier {current} --no-deletion-protection --apply-immediately\n    aws rds delete-db-instance --db-instance-identifier {current} --final-db-snapshot-identifier {current}-final"
        );
        let restored = Restored {
            component: component.clone(),
            from: current.clone(),
            to: to.clone(),
            summary,
            keep_note,
        };
        if dry_run {
            return Ok(restored);
        }
        let mut tags = model::tags(&owner, &store);
        tags.insert(model::TAG_RESTORED_FROM.to_string(), current.clone());
        let tags = sdk_tags(&tags);
        let Settings::Postgres(pg) = &store.settings else {
            return Err(ctx.terminal("restore: not a PostgreSQL store"));
        };
        let subnet_group = db
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_string);
        let security_groups =
            (!network.security_group_ids.is_empty()).then(|| network.security_group_ids.clone());
        let rds_client = &ctx.clients.rds;
        let action = format!("restore RDS instance {current} {what} into {to}");
        // Both requests run the new instance as the store does (class, network, Multi-AZ,
        // protection, tags); the next apply brings the rest (backups, windows, autoscaling) in
        // line with the spec. Their builders are distinct types: one macro sets both.
        macro_rules! as_the_store {
            ($request:expr) => {
                $request
                    .set_db_instance_class(db.db_instance_class().map(str::to_string))
                    .set_db_subnet_group_name(subnet_group)
                    .set_vpc_security_group_ids(security_groups)
                    .multi_az(pg.rds.multi_az)
                    .deletion_protection(pg.rds.deletion_protection)
                    .copy_tags_to_snapshot(true)
                    .publicly_accessible(false)
                    .set_tags(Some(tags))
            };
        }
        match source {
            RestoreSource::PointInTime(t) => {
                let request = rds_client
                    .restore_db_instance_to_point_in_time()
                    .source_db_instance_identifier(&current)
                    .target_db_instance_identifier(&to)
                    .restore_time(SdkTime::from_secs(t.timestamp()));
                let sent = as_the_store!(request).send();
                let counted = Write("RestoreDBInstanceToPointInTime", &to);
                ctx.call(counted, &action, sent).await?;
            }
            RestoreSource::Snapshot(id) => {
                let request = rds_client
                    .restore_db_instance_from_db_snapshot()
                    .db_snapshot_identifier(id)
                    .db_instance_identifier(&to);
                let sent = as_the_store!(request).send();
                let counted = Write("RestoreDBInstanceFromDBSnapshot", &to);
                ctx.call(counted, &action, sent).await?;
            }
        }
        // Only now, with the new instance accepted, does the store move to it.
        let arn = db.db_instance_arn().unwrap_or_default();
        let mark = model::Tags::from([(model::TAG_SUPERSEDED_BY.to_string(), to.clone())]);
        ctx.api(Service::Rds).tag(&ctx, arn, &mark).await?;
        Ok(restored)
    }
}

/// What restored instances are named after: the store's identifier, cut so that `-r` and a
/// 14-digit time fit in RDS's 63 characters.
fn restored_base(store: &Store) -> String {
    model::identifier(&store.identifier, Service::Rds.max_identifier() - 16)
}

impl Aws {
    /// Wait until the restored instance is available (RDS takes minutes to hours, by size): the
    /// connection Secret is pointed at it only then.
    pub async fn wait_restored(
        &self,
        platform: &PantheraPlatform,
        restored: &Restored,
        timeout: Duration,
    ) -> Result<()> {
        let network = model::network(platform);
        let ctx = self.ctx(network.region.as_deref(), &restored.component);
        let started = Instant::now();
        loop {
            let observed = ctx.api(Service::Rds).describe(&ctx, &restored.to).await?;
            let status = observed.map(|o| o.status).unwrap_or_default();
            match model::phase(Service::Rds, &status) {
                Phase::Available => return Ok(()),
                Phase::Failed => {
                    return Err(ctx.terminal(format!(
                        "restored RDS instance {} failed (status {status}); the store still runs on it, fix or restore again",
                        restored.to
                    )));
                }
                _ if started.elapsed() >= timeout => {
                    return Err(Error {
                        component: restored.component.clone(),
                        message: format!(
                            "restored RDS instance {} is still {status} after {}s; the store runs on it from now on: run `panthera apply` once it is available to point the connection Secret at it",
                            restored.to,
                            started.elapsed().as_secs()
                        ),
                        terminal: false,
                    });
                }
                _ => tokio::time::sleep(Duration::from_secs(10)).await,
            }
        }
    }
}

/// The instance the store runs on now (following the superseded-by marks), refused when it is
/// missing or not this platform's.
async fn current_instance(
    ctx: &Ctx<'_>,
    owner: &Owner,
    store: &Store,
) -> Result<(String, DbInstance)> {
    let mut id = store.identifier.clone();
    // A chain longer than this is not one restores make by hand.
    for _ in 0..16 {
        let Some(db) = rds::instance(&ctx.clients.rds, ctx, &id).await? else {
            return Err(ctx.terminal(format!(
                "RDS instance {id} does not exist: there is nothing to restore (apply the platform first)"
            )));
        };
        let tags = tag_map(db.tag_list());
        if !owner.owns(&tags) {
            return Err(ctx.terminal(match model::owner_of(&tags) {
                Some(other) => format!(
                    "RDS instance {id} belongs to {other}; Panthera restores only this platform's databases"
                ),
                None => format!(
                    "RDS instance {id} was not created by Panthera; restore it with the AWS tools, or adopt it first (existingIdentifier)"
                ),
            }));
        }
        match tags.get(model::TAG_SUPERSEDED_BY) {
            Some(next) => id = next.clone(),
            None => return Ok((id, db)),
        }
    }
    Err(ctx.terminal(format!(
        "RDS instance {} has been restored more than 16 times in a row; remove old superseded-by marks",
        store.identifier
    )))
}

/// A point in time must be within what RDS can restore: after the instance existed and inside
/// the backup retention, before the latest restorable time (about 5 minutes ago on AWS).
fn check_window(ctx: &Ctx<'_>, id: &str, db: &DbInstance, t: DateTime<Utc>) -> Result<()> {
    let retention = db.backup_retention_period().unwrap_or_default();
    if retention == 0 {
        return Err(ctx.terminal(format!(
            "RDS instance {id} keeps no automated backups (backup.retentionDays 0): no point in time can be restored; restore from a snapshot"
        )));
    }
    let to_utc = |d: &SdkTime| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos());
    let latest = db
        .latest_restorable_time()
        .and_then(to_utc)
        .unwrap_or_else(Utc::now);
    let mut earliest = latest - chrono::Duration::days(i64::from(retention));
    if let Some(created) = db.instance_create_time().and_then(to_utc) {
        earliest = earliest.max(created);
    }
    if t < earliest || t > latest {
        let f = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        return Err(ctx.terminal(format!(
            "{} is outside the retention window of RDS instance {id}: {} to {}",
            f(t),
            f(earliest),
            f(latest)
        )));
    }
    Ok(())
}

/// The snapshot must exist and be of this database: of the instance it runs on, or of one of
/// the instances it ran on before (its identifier, or a restore of it).
async fn check_snapshot(ctx: &Ctx<'_>, store: &Store, current: &str, id: &str) -> Result<()> {
    let sent = ctx
        .clients
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send();
    let action = format!("describe DB snapshot {id}");
    let not_found = |e: &DescribeDBSnapshotsError| e.is_db_snapshot_not_found_fault();
    let out = ctx.call_or_none(Read, &action, sent, not_found).await?;
    let Some(snapshot) = out.and_then(|o| o.db_snapshots().first().cloned()) else {
        return Err(ctx.terminal(format!("DB snapshot {id} does not exist")));
    };
    let of = snapshot.db_instance_identifier().unwrap_or_default();
    let ours = of == current
        || of == store.identifier
        || of.starts_with(&format!("{}-r", restored_base(store)));
    if !ours {
        return Err(ctx.terminal(format!(
            "DB snapshot {id} is of RDS instance {of}, not of {} ({current}): Panthera restores a database only from its own snapshots",
            store.component
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_in_time_is_rfc3339_and_says_what_it_expects() {
        assert!(matches!(
            RestoreSource::point_in_time("2026-12-02T09:55:00Z"),
            Ok(RestoreSource::PointInTime(_))
        ));
        let e = RestoreSource::point_in_time("yesterday").unwrap_err();
        assert!(e.starts_with("not an RFC 3339 time"), "{e}");
    }
}
