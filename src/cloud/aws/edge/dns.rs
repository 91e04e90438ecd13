//! The Route 53 side of the edge: an alias record (A and AAAA) per alias of the distribution
//! in the hosted zone the spec names. Only records that point at the distribution are Panthera's:
//! another record of the same name is never touched.

use aws_sdk_route53::Client;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};

use super::super::Counted::{Read, Write};
use super::super::{Ctx, Result};

/// The hosted zone every CloudFront distribution's alias target is in.
const CLOUDFRONT_ZONE: &str = "Z2FDTNDATAQYW2";

/// A record name as Route 53 writes it back (`\052.example.com.`), as the spec writes it.
fn plain(name: &str) -> String {
    name.replace("\\052", "*")
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Whether `record` is an alias to the distribution at `domain`.
fn points_at(record: &ResourceRecordSet, domain: &str) -> bool {
    record
        .alias_target()
        .is_some_and(|t| plain(t.dns_name()) == plain(domain))
}

/// The names among `aliases` whose A record in `zone` is an alias to `domain`.
pub(super) async fn pointing(
    client: &Client,
    ctx: &Ctx<'_>,
    zone: &str,
    aliases: &[String],
    domain: &str,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for alias in aliases {
        let action = format!("read the records of {alias} in hosted zone {zone}");
        let sent = client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(alias)
            .start_record_type(RrType::A)
            .max_items(1)
            .send();
        let page = ctx.call(Read, &action, sent).await?;
        let found = page.resource_record_sets().iter().any(|r| {
            plain(r.name()) == plain(alias) && r.r#type() == &RrType::A && points_at(r, domain)
        });
        if found {
            out.push(alias.clone());
        }
    }
    Ok(out)
}

fn alias_record(name: &str, kind: RrType, domain: &str) -> Option<ResourceRecordSet> {
    let target = AliasTarget::builder()
        .hosted_zone_id(CLOUDFRONT_ZONE)
        .dns_name(domain)
        .evaluate_target_health(false)
        .build()
        .ok()?;
    ResourceRecordSet::builder()
        .name(name)
        .r#type(kind)
        .alias_target(target)
        .build()
        .ok()
}

/// Write (`Upsert`) or remove (`Delete`) the A and AAAA alias records of `names` to `domain`,
/// in one change batch.
pub(super) async fn change(
    client: &Client,
    ctx: &Ctx<'_>,
    zone: &str,
    action: ChangeAction,
    names: &[String],
    domain: &str,
) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let changes: Vec<Change> = names
        .iter()
        .flat_map(|n| [RrType::A, RrType::Aaaa].map(|k| alias_record(n, k, domain)))
        .flatten()
        .filter_map(|r| {
            Change::builder()
                .action(action.clone())
                .resource_record_set(r)
                .build()
                .ok()
        })
        .collect();
    let what = format!(
        "{} the alias records of {} in hosted zone {zone}",
        if action == ChangeAction::Delete {
            "delete"
        } else {
            "write"
        },
        names.join(", ")
    );
    let batch = ChangeBatch::builder()
        .set_changes(Some(changes))
        .comment("Panthera: the platform's edge")
        .build()
        .map_err(|e| ctx.terminal(format!("cannot {what}: {e}")))?;
    let sent = client
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send();
    ctx.call(Write("ChangeResourceRecordSets", zone), &what, sent)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_written() {
        assert_eq!(plain("\\052.shop.example.com."), "*.shop.example.com");
        assert_eq!(plain("Shop.Example.com."), "shop.example.com");
    }

    #[test]
    fn only_an_alias_to_the_distribution_is_ours() {
        let ours = alias_record("shop.example.com", RrType::A, "d1.cloudfront.net").unwrap();
        assert!(points_at(&ours, "d1.cloudfront.net."));
        assert!(!points_at(&ours, "d2.cloudfront.net"));
        let plain_record = ResourceRecordSet::builder()
            .name("shop.example.com")
            .r#type(RrType::A)
            .build()
            .unwrap();
        assert!(!points_at(&plain_record, "d1.cloudfront.net"));
    }
}
