//! The CRD's CEL creation rules, evaluated natively. Interpreting CEL costs O(services x routes)
//! list copies (seconds for a thousand services); these checks give the same verdicts and
//! messages in microseconds, with a precise field path. `tests::cel_equivalence` proves the two
//! agree; transition rules (`oldSelf`) are the API server's alone.

use std::collections::BTreeSet;

use crate::api::rules::{RESERVED_ENV_NAMES, msg};
use crate::api::{
    AutoscalingSpec, Backend, DeletionPolicy, KafkaClientAuthentication, PantheraPlatform,
    ServiceKind,
};

/// (field path, message) for every broken rule.
pub fn check(platform: &PantheraPlatform) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |path: String, message: &str| out.push((path, message.to_string()));
    let spec = &platform.spec;

    if platform
        .metadata
        .name
        .as_deref()
        .is_some_and(|n| n.chars().count() > 24)
    {
        push("metadata.name".into(), msg::NAME_LENGTH);
    }
    let databases: BTreeSet<&str> = spec.databases.iter().map(|d| d.name.as_str()).collect();
    let services: BTreeSet<&str> = spec.services.iter().map(|s| s.name.as_str()).collect();

    for (i, s) in spec.services.iter().enumerate() {
        let at = format!("spec.services[{i}]");
        if s.database
            .as_deref()
            .is_some_and(|d| !databases.contains(d))
        {
            push(format!("{at}.database"), msg::DATABASE_EXISTS);
        }
        if s.cache && spec.redis.is_none() {
            push(format!("{at}.cache"), msg::CACHE_NEEDS_REDIS);
        }
        if s.search && spec.search.is_none() {
            push(format!("{at}.search"), msg::SEARCH_NEEDS_SPEC);
        }
        if s.buckets
            .iter()
            .any(|b| !spec.buckets.iter().any(|x| &x.name == b))
        {
            push(format!("{at}.buckets"), msg::BUCKET_EXISTS);
        }
        let known_topic = |t: &String| {
            spec.kafka
                .as_ref()
                .is_some_and(|k| k.topics.contains_key(t))
        };
        if !s.topics.is_empty() && !s.topics.iter().all(known_topic) {
            push(format!("{at}.topics"), msg::TOPIC_EXISTS);
        }
        if s.admin_secret.is_some() && s.kind != ServiceKind::Users {
            push(format!("{at}.adminSecret"), msg::ADMIN_SECRET_USERS_ONLY);
        }
        if s.kind == ServiceKind::Custom && s.image.is_none() {
            push(format!("{at}.image"), msg::CUSTOM_NEEDS_IMAGE);
        }
        autoscaling(
            s.autoscaling.as_ref(),
            &format!("{at}.autoscaling"),
            &mut push,
        );
        for (j, e) in s.env.iter().enumerate() {
            if RESERVED_ENV_NAMES.contains(&e.name.as_str()) {
                push(format!("{at}.env[{j}].name"), msg::RESERVED_ENV);
            }
        }
    }
    if let Some(g) = &spec.gateway {
        let mut requires_token = false;
        for (i, r) in g.routes.iter().enumerate() {
            if !services.contains(r.service.as_str()) {
                push(
                    format!("spec.gateway.routes[{i}].service"),
                    msg::ROUTE_SERVICE_EXISTS,
                );
            }
            let mut seen = BTreeSet::new();
            let mut repeated = false;
            for (j, rule) in r.rules.iter().enumerate() {
                let requires = !(rule.roles.is_empty() && rule.scopes.is_empty());
                requires_token |= requires;
                if rule.public && requires {
                    push(
                        format!("spec.gateway.routes[{i}].rules[{j}]"),
                        msg::PUBLIC_RULE_NO_ROLES,
                    );
                }
                // A method listed twice in one rule is the schema's (a set), across rules ours.
                let methods: BTreeSet<_> = rule.methods.iter().map(|m| m.as_str()).collect();
                repeated |= methods.iter().any(|m| !seen.insert(*m));
            }
            if repeated {
                push(
                    format!("spec.gateway.routes[{i}].rules"),
                    msg::METHOD_IN_ONE_RULE,
                );
            }
        }
        if requires_token && g.auth.is_none() {
            push("spec.gateway.routes".into(), msg::ROLES_NEED_JWT);
        }
        if g.rate_limit.as_ref().is_some_and(|r| r.shared) && spec.redis.is_none() {
            push(
                "spec.gateway.rateLimit.shared".into(),
                msg::SHARED_LIMIT_NEEDS_REDIS,
            );
        }
        if g.tls.is_some() && g.host.is_none() {
            push("spec.gateway.tls".into(), msg::TLS_NEEDS_HOST);
        }
        if let Some(jwt) = g.auth.as_ref().map(|a| &a.jwt)
            && jwt.jwks_url.is_some() == jwt.hs256_secret_ref.is_some()
        {
            push("spec.gateway.auth.jwt".into(), msg::ONE_KEY_SOURCE);
        }
        autoscaling(
            g.autoscaling.as_ref(),
            "spec.gateway.autoscaling",
            &mut push,
        );
        if let Some(m) = &g.monitoring {
            if m.namespace_selector.is_none() && m.pod_selector.is_none() {
                push(
                    "spec.gateway.monitoring".into(),
                    msg::MONITORING_NEEDS_SELECTOR,
                );
            }
            for (field, selector) in [
                ("namespaceSelector", &m.namespace_selector),
                ("podSelector", &m.pod_selector),
            ] {
                if selector
                    .as_ref()
                    .is_some_and(|s| !s.match_labels.keys().all(|k| is_label_key(k)))
                {
                    push(
                        format!("spec.gateway.monitoring.{field}.matchLabels"),
                        msg::LABEL_KEY,
                    );
                }
            }
        }
    }
    if let Some(p) = spec
        .observability
        .as_ref()
        .and_then(|o| o.prometheus.as_ref())
    {
        let at = "spec.observability.prometheus.labels";
        if !p.labels.keys().all(|k| is_label_key(k)) {
            push(at.into(), msg::LABEL_KEY);
        }
        if p.labels
            .keys()
            .any(|k| k.starts_with("panthera.dev/") || k.starts_with("app.kubernetes.io/"))
        {
            push(at.into(), msg::MONITORING_LABEL_RESERVED);
        }
    }
    if let Some(t) = spec.observability.as_ref().and_then(|o| o.tracing.as_ref())
        && !t
            .resource_attributes
            .keys()
            .all(|k| is_resource_attribute_key(k))
    {
        push(
            "spec.observability.tracing.resourceAttributes".into(),
            msg::RESOURCE_ATTRIBUTE_KEY,
        );
    }
    let any_aws = spec.databases.iter().any(|d| d.backend == Backend::Aws)
        || spec
            .redis
            .as_ref()
            .is_some_and(|r| r.backend == Backend::Aws)
        || spec
            .kafka
            .as_ref()
            .is_some_and(|k| k.backend == Backend::Aws)
        || spec
            .search
            .as_ref()
            .is_some_and(|s| s.backend == Backend::Aws)
        || spec.buckets.iter().any(|b| b.backend == Backend::Aws);
    if any_aws && spec.aws.is_none() {
        push("spec.aws".into(), msg::AWS_NEEDS_SPEC);
    }
    if let Some(edge) = &spec.edge {
        if spec.aws.is_none() {
            push("spec.edge".into(), msg::EDGE_NEEDS_AWS);
        }
        if spec
            .gateway
            .as_ref()
            .and_then(|g| g.host.as_ref())
            .is_none()
        {
            push("spec.edge".into(), msg::EDGE_NEEDS_GATEWAY_HOST);
        }
        if let Some(assets) = &edge.static_assets
            && !spec
                .buckets
                .iter()
                .any(|b| b.name == assets.bucket && b.backend == Backend::Aws)
        {
            push(
                "spec.edge.staticAssets.bucket".into(),
                msg::EDGE_ASSETS_BUCKET,
            );
        }
    }
    if let (Some(aws), Some(k)) = (&spec.aws, &spec.kafka)
        && k.backend == Backend::Aws
        && !aws.subnet_ids.is_empty()
        && k.brokers % aws.subnet_ids.len() as i32 != 0
    {
        push("spec.kafka.brokers".into(), msg::MSK_BROKERS_PER_SUBNET);
    }
    if let (Some(aws), Some(s)) = (&spec.aws, &spec.search)
        && s.backend == Backend::Aws
        && aws.subnet_ids.len() < s.availability_zones.max(1) as usize
    {
        push(
            "spec.search.availabilityZones".into(),
            msg::SEARCH_SUBNET_PER_ZONE,
        );
    }
    for (i, d) in spec.databases.iter().enumerate() {
        let at = format!("spec.databases[{i}]");
        if d.backup.retention_days == 0 && d.deletion_policy != DeletionPolicy::Delete {
            push(
                format!("{at}.backup.retentionDays"),
                msg::NO_BACKUPS_NEEDS_DELETE,
            );
        }
        let rds_only = [
            (d.high_availability, "highAvailability"),
            (d.max_storage.is_some(), "maxStorage"),
            (d.maintenance_window.is_some(), "maintenanceWindow"),
            (d.backup.window.is_some(), "backup.window"),
        ];
        let aws = (d.backend, d.existing_identifier.is_some());
        aws_only(&at, aws, &rds_only, msg::DATABASE_AWS_ONLY, &mut push);
    }
    if let Some(r) = &spec.redis {
        let elasticache_only = [
            (r.replicas != 0, "replicas"),
            (r.snapshot.window.is_some(), "snapshot.window"),
        ];
        let aws = (r.backend, r.existing_identifier.is_some());
        aws_only(
            "spec.redis",
            aws,
            &elasticache_only,
            msg::REDIS_AWS_ONLY,
            &mut push,
        );
    }
    if let Some(s) = &spec.search {
        let domain_only = [
            (s.instance_count != 1, "instanceCount"),
            (s.availability_zones != 1, "availabilityZones"),
            (s.dedicated_masters.is_some(), "dedicatedMasters"),
        ];
        let aws = (s.backend, s.existing_identifier.is_some());
        aws_only(
            "spec.search",
            aws,
            &domain_only,
            msg::SEARCH_AWS_ONLY,
            &mut push,
        );
        if s.instance_count % s.availability_zones.max(1) != 0 {
            push(
                "spec.search.instanceCount".into(),
                msg::SEARCH_NODES_PER_ZONE,
            );
        }
        if let Some(m) = &s.dedicated_masters
            && !matches!(m.count, 3 | 5)
        {
            push(
                "spec.search.dedicatedMasters.count".into(),
                msg::SEARCH_MASTER_COUNT,
            );
        }
    }
    for (i, b) in spec.buckets.iter().enumerate() {
        let s3_only = [
            (b.kms_key_id.is_some(), "kmsKeyId"),
            (!b.lifecycle.transitions.is_empty(), "lifecycle.transitions"),
        ];
        let aws = (b.backend, b.existing_identifier.is_some());
        aws_only(
            &format!("spec.buckets[{i}]"),
            aws,
            &s3_only,
            msg::BUCKET_AWS_SETTINGS,
            &mut push,
        );
        if b.empty_on_delete && b.deletion_policy != DeletionPolicy::Delete {
            push(
                format!("spec.buckets[{i}].emptyOnDelete"),
                msg::EMPTY_ON_DELETE_NEEDS_DELETE,
            );
        }
    }
    if let Some(k) = &spec.kafka {
        let msk_only = [
            (k.client_authentication.is_some(), "clientAuthentication"),
            (k.scram_kms_key.is_some(), "scramKmsKey"),
        ];
        let aws = (k.backend, k.existing_identifier.is_some());
        aws_only("spec.kafka", aws, &msk_only, msg::KAFKA_AWS_ONLY, &mut push);
        if k.backend == Backend::Aws
            && k.client_authentication() == KafkaClientAuthentication::Scram
            && k.scram_kms_key.is_none()
        {
            push("spec.kafka.scramKmsKey".into(), msg::SCRAM_NEEDS_KMS_KEY);
        }
        if k.topics.values().any(|t| t.replication_factor > k.brokers) {
            push("spec.kafka.topics".into(), msg::REPLICATION_LE_BROKERS);
        }
        let valid_name = |n: &str| {
            (1..=100).contains(&n.chars().count())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        };
        if !k.topics.keys().all(|n| valid_name(n)) {
            push("spec.kafka.topics".into(), msg::TOPIC_NAME);
        }
    }
    out
}

