//! Search on Amazon OpenSearch Service: a VPC domain over the first `availabilityZones` subnets
//! of `spec.aws`, encrypted at rest and between nodes, HTTPS only with a TLS 1.2+ forward-secret
//! policy, fine-grained access control with its master user's password in Secrets Manager, and
//! an access policy that lets calls from the VPC reach the domain, where that login is checked.
//! Automated snapshots are hourly and kept 14 days by the service for every OpenSearch domain:
//! there is nothing to turn on, and nothing survives the domain (so `Snapshot` keeps it).

use std::collections::BTreeMap;

use aws_sdk_opensearch::Client;
use aws_sdk_opensearch::types::{
    AdvancedSecurityOptionsInput, ClusterConfig, DomainEndpointOptions, DomainStatus, EbsOptions,
    EncryptionAtRestOptions, MasterUserOptions, NodeToNodeEncryptionOptions,
    OpenSearchPartitionInstanceType, Tag, TlsSecurityPolicy, VolumeType, VpcOptions,
    ZoneAwarenessConfig,
};

use super::Counted::{Read, Write};
use super::model::{
    self, DedicatedMasters, DomainSecurity, OPENSEARCH_PORT, Observed, Owner, SearchSettings,
    Settings,
};
use super::service::{Create, Delete, Modify, ServiceApi, Tags};
use super::{Ctx, Result, secrets};

/// DescribeDomains takes at most this many names.
const DESCRIBE_BATCH: usize = 5;

/// The engine version a domain runs for a `major.minor`.
fn engine_version(version: &str) -> String {
    format!("OpenSearch_{version}")
}

/// The status word of a domain: its processing status where AWS gives one, else from its flags.
fn status(domain: &DomainStatus) -> String {
    if let Some(s) = domain.domain_processing_status() {
        return s.as_str().to_string();
    }
    let word = if domain.deleted() == Some(true) {
        "Deleting"
    } else if domain.created() == Some(false) {
        "Creating"
    } else if domain.processing() == Some(true) || domain.upgrade_processing() == Some(true) {
        "Modifying"
    } else {
        "Active"
    };
    word.to_string()
}

/// The access policy Panthera gives a domain: any principal's HTTP calls reach it (the domain is
/// in the VPC, behind its security groups), and fine-grained access control checks the login.
fn access_policy(domain_arn: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "es:ESHttp*",
            "Resource": format!("{domain_arn}/*"),
        }],
    })
    .to_string()
}

/// Whether `policy` is the one [`access_policy`] writes for `domain_arn`, whatever its layout.
fn is_panthera_policy(policy: Option<&str>, domain_arn: &str) -> bool {
    let parse = |p: &str| serde_json::from_str::<serde_json::Value>(p).ok();
    match policy.and_then(parse) {
        Some(have) => Some(have) == parse(&access_policy(domain_arn)),
        None => false,
    }
}

/// The ARN a domain named `name` gets, from the ARN of a secret of the same account and region
/// (`arn:aws:secretsmanager:eu-west-1:123456789012:secret:...`): the access policy is written
/// with the domain, which has no ARN before it exists.
fn domain_arn(secret_arn: &str, name: &str) -> Option<String> {
    let parts: Vec<&str> = secret_arn.splitn(7, ':').collect();
    let [_, partition, _, region, account, ..] = parts.as_slice() else {
        return None;
    };
    Some(format!(
        "arn:{partition}:es:{region}:{account}:domain/{name}"
    ))
}

