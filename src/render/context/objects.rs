//! Buckets: on AWS only their connection Secret; in the cluster one S3-compatible server per
//! platform (versitygw over a POSIX directory on a volume) for all the cluster buckets, each
//! bucket with an access key of its own that reaches that bucket only, made by a Job.

use serde_json::{Value, json};

use super::stores::Workload;
use super::*;
use crate::api::OBJECTS_REGION;

/// The object server's image: the official one (Alpine, with `sh`, which the setup Jobs use),
/// at the version the tests run.
pub const OBJECTS_IMAGE: &str = "docker.io/versity/versitygw:v1.8.0";
/// Where the server reads its accounts (versitygw's internal IAM: `users.json` in `--iam-dir`),
/// mounted from the server's Secret.
const IAM_DIR: &str = "/etc/versitygw/iam";
/// The key of the server's Secret with the accounts, in versitygw's own format.
const ACCOUNTS_KEY: &str = "users.json";
/// Keys of the server's Secret with the root account, which only the server and the setup Jobs
/// read.
const ROOT_ACCESS_KEY: &str = "rootAccessKeyId";
const ROOT_SECRET_KEY: &str = "rootSecretAccessKey";
/// The generated key of a cluster bucket's connection Secret.
const SECRET_KEY: &str = "secretAccessKey";

