//! The edge as Panthera wants it and as AWS runs it: the CloudFront distribution, its WAF web
//! ACL and IP sets, and the Route 53 alias records, compared field by field. Every edge change
//! is online: CloudFront deploys a new configuration to its edge locations in minutes, WAF and
//! Route 53 at once.

use std::fmt;

use crate::api::{DeletionPolicy, PantheraPlatform};

use super::{Class, Owner, Service, Settings, Store, identifier};

/// The viewer side: HTTPS only, TLS 1.2 and later with the 2021 cipher suites, SNI.
pub const EDGE_TLS_POLICY: &str = "TLSv1.2_2021";
/// What the gateway's cache behaviour does, as the plan says it: the origin's `Cache-Control`
/// decides (nothing is kept without it), `Authorization` is part of the cache key (CloudFront
/// forwards it only then, and one token's response never answers another), compressed.
pub const EDGE_CACHING: &str = "origin Cache-Control (0 s without it, at most 1 day), key: Authorization, Host, Origin, query string; compressed";
/// The AWS managed rule groups of the web ACL, in the order WAF evaluates them.
pub const WAF_MANAGED_GROUPS: [&str; 3] = [
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
];
/// The web ACL's own rules, before the managed groups: the deny list blocks, the allow list
/// lets through without further rules, the rate-based rule blocks a client over the limit.
pub const WAF_DENY_RULE: &str = "deny-list";
pub const WAF_ALLOW_RULE: &str = "allow-list";
pub const WAF_RATE_RULE: &str = "rate-limit";

/// Every rule of the web ACL, in priority order.
pub fn waf_rules() -> Vec<String> {
    [WAF_DENY_RULE, WAF_ALLOW_RULE, WAF_RATE_RULE]
        .into_iter()
        .chain(WAF_MANAGED_GROUPS)
        .map(str::to_string)
        .collect()
}

/// A CloudFront distribution and what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeSettings {
    /// The gateway's public host name; `None` until its load balancer publishes one.
    pub origin: Option<String>,
    pub aliases: Vec<String>,
    pub certificate_arn: String,
    /// `https-only TLSv1.2_2021`: viewer protocol policy, then minimum protocol version.
    pub viewer_tls: String,
    /// [`EDGE_CACHING`], or what differs from it.
    pub caching: String,
    pub price_class: String,
    pub assets: Option<StaticAssets>,
    pub waf: WafSettings,
    /// The hosted zone the aliases' records are written in.
    pub hosted_zone: Option<String>,
    /// The names with an alias record to the distribution there (the aliases, as wanted).
    pub records: Vec<String>,
    /// The distribution serves; destroy disables it first.
    pub enabled: bool,
}

/// A bucket behind one path pattern, read through Origin Access Control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticAssets {
    /// The bucket's name in S3.
    pub bucket: String,
    pub path_pattern: String,
    /// The bucket's policy lets the distribution (and only it) read the objects.
    pub readable: bool,
}

impl fmt::Display for StaticAssets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from S3 bucket {}", self.path_pattern, self.bucket)?;
        if !self.readable {
            f.write_str(" (its policy does not let the distribution read)")?;
        }
        Ok(())
    }
}

/// The web ACL's rules and the distribution's use of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WafSettings {
    /// The distribution is associated with the web ACL.
    pub attached: bool,
    /// The names of the rules, in priority order.
    pub rules: Vec<String>,
    /// Requests per client address in 5 minutes.
    pub rate_limit: i64,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

