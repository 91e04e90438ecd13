//! Master credentials in Secrets Manager: `{"username": ..., "password": ...}`, created once
//! (before the store, so an interrupted apply never generates a second password).

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretError;
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
use aws_sdk_secretsmanager::operation::untag_resource::UntagResourceError;
use aws_sdk_secretsmanager::types::Tag;

use super::Counted::{Read, Write};
use super::model;
use super::{Ctx, Result};

/// The password kept under `name`, if any.
pub(super) async fn get(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>> {
    let sent = ctx
        .clients
        .secrets
        .get_secret_value()
        .secret_id(name)
        .send();
    let action = format!("read secret {name} from Secrets Manager");
    let out = ctx.call_or_none(Read, &action, sent, |e| e.is_resource_not_found_exception());
    let value = out
        .await?
        .and_then(|out| out.secret_string().map(str::to_string));
    let value = value.and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
    Ok(value.and_then(|v| Some(v.get("password")?.as_str()?.to_string())))
}

/// The ARN of the secret `name`, if there is one.
pub(super) async fn arn(ctx: &Ctx<'_>, name: &str) -> Result<Option<String>> {
    let sent = ctx.clients.secrets.describe_secret().secret_id(name).send();
    let action = format!("describe secret {name} in Secrets Manager");
    let not_found = |e: &DescribeSecretError| e.is_resource_not_found_exception();
    let out = ctx.call_or_none(Read, &action, sent, not_found).await?;
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
        .secret_string(value);
    let sent = request
        .description("Credentials of a Panthera data store")
        .set_kms_key_id(kms_key.map(str::to_string))
        .set_tags(Some(tags.collect()))
        .send();
    let action = format!("store secret {name} in Secrets Manager");
    let exists = |e: &CreateSecretError| e.is_resource_exists_exception();
    let counted = Write("CreateSecret", name);
    ctx.call_or_none(counted, &action, sent, exists).await?;
    Ok(())
}

/// Delete with the default 7-day recovery window: a mistake can still be undone.
pub(super) async fn delete(ctx: &Ctx<'_>, name: &str) -> Result<()> {
    let request = ctx.clients.secrets.delete_secret().secret_id(name);
    let action = format!("delete secret {name} from Secrets Manager");
    let sent = request.recovery_window_in_days(7).send();
    let not_found = |e: &DeleteSecretError| e.is_resource_not_found_exception();
    ctx.call_or_none(Write("DeleteSecret", name), &action, sent, not_found)
        .await?;
    Ok(())
}

/// Remove Panthera's tags (Retain): the secret stays, with the retained store.
pub(super) async fn untag(ctx: &Ctx<'_>, name: &str) -> Result<()> {
    let keys = model::PANTHERA_TAGS.iter().map(|k| k.to_string()).collect();
    let request = ctx.clients.secrets.untag_resource().secret_id(name);
    let action = format!("untag secret {name} in Secrets Manager");
    let sent = request.set_tag_keys(Some(keys)).send();
    let not_found = |e: &UntagResourceError| e.is_resource_not_found_exception();
    ctx.call_or_none(Write("UntagResource", name), &action, sent, not_found)
        .await?;
    Ok(())
}
