//! The world every AWS test runs in: moto (the AWS APIs) and kube-sim (the cluster), the real
//! binary between them, the network moto's default VPC gives, and what the tests read back.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use aws_config::BehaviorVersion;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube_sim::KubeSim;

use super::common::{self, example, stderr, stdout};

pub(crate) const REGION: &str = "us-east-1";

/// moto's endpoint; `None` (skip) outside CI when the services are not running.
pub(crate) fn endpoint() -> Option<String> {
    let found = std::env::var("PANTHERA_TEST_AWS_ENDPOINT").ok();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "PANTHERA_TEST_AWS_ENDPOINT is not set: run scripts/test-services.sh start"
        );
        eprintln!("skipping: PANTHERA_TEST_AWS_ENDPOINT not set (scripts/test-services.sh start)");
    }
    found
}

/// A platform name no other test or earlier run on the same moto uses.
pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:x}{n}", (nanos ^ std::process::id()) % 0xfffff)
}

/// One EC2 Query call to moto (no EC2 SDK in the workspace; moto does not check signatures).
pub(crate) fn ec2(endpoint: &str, body: &str) -> String {
    let host = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let request = format!(
        "POST / HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// Three subnets of moto's default VPC (one per availability zone) and its default security group.
pub(crate) fn network(endpoint: &str) -> (Vec<String>, String) {
    let subnets = ec2(endpoint, "Action=DescribeSubnets&Version=2016-11-15");
    let re = regex::Regex::new(r"<subnetId>(subnet-[0-9a-f]+)</subnetId>").unwrap();
    let mut ids: Vec<String> = re
        .captures_iter(&subnets)
        .map(|c| c[1].to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert!(ids.len() >= 3, "moto's default subnets: {subnets}");
    let groups = ec2(endpoint, "Action=DescribeSecurityGroups&Version=2016-11-15");
    let re = regex::Regex::new(r"<groupId>(sg-[0-9a-f]+)</groupId>").unwrap();
    let sg = re.captures(&groups).expect("a default security group")[1].to_string();
    // moto's default subnets are one per zone: three of them spread MSK's three brokers.
    (ids.into_iter().take(3).collect(), sg)
}

pub(crate) struct World {
    pub(crate) sim: KubeSim,
    pub(crate) endpoint: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: aws_config::SdkConfig,
}

impl World {
    /// Every RDS instance, over all pages.
    pub(crate) async fn rds_all(&self) -> Vec<aws_sdk_rds::types::DbInstance> {
        let mut all = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .rds()
                .describe_db_instances()
                .set_marker(marker)
                .send()
                .await
                .unwrap();
            all.extend(page.db_instances().iter().cloned());
            marker = page.marker().map(str::to_string);
            if marker.is_none() {
                return all;
            }
        }
    }

    pub(crate) async fn new() -> Option<Self> {
        let endpoint = endpoint()?;
        let sim = KubeSim::builder()
            .ready_delay(Duration::from_millis(50))
            .start()
            .await
            .expect("kube-sim starts");
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(panthera::cloud::aws::http_client())
            .endpoint_url(&endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_rds::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        Some(Self {
            sim,
            endpoint,
            dir: tempfile::tempdir().unwrap(),
            config,
        })
    }

    pub(crate) fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.config)
    }
    pub(crate) fn elasticache(&self) -> aws_sdk_elasticache::Client {
        aws_sdk_elasticache::Client::new(&self.config)
    }
    pub(crate) fn kafka(&self) -> aws_sdk_kafka::Client {
        aws_sdk_kafka::Client::new(&self.config)
    }
    pub(crate) fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }

    /// examples/aws.yaml renamed to `name` (and namespace), on moto's network, edited.
    pub(crate) fn platform(
        &self,
        name: &str,
        file: &str,
        edit: impl Fn(String) -> String,
    ) -> PathBuf {
        let (subnets, sg) = network(&self.endpoint);
        let text = std::fs::read_to_string(example("aws"))
            .unwrap()
            .replace("shop-aws", name)
            .replace("subnet-0a1b2c3d4e5f60001", &subnets[0])
            .replace("subnet-0a1b2c3d4e5f60002", &subnets[1])
            .replace("subnet-0a1b2c3d4e5f60003", &subnets[2])
            .replace("sg-0a1b2c3d4e5f60001", &sg);
        let path = self.dir.path().join(file);
        std::fs::write(&path, edit(text)).unwrap();
        path
    }

    /// A platform `name` of only the stores in `stores` (YAML lines under `spec:`, indented
    /// two spaces), on moto's network.
    pub(crate) fn small_platform(&self, name: &str, stores: &str) -> PathBuf {
        let (subnets, sg) = network(&self.endpoint);
        let yaml = format!(
            "apiVersion: panthera.dev/v1alpha1\nkind: PantheraPlatform\nmetadata: {{name: {name}, namespace: {name}}}\nspec:\n  aws: {{region: {REGION}, subnetIds: [{}], securityGroupIds: [{sg}]}}\n{stores}",
            subnets.join(", ")
        );
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// `destroy` of the platform in `file`, its data included.
    pub(crate) async fn destroy(&self, file: &Path) -> Output {
        self.panthera(&["destroy", "-f", path(file), "--yes", "--keep-data=false"])
            .await
    }

    /// Run the binary with moto as AWS and kube-sim as the cluster.
    pub(crate) async fn panthera(&self, args: &[&str]) -> Output {
        self.panthera_env(args, &[]).await
    }

    pub(crate) async fn panthera_env(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
        // The user's Secrets (HS256 key, TLS) exist before the first apply, as the README says;
        // creating them is not what these tests count.
        if let Some(file) = args
            .iter()
            .position(|a| *a == "-f")
            .and_then(|i| args.get(i + 1))
            && let Ok(platform) = panthera::load::load_file(std::path::Path::new(file))
            && common::provide_secrets(&self.sim.client().unwrap(), &platform).await
        {
            self.sim.reset_counters();
        }
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.push("--kubeconfig".into());
        all.push(self.sim.kubeconfig_path().display().to_string());
        let endpoint = self.endpoint.clone();
        let env: Vec<(String, Option<String>)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        tokio::task::spawn_blocking(move || {
            let mut cmd = common::bin();
            cmd.args(&all)
                .env_remove("KUBECONFIG")
                .env_remove("AWS_PROFILE")
                .env("AWS_ENDPOINT_URL", &endpoint)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_REGION", REGION)
                .env("AWS_EC2_METADATA_DISABLED", "true");
            for (k, v) in env {
                match v {
                    Some(v) => cmd.env(k, v),
                    None => cmd.env_remove(k),
                };
            }
            cmd.output().unwrap()
        })
        .await
        .unwrap()
    }

    /// MSK clusters named `prefix...`, as JSON (moto's timestamps lack an offset, which the SDK
    /// refuses: read the body that came back).
    pub(crate) async fn msk_clusters(&self, prefix: &str) -> Vec<serde_json::Value> {
        let body = match self
            .kafka()
            .list_clusters_v2()
            .cluster_name_filter(prefix)
            .send()
            .await
        {
            Ok(out) => {
                return out
                    .cluster_info_list()
                    .iter()
                    .map(|c| {
                        let p = c.provisioned();
                        let auth = p.and_then(|p| p.client_authentication());
                        serde_json::json!({
                            "clusterName": c.cluster_name(),
                            "state": c.state().map(|s| s.as_str()),
                            "tags": c.tags(),
                            "scram": auth.and_then(|a| a.sasl()).and_then(|s| s.scram()).and_then(|s| s.enabled()),
                            "unauthenticated": auth.and_then(|a| a.unauthenticated()).and_then(|u| u.enabled()),
                            "clientBroker": p.and_then(|p| p.encryption_info())
                                .and_then(|e| e.encryption_in_transit())
                                .and_then(|t| t.client_broker())
                                .map(|c| c.as_str()),
                        })
                    })
                    .collect();
            }
            Err(e) => e.raw_response().unwrap().body().bytes().unwrap().to_vec(),
        };
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["clusterInfoList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let p = &c["provisioned"];
                serde_json::json!({
                    "clusterName": c["clusterName"],
                    "state": c["state"],
                    "tags": c["tags"],
                    "scram": p["clientAuthentication"]["sasl"]["scram"]["enabled"],
                    "unauthenticated": p["clientAuthentication"]["unauthenticated"]["enabled"],
                    "clientBroker": p["encryptionInfo"]["encryptionInTransit"]["clientBroker"],
                })
            })
            .collect()
    }

    pub(crate) async fn rds_instance(&self, id: &str) -> Option<aws_sdk_rds::types::DbInstance> {
        self.rds()
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .ok()
            .and_then(|o| o.db_instances().first().cloned())
    }

    pub(crate) async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<BTreeMap<String, String>> {
        let api: Api<Secret> = Api::namespaced(self.sim.client().unwrap(), namespace);
        let secret = api.get_opt(name).await.unwrap()?;
        Some(
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
                .collect(),
        )
    }
}

pub(crate) fn rds_tags(db: &aws_sdk_rds::types::DbInstance) -> BTreeMap<String, String> {
    db.tag_list()
        .iter()
        .map(|t| {
            (
                t.key().unwrap().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub(crate) fn ok(o: &Output) {
    assert!(o.status.success(), "{}\n{}", stdout(o), stderr(o));
}

/// `AWS: N API calls, M writes` of an apply.
pub(crate) fn aws_counts(o: &Output) -> (usize, usize) {
    let text = stdout(o);
    let line = text
        .lines()
        .find(|l| l.starts_with("AWS: "))
        .unwrap_or_else(|| panic!("no AWS line in {text}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (numbers[0], numbers[1])
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
