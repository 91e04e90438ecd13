//! The edge on AWS: a CloudFront distribution in front of the gateway's public host (and of
//! the assets' bucket through Origin Access Control), the WAF web ACL and IP sets it is
//! associated with, and the Route 53 alias records of its aliases. To the pipeline it is one
//! resource, found by the edge's identifier (the distribution's comment, the web ACL's name);
//! its parts are written in the order they depend on each other: IP sets, web ACL, origin
//! access control, distribution, the bucket's read grant, records. Deleting goes the other way,
//! and CloudFront deletes only a disabled distribution once that is deployed: the first destroy
//! disables it, a later one deletes it and the rest.

mod cloudfront;
mod distribution;
mod dns;
mod waf;

use std::collections::BTreeSet;

use aws_sdk_route53::types::ChangeAction;

use super::model::{
    EdgePart, EdgeSettings, Observed, Owner, Settings, Store, WafSettings, edge_part,
};
use super::service::{Create, Delete, Modify, ServiceApi, Tags};
use super::{Ctx, Result};
use cloudfront::Running;
use distribution::Parts;
use waf::Found;

/// The hosted zone of the edge's records, kept on the distribution so that destroy finds them
/// without a spec.
const TAG_HOSTED_ZONE: &str = "panthera.dev/hosted-zone";

/// The clients of the edge: CloudFront, WAF (scope CLOUDFRONT) and Route 53 are global and
/// answer in us-east-1; S3 is the platform region's, for the assets' bucket.
pub(in crate::cloud::aws) struct EdgeClients {
    pub cloudfront: aws_sdk_cloudfront::Client,
    pub waf: aws_sdk_wafv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub s3: aws_sdk_s3::Client,
}

fn edge_settings(store: &Store) -> Option<&EdgeSettings> {
    match &store.settings {
        Settings::Edge(e) => Some(e),
        _ => None,
    }
}

impl EdgeClients {
    fn region(&self) -> String {
        self.s3
            .config()
            .region()
            .map_or("us-east-1".to_string(), ToString::to_string)
    }

    /// The IP sets with the addresses `waf` lists, each created or updated when it differs;
    /// whether one was created (the web ACL must then name it).
    async fn ensure_sets(
        &self,
        ctx: &Ctx<'_>,
        identifier: &str,
        want: &WafSettings,
        tags: &Tags,
    ) -> Result<(Found, Found, bool)> {
        let names = waf::set_names(identifier);
        let found = waf::find_sets(&self.waf, ctx, &names).await?;
        let mut out = Vec::new();
        let mut created = false;
        for (name, addresses) in names.iter().zip([&want.deny, &want.allow]) {
            match found.iter().find(|f| &f.name == name) {
                Some(set) => {
                    let (has, _) = waf::addresses(&self.waf, ctx, set).await?;
                    if as_set(&has) != as_set(addresses) {
                        waf::update_set(&self.waf, ctx, set, addresses).await?;
                    }
                    out.push(set.clone());
                }
                None => {
                    created = true;
                    out.push(waf::create_set(&self.waf, ctx, name, addresses, tags).await?);
                }
            }
        }
        let allow = out.pop();
        let deny = out.pop();
        match (deny, allow) {
            (Some(deny), Some(allow)) => Ok((deny, allow, created)),
            _ => Err(ctx.terminal(format!(
                "WAF IP sets of {identifier} not found after creating them"
            ))),
        }
    }

    /// The IP sets and the web ACL, created or brought to what `want` says; the web ACL.
    async fn ensure_waf(
        &self,
        ctx: &Ctx<'_>,
        identifier: &str,
        want: &WafSettings,
        tags: &Tags,
        rules_changed: bool,
    ) -> Result<Found> {
        let (deny, allow, created) = self.ensure_sets(ctx, identifier, want, tags).await?;
        let rules = waf::rules(want, &deny.arn, &allow.arn).map_err(|e| {
            ctx.terminal(format!(
                "cannot build the rules of WAF web ACL {identifier}: {e}"
            ))
        })?;
        let acl = match waf::find_acl(&self.waf, ctx, identifier).await? {
            Some(acl) => {
                if rules_changed || created {
                    waf::update_acl(&self.waf, ctx, &acl, rules).await?;
                }
                acl
            }
            None => waf::create_acl(&self.waf, ctx, identifier, rules, tags).await?,
        };
        Ok(acl)
    }

