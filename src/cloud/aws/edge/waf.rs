//! The WAF side of the edge: two IP sets (the spec's deny and allow lists) and the web ACL in
//! front of the distribution (scope CLOUDFRONT, which lives in us-east-1): the deny list, the
//! allow list, a rate-based rule per client address, then the AWS managed rule groups. WAF
//! changes need the lock token of the version they change: each is read right before.

use aws_sdk_wafv2::Client;
use aws_sdk_wafv2::error::BuildError;
use aws_sdk_wafv2::types::{
    AllowAction, BlockAction, DefaultAction, IpAddressVersion, IpSetReferenceStatement,
    ManagedRuleGroupStatement, NoneAction, OverrideAction, RateBasedStatement,
    RateBasedStatementAggregateKeyType, Rule, RuleAction, Scope, Statement, Tag, VisibilityConfig,
};

use super::super::Counted::{Read, Write};
use super::super::model::{
    WAF_ALLOW_RULE, WAF_DENY_RULE, WAF_MANAGED_GROUPS, WAF_RATE_RULE, WafSettings,
};
use super::super::service::Tags;
use super::super::{Ctx, Result};

/// WAF counts a rate-based rule's requests over this window.
const RATE_WINDOW_SECONDS: i64 = 300;

/// An IP set or web ACL as WAF names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Found {
    pub name: String,
    pub id: String,
    pub arn: String,
}

/// The names of the IP sets of an edge.
pub(super) fn set_names(identifier: &str) -> [String; 2] {
    [format!("{identifier}-deny"), format!("{identifier}-allow")]
}

fn visibility(name: &str) -> Result<VisibilityConfig, BuildError> {
    VisibilityConfig::builder()
        .sampled_requests_enabled(true)
        .cloud_watch_metrics_enabled(true)
        .metric_name(name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-"))
        .build()
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

/// The web ACL's rules: deny list, allow list, rate limit, managed groups.
pub(super) fn rules(
    waf: &WafSettings,
    deny_arn: &str,
    allow_arn: &str,
) -> Result<Vec<Rule>, BuildError> {
    let ip_rule = |name: &str, arn: &str, action: RuleAction, priority| {
        Rule::builder()
            .name(name)
            .priority(priority)
            .statement(
                Statement::builder()
                    .ip_set_reference_statement(
                        IpSetReferenceStatement::builder().arn(arn).build()?,
                    )
                    .build(),
            )
            .action(action)
            .visibility_config(visibility(name)?)
            .build()
    };
    let block = || {
        RuleAction::builder()
            .block(BlockAction::builder().build())
            .build()
    };
    let allow = RuleAction::builder()
        .allow(AllowAction::builder().build())
        .build();
    let mut out = vec![
        ip_rule(WAF_DENY_RULE, deny_arn, block(), 0)?,
        ip_rule(WAF_ALLOW_RULE, allow_arn, allow, 1)?,
        Rule::builder()
            .name(WAF_RATE_RULE)
            .priority(2)
            .statement(
                Statement::builder()
                    .rate_based_statement(
                        RateBasedStatement::builder()
                            .limit(waf.rate_limit)
                            .evaluation_window_sec(RATE_WINDOW_SECONDS)
                            .aggregate_key_type(RateBasedStatementAggregateKeyType::Ip)
                            .build()?,
                    )
                    .build(),
            )
            .action(block())
            .visibility_config(visibility(WAF_RATE_RULE)?)
            .build()?,
    ];
    for (group, priority) in WAF_MANAGED_GROUPS.iter().zip(3..) {
        out.push(
            Rule::builder()
                .name(*group)
                .priority(priority)
                .statement(
                    Statement::builder()
                        .managed_rule_group_statement(
                            ManagedRuleGroupStatement::builder()
                                .vendor_name("AWS")
                                .name(*group)
                                .build()?,
                        )
                        .build(),
                )
                // The group's own actions apply.
                .override_action(
                    OverrideAction::builder()
                        .none(NoneAction::builder().build())
                        .build(),
                )
                .visibility_config(visibility(group)?)
                .build()?,
        );
    }
    Ok(out)
}

/// The rule names in priority order and the rate limit of a web ACL's `rules`.
pub(super) fn read_rules(rules: &[Rule]) -> (Vec<String>, i64) {
    let mut sorted: Vec<&Rule> = rules.iter().collect();
    sorted.sort_by_key(|r| r.priority());
    let limit = sorted
        .iter()
        .find(|r| r.name() == WAF_RATE_RULE)
        .and_then(|r| r.statement())
        .and_then(|s| s.rate_based_statement())
        .map_or(0, RateBasedStatement::limit);
    (sorted.iter().map(|r| r.name().to_string()).collect(), limit)
}

fn scope() -> Scope {
    Scope::Cloudfront
}

/// The IP sets of the account's CLOUDFRONT scope named in `names`.
pub(super) async fn find_sets(
    client: &Client,
    ctx: &Ctx<'_>,
    names: &[String],
) -> Result<Vec<Found>> {
    let pages = ctx
        .pages(
            "list WAF IP sets",
            |marker| {
                client
                    .list_ip_sets()
                    .scope(scope())
                    .set_next_marker(marker)
                    .send()
            },
            |page: &aws_sdk_wafv2::operation::list_ip_sets::ListIpSetsOutput| page.next_marker(),
        )
        .await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.ip_sets())
        .filter(|s| s.name().is_some_and(|n| names.iter().any(|w| w == n)))
        .map(|s| Found {
            name: s.name().unwrap_or_default().to_string(),
            id: s.id().unwrap_or_default().to_string(),
            arn: s.arn().unwrap_or_default().to_string(),
        })
        .collect())
}

