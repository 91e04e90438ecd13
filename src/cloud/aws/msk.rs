//! Kafka on MSK: a provisioned cluster with one broker group over `spec.aws.subnetIds`. MSK
//! applies one update at a time and only to an ACTIVE cluster; the bootstrap brokers exist once
//! it is ACTIVE.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_kafka::Client;
use aws_sdk_kafka::operation::delete_cluster::DeleteClusterError;

use aws_sdk_kafka::types::{
    BrokerEbsVolumeInfo, BrokerNodeGroupInfo, ClientAuthentication, ClientBroker, Cluster,
    EbsStorageInfo, EncryptionInTransit, EncryptionInfo, Sasl, Scram, StorageInfo, Unauthenticated,
};

use super::Counted::{Read, Write};
use super::model::{self, KafkaSettings, MskAccess, Observed, Owner, Settings};
use super::service::{Create, Delete, Modify, ServiceApi, Settle, Tags, tagging_calls};
use super::{Ctx, Result, secrets};

/// What Panthera reads of an MSK cluster.
#[derive(Clone, Debug, Default, PartialEq)]
struct Msk {
    arn: String,
    name: String,
    state: String,
    current_version: Option<String>,
    tags: BTreeMap<String, String>,
    settings: KafkaSettings,
    subnets: Vec<String>,
    security_groups: Vec<String>,
}

/// How clients reach a cluster, from its client-broker encryption and SCRAM switch.
fn access(client_broker: Option<&str>, scram: bool) -> MskAccess {
    match (client_broker, scram) {
        (Some("TLS"), true) => MskAccess::Scram,
        (Some("TLS"), false) => MskAccess::Tls,
        // MSK's default, and how Panthera created clusters before TLS only.
        _ => MskAccess::TlsPlaintext,
    }
}

impl Msk {
    fn from_sdk(cluster: &Cluster) -> Self {
        let provisioned = cluster.provisioned();
        let group = provisioned.and_then(|p| p.broker_node_group_info());
        Self {
            arn: cluster.cluster_arn().unwrap_or_default().to_string(),
            name: cluster.cluster_name().unwrap_or_default().to_string(),
            state: cluster
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            current_version: cluster.current_version().map(str::to_string),
            tags: cluster
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            settings: KafkaSettings {
                instance_type: group
                    .and_then(|g| g.instance_type())
                    .unwrap_or_default()
                    .to_string(),
                version: provisioned
                    .and_then(|p| p.current_broker_software_info())
                    .and_then(|s| s.kafka_version())
                    .unwrap_or_default()
                    .to_string(),
                brokers: provisioned
                    .and_then(|p| p.number_of_broker_nodes())
                    .unwrap_or_default(),
                storage_gib: group
                    .and_then(|g| g.storage_info())
                    .and_then(|s| s.ebs_storage_info())
                    .and_then(|e| e.volume_size())
                    .unwrap_or_default(),
                access: access(
                    provisioned
                        .and_then(|p| p.encryption_info())
                        .and_then(|e| e.encryption_in_transit())
                        .and_then(|t| t.client_broker())
                        .map(ClientBroker::as_str),
                    provisioned
                        .and_then(|p| p.client_authentication())
                        .and_then(|a| a.sasl())
                        .and_then(|s| s.scram())
                        .and_then(|s| s.enabled())
                        .unwrap_or(false),
                ),
            },
            subnets: group
                .map(|g| g.client_subnets().to_vec())
                .unwrap_or_default(),
            security_groups: group
                .map(|g| g.security_groups().to_vec())
                .unwrap_or_default(),
        }
    }