impl ContextBuilder<'_> {
    fn cluster_buckets(&self) -> impl Iterator<Item = &BucketSpec> {
        self.spec()
            .buckets
            .iter()
            .filter(|b| b.backend == Backend::Cluster)
    }

    /// The S3 name of a bucket, which is also its access key id on the server: one account per
    /// bucket, named after what it may reach (ids are not secret; the secret key is).
    fn bucket_name(&self, bucket: &BucketSpec) -> String {
        bucket.bucket_name(&self.names.platform, &self.names.namespace)
    }

    /// `http://{platform}-objects.{namespace}.svc:7070`: plain HTTP inside the cluster, where
    /// the NetworkPolicy admits only the bucket's services and the setup Jobs.
    fn objects_endpoint(&self) -> String {
        format!(
            "http://{}:{OBJECTS_PORT}",
            self.names.svc_host(&self.names.objects())
        )
    }

    /// The server of the cluster buckets.
    pub(super) fn objects(&self) -> ComponentContext {
        let name = self.names.objects();
        let store = self.spec().object_store.clone().unwrap_or_default();
        // The volume holds every cluster bucket: it goes only when all of them say Delete.
        let deletion_policy = if self
            .cluster_buckets()
            .all(|b| b.deletion_policy == DeletionPolicy::Delete)
        {
            DeletionPolicy::Delete
        } else {
            DeletionPolicy::Retain
        };
        // One account per bucket, role `user`: it reaches only the buckets it owns, and cannot
        // create any. versitygw reads them from users.json (its format) in the IAM directory.
        let mut accounts = serde_json::Map::new();
        let mut ids = Vec::new();
        for bucket in self.cluster_buckets() {
            let id = self.bucket_name(bucket);
            let secret = self
                .secrets
                .value(&self.names.bucket_secret(&bucket.name), SECRET_KEY);
            accounts.insert(
                id.clone(),
                json!({"access": id, "secret": secret, "role": "user",
                       "userID": 0, "groupID": 0, "projectID": 0}),
            );
            ids.push(id);
        }
        let users = json!({ "accessAccounts": accounts }).to_string();
        let clients: Vec<&ServiceSpec> = self
            .spec()
            .services
            .iter()
            .filter(|s| self.cluster_buckets().any(|b| s.buckets.contains(&b.name)))
            .collect();
        let mut ingress = self.allow_from_services(&clients, OBJECTS_PORT);
        ingress.push(json!({
            "from": [{"podSelector": {"matchLabels": self.setup_pod_selector()}}],
            "ports": [{"protocol": "TCP", "port": OBJECTS_PORT}],
        }));
        let base = Workload {
            kind: ComponentKind::Objects,
            component: "objects",
            name: &name,
            image: OBJECTS_IMAGE.to_string(),
            uid: OBJECTS_UID,
            port: OBJECTS_PORT,
            deletion_policy,
            resources: resources(&store.resources, ("100m", "128Mi"), ("1", "512Mi")),
            storage_class: store.storage_class_name.as_deref(),
        };
        let values = self.workload(
            base,
            json!({
                "storage": store.storage(),
                "region": OBJECTS_REGION,
                "iamDir": IAM_DIR,
                "accountsKey": ACCOUNTS_KEY,
                "rootAccessKey": ROOT_ACCESS_KEY,
                "rootSecretKey": ROOT_SECRET_KEY,
                // The pod rolls when an account comes or goes: the server caches accounts, and a
                // Secret volume is refreshed only at the kubelet's next sync. Ids only, no secret.
                "accountsChecksum": short_hash(&ids.join(",")),
                "secret": {
                    "name": name,
                    "data": {
                        ROOT_ACCESS_KEY: self.secrets.value(&name, ROOT_ACCESS_KEY),
                        ROOT_SECRET_KEY: self.secrets.value(&name, ROOT_SECRET_KEY),
                        ACCOUNTS_KEY: users,
                    },
                },
                "ingress": ingress,
                "setupPodSelector": self.setup_pod_selector(),
            }),
        );
        ComponentContext::new(ComponentKind::Objects, "objects", Backend::Cluster, values)
    }

    /// The setup Jobs' pods: the only pods besides the services that reach the server.
    fn setup_pod_selector(&self) -> Value {
        json!({LABEL_PLATFORM: self.names.platform, LABEL_COMPONENT: ComponentKind::Bucket.as_str()})
    }

    /// A bucket. On AWS only its connection Secret, which the engine writes once the bucket
    /// exists (the endpoint and region come from AWS); the services reach S3 with their own AWS
    /// identity (IRSA), so the keys are empty and the SDKs use the standard credentials chain.
    /// In the cluster the Secret (endpoint, path-style, the bucket's own key) and a Job that
    /// creates the bucket for its account, or gives it back to that account if it exists.
    pub(super) fn bucket(&self, bucket: &BucketSpec) -> ComponentContext {
        let secret_name = self.names.bucket_secret(&bucket.name);
        let bucket_name = self.bucket_name(bucket);
        let labels = self.labels(Some((
            ComponentKind::Bucket,
            &bucket.name,
            &bucket.name,
            "bucket",
        )));
        let data = match bucket.backend {
            Backend::Aws => json!({
                "bucket": bucket_name,
                "region": "", "endpoint": "", "forcePathStyle": "false",
                "accessKeyId": "", "secretAccessKey": "",
            }),
            // Path-style: a host per bucket (virtual-host style) would need a DNS name per
            // bucket in the cluster.
            Backend::Cluster => json!({
                "bucket": bucket_name,
                "region": OBJECTS_REGION,
                "endpoint": self.objects_endpoint(),
                "forcePathStyle": "true",
                "accessKeyId": bucket_name,
                SECRET_KEY: self.secrets.value(&secret_name, SECRET_KEY),
            }),
        };
        let setup = match bucket.backend {
            Backend::Aws => json!(false),
            Backend::Cluster => self.bucket_setup(&bucket_name, &labels),
        };
        let values = json!({
            "name": secret_name,
            "labels": labels,
            "deletionPolicy": bucket.deletion_policy,
            "secret": {"name": secret_name, "data": data},
            "setup": setup,
        });
        ComponentContext::new(
            ComponentKind::Bucket,
            bucket.name.clone(),
            bucket.backend,
            values,
        )
    }

    /// The Job that makes a cluster bucket exist, owned by its account. Named after a hash of
    /// what it does (a Job's pod template is immutable: a change is a new Job, the old one
    /// pruned); run again, it changes nothing.
    fn bucket_setup(&self, bucket: &str, labels: &BTreeMap<String, String>) -> Value {
        let objects = self.names.objects();
        // Create the bucket for its account; if that fails (it exists, the server is not up
        // yet, or has not read the account yet), give the existing bucket to the account; retry
        // both until one succeeds, for up to five minutes.
        let script = format!(
            "set -u\n\
             admin() {{ versitygw admin --endpoint-url {endpoint} --region {OBJECTS_REGION} \"$@\"; }}\n\
             n=0\n\
             until admin create-bucket --owner {bucket} --bucket {bucket} 2>/dev/null \
             || admin change-bucket-owner --owner {bucket} --bucket {bucket}; do\n\
             \x20 n=$((n + 1)); [ \"$n\" -lt 150 ] || exit 1; sleep 2\n\
             done\n\
             echo \"bucket {bucket} is owned by its account\"\n",
            endpoint = self.objects_endpoint(),
        );
        let job = format!(
            "{}-bucket-{}",
            self.names.platform,
            short_hash(&format!("{OBJECTS_IMAGE}\n{script}"))
        );
        json!({
            "job": job,
            "labels": labels,
            "image": OBJECTS_IMAGE,
            "uid": OBJECTS_UID,
            "script": script,
            "rootSecret": objects,
            "rootAccessKey": ROOT_ACCESS_KEY,
            "rootSecretKey": ROOT_SECRET_KEY,
        })
    }
}