    /// The distribution's configuration for `want`, with the parts it names.
    async fn config(
        &self,
        ctx: &Ctx<'_>,
        identifier: &str,
        want: &EdgeSettings,
        caller_reference: &str,
        web_acl_arn: &str,
    ) -> Result<aws_sdk_cloudfront::types::DistributionConfig> {
        let oac = match &want.assets {
            Some(_) => Some(cloudfront::ensure_oac(&self.cloudfront, ctx, identifier).await?),
            None => None,
        };
        let Some(origin) = want.origin.as_deref() else {
            return Err(ctx.terminal(format!(
                "the origin of CloudFront distribution {identifier} is not known yet (the gateway's Ingress publishes no load balancer host name)"
            )));
        };
        let region = self.region();
        let parts = Parts {
            settings: want,
            identifier,
            caller_reference,
            web_acl_arn,
            oac_id: oac.as_deref(),
            bucket_region: &region,
        };
        distribution::config(&parts, origin).map_err(|e| {
            ctx.terminal(format!(
                "cannot build the configuration of CloudFront distribution {identifier}: {e}"
            ))
        })
    }

    /// Let the distribution `arn` read the assets' bucket (`Some`), or stop it (`None`; nothing
    /// to do when the bucket is gone, deleted by the same destroy).
    async fn grant(&self, ctx: &Ctx<'_>, bucket: &str, distribution: Option<&str>) -> Result<()> {
        if distribution.is_none() && !super::s3::exists(&self.s3, ctx, bucket).await? {
            return Ok(());
        }
        let current = super::s3::policy_of(&self.s3, ctx, bucket).await?;
        let policy = super::s3::edge_read_policy(current.as_deref(), bucket, distribution);
        super::s3::put_policy(&self.s3, ctx, bucket, policy).await
    }

    /// Bring the records in `zone` from the names `has` to `want`, aliases to `domain`.
    async fn records(
        &self,
        ctx: &Ctx<'_>,
        (has_zone, has): (Option<&str>, &[String]),
        (want_zone, want): (Option<&str>, &[String]),
        domain: &str,
    ) -> Result<()> {
        if let Some(zone) = has_zone {
            let stale: Vec<String> = has
                .iter()
                .filter(|n| want_zone != Some(zone) || !want.contains(n))
                .cloned()
                .collect();
            dns::change(
                &self.route53,
                ctx,
                zone,
                ChangeAction::Delete,
                &stale,
                domain,
            )
            .await?;
        }
        if let Some(zone) = want_zone {
            dns::change(&self.route53, ctx, zone, ChangeAction::Upsert, want, domain).await?;
        }
        Ok(())
    }

    /// Create the distribution (the web ACL exists), then what depends on it.
    async fn create_distribution(
        &self,
        ctx: &Ctx<'_>,
        identifier: &str,
        want: &EdgeSettings,
        web_acl_arn: &str,
        tags: &Tags,
    ) -> Result<()> {
        // A new reference per distribution: CloudFront refuses one it has seen, even deleted.
        let reference = format!("{identifier}-{}", chrono::Utc::now().timestamp_millis());
        let config = self
            .config(ctx, identifier, want, &reference, web_acl_arn)
            .await?;
        let mut tags = tags.clone();
        if let Some(zone) = &want.hosted_zone {
            tags.insert(TAG_HOSTED_ZONE.to_string(), zone.clone());
        }
        let (arn, domain) =
            cloudfront::create(&self.cloudfront, ctx, identifier, config, &tags).await?;
        if let Some(assets) = &want.assets {
            self.grant(ctx, &assets.bucket, Some(&arn)).await?;
        }
        self.records(
            ctx,
            (None, &[]),
            (want.hosted_zone.as_deref(), &want.records),
            &domain,
        )
        .await
    }
}

fn as_set(items: &[String]) -> BTreeSet<&str> {
    items.iter().map(String::as_str).collect()
}

/// What an edge without a distribution (parts left by an interrupted apply or destroy) reads
/// as: nothing the spec wants.
fn nothing() -> EdgeSettings {
    EdgeSettings {
        origin: None,
        aliases: Vec::new(),
        certificate_arn: "none".to_string(),
        viewer_tls: "none".to_string(),
        caching: "none".to_string(),
        price_class: "none".to_string(),
        assets: None,
        waf: WafSettings {
            attached: false,
            rules: Vec::new(),
            ..WafSettings::default()
        },
        hosted_zone: None,
        records: Vec::new(),
        enabled: false,
    }
}