fn settings(domain: &DomainStatus) -> SearchSettings {
    let cluster = domain.cluster_config();
    let instance_type = |t: Option<&OpenSearchPartitionInstanceType>| {
        t.map(|t| t.as_str().to_string()).unwrap_or_default()
    };
    let zones = match cluster {
        Some(c) if c.zone_awareness_enabled() == Some(true) => c
            .zone_awareness_config()
            .and_then(ZoneAwarenessConfig::availability_zone_count)
            .unwrap_or(2),
        _ => 1,
    };
    let masters = cluster
        .filter(|c| c.dedicated_master_enabled() == Some(true))
        .map(|c| DedicatedMasters {
            instance_type: instance_type(c.dedicated_master_type()),
            count: c.dedicated_master_count().unwrap_or_default(),
        });
    let endpoint = domain.domain_endpoint_options();
    let security = DomainSecurity {
        encryption_at_rest: domain
            .encryption_at_rest_options()
            .and_then(EncryptionAtRestOptions::enabled)
            .unwrap_or(false),
        node_to_node_encryption: domain
            .node_to_node_encryption_options()
            .and_then(NodeToNodeEncryptionOptions::enabled)
            .unwrap_or(false),
        https_only: endpoint
            .and_then(DomainEndpointOptions::enforce_https)
            .unwrap_or(false),
        tls_policy: endpoint
            .and_then(DomainEndpointOptions::tls_security_policy)
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        fine_grained: domain.advanced_security_options().is_some_and(|a| {
            a.enabled() == Some(true) && a.internal_user_database_enabled() == Some(true)
        }),
        open_to_login: is_panthera_policy(domain.access_policies(), domain.arn()),
    };
    SearchSettings {
        version: domain
            .engine_version()
            .map(|v| v.trim_start_matches("OpenSearch_").to_string())
            .unwrap_or_default(),
        instance_type: instance_type(cluster.and_then(ClusterConfig::instance_type)),
        instance_count: cluster
            .and_then(ClusterConfig::instance_count)
            .unwrap_or_default(),
        zones,
        masters,
        storage_gib: domain
            .ebs_options()
            .and_then(EbsOptions::volume_size)
            .unwrap_or_default(),
        security,
    }
}

fn observed(domain: &DomainStatus, tags: Tags) -> Observed {
    // A VPC domain publishes its endpoint under `vpc`; a public one (adopted) as `endpoint`.
    let host = domain
        .endpoints()
        .and_then(|e| e.get("vpc").cloned())
        .or_else(|| domain.endpoint().map(str::to_string));
    let settings = settings(domain);
    let vpc = domain.vpc_options();
    Observed {
        arn: domain.arn().to_string(),
        status: status(domain),
        endpoint: host.map(|h| format!("{h}:{OPENSEARCH_PORT}")),
        tags,
        tls: true,
        auth: settings.security.fine_grained,
        settings: Some(Settings::Search(settings)),
        subnet_ids: vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default(),
        security_group_ids: vpc
            .map(|v| v.security_group_ids().to_vec())
            .unwrap_or_default(),
        ..Observed::default()
    }
}

fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

async fn tags_of(client: &Client, ctx: &Ctx<'_>, arn: &str) -> Result<Tags> {
    let action = format!("list tags of {arn}");
    let sent = client.list_tags().arn(arn).send();
    let out = ctx.call(Read, &action, sent).await?;
    Ok(out
        .tag_list()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect::<BTreeMap<_, _>>())
}

/// The data and master nodes as `search` wants them.
fn cluster_config(search: &SearchSettings) -> ClusterConfig {
    let zoned = search.zones > 1;
    let mut cluster = ClusterConfig::builder()
        .instance_type(OpenSearchPartitionInstanceType::from(
            search.instance_type.as_str(),
        ))
        .instance_count(search.instance_count)
        .zone_awareness_enabled(zoned)
        .dedicated_master_enabled(search.masters.is_some());
    if zoned {
        let zones = ZoneAwarenessConfig::builder().availability_zone_count(search.zones);
        cluster = cluster.zone_awareness_config(zones.build());
    }
    if let Some(m) = &search.masters {
        cluster = cluster
            .dedicated_master_type(OpenSearchPartitionInstanceType::from(
                m.instance_type.as_str(),
            ))
            .dedicated_master_count(m.count);
    }
    cluster.build()
}

fn ebs(search: &SearchSettings) -> EbsOptions {
    EbsOptions::builder()
        .ebs_enabled(true)
        .volume_type(VolumeType::Gp3)
        .volume_size(search.storage_gib)
        .build()
}

fn endpoint_options() -> DomainEndpointOptions {
    DomainEndpointOptions::builder()
        .enforce_https(true)
        .tls_security_policy(TlsSecurityPolicy::from(model::OPENSEARCH_TLS_POLICY))
        .build()
}

/// Fine-grained access control with the internal user database, and the master user's login.
fn fine_grained(username: &str, password: &str) -> AdvancedSecurityOptionsInput {
    let master = MasterUserOptions::builder()
        .master_user_name(username)
        .master_user_password(password);
    AdvancedSecurityOptionsInput::builder()
        .enabled(true)
        .internal_user_database_enabled(true)
        .master_user_options(master.build())
        .build()
}

