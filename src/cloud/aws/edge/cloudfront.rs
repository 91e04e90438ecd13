//! The CloudFront calls of the edge: the distribution (found by its comment, the edge's
//! identifier), its tags and the Origin Access Control of the assets' bucket. CloudFront changes
//! a distribution only with the ETag of the version it read.

use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::error::ProvideErrorMetadata;
use aws_sdk_cloudfront::types::{
    DistributionConfig, DistributionConfigWithTags, OriginAccessControlConfig,
    OriginAccessControlOriginTypes, OriginAccessControlSigningBehaviors,
    OriginAccessControlSigningProtocols, Tag, TagKeys, Tags as SdkTags,
};

use super::super::Counted::{Read, Write};
use super::super::service::Tags;
use super::super::{Ctx, Result};

/// A distribution as CloudFront runs it.
#[derive(Clone, Debug)]
pub(super) struct Running {
    pub id: String,
    pub arn: String,
    pub domain: String,
    /// `Deployed` or `InProgress`.
    pub status: String,
    pub config: DistributionConfig,
    /// The version of `config`, which a change or delete must name.
    pub etag: String,
}

impl Running {
    /// The word status and plan use: `Deployed` and `InProgress` while it serves,
    /// `Disabling` and `Disabled` once turned off.
    pub fn word(&self) -> &'static str {
        let deployed = self.status.eq_ignore_ascii_case("Deployed");
        match (self.config.enabled(), deployed) {
            (true, true) => "Deployed",
            (true, false) => "InProgress",
            (false, false) => "Disabling",
            (false, true) => "Disabled",
        }
    }
}

fn gone<E: ProvideErrorMetadata>(e: &E) -> bool {
    matches!(
        e.code(),
        Some("NoSuchDistribution" | "NoSuchOriginAccessControl")
    )
}

/// The distribution whose comment is `identifier`, with its configuration.
pub(super) async fn find(
    client: &Client,
    ctx: &Ctx<'_>,
    identifier: &str,
) -> Result<Option<Running>> {
    let pages = ctx
        .pages(
            "list CloudFront distributions",
            |marker| client.list_distributions().set_marker(marker).send(),
            |page: &aws_sdk_cloudfront::operation::list_distributions::ListDistributionsOutput| {
                page.distribution_list()
                    .filter(|l| l.is_truncated())
                    .and_then(|l| l.next_marker())
            },
        )
        .await?;
    let Some(summary) = pages
        .iter()
        .filter_map(|p| p.distribution_list())
        .flat_map(|l| l.items())
        .find(|d| d.comment() == identifier)
        .cloned()
    else {
        return Ok(None);
    };
    let action = format!("read CloudFront distribution {}", summary.id());
    let sent = client.get_distribution_config().id(summary.id()).send();
    let Some(out) = ctx.call_or_none(Read, &action, sent, gone).await? else {
        return Ok(None);
    };
    let Some(config) = out.distribution_config().cloned() else {
        return Ok(None);
    };
    Ok(Some(Running {
        id: summary.id().to_string(),
        arn: summary.arn().to_string(),
        domain: summary.domain_name().to_string(),
        status: summary.status().to_string(),
        config,
        etag: out.e_tag().unwrap_or_default().to_string(),
    }))
}

fn sdk_tags(tags: &Tags) -> SdkTags {
    SdkTags::builder()
        .set_items(Some(
            tags.iter()
                .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
                .collect(),
        ))
        .build()
}

/// Create the distribution; its ARN and domain name.
pub(super) async fn create(
    client: &Client,
    ctx: &Ctx<'_>,
    identifier: &str,
    config: DistributionConfig,
    tags: &Tags,
) -> Result<(String, String)> {
    let action = format!("create CloudFront distribution {identifier}");
    let with_tags = DistributionConfigWithTags::builder()
        .distribution_config(config)
        .tags(sdk_tags(tags))
        .build();
    let sent = client
        .create_distribution_with_tags()
        .distribution_config_with_tags(with_tags)
        .send();
    let out = ctx
        .call(
            Write("CreateDistributionWithTags", identifier),
            &action,
            sent,
        )
        .await?;
    let d = out.distribution();
    Ok((
        d.map(|d| d.arn().to_string()).unwrap_or_default(),
        d.map(|d| d.domain_name().to_string()).unwrap_or_default(),
    ))
}