impl ServiceApi for EdgeClients {
    async fn describe(&self, ctx: &Ctx<'_>, identifier: &str) -> Result<Option<Observed>> {
        let running = cloudfront::find(&self.cloudfront, ctx, identifier).await?;
        let acl = waf::find_acl(&self.waf, ctx, identifier).await?;
        let (arn, tags) = match (&running, &acl) {
            (Some(r), _) => (
                r.arn.clone(),
                cloudfront::tags_of(&self.cloudfront, ctx, &r.arn).await?,
            ),
            (None, Some(a)) => (a.arn.clone(), waf::tags_of(&self.waf, ctx, &a.arn).await?),
            (None, None) => return Ok(None),
        };
        let mut settings = match &running {
            Some(r) => distribution::settings_of(&r.config, acl.as_ref().map(|a| a.arn.as_str())),
            None => nothing(),
        };
        if let Some(acl) = &acl {
            let (rules, _) = waf::acl_rules(&self.waf, ctx, acl).await?;
            (settings.waf.rules, settings.waf.rate_limit) = waf::read_rules(&rules);
        }
        let names = waf::set_names(identifier);
        for set in waf::find_sets(&self.waf, ctx, &names).await? {
            let (addresses, _) = waf::addresses(&self.waf, ctx, &set).await?;
            if set.name == names[0] {
                settings.waf.deny = addresses;
            } else {
                settings.waf.allow = addresses;
            }
        }
        if let Some(r) = &running {
            settings.hosted_zone = tags.get(TAG_HOSTED_ZONE).cloned();
            if let Some(zone) = &settings.hosted_zone {
                settings.records =
                    dns::pointing(&self.route53, ctx, zone, &settings.aliases, &r.domain).await?;
            }
            if let Some(assets) = &mut settings.assets {
                let policy = super::s3::policy_of(&self.s3, ctx, &assets.bucket).await?;
                assets.readable = super::s3::edge_can_read(policy.as_deref(), &r.arn);
            }
        }
        Ok(Some(Observed {
            arn,
            status: running
                .as_ref()
                .map_or("Incomplete", Running::word)
                .to_string(),
            endpoint: running.as_ref().map(|r| r.domain.clone()),
            tags,
            settings: Some(Settings::Edge(Box::new(settings))),
            tls: true,
            ..Observed::default()
        }))
    }

