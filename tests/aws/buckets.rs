//! Buckets on S3 against moto: a bucket as production needs it (Block Public Access, default
//! encryption, versioning, lifecycle, CORS from the platform's origins, TLS-only policy), the
//! connection Secret, a change planned and made one call per setting, a foreign bucket refused,
//! and destroy by the deletion policy (a non-empty bucket refused unless `emptyOnDelete`).
//!
//! moto evaluates the bucket policy on object requests: a plain-HTTP upload is refused with 403,
//! which the tests assert (and remove the policy, as its owner could, to put an object). moto
//! cannot show: the regional endpoint a client is redirected to, that a KMS key exists (it takes
//! any `KMSMasterKeyID`), that lifecycle rules run (nothing expires), or Block Public Access
//! refusing a public ACL or policy.

use super::*;

impl World {
    fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.config)
                .force_path_style(true)
                .build(),
        )
    }

    /// A platform `name` with one bucket, `bucket` in YAML flow style.
    fn bucket_platform(&self, name: &str, bucket: &str) -> PathBuf {
        self.small_platform(name, &format!("  buckets:\n    - {bucket}\n"))
    }

    async fn bucket_tags(&self, bucket: &str) -> BTreeMap<String, String> {
        match self.s3().get_bucket_tagging().bucket(bucket).send().await {
            Ok(out) => out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            Err(_) => BTreeMap::new(),
        }
    }

    async fn bucket_exists(&self, bucket: &str) -> bool {
        self.s3().head_bucket().bucket(bucket).send().await.is_ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_is_created_locked_down_and_a_reapply_writes_nothing() {
    let Some(w) = World::new().await else { return };
    let name = unique("b1");
    let file = w.bucket_platform(
        &name,
        "{name: images, backend: aws, corsOrigins: [\"https://shop.example.com\"], lifecycle: {transitions: [{days: 90, storageClass: STANDARD_IA}]}}",
    );
    let first = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&first);
    let (calls, writes) = aws_counts(&first);
    eprintln!("first apply: {calls} AWS calls, {writes} writes");
    // CreateBucket, six settings, the tags.
    assert_eq!(writes, 8, "{}", stdout(&first));

    let bucket = format!("{name}-{name}-images");
    let s3 = w.s3();
    let block = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let encryption = s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let rule = &encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let versioning = s3
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let rule = &lifecycle.rules()[0];
    assert_eq!(
        rule.noncurrent_version_expiration()
            .and_then(|e| e.noncurrent_days()),
        Some(30)
    );
    assert_eq!(
        rule.abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        Some(7)
    );
    assert_eq!(rule.transitions()[0].days(), Some(90));
    let cors = s3.get_bucket_cors().bucket(&bucket).send().await.unwrap();
    assert_eq!(
        cors.cors_rules()[0].allowed_origins(),
        ["https://shop.example.com"]
    );
    let policy = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Effect"], "Deny");
    assert_eq!(
        policy["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"],
        "false"
    );
    let tags = w.bucket_tags(&bucket).await;
    assert_eq!(tags["panthera.dev/platform"], name);
    assert_eq!(tags["panthera.dev/component"], "bucket/images");

    // The connection Secret: bucket, region and endpoint; no keys (the pods' own identity).
    let secret = w
        .secret(&name, &format!("{name}-bucket-images"))
        .await
        .unwrap();
    assert_eq!(secret["bucket"], bucket);
    assert_eq!(secret["region"], REGION);
    assert_eq!(
        secret["endpoint"],
        format!("https://s3.{REGION}.amazonaws.com")
    );
    assert_eq!(secret["forcePathStyle"], "false");
    assert_eq!(secret["accessKeyId"], "");

    let again = w.panthera(&["apply", "-f", path(&file)]).await;
    ok(&again);
    let (calls, writes) = aws_counts(&again);
    eprintln!("re-apply: {calls} AWS calls, {writes} writes");
    assert_eq!(writes, 0, "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_change_is_planned_and_made_one_call_per_setting() {
    let Some(w) = World::new().await else { return };
    let name = unique("b2");
    let file = w.bucket_platform(&name, "{name: images, backend: aws}");
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    let changed = w.bucket_platform(
        &name,
        "{name: images, backend: aws, versioning: false, lifecycle: {noncurrentVersionExpirationDays: 7}}",
    );
    let plan = w.panthera(&["plan", "-f", path(&changed)]).await;
    ok(&plan);
    let bucket = format!("{name}-{name}-images");
    assert!(
        stdout(&plan).contains(&format!(
            "~ bucket/images: modify in place S3 bucket {bucket}: versioning on -> off; lifecycle old versions 30 days, unfinished uploads 7 days -> old versions 7 days, unfinished uploads 7 days"
        )),
        "{}",
        stdout(&plan)
    );
    let applied = w.panthera(&["apply", "-f", path(&changed)]).await;
    ok(&applied);
    assert_eq!(aws_counts(&applied).1, 2, "{}", stdout(&applied));
    let versioning = w
        .s3()
        .get_bucket_versioning()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Suspended"));
    let again = w.panthera(&["apply", "-f", path(&changed)]).await;
    ok(&again);
    assert_eq!(aws_counts(&again).1, 0, "{}", stdout(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_bucket_is_refused_and_a_full_bucket_is_deleted_only_when_told() {
    let Some(w) = World::new().await else { return };
    let name = unique("b3");
    let bucket = format!("{name}-{name}-images");
    w.s3().create_bucket().bucket(&bucket).send().await.unwrap();
    let file = w.bucket_platform(
        &name,
        "{name: images, backend: aws, deletionPolicy: Delete}",
    );
    let refused = w.panthera(&["apply", "-f", path(&file)]).await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(&format!(
            "S3 bucket {bucket} already exists and was not created by Panthera"
        )),
        "{}",
        stderr(&refused)
    );
    assert!(w.bucket_tags(&bucket).await.is_empty(), "left as it was");
    w.s3().delete_bucket().bucket(&bucket).send().await.unwrap();

    // Delete without emptyOnDelete: a bucket with an object is refused, and kept.
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    let put = || {
        w.s3()
            .put_object()
            .bucket(&bucket)
            .key("products/1/a.png")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"png"))
            .send()
    };
    // The bucket policy refuses a request over plain HTTP (moto speaks HTTP only).
    let refused = put().await.unwrap_err();
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(403),
        "{refused:?}"
    );
    w.s3()
        .delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    put().await.unwrap();
    let destroy = w.destroy(&file).await;
    let said = format!("{}{}", stdout(&destroy), stderr(&destroy));
    assert!(!destroy.status.success(), "{said}");
    assert!(said.contains("still holds objects"), "{said}");
    assert!(w.bucket_exists(&bucket).await);

    // With emptyOnDelete, every version goes and then the bucket.
    let emptied = w.bucket_platform(
        &name,
        "{name: images, backend: aws, deletionPolicy: Delete, emptyOnDelete: true}",
    );
    ok(&w.panthera(&["apply", "-f", path(&emptied)]).await);
    assert_eq!(
        w.bucket_tags(&bucket).await["panthera.dev/empty-on-delete"],
        "true"
    );
    // The policy is back, and moto refuses the plain-HTTP deletes: destroy says so and stops.
    let refused = w.destroy(&emptied).await;
    let said = format!("{}{}", stdout(&refused), stderr(&refused));
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("not deleted, the first products/1/a.png (AccessDenied"),
        "{said}"
    );
    assert!(w.bucket_exists(&bucket).await);
    w.s3()
        .delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let destroy = w.destroy(&emptied).await;
    ok(&destroy);
    assert!(!w.bucket_exists(&bucket).await, "{}", stdout(&destroy));

    // Retain: kept and handed back without Panthera's tags.
    let kept = unique("b4");
    let file = w.bucket_platform(
        &kept,
        "{name: images, backend: aws, deletionPolicy: Retain}",
    );
    ok(&w.panthera(&["apply", "-f", path(&file)]).await);
    let destroy = w.destroy(&file).await;
    ok(&destroy);
    let bucket = format!("{kept}-{kept}-images");
    assert!(w.bucket_exists(&bucket).await);
    let tags = w.bucket_tags(&bucket).await;
    assert!(
        !tags.keys().any(|k| k.starts_with("panthera.dev/")),
        "{tags:?}"
    );
}
