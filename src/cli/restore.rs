//! `panthera restore`: a database on RDS to a point in time or from a snapshot, into a new
//! instance. Nothing is deleted: the old instance stays, still protected, and is reported with
//! the commands that remove it once the restored data has been checked.

use std::io::Write;
use std::time::Duration;

use super::cluster::{FileArgs, runtime};
use super::{Error, Result, io_err};
use crate::api::Backend;
use crate::cloud::aws::RestoreSource;
use crate::engine::{ApplyOptions, Engine};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera restore -f shop.yaml users --to-time 2026-12-02T09:55:00Z --dry-run\n  panthera restore -f shop.yaml users --to-time 2026-12-02T09:55:00Z\n  panthera restore -f shop.yaml users --from-snapshot shop-users-final-20261202093000"
)]
pub struct Args {
    #[command(flatten)]
    pub target: FileArgs,
    /// The database (an entry of spec.databases with backend: aws).
    pub database: String,
    /// Restore to this time (RFC 3339, e.g. 2026-12-02T09:55:00Z), within the backup retention.
    #[arg(
        long,
        value_name = "TIME",
        conflicts_with = "from_snapshot",
        required_unless_present = "from_snapshot"
    )]
    pub to_time: Option<String>,
    /// Restore from this DB snapshot of the database (a final or manual snapshot).
    #[arg(long, value_name = "SNAPSHOT")]
    pub from_snapshot: Option<String>,
    /// Only say what would be done: no AWS or cluster write.
    #[arg(long)]
    pub dry_run: bool,
    /// Time budget for the new instance to become available.
    #[arg(long, default_value = "60m", value_parser = super::apply::parse_duration)]
    pub timeout: Duration,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let platform = args.target.platform()?;
    let database = platform
        .spec
        .databases
        .iter()
        .find(|d| d.name == args.database)
        .ok_or_else(|| {
            Error::Usage(format!(
                "restore {}: no database of that name in spec.databases",
                args.database
            ))
        })?;
    if database.backend != Backend::Aws {
        return Err(Error::Usage(format!(
            "restore {}: only databases with backend: aws can be restored (RDS keeps their backups)",
            args.database
        )));
    }
    let source = match (&args.to_time, &args.from_snapshot) {
        (Some(time), _) => RestoreSource::point_in_time(time)
            .map_err(|e| Error::Usage(format!("--to-time {time}: {e}")))?,
        (None, Some(snapshot)) => RestoreSource::Snapshot(snapshot.clone()),
        (None, None) => {
            return Err(Error::Usage(
                "name what to restore from: --to-time or --from-snapshot".into(),
            ));
        }
    };
    let rt = runtime()?;
    rt.block_on(async {
        let aws = crate::cloud::aws::Aws::from_env().await;
        let restore = aws
            .restore(&platform, &args.database, &source, args.dry_run)
            .await
            .map_err(|e| Error::Engine(e.into()))?;
        if args.dry_run {
            writeln!(
                out,
                "would {} (dry run: nothing was written)",
                restore.summary
            )
            .map_err(io_err("write output"))?;
            return Ok(());
        }
        writeln!(out, "{}", restore.summary).map_err(io_err("write output"))?;
        aws.wait_restored(&platform, &restore, args.timeout)
            .await
            .map_err(|e| Error::Engine(e.into()))?;
        // The store now runs on the new instance, which is available: an apply points the
        // connection Secret at it, and the services that use it roll onto it.
        let client = args.target.cluster.client().await?;
        let engine = Engine::new(client, args.target.templates.renderer()?)
            .with_rate_limit(args.target.cluster.qps, args.target.cluster.burst)
            .with_aws(aws);
        let options = ApplyOptions::default();
        let report = engine
            .apply(&platform, &options, &|_| {})
            .await
            .map_err(Error::from)?;
        for id in report.changed.iter().chain(&report.created) {
            writeln!(out, "changed {id}").map_err(io_err("write output"))?;
        }
        writeln!(
            out,
            "{}: the connection Secret points at {} and the services using it rolled",
            restore.component, restore.to
        )
        .map_err(io_err("write output"))?;
        writeln!(out, "{}", restore.keep_note).map_err(io_err("write output"))?;
        Ok(())
    })
}