impl Default for WafSettings {
    fn default() -> Self {
        Self {
            attached: true,
            rules: waf_rules(),
            rate_limit: 0,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

/// What an edge difference writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgePart {
    Distribution,
    WebAcl,
    IpSets,
    Records,
}

/// The part of the edge the plan's field `field` is written to.
pub fn edge_part(field: &str) -> EdgePart {
    match field {
        "wafRules" | "rateLimit" => EdgePart::WebAcl,
        "allowCidrs" | "denyCidrs" => EdgePart::IpSets,
        "dnsRecords" => EdgePart::Records,
        _ => EdgePart::Distribution,
    }
}

/// `[a, b]`, sorted: lists whose order does not matter read the same.
fn set(items: &[String]) -> String {
    let mut sorted = items.to_vec();
    sorted.sort();
    format!("[{}]", sorted.join(", "))
}

/// The records the spec wants: `Z123: a.example.com, b.example.com`, or `none`.
pub fn records(zone: Option<&str>, names: &[String]) -> String {
    match zone {
        None => "none".to_string(),
        Some(zone) => format!("{zone}: {}", set(names)),
    }
}

/// The differences of a distribution, all online.
pub(super) fn edge_differences(
    want: &EdgeSettings,
    has: &EdgeSettings,
    push: &mut impl FnMut(&'static str, &dyn fmt::Display, &dyn fmt::Display, Class),
) {
    let on = |b: bool| if b { "on" } else { "off" };
    let none = || "none".to_string();
    // An origin not known yet leaves the running one as it is.
    if let Some(origin) = &want.origin {
        let had = has.origin.clone().unwrap_or_else(none);
        push("origin", &had, origin, Class::InPlace);
    }
    let fields: [(&'static str, String, String); 11] = [
        ("aliases", set(&has.aliases), set(&want.aliases)),
        (
            "certificate",
            has.certificate_arn.clone(),
            want.certificate_arn.clone(),
        ),
        ("viewerTls", has.viewer_tls.clone(), want.viewer_tls.clone()),
        ("caching", has.caching.clone(), want.caching.clone()),
        (
            "priceClass",
            has.price_class.clone(),
            want.price_class.clone(),
        ),
        (
            "staticAssets",
            has.assets.as_ref().map_or_else(none, ToString::to_string),
            want.assets.as_ref().map_or_else(none, ToString::to_string),
        ),
        (
            "webAcl",
            on(has.waf.attached).into(),
            on(want.waf.attached).into(),
        ),
        (
            "wafRules",
            has.waf.rules.join(", "),
            want.waf.rules.join(", "),
        ),
        (
            "rateLimit",
            has.waf.rate_limit.to_string(),
            want.waf.rate_limit.to_string(),
        ),
        ("allowCidrs", set(&has.waf.allow), set(&want.waf.allow)),
        ("denyCidrs", set(&has.waf.deny), set(&want.waf.deny)),
    ];
    for (field, from, to) in fields {
        push(field, &from, &to, Class::InPlace);
    }
    push(
        "dnsRecords",
        &records(has.hosted_zone.as_deref(), &has.records),
        &records(want.hosted_zone.as_deref(), &want.records),
        Class::InPlace,
    );
    push(
        "enabled",
        &on(has.enabled),
        &on(want.enabled),
        Class::InPlace,
    );
}

impl fmt::Display for EdgeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}, {}, {}, WAF: {} rules, rate limit {}/5 min",
            self.aliases.join(", "),
            self.origin
                .as_deref()
                .unwrap_or("the gateway's load balancer"),
            self.viewer_tls,
            self.price_class,
            self.waf.rules.len(),
            self.waf.rate_limit,
        )?;
        if let Some(assets) = &self.assets {
            write!(f, ", {assets}")?;
        }
        if let Some(zone) = &self.hosted_zone {
            write!(f, ", alias records in {zone}")?;
        }
        Ok(())
    }
}

/// The edge of `platform`, when its spec has one. The origin is the spec's
/// `originDomainName`, else unknown here: the engine learns it from the gateway's Ingress.
pub(super) fn edge(platform: &PantheraPlatform, owner: &Owner) -> Option<Store> {
    let spec = &platform.spec;
    let edge = spec.edge.as_ref()?;
    let host = spec.gateway.as_ref().and_then(|g| g.host.clone());
    let aliases = edge
        .aliases
        .clone()
        .unwrap_or_else(|| host.into_iter().collect());
    let assets = edge.static_assets.as_ref().and_then(|a| {
        let bucket = spec.buckets.iter().find(|b| b.name == a.bucket)?;
        Some(StaticAssets {
            bucket: bucket.bucket_name(&owner.platform, &owner.namespace),
            path_pattern: a.path_pattern.clone(),
            readable: true,
        })
    });
    let records = match &edge.hosted_zone_id {
        Some(_) => aliases.clone(),
        None => Vec::new(),
    };
    let settings = EdgeSettings {
        origin: edge.origin_domain_name.clone(),
        aliases,
        certificate_arn: edge.certificate_arn.clone(),
        viewer_tls: format!("https-only {EDGE_TLS_POLICY}"),
        caching: EDGE_CACHING.to_string(),
        price_class: edge.price_class.as_str().to_string(),
        assets,
        waf: WafSettings {
            rate_limit: edge.waf.rate_limit,
            allow: edge.waf.allow_cidrs.clone(),
            deny: edge.waf.deny_cidrs.clone(),
            ..WafSettings::default()
        },
        records,
        hosted_zone: edge.hosted_zone_id.clone(),
        enabled: true,
    };
    Some(Store {
        component: "edge".to_string(),
        name: "edge".to_string(),
        service: Service::CloudFront,
        identifier: edge_identifier(owner),
        adopt: false,
        // An edge holds no data: removing it from the spec or destroying the platform deletes
        // it.
        deletion_policy: DeletionPolicy::Delete,
        settings: Settings::Edge(Box::new(settings)),
        username: String::new(),
        kms_key: None,
        empty_on_delete: false,
    })
}

/// The name of `owner`'s edge: the distribution's comment, the web ACL's name, the IP sets'
/// and origin access control's prefix. CloudFront and WAF names are global to the account: the
/// namespace keeps two platforms of one name apart, as for buckets.
pub fn edge_identifier(owner: &Owner) -> String {
    let own = format!("{}-{}-edge", owner.platform, owner.namespace);
    identifier(&own, Service::CloudFront.max_identifier())
}

/// Whether a plan must wait for the gateway's public address before it can create the edge.
pub fn waits_for_origin(store: &Store) -> bool {
    matches!(&store.settings, Settings::Edge(e) if e.origin.is_none())
}

/// Give an edge that has no origin yet the gateway's public host.
pub fn learn_origin(store: &mut Store, gateway: Option<&str>) {
    if let (Settings::Edge(edge), Some(host)) = (&mut store.settings, gateway)
        && edge.origin.is_none()
    {
        edge.origin = Some(host.to_string());
    }
}