/// Settings of an AWS service on a store that is not on AWS: `existingIdentifier`, and the
/// first of `settings` that is set (it names the place; the message lists them all).
fn aws_only(
    at: &str,
    (backend, existing): (Backend, bool),
    settings: &[(bool, &str)],
    message: &str,
    push: &mut impl FnMut(String, &str),
) {
    if backend == Backend::Aws {
        return;
    }
    if existing {
        push(format!("{at}.existingIdentifier"), msg::EXISTING_NEEDS_AWS);
    }
    if let Some((_, field)) = settings.iter().find(|(set, _)| *set) {
        push(format!("{at}.{field}"), message);
    }
}

/// The CRD's label-key rule (`api::LABEL_KEY` and at most 317 characters), without a regex:
/// an optional prefix of dot-separated DNS labels and `/`, then a name.
/// `^[A-Za-z][A-Za-z0-9._-]*$`: nothing that would break `OTEL_RESOURCE_ATTRIBUTES`' list.
fn is_resource_attribute_key(key: &str) -> bool {
    key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn is_label_key(key: &str) -> bool {
    let alnum_ends = |part: &str, inner: &dyn Fn(char) -> bool| {
        let mut chars = part.chars();
        match (chars.next(), part.chars().last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || inner(c))
            }
            _ => false,
        }
    };
    let dns_label = |part: &str| {
        !part.bytes().any(|b| b.is_ascii_uppercase()) && alnum_ends(part, &|c| c == '-')
    };
    let name_ok = |name: &str| alnum_ends(name, &|c| matches!(c, '-' | '_' | '.'));
    if key.chars().count() > 317 {
        return false;
    }
    match key.split_once('/') {
        Some((prefix, name)) => prefix.split('.').all(dns_label) && name_ok(name),
        None => name_ok(key),
    }
}

fn autoscaling(a: Option<&AutoscalingSpec>, path: &str, push: &mut impl FnMut(String, &str)) {
    if a.is_some_and(|a| a.min_replicas > a.max_replicas) {
        push(path.to_string(), msg::MIN_LE_MAX);
    }
}