impl ServiceApi for Client {
    async fn describe(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<Observed>> {
        let action = format!("describe OpenSearch Service domain {name}");
        let sent = self.describe_domain().domain_name(name).send();
        let not_found =
            |e: &aws_sdk_opensearch::operation::describe_domain::DescribeDomainError| {
                e.is_resource_not_found_exception()
            };
        let Some(out) = ctx.call_or_none(Read, &action, sent, not_found).await? else {
            return Ok(None);
        };
        let Some(domain) = out.domain_status() else {
            return Ok(None);
        };
        let tags = tags_of(self, ctx, domain.arn()).await?;
        Ok(Some(observed(domain, tags)))
    }

    async fn list_owned(&self, ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>> {
        let prefix =
            model::identifier(&owner.platform, model::Service::OpenSearch.max_identifier());
        let sent = self.list_domain_names().send();
        let listed = ctx
            .call(Read, "list OpenSearch Service domains", sent)
            .await?;
        let names: Vec<String> = listed
            .domain_names()
            .iter()
            .filter_map(|d| d.domain_name())
            .filter(|n| n.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        let mut out = Vec::new();
        for batch in names.chunks(DESCRIBE_BATCH) {
            let sent = self
                .describe_domains()
                .set_domain_names(Some(batch.to_vec()))
                .send();
            let described = ctx
                .call(Read, "describe OpenSearch Service domains", sent)
                .await?;
            for domain in described.domain_status_list() {
                let tags = tags_of(self, ctx, domain.arn()).await?;
                if owner.owns(&tags) {
                    out.push((domain.domain_name().to_string(), observed(domain, tags)));
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, ctx: &Ctx<'_>, new: Create<'_>) -> Result<()> {
        let (store, network) = (new.store, new.network);
        let Settings::Search(search) = &store.settings else {
            return Ok(());
        };
        let secret_arn = secrets::arn(ctx, new.secret).await?;
        let Some(arn) = secret_arn.and_then(|s| domain_arn(&s, &store.identifier)) else {
            return Err(ctx.terminal(format!(
                "the master user secret {} is not in Secrets Manager: the domain is created after it",
                new.secret
            )));
        };
        let vpc = VpcOptions::builder()
            .set_subnet_ids(Some(network.subnets_of(store)))
            .set_security_group_ids(network.security_groups())
            .build();
        let request = self
            .create_domain()
            .domain_name(&store.identifier)
            .engine_version(engine_version(&search.version))
            .cluster_config(cluster_config(search))
            .ebs_options(ebs(search))
            .vpc_options(vpc)
            .encryption_at_rest_options(EncryptionAtRestOptions::builder().enabled(true).build())
            .node_to_node_encryption_options(
                NodeToNodeEncryptionOptions::builder().enabled(true).build(),
            )
            .domain_endpoint_options(endpoint_options())
            .advanced_security_options(fine_grained(&store.username, new.password))
            .access_policies(access_policy(&arn))
            .set_tag_list(Some(sdk_tags(new.tags)));
        new.send(
            ctx,
            ("CreateDomain", "OpenSearch Service domain"),
            request.send(),
        )
        .await
    }

    /// One UpdateDomainConfig carries every configuration change (AWS plans them as one
    /// deployment); a version upgrade (UpgradeDomain) goes alone, once nothing else differs.
    async fn modify(&self, ctx: &Ctx<'_>, change: Modify<'_>) -> Result<Option<String>> {
        let (store, observed, planned) = (change.store, change.observed, change.planned);
        let Settings::Search(search) = &store.settings else {
            return Ok(None);
        };
        let fields: Vec<&str> = planned.changes.iter().map(|d| d.field).collect();
        let adopting = change.adopt_password;
        if fields.is_empty() && adopting.is_none() {
            return Ok(None);
        }
        if model::phase(store.service, &observed.status) != model::Phase::Available {
            return Ok(Some(format!(
                "waiting for the domain to be active before updating {}",
                fields.join(", ")
            )));
        }
        let name = store.identifier.as_str();
        let configured: Vec<&str> = fields.iter().copied().filter(|f| *f != "version").collect();
        if configured.is_empty() && adopting.is_none() {
            let action = format!("upgrade OpenSearch Service domain {name}");
            let sent = self
                .upgrade_domain()
                .domain_name(name)
                .target_version(engine_version(&search.version))
                .send();
            ctx.call(Write("UpgradeDomain", name), &action, sent)
                .await?;
            return Ok(None);
        }
        let mut request = self.update_domain_config().domain_name(name);
        let has = |f: &str| configured.contains(&f);
        if [
            "instanceType",
            "instanceCount",
            "availabilityZones",
            "dedicatedMasters",
        ]
        .iter()
        .any(|f| has(f))
        {
            request = request.cluster_config(cluster_config(search));
        }
        if has("storage") {
            request = request.ebs_options(ebs(search));
        }
        if has("subnetIds") || has("securityGroupIds") {
            let vpc = VpcOptions::builder()
                .set_subnet_ids(Some(change.network.subnets_of(store)))
                .set_security_group_ids(change.network.security_groups());
            request = request.vpc_options(vpc.build());
        }
        if has("encryptionAtRest") {
            let on = EncryptionAtRestOptions::builder().enabled(true).build();
            request = request.encryption_at_rest_options(on);
        }
        if has("nodeToNodeEncryption") {
            let on = NodeToNodeEncryptionOptions::builder().enabled(true).build();
            request = request.node_to_node_encryption_options(on);
        }
        if has("endpointTls") {
            request = request.domain_endpoint_options(endpoint_options());
        }
        if has("accessPolicy") {
            request = request.access_policies(access_policy(&observed.arn));
        }
        // The master user's login is set when adopting (the password Panthera keeps) and
        // whenever fine-grained access control is turned on (it needs one).
        let mut waits = None;
        match adopting {
            Some(password) => {
                request = request.advanced_security_options(fine_grained(&store.username, password))
            }
            None if has("fineGrainedAccessControl") => {
                waits = Some(
                    "fine-grained access control is turned on once the domain is adopted with its master password".to_string(),
                );
            }
            None => {}
        }
        let action = format!(
            "update {} of OpenSearch Service domain {name}",
            configured.join(", ")
        );
        ctx.call(Write("UpdateDomainConfig", name), &action, request.send())
            .await?;
        if fields.contains(&"version") {
            let next = "next update: version (UpgradeDomain, once this deployment is done)";
            waits = Some(waits.map_or(next.to_string(), |w| format!("{w}; {next}")));
        }
        Ok(waits)
    }

    async fn add_tags(&self, ctx: &Ctx<'_>, arn: &str, tags: &Tags) -> Result<()> {
        let sent = self.add_tags().arn(arn).set_tag_list(Some(sdk_tags(tags)));
        let action = format!("tag {arn}");
        ctx.call(Write("AddTags", arn), &action, sent.send())
            .await?;
        Ok(())
    }

    async fn remove_tags(&self, ctx: &Ctx<'_>, arn: &str, keys: &[String]) -> Result<()> {
        let sent = self
            .remove_tags()
            .arn(arn)
            .set_tag_keys(Some(keys.to_vec()));
        let action = format!("untag {arn}");
        ctx.call(Write("RemoveTags", arn), &action, sent.send())
            .await?;
        Ok(())
    }

    /// The domain goes with its automated snapshots (see the module comment).
    async fn delete(&self, ctx: &Ctx<'_>, gone: Delete<'_>) -> Result<()> {
        let name = gone.identifier;
        let sent = self.delete_domain().domain_name(name).send();
        let action = format!("delete OpenSearch Service domain {name}");
        let not_found = |e: &aws_sdk_opensearch::operation::delete_domain::DeleteDomainError| {
            e.is_resource_not_found_exception()
        };
        ctx.call_or_none(Write("DeleteDomain", name), &action, sent, not_found)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_domain_arn_comes_from_a_secret_of_the_same_account() {
        let secret =
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:panthera/shop/search-AbCdEf";
        assert_eq!(
            domain_arn(secret, "shop-search").as_deref(),
            Some("arn:aws:es:eu-west-1:123456789012:domain/shop-search")
        );
        assert_eq!(domain_arn("not-an-arn", "x"), None);
    }

    #[test]
    fn the_access_policy_is_recognised_whatever_its_layout() {
        let arn = "arn:aws:es:eu-west-1:1:domain/shop-search";
        let policy = access_policy(arn);
        assert!(is_panthera_policy(Some(&policy), arn));
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&policy).unwrap(),
        )
        .unwrap();
        assert!(is_panthera_policy(Some(&pretty), arn));
        assert!(!is_panthera_policy(
            Some(&policy),
            "arn:aws:es:eu-west-1:1:domain/other"
        ));
        assert!(!is_panthera_policy(None, arn));
        assert!(!is_panthera_policy(Some(""), arn));
    }
}
