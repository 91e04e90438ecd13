//! The form of a browser upload straight to S3 ("presigned POST"), signed with Signature Version 4:
//! a JSON policy listing what the upload may be, base64-encoded, and its HMAC-SHA256 under the
//! SigV4 key of the day, the region and `s3` (AWS's "Browser-Based Uploads Using POST"). The SDK
//! presigns single requests only, not POST policies, hence this module.
//!
//! S3 checks every form field against the policy's conditions before it stores a byte: the
//! bucket, the exact key, the exact Content-Type, the size range, the expiry. So the server
//! chooses what may be uploaded where, and a client holding the form can upload that and nothing
//! else.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

type HmacSha256 = Hmac<Sha256>;

pub type Result<T, E = KeyError> = std::result::Result<T, E>;

/// HMAC takes keys of any length, so this does not happen; it is returned rather than unwrapped.
#[derive(Debug, thiserror::Error)]
#[error("HMAC-SHA256 refused a signing key")]
pub struct KeyError;

/// What an upload may be.
#[derive(Debug, Clone, Copy)]
pub struct Conditions<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub content_type: &'a str,
    /// The body's size must be within 1..=`max_bytes`.
    pub max_bytes: u64,
    /// After this, S3 refuses the form.
    pub expires: DateTime<Utc>,
}

/// Who signs: the credentials and the bucket's region.
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// With temporary credentials (STS, IRSA), S3 needs the token as a form field, and the
    /// policy must list it like every other field.
    pub session_token: Option<&'a str>,
    pub region: &'a str,
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// The form fields of an upload under `conditions`, signed at `now`: `key`, `Content-Type`,
/// `policy`, `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature` and, with a
/// session token, `x-amz-security-token`. The file goes after them, as the field `file`.
pub fn form_fields(
    conditions: &Conditions<'_>,
    signer: &Signer<'_>,
    now: DateTime<Utc>,
) -> Result<BTreeMap<String, String>> {
    let date = now.format("%Y%m%d").to_string();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let credential = format!(
        "{}/{date}/{}/s3/aws4_request",
        signer.access_key_id, signer.region
    );
    let mut fields = BTreeMap::from([
        ("key".to_owned(), conditions.key.to_owned()),
        (
            "Content-Type".to_owned(),
            conditions.content_type.to_owned(),
        ),
        ("x-amz-algorithm".to_owned(), ALGORITHM.to_owned()),
        ("x-amz-credential".to_owned(), credential.clone()),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ]);
    let mut policy_conditions = vec![
        json!({"bucket": conditions.bucket}),
        json!(["eq", "$key", conditions.key]),
        json!(["eq", "$Content-Type", conditions.content_type]),
        json!(["content-length-range", 1, conditions.max_bytes]),
        json!({"x-amz-algorithm": ALGORITHM}),
        json!({"x-amz-credential": credential}),
        json!({"x-amz-date": amz_date}),
    ];
    if let Some(token) = signer.session_token {
        policy_conditions.push(json!({"x-amz-security-token": token}));
        fields.insert("x-amz-security-token".to_owned(), token.to_owned());
    }
    let policy = json!({
        "expiration": conditions.expires.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "conditions": policy_conditions,
    });
    let policy = STANDARD.encode(policy.to_string());
    let signature = signature(signer.secret_access_key, &date, signer.region, &policy)?;
    fields.insert("policy".to_owned(), policy);
    fields.insert("x-amz-signature".to_owned(), signature);
    Ok(fields)
}

/// The hex HMAC-SHA256 of `string_to_sign` (the base64 policy) under the SigV4 signing key of
/// `date` (`YYYYMMDD`), `region` and `s3`.
pub fn signature(
    secret_access_key: &str,
    date: &str,
    region: &str,
    string_to_sign: &str,
) -> Result<String> {
    let mut key = hmac(
        format!("AWS4{secret_access_key}").as_bytes(),
        date.as_bytes(),
    )?;
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes())?;
    }
    Ok(hex(&hmac(&key, string_to_sign.as_bytes())?))
}

