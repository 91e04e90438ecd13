//! Buckets on S3: Block Public Access on, default encryption (SSE-S3, or SSE-KMS with the
//! spec's key), versioning, lifecycle rules (old versions, unfinished uploads, transitions), CORS
//! for browser uploads from the platform's origins, and a bucket policy that refuses requests
//! not made over TLS. S3 keeps no snapshot of a deleted bucket; `Delete` refuses a bucket that
//! still holds objects unless it was created with `emptyOnDelete`.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CorsConfiguration, CreateBucketConfiguration, Delete, ObjectIdentifier, ServerSideEncryption,
    Tag, Tagging, VersioningConfiguration,
};

mod config;

pub(super) use config::{edge_can_read, edge_read_policy};

use super::Counted::{Read, Write};
use super::model::{BucketSettings, Observed, Owner, Settings, TAG_EMPTY_ON_DELETE};
use super::service::{Create, Delete as Gone, Modify, ServiceApi, Tags};
use super::{Ctx, Result};
use config::{
    cors_rule, encryption, is_tls_only, lifecycle_of, lifecycle_rule, public_access_block,
    tls_only_policy,
};

/// DeleteObjects takes at most this many keys.
const DELETE_BATCH: usize = 1000;

/// S3's error codes for a configuration that is not set, which reads as "off".
const NOT_SET: &[&str] = &[
    "NoSuchTagSet",
    "NoSuchLifecycleConfiguration",
    "NoSuchCORSConfiguration",
    "NoSuchBucketPolicy",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
];

fn not_set<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code().is_some_and(|c| NOT_SET.contains(&c))
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

pub(super) fn arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// The regional endpoint of the client's region.
fn endpoint(client: &Client) -> String {
    let region = client
        .config()
        .region()
        .map_or("us-east-1".to_string(), ToString::to_string);
    format!("s3.{region}.amazonaws.com:443")
}