    /// A platform has one edge, named after it.
    async fn list_owned(&self, ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>> {
        let identifier = super::model::edge_identifier(owner);
        Ok(self
            .describe(ctx, &identifier)
            .await?
            .filter(|o| owner.owns(&o.tags))
            .map(|o| (identifier, o))
            .into_iter()
            .collect())
    }

    async fn create(&self, ctx: &Ctx<'_>, new: Create<'_>) -> Result<()> {
        let store = new.store;
        let Some(want) = edge_settings(store) else {
            return Ok(());
        };
        let id = &store.identifier;
        let acl = self.ensure_waf(ctx, id, &want.waf, new.tags, true).await?;
        self.create_distribution(ctx, id, want, &acl.arn, new.tags)
            .await
    }

    /// Each part the plan's changes are in is written once: the IP sets, the web ACL, the
    /// distribution (one update for all its fields, or its creation when an interrupted apply
    /// left the rest), the records.
    async fn modify(&self, ctx: &Ctx<'_>, change: Modify<'_>) -> Result<Option<String>> {
        let store = change.store;
        let (Some(want), Some(Settings::Edge(has))) =
            (edge_settings(store), change.observed.settings.as_ref())
        else {
            return Ok(None);
        };
        let id = &store.identifier;
        let parts: BTreeSet<_> = change
            .planned
            .changes
            .iter()
            .map(|d| edge_part(d.field))
            .collect();
        // A part created here gets the ownership tags the distribution (or web ACL) has.
        let mut tags = change.observed.tags.clone();
        tags.remove(TAG_HOSTED_ZONE);
        let rules_changed = parts.contains(&EdgePart::WebAcl);
        let acl = self
            .ensure_waf(ctx, id, &want.waf, &tags, rules_changed)
            .await?;
        let running = cloudfront::find(&self.cloudfront, ctx, id).await?;
        let Some(running) = running else {
            self.create_distribution(ctx, id, want, &acl.arn, &tags)
                .await?;
            return Ok(None);
        };
        if parts.contains(&EdgePart::Distribution) {
            let reference = running.config.caller_reference().to_string();
            let config = self.config(ctx, id, want, &reference, &acl.arn).await?;
            cloudfront::update(&self.cloudfront, ctx, &running, config).await?;
            // The bucket's grant follows the assets: granted to the new bucket, taken back
            // from one no longer served.
            if let Some(old) = has
                .assets
                .as_ref()
                .filter(|a| want.assets.as_ref().is_none_or(|w| w.bucket != a.bucket))
            {
                self.grant(ctx, &old.bucket, None).await?;
            }
            if let Some(assets) = want.assets.as_ref().filter(|a| {
                has.assets
                    .as_ref()
                    .is_none_or(|h| h.bucket != a.bucket || !h.readable)
            }) {
                self.grant(ctx, &assets.bucket, Some(&running.arn)).await?;
            }
        }
        if parts.contains(&EdgePart::Records) {
            match (&has.hosted_zone, &want.hosted_zone) {
                (_, Some(zone)) if has.hosted_zone.as_ref() != Some(zone) => {
                    let tag = Tags::from([(TAG_HOSTED_ZONE.to_string(), zone.clone())]);
                    cloudfront::tag(&self.cloudfront, ctx, &running.arn, &tag).await?;
                }
                (Some(_), None) => {
                    let keys = [TAG_HOSTED_ZONE.to_string()];
                    cloudfront::untag(&self.cloudfront, ctx, &running.arn, &keys).await?;
                }
                _ => {}
            }
            self.records(
                ctx,
                (has.hosted_zone.as_deref(), &has.records),
                (want.hosted_zone.as_deref(), &want.records),
                &running.domain,
            )
            .await?;
        }
        Ok(None)
    }

    async fn add_tags(&self, ctx: &Ctx<'_>, arn: &str, tags: &Tags) -> Result<()> {
        if arn.starts_with("arn:aws:wafv2:") {
            return waf::tag(&self.waf, ctx, arn, tags).await;
        }
        cloudfront::tag(&self.cloudfront, ctx, arn, tags).await
    }

    async fn remove_tags(&self, ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()> {
        if arn.starts_with("arn:aws:wafv2:") {
            return waf::untag(&self.waf, ctx, arn, keys).await;
        }
        cloudfront::untag(&self.cloudfront, ctx, arn, keys).await
    }

    /// A distribution that serves is disabled (the delete goes on once that is deployed); a
    /// disabled one is deleted with its records and grant, then the web ACL, the IP sets and the
    /// origin access control.
    async fn delete(&self, ctx: &Ctx<'_>, gone: Delete<'_>) -> Result<()> {
        let id = gone.identifier;
        if let Some(running) = cloudfront::find(&self.cloudfront, ctx, id).await? {
            if running.config.enabled() {
                let disabled = distribution::with_enabled(&running.config, false);
                return cloudfront::update(&self.cloudfront, ctx, &running, disabled).await;
            }
            if running.word() != "Disabled" {
                return Err(super::Error {
                    component: ctx.component.to_string(),
                    message: format!(
                        "CloudFront distribution {} is still being disabled",
                        running.id
                    ),
                    terminal: false,
                });
            }
            let settings = distribution::settings_of(&running.config, None);
            let tags = cloudfront::tags_of(&self.cloudfront, ctx, &running.arn).await?;
            if let Some(zone) = tags.get(TAG_HOSTED_ZONE) {
                let ours =
                    dns::pointing(&self.route53, ctx, zone, &settings.aliases, &running.domain)
                        .await?;
                dns::change(
                    &self.route53,
                    ctx,
                    zone,
                    ChangeAction::Delete,
                    &ours,
                    &running.domain,
                )
                .await?;
            }
            if let Some(assets) = &settings.assets {
                self.grant(ctx, &assets.bucket, None).await?;
            }
            cloudfront::delete(&self.cloudfront, ctx, &running).await?;
        }
        if let Some(acl) = waf::find_acl(&self.waf, ctx, id).await? {
            waf::delete_acl(&self.waf, ctx, &acl).await?;
        }
        for set in waf::find_sets(&self.waf, ctx, &waf::set_names(id)).await? {
            waf::delete_set(&self.waf, ctx, &set).await?;
        }
        cloudfront::delete_oac(&self.cloudfront, ctx, id).await
    }
}
