//! The edge on AWS: a CloudFront distribution in front of the gateway's public endpoint (and of a
//! bucket's static assets), with an AWS WAF web ACL and, optionally, a Route 53 alias record.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An IPv4 CIDR (`203.0.113.0/24`).
const IPV4_CIDR: &str = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])$";

/// A host name, or a wildcard one (`*.example.com`).
const ALIAS: &str = r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$";

/// `spec.edge`: CloudFront and WAF in front of the platform (AWS).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EdgeSpec {
    /// The ACM certificate of the aliases. CloudFront takes certificates from us-east-1 only.
    #[schemars(regex(
        pattern = r"^arn:aws:acm:us-east-1:[0-9]{12}:certificate/[A-Za-z0-9-]{1,64}$"
    ))]
    pub certificate_arn: String,
    /// The host names the distribution answers (CNAMEs the certificate covers); unset: the
    /// gateway's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 10))]
    #[schemars(extend("items" = {"type": "string", "maxLength": 253, "pattern": ALIAS}))]
    pub aliases: Option<Vec<String>>,
    /// The origin's host name. Unset: the host the gateway's Ingress publishes once its load
    /// balancer exists (learned from the Ingress status, like the AWS endpoints of the stores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
    )]
    pub origin_domain_name: Option<String>,
    /// Where CloudFront serves from: `PriceClass_100` (North America and Europe),
    /// `PriceClass_200` or `PriceClass_All`.
    #[serde(default)]
    pub price_class: PriceClass,
    /// Static assets served from a bucket of `spec.buckets` (backend aws), through Origin
    /// Access Control: the bucket stays private, only this distribution reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub static_assets: Option<StaticAssetsSpec>,
    /// The web application firewall in front of the distribution.
    #[serde(default)]
    pub waf: WafSpec,
    /// A Route 53 hosted zone: an alias record (A and AAAA) per alias is written there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Z0-9]{1,32}$"))]
    pub hosted_zone_id: Option<String>,
}

/// CloudFront's price classes.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PriceClass {
    #[default]
    #[serde(rename = "PriceClass_100")]
    PriceClass100,
    #[serde(rename = "PriceClass_200")]
    PriceClass200,
    #[serde(rename = "PriceClass_All")]
    PriceClassAll,
}

impl PriceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PriceClass100 => "PriceClass_100",
            Self::PriceClass200 => "PriceClass_200",
            Self::PriceClassAll => "PriceClass_All",
        }
    }
}

/// A bucket behind the distribution for one path pattern.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticAssetsSpec {
    /// A bucket of `spec.buckets` with `backend: aws`.
    #[schemars(length(min = 1, max = 30))]
    pub bucket: String,
    /// The paths served from the bucket (the rest goes to the gateway).
    #[serde(default = "static_path")]
    #[schemars(length(min = 2, max = 255), regex(pattern = r"^/[A-Za-z0-9._~/*-]+$"))]
    pub path_pattern: String,
}

/// The WAF web ACL: AWS managed rule groups (common rule set, known bad inputs, IP
/// reputation), a rate-based rule per client address, and the spec's allow and deny lists.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WafSpec {
    /// Requests per client address in any 5 minutes before WAF blocks it.
    #[serde(default = "rate_limit")]
    #[schemars(range(min = 100, max = 2_000_000_000))]
    pub rate_limit: i64,
    /// Addresses always let through (no managed rule or rate limit applies), IPv4 CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[schemars(extend("items" = {"type": "string", "maxLength": 18, "pattern": IPV4_CIDR}))]
    pub allow_cidrs: Vec<String>,
    /// Addresses always blocked, IPv4 CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    #[schemars(extend("items" = {"type": "string", "maxLength": 18, "pattern": IPV4_CIDR}))]
    pub deny_cidrs: Vec<String>,
}

impl Default for WafSpec {
    fn default() -> Self {
        Self {
            rate_limit: rate_limit(),
            allow_cidrs: Vec::new(),
            deny_cidrs: Vec::new(),
        }
    }
}

fn rate_limit() -> i64 {
    2000
}

fn static_path() -> String {
    "/static/*".to_string()
}