    /// The same from ListClustersV2's JSON, for endpoints whose timestamps the SDK refuses
    /// (moto sends `creationTime` without a UTC offset).
    fn from_json(v: &serde_json::Value) -> Self {
        let s = |p: &str| {
            v.pointer(p)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let n = |p: &str| {
            v.pointer(p)
                .and_then(serde_json::Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or_default()
        };
        let list = |p: &str| -> Vec<String> {
            v.pointer(p)
                .and_then(serde_json::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            arn: s("/clusterArn"),
            name: s("/clusterName"),
            state: s("/state"),
            current_version: v
                .pointer("/currentVersion")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
            tags: v
                .pointer("/tags")
                .and_then(serde_json::Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, x)| Some((k.clone(), x.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default(),
            settings: KafkaSettings {
                instance_type: s("/provisioned/brokerNodeGroupInfo/instanceType"),
                version: s("/provisioned/currentBrokerSoftwareInfo/kafkaVersion"),
                brokers: n("/provisioned/numberOfBrokerNodes"),
                storage_gib: n(
                    "/provisioned/brokerNodeGroupInfo/storageInfo/ebsStorageInfo/volumeSize",
                ),
                access: access(
                    v.pointer("/provisioned/encryptionInfo/encryptionInTransit/clientBroker")
                        .and_then(serde_json::Value::as_str),
                    v.pointer("/provisioned/clientAuthentication/sasl/scram/enabled")
                        .and_then(serde_json::Value::as_bool)
                        .unwrap_or(false),
                ),
            },
            subnets: list("/provisioned/brokerNodeGroupInfo/clientSubnets"),
            security_groups: list("/provisioned/brokerNodeGroupInfo/securityGroups"),
        }
    }
}

fn observed(cluster: &Msk) -> Observed {
    Observed {
        arn: cluster.arn.clone(),
        status: cluster.state.clone(),
        endpoint: None,
        tags: cluster.tags.clone(),
        settings: Some(Settings::Kafka(cluster.settings.clone())),
        subnet_ids: cluster.subnets.clone(),
        security_group_ids: cluster.security_groups.clone(),
        pending: Vec::new(),
        tls: false,
        auth: false,
        current_version: cluster.current_version.clone(),
        subnet_group: None,
    }
}

/// Clusters whose name starts with `prefix`.
async fn list(kafka: &Client, ctx: &Ctx<'_>, prefix: &str) -> Result<Vec<Msk>> {
    let pages = ctx
        .paged(|token| async move {
            let sent = kafka
                .list_clusters_v2()
                .cluster_name_filter(prefix)
                .set_next_token(token)
                .send()
                .await;
            let e = match sent {
                Ok(page) => {
                    let clusters = page.cluster_info_list().iter().map(Msk::from_sdk);
                    return Ok((clusters.collect(), page.next_token().map(str::to_string)));
                }
                Err(e) => e,
            };
            // A body the SDK could not deserialize (not an error response): read it leniently.
            let body = e
                .raw_response()
                .filter(|r| r.status().is_success())
                .and_then(|r| r.body().bytes())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
            let Some(body) = body else {
                return Err(ctx.err("list MSK clusters", &e));
            };
            let clusters = body
                .get("clusterInfoList")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .map(Msk::from_json);
            let next = body
                .get("nextToken")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string);
            Ok((clusters.collect::<Vec<_>>(), next))
        })
        .await?;
    Ok(pages.into_iter().flatten().collect())
}

/// The bootstrap brokers of an ACTIVE cluster, of the listener its access opens (SCRAM, TLS,
/// or plaintext on a cluster created before TLS only), and whether it is a TLS one.
async fn bootstrap(
    kafka: &Client,
    ctx: &Ctx<'_>,
    arn: &str,
    access: MskAccess,
) -> Result<(Option<String>, bool)> {
    let request = kafka.get_bootstrap_brokers().cluster_arn(arn);
    let action = format!("get the bootstrap brokers of {arn}");
    let out = ctx.call(Read, &action, request.send()).await?;
    let (brokers, tls) = match access {
        MskAccess::Scram => (out.bootstrap_broker_string_sasl_scram(), true),
        MskAccess::Tls => (out.bootstrap_broker_string_tls(), true),
        MskAccess::TlsPlaintext => (out.bootstrap_broker_string(), false),
    };
    Ok((brokers.map(str::to_string), tls))
}

/// Client authentication and encryption in transit as the spec wants them: TLS only, SCRAM or
/// no authentication.
fn security(access: MskAccess) -> (ClientAuthentication, EncryptionInTransit) {
    let scram = access == MskAccess::Scram;
    let auth = ClientAuthentication::builder()
        .sasl(
            Sasl::builder()
                .scram(Scram::builder().enabled(scram).build())
                .build(),
        )
        .unauthenticated(Unauthenticated::builder().enabled(!scram).build())
        .build();
    let transit = EncryptionInTransit::builder()
        .client_broker(ClientBroker::Tls)
        .in_cluster(true)
        .build();
    (auth, transit)
}

impl ServiceApi for Client {
    async fn describe(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<Observed>> {
        let Some(cluster) = list(self, ctx, name)
            .await?
            .into_iter()
            .find(|c| c.name == name)
        else {
            return Ok(None);
        };
        let mut o = observed(&cluster);
        if model::phase(model::Service::Msk, &o.status) == model::Phase::Available {
            (o.endpoint, o.tls) = bootstrap(self, ctx, &o.arn, cluster.settings.access).await?;
        }
        Ok(Some(o))
    }

    async fn list_owned(&self, ctx: &Ctx<'_>, owner: &Owner) -> Result<Vec<(String, Observed)>> {
        let prefix = model::identifier(&owner.platform, model::Service::Msk.max_identifier());
        Ok(list(self, ctx, &prefix)
            .await?
            .iter()
            .map(|c| (c.name.clone(), observed(c)))
            .filter(|(_, o)| owner.owns(&o.tags))
            .collect())
    }

    /// TLS only; the SCRAM login is associated once the cluster is ACTIVE ([`Self::settle`]).
    async fn create(&self, ctx: &Ctx<'_>, new: Create<'_>) -> Result<()> {
        let (store, network, tags) = (new.store, new.network, new.tags);
        let Settings::Kafka(kafka) = &store.settings else {
            return Ok(());
        };
        let group = BrokerNodeGroupInfo::builder()
            .instance_type(&kafka.instance_type)
            .set_client_subnets(Some(network.subnet_ids.clone()))
            .set_security_groups(network.security_groups())
            .storage_info(
                StorageInfo::builder()
                    .ebs_storage_info(
                        EbsStorageInfo::builder()
                            .volume_size(kafka.storage_gib)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let (auth, transit) = security(kafka.access);
        let encryption = EncryptionInfo::builder()
            .encryption_in_transit(transit)
            .build();
        let request = self
            .create_cluster()
            .cluster_name(&store.identifier)
            .kafka_version(&kafka.version)
            .number_of_broker_nodes(kafka.brokers)
            .broker_node_group_info(group)
            .encryption_info(encryption)
            .client_authentication(auth)
            .set_tags(Some(hash_map(tags)));
        new.send(ctx, ("CreateCluster", "MSK cluster"), request.send())
            .await
    }

    /// One MSK update per call (MSK runs one at a time); the rest follow on later reconciles.
    async fn modify(&self, ctx: &Ctx<'_>, change: Modify<'_>) -> Result<Option<String>> {
        let (store, observed, planned) = (change.store, change.observed, change.planned);
        let Some(change) = planned.changes.first() else {
            return Ok(None);
        };
        let (Some(current), model::Phase::Available) = (
            observed.current_version.as_deref(),
            model::phase(store.service, &observed.status),
        ) else {
            return Ok(Some(format!(
                "waiting for the cluster to be ACTIVE before updating {}",
                change.field
            )));
        };
        let arn = observed.arn.as_str();
        let action = format!(
            "update {} of MSK cluster {}",
            change.field, store.identifier
        );
        // Each update names the cluster and the version it applies to (MSK's optimistic lock).
        macro_rules! update {
            ($operation:literal, $request:expr) => {{
                let sent = $request.cluster_arn(arn).current_version(current).send();
                ctx.call(Write($operation, arn), &action, sent).await?;
            }};
        }
        let Settings::Kafka(kafka) = &store.settings else {
            return Ok(None);
        };
        match change.field {
            "instanceType" => update!(
                "UpdateBrokerType",
                self.update_broker_type()
                    .target_instance_type(&kafka.instance_type)
            ),
            "storage" => {
                let volumes = BrokerEbsVolumeInfo::builder().kafka_broker_node_id("All");
                let volumes = volumes.volume_size_gb(kafka.storage_gib).build();
                let request = self.update_broker_storage();
                update!(
                    "UpdateBrokerStorage",
                    request.target_broker_ebs_volume_info(volumes)
                )
            }
            "brokers" => update!(
                "UpdateBrokerCount",
                self.update_broker_count()
                    .target_number_of_broker_nodes(kafka.brokers)
            ),
            "clientAuthentication" => {
                let (auth, transit) = security(kafka.access);
                let encryption = EncryptionInfo::builder().encryption_in_transit(transit);
                let request = self.update_security().client_authentication(auth);
                update!(
                    "UpdateSecurity",
                    request.encryption_info(encryption.build())
                )
            }
            "version" => update!(
                "UpdateClusterKafkaVersion",
                self.update_cluster_kafka_version()
                    .target_kafka_version(&kafka.version)
            ),
            _ => {}
        }
        let rest: Vec<String> = planned.changes[1..]
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok((!rest.is_empty()).then(|| format!("next updates: {}", rest.join("; "))))
    }

    /// The SCRAM secret is associated once the cluster is ACTIVE (MSK refuses it before), and
    /// once only: the associated secrets are read first.
    async fn settle(&self, ctx: &Ctx<'_>, settle: Settle<'_>) -> Result<Option<String>> {
        let (store, observed, secret) = (settle.store, settle.observed, settle.secret);
        if !matches!(&store.settings, Settings::Kafka(k) if k.access == MskAccess::Scram) {
            return Ok(None);
        }
        if model::phase(store.service, &observed.status) != model::Phase::Available {
            return Ok(Some(
                "SCRAM secret associated once the cluster is active".into(),
            ));
        }
        let arn = observed.arn.as_str();
        let request = self.list_scram_secrets().cluster_arn(arn);
        let action = format!("list the SCRAM secrets of {arn}");
        let listed = ctx.call(Read, &action, request.send()).await?;
        let Some(secret_arn) = secrets::arn(ctx, secret).await? else {
            return Ok(Some(format!(
                "SCRAM secret {secret} not in Secrets Manager yet"
            )));
        };
        if listed.secret_arn_list().contains(&secret_arn) {
            return Ok(None);
        }
        let request = self.batch_associate_scram_secret().cluster_arn(arn);
        let action = format!("associate SCRAM secret {secret} with {arn}");
        let sent = request.secret_arn_list(&secret_arn).send();
        ctx.call(Write("BatchAssociateScramSecret", arn), &action, sent)
            .await?;
        Ok(None)
    }

    tagging_calls!(
        tag_resource = "TagResource",
        untag_resource = "UntagResource",
        resource_arn,
        hash_map
    );

    /// MSK keeps no snapshots: the cluster goes with its data.
    async fn delete(&self, ctx: &Ctx<'_>, gone: Delete<'_>) -> Result<()> {
        let arn = gone.arn;
        let sent = self.delete_cluster().cluster_arn(arn).send();
        let action = format!("delete MSK cluster {arn}");
        let not_found = |e: &DeleteClusterError| e.is_not_found_exception();
        ctx.call_or_none(Write("DeleteCluster", arn), &action, sent, not_found)
            .await?;
        Ok(())
    }
}

/// MSK's tags are a map, not a list.
fn hash_map(tags: &Tags) -> HashMap<String, String> {
    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn clusters_read_from_json_match_the_sdk_shape() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"clusterArn": "arn:aws:kafka:us-east-1:1:cluster/x/1", "clusterName": "x", "state": "CREATING",
                "currentVersion": "K1", "creationTime": "2026-11-25T01:47:59.287857",
                "tags": {"panthera.dev/platform": "p"},
                "provisioned": {"numberOfBrokerNodes": 3,
                  "currentBrokerSoftwareInfo": {"kafkaVersion": "3.9.0"},
                  "brokerNodeGroupInfo": {"instanceType": "kafka.t3.small", "clientSubnets": ["subnet-1"],
                    "securityGroups": ["sg-1"], "storageInfo": {"ebsStorageInfo": {"volumeSize": 100}}}}}"#,
        )
        .unwrap();
        let c = Msk::from_json(&v);
        let o = observed(&c);
        assert_eq!(o.status, "CREATING");
        assert_eq!(o.current_version.as_deref(), Some("K1"));
        assert_eq!(o.tags["panthera.dev/platform"], "p");
        assert_eq!(
            o.settings,
            Some(Settings::Kafka(KafkaSettings {
                instance_type: "kafka.t3.small".into(),
                version: "3.9.0".into(),
                brokers: 3,
                storage_gib: 100,
                access: MskAccess::TlsPlaintext,
            }))
        );
        assert_eq!(o.subnet_ids, vec!["subnet-1".to_string()]);
    }
}
