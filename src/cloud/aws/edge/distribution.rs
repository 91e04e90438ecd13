//! The distribution's configuration as Panthera writes it, and what a running one reads as. No
//! client: unit-tested here.
//!
//! The gateway's behaviour uses the legacy cache settings (`ForwardedValues` with TTLs): with
//! minimum and default TTL 0 the gateway's `Cache-Control` alone decides what is kept, and
//! `Authorization` in the forwarded headers is both what makes CloudFront pass it on for GET and
//! HEAD and what keys the cache by it. (A cache policy would do the same; it is one more
//! resource, and the API emulator the tests run cannot create one.) The SDK marks these legacy
//! settings deprecated; CloudFront still honours them, hence the `allow(deprecated)` below. The
//! bucket's behaviour uses CloudFront's managed `CachingOptimized` policy: assets are public
//! and long-lived.
#![allow(deprecated)]

use aws_sdk_cloudfront::error::BuildError;
use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CookiePreference,
    CustomOriginConfig, DefaultCacheBehavior, DistributionConfig, ForwardedValues, Headers,
    HttpVersion, ItemSelection, Method, MinimumProtocolVersion, Origin, OriginProtocolPolicy,
    OriginSslProtocols, Origins, PriceClass, S3OriginConfig, SslProtocol, SslSupportMethod,
    ViewerCertificate, ViewerProtocolPolicy,
};

use super::super::model::{EDGE_CACHING, EDGE_TLS_POLICY, EdgeSettings, StaticAssets};

/// The origin ids inside the distribution.
pub(super) const GATEWAY_ORIGIN: &str = "gateway";
pub(super) const ASSETS_ORIGIN: &str = "assets";
/// CloudFront's managed cache policy `CachingOptimized`.
pub(super) const CACHING_OPTIMIZED: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";
/// The request headers in the gateway's cache key, forwarded to it.
const KEY_HEADERS: [&str; 3] = ["Authorization", "Host", "Origin"];
/// The longest the gateway's `Cache-Control` can keep a response at the edge.
const MAX_TTL: i64 = 86_400;

/// What a configuration is made of beyond the settings: the names of what it uses.
pub(super) struct Parts<'a> {
    pub settings: &'a EdgeSettings,
    /// Also the comment, by which Panthera finds the distribution again.
    pub identifier: &'a str,
    pub caller_reference: &'a str,
    pub web_acl_arn: &'a str,
    /// The Origin Access Control of the assets' bucket.
    pub oac_id: Option<&'a str>,
    /// The region of the assets' bucket.
    pub bucket_region: &'a str,
}

/// The bucket's regional host name, the origin CloudFront reads it from.
pub(super) fn bucket_domain(bucket: &str, region: &str) -> String {
    format!("{bucket}.s3.{region}.amazonaws.com")
}

fn allowed_methods(all: bool) -> Result<AllowedMethods, BuildError> {
    let cached = [Method::Get, Method::Head];
    let allowed = if all {
        vec![
            Method::Get,
            Method::Head,
            Method::Options,
            Method::Put,
            Method::Post,
            Method::Patch,
            Method::Delete,
        ]
    } else {
        cached.to_vec()
    };
    AllowedMethods::builder()
        .quantity(allowed.len() as i32)
        .set_items(Some(allowed))
        .cached_methods(
            CachedMethods::builder()
                .quantity(cached.len() as i32)
                .set_items(Some(cached.to_vec()))
                .build()?,
        )
        .build()
}

fn gateway_behaviour() -> Result<DefaultCacheBehavior, BuildError> {
    let headers: Vec<String> = KEY_HEADERS.map(str::to_string).to_vec();
    let forwarded = ForwardedValues::builder()
        .query_string(true)
        .cookies(
            CookiePreference::builder()
                .forward(ItemSelection::None)
                .build()?,
        )
        .headers(
            Headers::builder()
                .quantity(headers.len() as i32)
                .set_items(Some(headers))
                .build()?,
        )
        .build()?;
    DefaultCacheBehavior::builder()
        .target_origin_id(GATEWAY_ORIGIN)
        .viewer_protocol_policy(ViewerProtocolPolicy::HttpsOnly)
        .allowed_methods(allowed_methods(true)?)
        .compress(true)
        .forwarded_values(forwarded)
        .min_ttl(0)
        .default_ttl(0)
        .max_ttl(MAX_TTL)
        .build()
}

fn assets_behaviour(assets: &StaticAssets) -> Result<CacheBehavior, BuildError> {
    CacheBehavior::builder()
        .path_pattern(&assets.path_pattern)
        .target_origin_id(ASSETS_ORIGIN)
        .viewer_protocol_policy(ViewerProtocolPolicy::HttpsOnly)
        .allowed_methods(allowed_methods(false)?)
        .compress(true)
        .cache_policy_id(CACHING_OPTIMIZED)
        .build()
}

