//! What Panthera writes to a bucket and how it reads it back: the TLS-only policy (and the
//! edge's read grant), the one lifecycle rule, the CORS rule, default encryption and Block
//! Public Access, as SDK types. No client: unit-tested here.

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

/// The statement of the bucket policy that lets the edge's distribution read the objects.
const EDGE_READ_SID: &str = "PantheraCloudFrontRead";

/// The statement Panthera writes: every request not made over TLS is refused.
fn tls_only_statement(bucket: &str) -> serde_json::Value {
    let arn = arn(bucket);
    serde_json::json!({
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, format!("{arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })
}

/// `policy` (a bucket's, or none) with the TLS-only statement in it; the other statements
/// (the edge's grant, the owner's own) are kept.
pub(super) fn tls_only_policy(policy: Option<&str>, bucket: &str) -> String {
    with_statement(policy, TLS_ONLY_SID, Some(tls_only_statement(bucket)))
}

/// `policy` with the statement `sid` replaced by `statement` (removed when `None`), the others
/// kept as they are.
fn with_statement(policy: Option<&str>, sid: &str, statement: Option<serde_json::Value>) -> String {
    let mut statements: Vec<serde_json::Value> = policy
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|v| v["Statement"].as_array().cloned())
        .unwrap_or_default();
    statements.retain(|s| s["Sid"] != sid);
    statements.extend(statement);
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// `policy` with the grant that lets the CloudFront distribution `distribution` (its ARN)
/// read the objects of `bucket` through Origin Access Control, and nothing else: the service
/// principal, limited to that one distribution.
pub(in crate::cloud::aws) fn edge_read_policy(
    policy: Option<&str>,
    bucket: &str,
    distribution: Option<&str>,
) -> String {
    let statement = distribution.map(|d| {
        serde_json::json!({
            "Sid": EDGE_READ_SID,
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": format!("{}/*", arn(bucket)),
            "Condition": {"StringEquals": {"AWS:SourceArn": d}},
        })
    });
    with_statement(policy, EDGE_READ_SID, statement)
}

/// Whether `policy` lets the distribution `distribution` read.
pub(in crate::cloud::aws) fn edge_can_read(policy: Option<&str>, distribution: &str) -> bool {
    let Some(v) = policy.and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok()) else {
        return false;
    };
    v["Statement"].as_array().is_some_and(|statements| {
        statements.iter().any(|s| {
            s["Sid"] == EDGE_READ_SID
                && s["Effect"] == "Allow"
                && s["Condition"]["StringEquals"]["AWS:SourceArn"] == distribution
        })
    })
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
        assert!(is_tls_only(Some(&tls_only_policy(None, "b"))));
        assert!(!is_tls_only(Some(r#"{"Statement": []}"#)));
        assert!(!is_tls_only(None));
        assert!(!is_tls_only(Some("not json")));
    }

    #[test]
    fn the_edge_grant_and_the_tls_statement_keep_each_other() {
        let d = "arn:aws:cloudfront::123456789012:distribution/E1";
        let granted = edge_read_policy(Some(&tls_only_policy(None, "b")), "b", Some(d));
        assert!(is_tls_only(Some(&granted)) && edge_can_read(Some(&granted), d));
        assert!(!edge_can_read(
            Some(&granted),
            "arn:aws:cloudfront::123456789012:distribution/E2"
        ));
        // Writing the TLS statement again keeps the grant; revoking the grant keeps the TLS one.
        let again = tls_only_policy(Some(&granted), "b");
        assert!(edge_can_read(Some(&again), d));
        let revoked = edge_read_policy(Some(&again), "b", None);
        assert!(is_tls_only(Some(&revoked)) && !edge_can_read(Some(&revoked), d));
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