fn hmac(key: &[u8], data: &[u8]) -> Result<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| KeyError)?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::Value;

    // AWS's published example ("Example: Browser-Based Upload using HTTP POST (Using AWS
    // Signature Version 4)", S3 API Reference): its documentation-only credentials, its base64
    // policy and the signature it gives.
    const EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const EXAMPLE_POLICY: &str = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
    const EXAMPLE_SIGNATURE: &str =
        "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";

    #[test]
    fn the_signature_of_aws_example_is_reproduced() {
        assert_eq!(
            signature(EXAMPLE_SECRET, "20151229", "us-east-1", EXAMPLE_POLICY).unwrap(),
            EXAMPLE_SIGNATURE
        );
        // Any other date, region or policy gives another signature.
        assert_ne!(
            signature(EXAMPLE_SECRET, "20151230", "us-east-1", EXAMPLE_POLICY).unwrap(),
            EXAMPLE_SIGNATURE
        );
        assert_ne!(
            signature(EXAMPLE_SECRET, "20151229", "eu-west-1", EXAMPLE_POLICY).unwrap(),
            EXAMPLE_SIGNATURE
        );
    }

    fn decoded_policy(fields: &BTreeMap<String, String>) -> Value {
        let bytes = STANDARD.decode(&fields["policy"]).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn the_policy_pins_the_bucket_key_type_size_and_expiry_and_is_signed() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 23, 59, 30).unwrap();
        let conditions = Conditions {
            bucket: "shop-images",
            key: "products/p1/u1",
            content_type: "image/png",
            max_bytes: 5 * 1024 * 1024,
            expires: now + chrono::Duration::minutes(10),
        };
        let signer = Signer {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "not-a-real-secret",
            session_token: None,
            region: "eu-central-1",
        };
        let fields = form_fields(&conditions, &signer, now).unwrap();
        assert_eq!(
            fields.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "Content-Type",
                "key",
                "policy",
                "x-amz-algorithm",
                "x-amz-credential",
                "x-amz-date",
                "x-amz-signature"
            ]
        );
        assert_eq!(fields["key"], "products/p1/u1");
        assert_eq!(fields["Content-Type"], "image/png");
        assert_eq!(
            fields["x-amz-credential"],
            "AKIDEXAMPLE/20260301/eu-central-1/s3/aws4_request"
        );
        assert_eq!(fields["x-amz-date"], "20260301T235930Z");
        assert_eq!(
            decoded_policy(&fields),
            json!({
                "expiration": "2026-03-02T00:09:30.000Z",
                "conditions": [
                    {"bucket": "shop-images"},
                    ["eq", "$key", "products/p1/u1"],
                    ["eq", "$Content-Type", "image/png"],
                    ["content-length-range", 1, 5_242_880],
                    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
                    {"x-amz-credential": "AKIDEXAMPLE/20260301/eu-central-1/s3/aws4_request"},
                    {"x-amz-date": "20260301T235930Z"},
                ]
            })
        );
        // The signature is over the policy exactly as sent, under the signing date's key.
        assert_eq!(
            fields["x-amz-signature"],
            signature(
                "not-a-real-secret",
                "20260301",
                "eu-central-1",
                &fields["policy"]
            )
            .unwrap()
        );
        assert_eq!(fields["x-amz-signature"].len(), 64);
        assert!(!fields.values().any(|v| v.contains("not-a-real-secret")));
        assert!(!format!("{signer:?}").contains("not-a-real-secret"));
    }

    #[test]
    fn temporary_credentials_send_and_sign_their_token() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let conditions = Conditions {
            bucket: "b",
            key: "products/p/u",
            content_type: "image/webp",
            max_bytes: 10,
            expires: now,
        };
        let signer = Signer {
            access_key_id: "ASIAEXAMPLE",
            secret_access_key: "s",
            session_token: Some("the-session-token"),
            region: "us-east-1",
        };
        let fields = form_fields(&conditions, &signer, now).unwrap();
        assert_eq!(fields["x-amz-security-token"], "the-session-token");
        let policy = decoded_policy(&fields);
        assert!(
            policy["conditions"]
                .as_array()
                .unwrap()
                .contains(&json!({"x-amz-security-token": "the-session-token"}))
        );
    }
}