/// Replace the configuration of `running` with `config`.
pub(super) async fn update(
    client: &Client,
    ctx: &Ctx<'_>,
    running: &Running,
    config: DistributionConfig,
) -> Result<()> {
    let action = format!("update CloudFront distribution {}", running.id);
    let sent = client
        .update_distribution()
        .id(&running.id)
        .if_match(&running.etag)
        .distribution_config(config)
        .send();
    ctx.call(Write("UpdateDistribution", &running.id), &action, sent)
        .await?;
    Ok(())
}

/// Delete `running`, which must be disabled and deployed; one already gone is no error.
pub(super) async fn delete(client: &Client, ctx: &Ctx<'_>, running: &Running) -> Result<()> {
    let action = format!("delete CloudFront distribution {}", running.id);
    let sent = client
        .delete_distribution()
        .id(&running.id)
        .if_match(&running.etag)
        .send();
    ctx.call_or_none(
        Write("DeleteDistribution", &running.id),
        &action,
        sent,
        gone,
    )
    .await?;
    Ok(())
}

/// The id of the Origin Access Control named `name`.
pub(super) async fn find_oac(client: &Client, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>> {
    let pages = ctx
        .pages(
            "list CloudFront origin access controls",
            |marker| client.list_origin_access_controls().set_marker(marker).send(),
            |page: &aws_sdk_cloudfront::operation::list_origin_access_controls::ListOriginAccessControlsOutput| {
                page.origin_access_control_list()
                    .filter(|l| l.is_truncated())
                    .and_then(|l| l.next_marker())
            },
        )
        .await?;
    Ok(pages
        .iter()
        .filter_map(|p| p.origin_access_control_list())
        .flat_map(|l| l.items())
        .find(|o| o.name() == name)
        .map(|o| o.id().to_string()))
}

/// The Origin Access Control `name` (S3, requests always signed), created when missing.
pub(super) async fn ensure_oac(client: &Client, ctx: &Ctx<'_>, name: &str) -> Result<String> {
    if let Some(id) = find_oac(client, ctx, name).await? {
        return Ok(id);
    }
    let action = format!("create CloudFront origin access control {name}");
    let config = OriginAccessControlConfig::builder()
        .name(name)
        .description("Panthera: the edge reads the platform's assets bucket")
        .signing_protocol(OriginAccessControlSigningProtocols::Sigv4)
        .signing_behavior(OriginAccessControlSigningBehaviors::Always)
        .origin_access_control_origin_type(OriginAccessControlOriginTypes::S3)
        .build()
        .map_err(|e| ctx.terminal(format!("cannot {action}: {e}")))?;
    let sent = client
        .create_origin_access_control()
        .origin_access_control_config(config)
        .send();
    let out = ctx
        .call(Write("CreateOriginAccessControl", name), &action, sent)
        .await?;
    Ok(out
        .origin_access_control()
        .map(|o| o.id().to_string())
        .unwrap_or_default())
}

/// Delete the Origin Access Control `name`, if there is one.
pub(super) async fn delete_oac(client: &Client, ctx: &Ctx<'_>, name: &str) -> Result<()> {
    let Some(id) = find_oac(client, ctx, name).await? else {
        return Ok(());
    };
    let action = format!("delete CloudFront origin access control {name}");
    let sent = client.get_origin_access_control().id(&id).send();
    let Some(read) = ctx.call_or_none(Read, &action, sent, gone).await? else {
        return Ok(());
    };
    let sent = client
        .delete_origin_access_control()
        .id(&id)
        .if_match(read.e_tag().unwrap_or_default())
        .send();
    ctx.call_or_none(
        Write("DeleteOriginAccessControl", name),
        &action,
        sent,
        gone,
    )
    .await?;
    Ok(())
}

/// The tags of the distribution `arn`.
pub(super) async fn tags_of(client: &Client, ctx: &Ctx<'_>, arn: &str) -> Result<Tags> {
    let action = format!("read the tags of {arn}");
    let sent = client.list_tags_for_resource().resource(arn).send();
    let out = ctx.call(Read, &action, sent).await?;
    Ok(out
        .tags()
        .map(|t| {
            t.items()
                .iter()
                .map(|t| {
                    (
                        t.key().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

pub(super) async fn tag(client: &Client, ctx: &Ctx<'_>, arn: &str, tags: &Tags) -> Result<()> {
    let sent = client
        .tag_resource()
        .resource(arn)
        .tags(sdk_tags(tags))
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
    let keys = TagKeys::builder().set_items(Some(keys.to_vec())).build();
    let sent = client.untag_resource().resource(arn).tag_keys(keys).send();
    ctx.call(Write("UntagResource", arn), &format!("untag {arn}"), sent)
        .await?;
    Ok(())
}