/// The addresses of an IP set, and the lock token of that version.
pub(super) async fn addresses(
    client: &Client,
    ctx: &Ctx<'_>,
    set: &Found,
) -> Result<(Vec<String>, String)> {
    let action = format!("read WAF IP set {}", set.name);
    let sent = client
        .get_ip_set()
        .name(&set.name)
        .id(&set.id)
        .scope(scope())
        .send();
    let out = ctx.call(Read, &action, sent).await?;
    let addresses = out
        .ip_set()
        .map(|s| s.addresses().to_vec())
        .unwrap_or_default();
    Ok((addresses, out.lock_token().unwrap_or_default().to_string()))
}

/// Create the IP set `name` with `addresses`; its ARN.
pub(super) async fn create_set(
    client: &Client,
    ctx: &Ctx<'_>,
    name: &str,
    addresses: &[String],
    tags: &Tags,
) -> Result<Found> {
    let action = format!("create WAF IP set {name}");
    let sent = client
        .create_ip_set()
        .name(name)
        .scope(scope())
        .ip_address_version(IpAddressVersion::Ipv4)
        .set_addresses(Some(addresses.to_vec()))
        .description("Panthera: addresses of the platform's edge")
        .set_tags(Some(sdk_tags(tags)))
        .send();
    let out = ctx.call(Write("CreateIPSet", name), &action, sent).await?;
    let summary = out.summary();
    Ok(Found {
        name: name.to_string(),
        id: summary.and_then(|s| s.id()).unwrap_or_default().to_string(),
        arn: summary
            .and_then(|s| s.arn())
            .unwrap_or_default()
            .to_string(),
    })
}

/// Replace the addresses of `set`.
pub(super) async fn update_set(
    client: &Client,
    ctx: &Ctx<'_>,
    set: &Found,
    addresses: &[String],
) -> Result<()> {
    let (_, lock) = self::addresses(client, ctx, set).await?;
    let action = format!("update WAF IP set {}", set.name);
    let sent = client
        .update_ip_set()
        .name(&set.name)
        .id(&set.id)
        .scope(scope())
        .set_addresses(Some(addresses.to_vec()))
        .lock_token(lock)
        .send();
    ctx.call(Write("UpdateIPSet", &set.name), &action, sent)
        .await?;
    Ok(())
}

/// Delete `set`; one already gone is no error.
pub(super) async fn delete_set(client: &Client, ctx: &Ctx<'_>, set: &Found) -> Result<()> {
    let (_, lock) = addresses(client, ctx, set).await?;
    let action = format!("delete WAF IP set {}", set.name);
    let sent = client
        .delete_ip_set()
        .name(&set.name)
        .id(&set.id)
        .scope(scope())
        .lock_token(lock)
        .send();
    ctx.call_or_none(Write("DeleteIPSet", &set.name), &action, sent, |e| {
        e.is_waf_nonexistent_item_exception()
    })
    .await?;
    Ok(())
}

/// The web ACL named `name`.
pub(super) async fn find_acl(client: &Client, ctx: &Ctx<'_>, name: &str) -> Result<Option<Found>> {
    let pages = ctx
        .pages(
            "list WAF web ACLs",
            |marker| {
                client
                    .list_web_acls()
                    .scope(scope())
                    .set_next_marker(marker)
                    .send()
            },
            |page: &aws_sdk_wafv2::operation::list_web_acls::ListWebAcLsOutput| page.next_marker(),
        )
        .await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.web_acls())
        .find(|a| a.name() == Some(name))
        .map(|a| Found {
            name: name.to_string(),
            id: a.id().unwrap_or_default().to_string(),
            arn: a.arn().unwrap_or_default().to_string(),
        }))
}

/// The rules of `acl` and the lock token of that version.
pub(super) async fn acl_rules(
    client: &Client,
    ctx: &Ctx<'_>,
    acl: &Found,
) -> Result<(Vec<Rule>, String)> {
    let action = format!("read WAF web ACL {}", acl.name);
    let sent = client
        .get_web_acl()
        .name(&acl.name)
        .id(&acl.id)
        .scope(scope())
        .send();
    let out = ctx.call(Read, &action, sent).await?;
    let rules = out
        .web_acl()
        .map(|a| a.rules().to_vec())
        .unwrap_or_default();
    Ok((rules, out.lock_token().unwrap_or_default().to_string()))
}

