//! Master credentials in Secrets Manager: `{"username": ..., "password": ...}`, created once
//! (before the store, so an interrupted apply never generates a second password).

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::types::Tag;

use super::model;
use super::{Ctx, Result};

/// The password kept under `name`, if any.
pub(super) async fn get(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>> {
    let request = ctx.clients.secrets.get_secret_value().secret_id(name);
    let out = ctx
        .read_tolerating(
            &format!("read secret {name} from Secrets Manager"),
            request.send(),
            |e| e.is_resource_not_found_exception(),
        )
        .await?;
    Ok(out
        .as_ref()
        .and_then(|out| out.secret_string())
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| {
            v.get("password")
                .and_then(|p| p.as_str())
                .map(str::to_string)
        }))
}

/// The ARN of the secret `name`, if there is one.
pub(super) async fn arn(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>> {
    let request = ctx.clients.secrets.describe_secret().secret_id(name);
    let out = ctx
        .read_tolerating(
            &format!("describe secret {name} in Secrets Manager"),
            request.send(),
            |e| e.is_resource_not_found_exception(),
        )
        .await?;
    Ok(out.and_then(|o| o.arn().map(str::to_string)))
}

/// Store the credentials under `name`, encrypted with `kms_key` when given (MSK's SCRAM secrets
/// must not use the default key); one already there (an interrupted apply) is kept.
pub(super) async fn create(
    ctx: &Ctx<'_>,
    name: &str,
    username: &str,
    password: &str,
    kms_key: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<()> {
    let value = serde_json::json!({"username": username, "password": password}).to_string();
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build());
    let request = ctx
        .clients
        .secrets
        .create_secret()
        .name(name)
        .description("Credentials of a Panthera data store")
        .secret_string(value)
        .set_kms_key_id(kms_key.map(str::to_string))
        .set_tags(Some(tags.collect()));
    ctx.write_tolerating(
        ("CreateSecret", name),
        &format!("store secret {name} in Secrets Manager"),
        request.send(),
        |e| e.is_resource_exists_exception(),
    )
    .await?;
    Ok(())
}

/// Delete with the default 7-day recovery window: a mistake can still be undone.
pub(super) async fn delete(ctx: &Ctx<'_>, name: &str) -> Result<()> {
    let request = ctx.clients.secrets.delete_secret().secret_id(name);
    let action = format!("delete secret {name} from Secrets Manager");
    let sent = request.recovery_window_in_days(7).send();
    ctx.write_tolerating(("DeleteSecret", name), &action, sent, |e| {
        e.is_resource_not_found_exception()
    })
    .await?;
    Ok(())
}

/// Remove Panthera's tags (Retain): the secret stays, with the retained store.
pub(super) async fn untag(ctx: &Ctx<'_>, name: &str) -> Result<()> {
    let keys = model::PANTHERA_TAGS.iter().map(|k| k.to_string()).collect();
    let request = ctx.clients.secrets.untag_resource().secret_id(name);
    let action = format!("untag secret {name} in Secrets Manager");
    let sent = request.set_tag_keys(Some(keys)).send();
    ctx.write_tolerating(("UntagResource", name), &action, sent, |e| {
        e.is_resource_not_found_exception()
    })
    .await?;
    Ok(())
}