fn origins(parts: &Parts<'_>, origin: &str) -> Result<Origins, BuildError> {
    let protocols = OriginSslProtocols::builder()
        .quantity(1)
        .items(SslProtocol::TlSv12)
        .build()?;
    let gateway = Origin::builder()
        .id(GATEWAY_ORIGIN)
        .domain_name(origin)
        .custom_origin_config(
            CustomOriginConfig::builder()
                .http_port(80)
                .https_port(443)
                .origin_protocol_policy(OriginProtocolPolicy::HttpsOnly)
                .origin_ssl_protocols(protocols)
                .origin_read_timeout(30)
                .origin_keepalive_timeout(5)
                .build()?,
        )
        .build()?;
    let mut items = vec![gateway];
    if let (Some(assets), Some(oac)) = (&parts.settings.assets, parts.oac_id) {
        items.push(
            Origin::builder()
                .id(ASSETS_ORIGIN)
                .domain_name(bucket_domain(&assets.bucket, parts.bucket_region))
                // With Origin Access Control the legacy origin access identity stays empty.
                .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
                .origin_access_control_id(oac)
                .build()?,
        );
    }
    Origins::builder()
        .quantity(items.len() as i32)
        .set_items(Some(items))
        .build()
}

/// The configuration of the distribution `parts` describes, with the gateway's public host
/// `origin`.
pub(super) fn config(parts: &Parts<'_>, origin: &str) -> Result<DistributionConfig, BuildError> {
    let s = parts.settings;
    let aliases = Aliases::builder()
        .quantity(s.aliases.len() as i32)
        .set_items(Some(s.aliases.clone()))
        .build()?;
    let behaviours: Vec<CacheBehavior> = match (&s.assets, parts.oac_id) {
        (Some(assets), Some(_)) => vec![assets_behaviour(assets)?],
        _ => Vec::new(),
    };
    let certificate = ViewerCertificate::builder()
        .cloud_front_default_certificate(false)
        .acm_certificate_arn(&s.certificate_arn)
        .ssl_support_method(SslSupportMethod::SniOnly)
        .minimum_protocol_version(MinimumProtocolVersion::from(EDGE_TLS_POLICY))
        .build();
    DistributionConfig::builder()
        .caller_reference(parts.caller_reference)
        .comment(parts.identifier)
        .aliases(aliases)
        .origins(origins(parts, origin)?)
        .default_cache_behavior(gateway_behaviour()?)
        .cache_behaviors(
            CacheBehaviors::builder()
                .quantity(behaviours.len() as i32)
                .set_items(Some(behaviours))
                .build()?,
        )
        .price_class(PriceClass::from(s.price_class.as_str()))
        .enabled(s.enabled)
        .viewer_certificate(certificate)
        .web_acl_id(parts.web_acl_arn)
        .http_version(HttpVersion::Http2and3)
        .is_ipv6_enabled(true)
        .build()
}

/// `config` with `Enabled` set to `enabled`, everything else kept (destroy's first step).
pub(super) fn with_enabled(config: &DistributionConfig, enabled: bool) -> DistributionConfig {
    let mut config = config.clone();
    config.enabled = enabled;
    config
}

fn sorted<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().map(|i| i.as_ref().to_string()).collect();
    v.sort();
    v
}

/// Whether the gateway's behaviour caches as Panthera writes it; what differs otherwise.
fn caching_of(b: &DefaultCacheBehavior) -> String {
    let mut differs = Vec::new();
    let fv = b.forwarded_values();
    let headers = sorted(fv.and_then(|f| f.headers()).map_or(&[][..], |h| h.items()));
    if headers != sorted(KEY_HEADERS) {
        differs.push(format!("key headers [{}]", headers.join(", ")));
    }
    if !fv.is_some_and(|f| f.query_string()) {
        differs.push("query string not in the key".to_string());
    }
    if b.cache_policy_id().is_some_and(|p| !p.is_empty()) {
        differs.push(format!(
            "cache policy {}",
            b.cache_policy_id().unwrap_or_default()
        ));
    }
    let ttls = (b.min_ttl(), b.default_ttl(), b.max_ttl());
    if ttls != (Some(0), Some(0), Some(MAX_TTL)) {
        differs.push(format!(
            "TTL {}/{}/{}",
            ttls.0.unwrap_or_default(),
            ttls.1.unwrap_or_default(),
            ttls.2.unwrap_or_default()
        ));
    }
    if b.compress() != Some(true) {
        differs.push("not compressed".to_string());
    }
    let allowed = b.allowed_methods().map_or(0, |m| m.items().len());
    if allowed != 7 {
        differs.push(format!("{allowed} methods allowed"));
    }
    if differs.is_empty() {
        EDGE_CACHING.to_string()
    } else {
        differs.join(", ")
    }
}