/// Create the web ACL `name` with `rules`, allowing what no rule blocks.
pub(super) async fn create_acl(
    client: &Client,
    ctx: &Ctx<'_>,
    name: &str,
    rules: Vec<Rule>,
    tags: &Tags,
) -> Result<Found> {
    let action = format!("create WAF web ACL {name}");
    let config = visibility(name).map_err(|e| ctx.terminal(format!("cannot {action}: {e}")))?;
    let sent = client
        .create_web_acl()
        .name(name)
        .scope(scope())
        .default_action(
            DefaultAction::builder()
                .allow(AllowAction::builder().build())
                .build(),
        )
        .set_rules(Some(rules))
        .visibility_config(config)
        .description("Panthera: the platform's edge")
        .set_tags(Some(sdk_tags(tags)))
        .send();
    let out = ctx.call(Write("CreateWebACL", name), &action, sent).await?;
    let summary = out.summary();
    Ok(Found {
        name: name.to_string(),
        id: summary.and_then(|s| s.id()).unwrap_or_default().to_string(),
        arn: summary
            .and_then(|s| s.arn())
            .unwrap_or_default()
            .to_string(),
    })
}

/// Replace the rules of `acl`.
pub(super) async fn update_acl(
    client: &Client,
    ctx: &Ctx<'_>,
    acl: &Found,
    rules: Vec<Rule>,
) -> Result<()> {
    let (_, lock) = acl_rules(client, ctx, acl).await?;
    let action = format!("update WAF web ACL {}", acl.name);
    let config =
        visibility(&acl.name).map_err(|e| ctx.terminal(format!("cannot {action}: {e}")))?;
    let sent = client
        .update_web_acl()
        .name(&acl.name)
        .id(&acl.id)
        .scope(scope())
        .default_action(
            DefaultAction::builder()
                .allow(AllowAction::builder().build())
                .build(),
        )
        .set_rules(Some(rules))
        .visibility_config(config)
        .lock_token(lock)
        .send();
    ctx.call(Write("UpdateWebACL", &acl.name), &action, sent)
        .await?;
    Ok(())
}

/// Delete `acl`; one already gone is no error. WAF refuses while a distribution still uses it
/// (retried by the next destroy).
pub(super) async fn delete_acl(client: &Client, ctx: &Ctx<'_>, acl: &Found) -> Result<()> {
    let (_, lock) = acl_rules(client, ctx, acl).await?;
    let action = format!("delete WAF web ACL {}", acl.name);
    let sent = client
        .delete_web_acl()
        .name(&acl.name)
        .id(&acl.id)
        .scope(scope())
        .lock_token(lock)
        .send();
    ctx.call_or_none(Write("DeleteWebACL", &acl.name), &action, sent, |e| {
        e.is_waf_nonexistent_item_exception()
    })
    .await?;
    Ok(())
}

/// The tags of a WAF resource.
pub(super) async fn tags_of(client: &Client, ctx: &Ctx<'_>, arn: &str) -> Result<Tags> {
    let action = format!("read the tags of {arn}");
    let sent = client.list_tags_for_resource().resource_arn(arn).send();
    let out = ctx.call(Read, &action, sent).await?;
    Ok(out
        .tag_info_for_resource()
        .map(|t| {
            t.tag_list()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default())
}

pub(super) async fn tag(client: &Client, ctx: &Ctx<'_>, arn: &str, tags: &Tags) -> Result<()> {
    let sent = client
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(sdk_tags(tags)))
        .send();
    ctx.call(Write("TagResource", arn), &format!("tag {arn}"), sent)
        .await?;
    Ok(())
}

pub(super) async fn untag(
    client: &Client,
    ctx: &Ctx<'_>,
    arn: &str,
    keys: &[String],
) -> Result<()> {
    let sent = client
        .untag_resource()
        .resource_arn(arn)
        .set_tag_keys(Some(keys.to_vec()))
        .send();
    ctx.call(Write("UntagResource", arn), &format!("untag {arn}"), sent)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cloud::aws::model::waf_rules;

    #[test]
    fn the_rules_read_back_in_priority_order_with_the_rate_limit() {
        let waf = WafSettings {
            rate_limit: 500,
            ..WafSettings::default()
        };
        let mut written = rules(&waf, "arn:deny", "arn:allow").unwrap();
        // WAF may list them in any order.
        written.reverse();
        assert_eq!(read_rules(&written), (waf_rules(), 500));
    }

    #[test]
    fn the_deny_list_blocks_before_anything_else_and_the_allow_list_skips_the_rest() {
        let written = rules(&WafSettings::default(), "arn:deny", "arn:allow").unwrap();
        let deny = &written[0];
        assert_eq!((deny.name(), deny.priority()), (WAF_DENY_RULE, 0));
        assert!(deny.action().unwrap().block().is_some());
        let allow = &written[1];
        assert!(allow.action().unwrap().allow().is_some());
        assert_eq!(
            allow
                .statement()
                .unwrap()
                .ip_set_reference_statement()
                .unwrap()
                .arn(),
            "arn:allow"
        );
        let managed = &written[3];
        assert!(managed.override_action().unwrap().none().is_some());
    }
}
