//! What Panthera writes to a bucket and how it reads it back: the TLS-only policy, the one
//! lifecycle rule, the CORS rule, default encryption and Block Public Access, as SDK types. No
//! client: unit-tested here.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, CorsRule, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Transition, TransitionStorageClass,
};

use super::super::model::BucketLifecycle;
use super::arn;

/// The one lifecycle rule Panthera writes.
pub(super) const LIFECYCLE_RULE: &str = "panthera";
/// The statement of the bucket policy that refuses plain HTTP.
pub(super) const TLS_ONLY_SID: &str = "PantheraDenyInsecureTransport";

/// The bucket policy Panthera writes: every request not made over TLS is refused.
pub(super) fn tls_only_policy(bucket: &str) -> String {
    let arn = arn(bucket);
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": TLS_ONLY_SID,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, format!("{arn}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    })
    .to_string()
}

/// Whether `policy` holds the statement [`tls_only_policy`] writes.
pub(super) fn is_tls_only(policy: Option<&str>) -> bool {
    let Some(v) = policy.and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()) else {
        return false;
    };
    v["Statement"].as_array().is_some_and(|statements| {
        statements.iter().any(|s| {
            s["Sid"] == TLS_ONLY_SID
                && s["Effect"] == "Deny"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        })
    })
}

pub(super) fn lifecycle_rule(lifecycle: &BucketLifecycle) -> Option<LifecycleRule> {
    if lifecycle.noncurrent_days == 0
        && lifecycle.abort_uploads_days == 0
        && lifecycle.transitions.is_empty()
    {
        return None;
    }
    let mut rule = LifecycleRule::builder()
        .id(LIFECYCLE_RULE)
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build());
    if lifecycle.noncurrent_days > 0 {
        let expire =
            NoncurrentVersionExpiration::builder().noncurrent_days(lifecycle.noncurrent_days);
        rule = rule.noncurrent_version_expiration(expire.build());
    }
    if lifecycle.abort_uploads_days > 0 {
        let abort = AbortIncompleteMultipartUpload::builder()
            .days_after_initiation(lifecycle.abort_uploads_days);
        rule = rule.abort_incomplete_multipart_upload(abort.build());
    }
    for (days, class) in &lifecycle.transitions {
        let transition = Transition::builder()
            .days(*days)
            .storage_class(TransitionStorageClass::from(class.as_str()));
        rule = rule.transitions(transition.build());
    }
    rule.build().ok()
}

pub(super) fn lifecycle_of(rules: &[LifecycleRule]) -> BucketLifecycle {
    let Some(rule) = rules.iter().find(|r| r.id() == Some(LIFECYCLE_RULE)) else {
        return BucketLifecycle::default();
    };
    BucketLifecycle {
        noncurrent_days: rule
            .noncurrent_version_expiration()
            .and_then(NoncurrentVersionExpiration::noncurrent_days)
            .unwrap_or_default(),
        abort_uploads_days: rule
            .abort_incomplete_multipart_upload()
            .and_then(AbortIncompleteMultipartUpload::days_after_initiation)
            .unwrap_or_default(),
        transitions: rule
            .transitions()
            .iter()
            .map(|t| {
                (
                    t.days().unwrap_or_default(),
                    t.storage_class()
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect(),
    }
}

pub(super) fn cors_rule(origins: &[String]) -> Option<CorsRule> {
    if origins.is_empty() {
        return None;
    }
    CorsRule::builder()
        .set_allowed_origins(Some(origins.to_vec()))
        .set_allowed_methods(Some(
            ["GET", "HEAD", "PUT", "POST"].map(str::to_string).to_vec(),
        ))
        .allowed_headers("*")
        .expose_headers("ETag")
        .max_age_seconds(3000)
        .build()
        .ok()
}

pub(super) fn encryption(kms_key: Option<&str>) -> Option<ServerSideEncryptionConfiguration> {
    let default = match kms_key {
        Some(key) => ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(key),
        None => {
            ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256)
        }
    };
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(default.build().ok()?)
        .bucket_key_enabled(kms_key.is_some());
    ServerSideEncryptionConfiguration::builder()
        .rules(rule.build())
        .build()
        .ok()
}

pub(super) fn public_access_block() -> PublicAccessBlockConfiguration {
    PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_tls_only_statement_is_found_in_a_policy() {
        assert!(is_tls_only(Some(&tls_only_policy("b"))));
        assert!(!is_tls_only(Some(r#"{"Statement": []}"#)));
        assert!(!is_tls_only(None));
        assert!(!is_tls_only(Some("not json")));
    }

    #[test]
    fn the_lifecycle_rule_reads_back_as_written() {
        let lifecycle = BucketLifecycle {
            noncurrent_days: 30,
            abort_uploads_days: 7,
            transitions: vec![(90, "STANDARD_IA".into())],
        };
        let rule = lifecycle_rule(&lifecycle).unwrap();
        assert_eq!(lifecycle_of(&[rule]), lifecycle);
        assert!(lifecycle_rule(&BucketLifecycle::default()).is_none());
        assert_eq!(lifecycle_of(&[]), BucketLifecycle::default());
    }
}