/// What a running distribution's configuration reads as: everything but the WAF rules (the
/// web ACL's), the records (Route 53's) and whether its web ACL is Panthera's (`web_acl_arn`).
pub(super) fn settings_of(config: &DistributionConfig, web_acl_arn: Option<&str>) -> EdgeSettings {
    let origin = |id: &str| {
        config
            .origins()
            .and_then(|o| o.items().iter().find(|o| o.id() == id))
            .map(|o| o.domain_name().to_string())
    };
    let behaviour = config.default_cache_behavior();
    let viewer = config.viewer_certificate();
    let assets = config
        .cache_behaviors()
        .and_then(|b| {
            b.items()
                .iter()
                .find(|b| b.target_origin_id() == ASSETS_ORIGIN)
        })
        .and_then(|b| {
            let domain = origin(ASSETS_ORIGIN)?;
            let bucket = domain.split(".s3.").next()?.to_string();
            Some(StaticAssets {
                bucket,
                path_pattern: b.path_pattern().to_string(),
                // The bucket's policy is read apart; the caller says.
                readable: true,
            })
        });
    EdgeSettings {
        origin: origin(GATEWAY_ORIGIN),
        aliases: config
            .aliases()
            .map(|a| a.items().to_vec())
            .unwrap_or_default(),
        certificate_arn: viewer
            .and_then(|v| v.acm_certificate_arn())
            .unwrap_or("the CloudFront default certificate")
            .to_string(),
        viewer_tls: format!(
            "{} {}",
            behaviour.map_or("", |b| b.viewer_protocol_policy().as_str()),
            viewer
                .and_then(|v| v.minimum_protocol_version())
                .map_or("", |p| p.as_str())
        ),
        caching: behaviour.map_or_else(|| "none".to_string(), caching_of),
        price_class: config
            .price_class()
            .map_or("PriceClass_All", |p| p.as_str())
            .to_string(),
        assets,
        waf: super::super::model::WafSettings {
            attached: web_acl_arn.is_some_and(|arn| config.web_acl_id() == Some(arn)),
            ..Default::default()
        },
        hosted_zone: None,
        records: Vec::new(),
        enabled: config.enabled(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::cloud::aws::model::WafSettings;

    fn wanted(assets: bool) -> EdgeSettings {
        EdgeSettings {
            origin: Some("lb-1.eu-west-1.elb.amazonaws.com".into()),
            aliases: vec!["shop.example.com".into()],
            certificate_arn: "arn:aws:acm:us-east-1:123456789012:certificate/abc".into(),
            viewer_tls: format!("https-only {EDGE_TLS_POLICY}"),
            caching: EDGE_CACHING.into(),
            price_class: "PriceClass_100".into(),
            assets: assets.then(|| StaticAssets {
                bucket: "shop-shop-assets".into(),
                path_pattern: "/static/*".into(),
                readable: true,
            }),
            waf: WafSettings::default(),
            hosted_zone: None,
            records: Vec::new(),
            enabled: true,
        }
    }

    fn parts(settings: &EdgeSettings) -> Parts<'_> {
        Parts {
            settings,
            identifier: "shop-shop-edge",
            caller_reference: "shop-shop-edge-1",
            web_acl_arn: "arn:aws:wafv2:us-east-1:123456789012:global/webacl/shop-shop-edge/1",
            oac_id: Some("E2OAC"),
            bucket_region: "eu-west-1",
        }
    }

    #[test]
    fn a_written_configuration_reads_back_as_the_settings_it_was_made_of() {
        for assets in [false, true] {
            let want = wanted(assets);
            let p = parts(&want);
            let config = config(&p, want.origin.as_deref().unwrap()).unwrap();
            let mut read = settings_of(&config, Some(p.web_acl_arn));
            // The web ACL's rules and the records are read from WAF and Route 53.
            read.waf = want.waf.clone();
            assert_eq!(read, want);
        }
    }

    #[test]
    fn the_gateway_is_reached_over_tls_and_keyed_by_authorization() {
        let want = wanted(false);
        let config = config(&parts(&want), "lb").unwrap();
        let gateway = &config.origins().unwrap().items()[0];
        let custom = gateway.custom_origin_config().unwrap();
        assert_eq!(
            custom.origin_protocol_policy(),
            &OriginProtocolPolicy::HttpsOnly
        );
        let behaviour = config.default_cache_behavior().unwrap();
        let headers = behaviour.forwarded_values().unwrap().headers().unwrap();
        assert!(headers.items().contains(&"Authorization".to_string()));
        assert_eq!(behaviour.default_ttl(), Some(0));
        assert_eq!(behaviour.min_ttl(), Some(0));
    }

    #[test]
    fn a_behaviour_that_caches_otherwise_says_how() {
        let want = wanted(false);
        let config = config(&parts(&want), "lb").unwrap();
        let mut behaviour = config.default_cache_behavior().unwrap().clone();
        behaviour.default_ttl = Some(86_400);
        behaviour.forwarded_values = None;
        let caching = caching_of(&behaviour);
        assert!(caching.contains("TTL 0/86400/86400"), "{caching}");
        assert!(caching.contains("key headers []"), "{caching}");
        assert_ne!(caching, EDGE_CACHING);
    }

    #[test]
    fn disabling_keeps_the_rest_of_the_configuration() {
        let want = wanted(true);
        let config = config(&parts(&want), "lb").unwrap();
        let disabled = with_enabled(&config, false);
        assert!(!disabled.enabled());
        assert_eq!(disabled.origins(), config.origins());
        assert_eq!(disabled.comment(), config.comment());
    }
}