async fn tags_of(client: &Client, ctx: &Ctx<'_>, bucket: &str) -> Result<Tags> {
    let action = format!("read the tags of S3 bucket {bucket}");
    let sent = client.get_bucket_tagging().bucket(bucket).send();
    let out = ctx.call_or_none(Read, &action, sent, not_set).await?;
    Ok(out
        .map(|o| {
            o.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default())
}

/// Whether `bucket` exists.
pub(super) async fn exists(client: &Client, ctx: &Ctx<'_>, bucket: &str) -> Result<bool> {
    let action = format!("find S3 bucket {bucket}");
    let sent = client.head_bucket().bucket(bucket).send();
    let found = ctx
        .call_or_none(Read, &action, sent, |e| e.is_not_found())
        .await?;
    Ok(found.is_some())
}

/// The bucket's policy, `None` when it has none.
pub(super) async fn policy_of(
    client: &Client,
    ctx: &Ctx<'_>,
    bucket: &str,
) -> Result<Option<String>> {
    let action = format!("read the policy of S3 bucket {bucket}");
    let sent = client.get_bucket_policy().bucket(bucket).send();
    let out = ctx.call_or_none(Read, &action, sent, not_set).await?;
    Ok(out.and_then(|o| o.policy().map(str::to_string)))
}

/// Replace the bucket's policy.
pub(super) async fn put_policy(
    client: &Client,
    ctx: &Ctx<'_>,
    bucket: &str,
    policy: String,
) -> Result<()> {
    let action = format!("write the policy of S3 bucket {bucket}");
    let sent = client
        .put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send();
    ctx.call(Write("PutBucketPolicy", bucket), &action, sent)
        .await?;
    Ok(())
}

async fn put_tags(client: &Client, ctx: &Ctx<'_>, bucket: &str, tags: &Tags) -> Result<()> {
    let action = format!("tag S3 bucket {bucket}");
    if tags.is_empty() {
        let sent = client.delete_bucket_tagging().bucket(bucket).send();
        ctx.call(Write("DeleteBucketTagging", bucket), &action, sent)
            .await?;
        return Ok(());
    }
    let tagging = Tagging::builder()
        .set_tag_set(Some(sdk_tags(tags)))
        .build()
        .map_err(|e| ctx.terminal(format!("cannot {action}: {e}")))?;
    let sent = client
        .put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send();
    ctx.call(Write("PutBucketTagging", bucket), &action, sent)
        .await?;
    Ok(())
}

/// Write one setting of `want` to `bucket`, as the field named `field` of a plan.
async fn put(
    client: &Client,
    ctx: &Ctx<'_>,
    bucket: &str,
    want: &BucketSettings,
    field: &str,
) -> Result<()> {
    let action = format!("set {field} of S3 bucket {bucket}");
    match field {
        "publicAccessBlock" => {
            let sent = client
                .put_public_access_block()
                .bucket(bucket)
                .public_access_block_configuration(public_access_block())
                .send();
            ctx.call(Write("PutPublicAccessBlock", bucket), &action, sent)
                .await?;
        }
        "encryption" => {
            let sent = client
                .put_bucket_encryption()
                .bucket(bucket)
                .set_server_side_encryption_configuration(encryption(want.kms_key.as_deref()))
                .send();
            ctx.call(Write("PutBucketEncryption", bucket), &action, sent)
                .await?;
        }
        "versioning" => {
            let status = if want.versioning {
                BucketVersioningStatus::Enabled
            } else {
                BucketVersioningStatus::Suspended
            };
            let sent = client
                .put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(VersioningConfiguration::builder().status(status).build())
                .send();
            ctx.call(Write("PutBucketVersioning", bucket), &action, sent)
                .await?;
        }
        "lifecycle" => match lifecycle_rule(&want.lifecycle) {
            Some(rule) => {
                let config = BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(|e| ctx.terminal(format!("cannot {action}: {e}")))?;
                let sent = client
                    .put_bucket_lifecycle_configuration()
                    .bucket(bucket)
                    .lifecycle_configuration(config)
                    .send();
                ctx.call(
                    Write("PutBucketLifecycleConfiguration", bucket),
                    &action,
                    sent,
                )
                .await?;
            }
            None => {
                let sent = client.delete_bucket_lifecycle().bucket(bucket).send();
                ctx.call(Write("DeleteBucketLifecycle", bucket), &action, sent)
                    .await?;
            }
        },
        "corsOrigins" => match cors_rule(&want.cors_origins) {
            Some(rule) => {
                let config = CorsConfiguration::builder()
                    .cors_rules(rule)
                    .build()
                    .map_err(|e| ctx.terminal(format!("cannot {action}: {e}")))?;
                let sent = client
                    .put_bucket_cors()
                    .bucket(bucket)
                    .cors_configuration(config)
                    .send();
                ctx.call(Write("PutBucketCors", bucket), &action, sent)
                    .await?;
            }
            None => {
                let sent = client.delete_bucket_cors().bucket(bucket).send();
                ctx.call(Write("DeleteBucketCors", bucket), &action, sent)
                    .await?;
            }
        },
        "tlsOnly" => {
            // The policy's other statements (the edge's read grant, the owner's) stay.
            let current = policy_of(client, ctx, bucket).await?;
            put_policy(
                client,
                ctx,
                bucket,
                tls_only_policy(current.as_deref(), bucket),
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// Every setting, in the order a new bucket gets them (public access blocked first).
const SETTINGS: [&str; 6] = [
    "publicAccessBlock",
    "encryption",
    "versioning",
    "lifecycle",
    "corsOrigins",
    "tlsOnly",
];

/// Every object version and delete marker of `bucket`, deleted in batches.
async fn empty(client: &Client, ctx: &Ctx<'_>, bucket: &str) -> Result<usize> {
    let mut deleted = 0;
    loop {
        let action = format!("list the objects of S3 bucket {bucket}");
        let sent = client.list_object_versions().bucket(bucket).send();
        let page = ctx.call(Read, &action, sent).await?;
        let ids: Vec<ObjectIdentifier> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                page.delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(key?)
                    .set_version_id(version.map(str::to_string))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            return Ok(deleted);
        }
        for batch in ids.chunks(DELETE_BATCH) {
            let delete = Delete::builder()
                .set_objects(Some(batch.to_vec()))
                .quiet(true)
                .build()
                .map_err(|e| ctx.terminal(format!("cannot empty S3 bucket {bucket}: {e}")))?;
            let action = format!("delete objects of S3 bucket {bucket}");
            let sent = client.delete_objects().bucket(bucket).delete(delete).send();
            let out = ctx
                .call(Write("DeleteObjects", bucket), &action, sent)
                .await?;
            // S3 answers 200 and lists the objects it could not delete: stop there, or the
            // next listing would find them again for ever.
            if let Some(failed) = out.errors().first() {
                let code = failed.code().unwrap_or("unknown");
                let message = format!(
                    "cannot {action}: {} of {} not deleted, the first {} ({code}: {})",
                    out.errors().len(),
                    batch.len(),
                    failed.key().unwrap_or_default(),
                    failed.message().unwrap_or("no message")
                );
                return Err(if crate::cloud::aws::is_terminal(Some(code)) {
                    ctx.terminal(message)
                } else {
                    crate::cloud::aws::Error {
                        component: ctx.component.to_string(),
                        message,
                        terminal: false,
                    }
                });
            }
            deleted += batch.len();
        }
    }
}

impl ServiceApi for Client {
    async fn describe(&self, ctx: &Ctx<'_>, bucket: &str) -> Result<Option<Observed>> {
        let action = format!("find S3 bucket {bucket}");
        let sent = self.head_bucket().bucket(bucket).send();
        let found = ctx
            .call_or_none(Read, &action, sent, |e| e.is_not_found())
            .await?;
        if found.is_none() {
            return Ok(None);
        }
        let tags = tags_of(self, ctx, bucket).await?;
        let read = |what: &str| format!("read the {what} of S3 bucket {bucket}");
        let versioning = ctx
            .call(
                Read,
                &read("versioning"),
                self.get_bucket_versioning().bucket(bucket).send(),
            )
            .await?;
        let encryption = ctx
            .call_or_none(
                Read,
                &read("encryption"),
                self.get_bucket_encryption().bucket(bucket).send(),
                not_set,
            )
            .await?;
        let block = ctx
            .call_or_none(
                Read,
                &read("public access block"),
                self.get_public_access_block().bucket(bucket).send(),
                not_set,
            )
            .await?;
        let lifecycle = ctx
            .call_or_none(
                Read,
                &read("lifecycle"),
                self.get_bucket_lifecycle_configuration()
                    .bucket(bucket)
                    .send(),
                not_set,
            )
            .await?;
        let cors = ctx
            .call_or_none(
                Read,
                &read("CORS rules"),
                self.get_bucket_cors().bucket(bucket).send(),
                not_set,
            )
            .await?;
        let policy = ctx
            .call_or_none(
                Read,
                &read("policy"),
                self.get_bucket_policy().bucket(bucket).send(),
                not_set,
            )
            .await?;
        let default = encryption
            .as_ref()
            .and_then(|e| e.server_side_encryption_configuration())
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        let settings = BucketSettings {
            versioning: versioning.status() == Some(&BucketVersioningStatus::Enabled),
            // An unencrypted bucket (before S3 encrypted every new bucket) reads as off.
            encrypted: default.is_some(),
            kms_key: default
                .filter(|d| d.sse_algorithm() != &ServerSideEncryption::Aes256)
                .map(|d| d.kms_master_key_id().unwrap_or("aws/s3").to_string()),
            public_access_blocked: block
                .as_ref()
                .and_then(|b| b.public_access_block_configuration())
                .is_some_and(|c| {
                    [
                        c.block_public_acls(),
                        c.ignore_public_acls(),
                        c.block_public_policy(),
                        c.restrict_public_buckets(),
                    ]
                    .iter()
                    .all(|on| *on == Some(true))
                }),
            tls_only: is_tls_only(policy.as_ref().and_then(|p| p.policy())),
            lifecycle: lifecycle
                .as_ref()
                .map(|l| lifecycle_of(l.rules()))
                .unwrap_or_default(),
            cors_origins: cors
                .as_ref()
                .and_then(|c| c.cors_rules().first())
                .map(|r| r.allowed_origins().to_vec())
                .unwrap_or_default(),
        };
        Ok(Some(Observed {
            arn: arn(bucket),
            status: "available".into(),
            endpoint: Some(endpoint(self)),
            tags,
            tls: true,
            settings: Some(Settings::Bucket(settings)),
            ..Observed::default()
        }))
    }

    /// Every bucket of the region is looked at, adopted ones keep their own names; one that is
    /// gone by the time its tags are read (deleted meanwhile), or lives in another region, is
    /// passed over.
    async fn list_owned(&self, ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>> {
        let region = self.config().region().map(ToString::to_string);
        let sent = self.list_buckets().set_bucket_region(region).send();
        let listed = ctx.call(Read, "list S3 buckets", sent).await?;
        let mut out = Vec::new();
        for bucket in listed.buckets().iter().filter_map(|b| b.name()) {
            let action = format!("read the tags of S3 bucket {bucket}");
            let sent = self.get_bucket_tagging().bucket(bucket).send();
            let passed_over =
                |e: &aws_sdk_s3::operation::get_bucket_tagging::GetBucketTaggingError| {
                    not_set(e)
                        || matches!(
                            e.code(),
                            Some(
                                "NoSuchBucket"
                                    | "PermanentRedirect"
                                    | "AuthorizationHeaderMalformed"
                            )
                        )
                };
            let Some(found) = ctx.call_or_none(Read, &action, sent, passed_over).await? else {
                continue;
            };
            let tags: Tags = found
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            if owner.owns(&tags) {
                out.push((
                    bucket.to_string(),
                    Observed {
                        arn: arn(bucket),
                        status: "available".into(),
                        tags,
                        ..Observed::default()
                    },
                ));
            }
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, new: Create<'_>) -> Result<()> {
        let store = new.store;
        let Settings::Bucket(want) = &store.settings else {
            return Ok(());
        };
        let bucket = store.identifier.as_str();
        let mut request = self.create_bucket().bucket(bucket);
        // us-east-1 takes no location constraint; every other region must be named.
        if let Some(region) = new
            .network
            .region
            .clone()
            .or_else(|| self.config().region().map(ToString::to_string))
            .filter(|r| r != "us-east-1")
        {
            let location = CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()));
            request = request.create_bucket_configuration(location.build());
        }
        new.send(ctx, ("CreateBucket", "S3 bucket"), request.send())
            .await?;
        for field in SETTINGS {
            put(self, ctx, bucket, want, field).await?;
        }
        put_tags(self, ctx, bucket, new.tags).await
    }

    /// Every setting is an online change, one call each.
    async fn modify(&self, ctx: &Ctx<'_>, change: Modify<'_>) -> Result<Option<String>> {
        let Settings::Bucket(want) = &change.store.settings else {
            return Ok(None);
        };
        for difference in &change.planned.changes {
            put(self, ctx, &change.store.identifier, want, difference.field).await?;
        }
        Ok(None)
    }

    /// S3 replaces a bucket's whole tag set: read, merge, write.
    async fn add_tags(&self, ctx: &Ctx<'_>, arn: &str, tags: &Tags) -> Result<()> {
        let bucket = arn.trim_start_matches("arn:aws:s3:::");
        let mut all = tags_of(self, ctx, bucket).await?;
        all.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        put_tags(self, ctx, bucket, &all).await
    }

    async fn remove_tags(&self, ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()> {
        let bucket = arn.trim_start_matches("arn:aws:s3:::");
        let mut all = tags_of(self, ctx, bucket).await?;
        all.retain(|k, _| !keys.contains(k));
        put_tags(self, ctx, bucket, &all).await
    }

    /// A bucket that holds objects is deleted only when it was created to be emptied first.
    async fn delete(&self, ctx: &Ctx<'_>, gone: Gone<'_>) -> Result<()> {
        let bucket = gone.identifier;
        let tags = tags_of(self, ctx, bucket).await?;
        if tags.get(TAG_EMPTY_ON_DELETE).map(String::as_str) == Some("true") {
            empty(self, ctx, bucket).await?;
        } else {
            let action = format!("list the objects of S3 bucket {bucket}");
            let sent = self
                .list_object_versions()
                .bucket(bucket)
                .max_keys(1)
                .send();
            let page = ctx.call(Read, &action, sent).await?;
            if !page.versions().is_empty() || !page.delete_markers().is_empty() {
                return Err(ctx.terminal(format!(
                    "S3 bucket {bucket} still holds objects: Panthera deletes a bucket with its objects only with emptyOnDelete: true; empty it yourself, or set deletionPolicy: Retain"
                )));
            }
        }
        let action = format!("delete S3 bucket {bucket}");
        let sent = self.delete_bucket().bucket(bucket).send();
        ctx.call_or_none(Write("DeleteBucket", bucket), &action, sent, |e| {
            e.code() == Some("NoSuchBucket")
        })
        .await?;
        Ok(())
    }
}
