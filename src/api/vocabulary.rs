//! The words every layer shares: the labels and annotations Panthera puts on what it creates, its
//! field manager, the ports of the components, the order in which components are applied, and how
//! a platform is addressed. Kept here, at the bottom, so that the renderer, the AWS reconciler,
//! the engine and the operator agree without importing each other.

use super::{Backend, ComponentKind, PantheraPlatform};

/// Label keys every child carries.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_PLATFORM: &str = "panthera.dev/platform";
/// Name of the component (service, database, `gateway`, `redis`, `kafka`, `search`) an object
/// belongs to.
pub const LABEL_PLATFORM_COMPONENT: &str = "panthera.dev/component";
/// Field manager and `managed-by` value.
pub const MANAGER: &str = "panthera";
/// Annotation on data-store children (and tag on AWS resources) recording their deletion
/// policy, read by prune and destroy.
pub const DELETION_POLICY: &str = "panthera.dev/deletion-policy";

/// Ports the components listen on, in the cluster and in the connection Secrets.
pub const POSTGRES_PORT: u16 = 5432;
pub const REDIS_PORT: u16 = 6379;
/// OpenSearch's REST port.
pub const SEARCH_PORT: u16 = 9200;
/// The S3 port of the object server in the cluster (versitygw's default).
pub const OBJECTS_PORT: u16 = 7070;
/// The region the object server in the cluster answers as (what the SDKs sign for).
pub const OBJECTS_REGION: &str = "us-east-1";
pub const KAFKA_PORT: u16 = 9092;
pub const KAFKA_CONTROLLER_PORT: u16 = 9093;
/// MSK's TLS listener for clients without authentication.
pub const MSK_TLS_PORT: u16 = 9094;
/// MSK's SASL/SCRAM listener (over TLS).
pub const MSK_SCRAM_PORT: u16 = 9096;
/// The SCRAM user name Panthera gives the services on MSK (its password is generated and kept in
/// the cluster's `AmazonMSK_` secret in Secrets Manager).
pub const MSK_SCRAM_USERNAME: &str = "panthera";
/// The port of the AWS services the platform's pods reach over HTTPS only (an OpenSearch
/// Service domain, S3).
pub const AWS_HTTPS_PORT: u16 = 443;
/// The master user of an OpenSearch Service domain (fine-grained access control's internal user
/// database); its password is in Secrets Manager and the connection Secret.
pub const OPENSEARCH_MASTER_USERNAME: &str = "panthera";
/// Where the services find the CA bundle that vouches for their AWS data stores (the RDS bundle),
/// mounted from the ConfigMap `{platform}-ca-bundle`, key [`CA_BUNDLE_KEY`].
pub const CA_BUNDLE_DIR: &str = "/etc/panthera/ca";
pub const CA_BUNDLE_KEY: &str = "ca-bundle.pem";
pub const GATEWAY_PORT: u16 = 8080;
pub const GATEWAY_ADMIN_PORT: u16 = 9090;

/// The phases of an apply, in order: each waits for the one before when asked to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Platform-wide objects and the data stores.
    DataStores,
    /// The microservices, which need their stores.
    Services,
    /// The gateway, which needs the services.
    Gateway,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::DataStores, Phase::Services, Phase::Gateway];

    /// The phase of a component; `None` is the platform-wide part (shared Secrets, policies).
    pub fn of(kind: Option<ComponentKind>) -> Self {
        match kind {
            None
            | Some(
                ComponentKind::Postgres
                | ComponentKind::Redis
                | ComponentKind::Kafka
                | ComponentKind::Search
                | ComponentKind::Bucket
                | ComponentKind::Objects,
            ) => Phase::DataStores,
            Some(ComponentKind::Service) => Phase::Services,
            // The edge is reconciled with the AWS stores; in front of the gateway, it counts
            // in the gateway's phase.
            Some(ComponentKind::Gateway | ComponentKind::Edge) => Phase::Gateway,
        }
    }
}

impl ComponentKind {
    /// Every kind, in apply order.
    pub const ALL: [ComponentKind; 9] = [
        ComponentKind::Postgres,
        ComponentKind::Redis,
        ComponentKind::Kafka,
        ComponentKind::Search,
        ComponentKind::Objects,
        ComponentKind::Bucket,
        ComponentKind::Service,
        ComponentKind::Gateway,
        ComponentKind::Edge,
    ];

    /// The kind named by `label` (the `app.kubernetes.io/component` label's value).
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == label)
    }

    /// Whether this kind holds data (deletion policies apply).
    pub fn is_data_store(self) -> bool {
        matches!(
            self,
            ComponentKind::Postgres
                | ComponentKind::Redis
                | ComponentKind::Kafka
                | ComponentKind::Search
                | ComponentKind::Bucket
                | ComponentKind::Objects
        )
    }

    /// How a component is named in progress, errors and status: `service/users`,
    /// `postgres/users`, `redis`, `kafka`, `gateway` (a service and a database may share a name).
    pub fn component_id(self, name: &str) -> String {
        match self {
            k if k.as_str() == name
                || matches!(k, ComponentKind::Gateway | ComponentKind::Edge) =>
            {
                k.as_str().to_string()
            }
            k => format!("{}/{name}", k.as_str()),
        }
    }
}

impl Backend {
    /// The backend named by `value` (`cluster`, `aws`).
    pub fn parse(value: &str) -> Option<Self> {
        [Backend::Cluster, Backend::Aws]
            .into_iter()
            .find(|b| b.as_str() == value)
    }
}

impl PantheraPlatform {
    /// Name and namespace (`default` when unset, as kubectl would).
    pub fn ids(&self) -> (String, String) {
        (
            self.metadata.name.clone().unwrap_or_default(),
            self.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        )
    }
}

/// An AWS identifier from `raw`: lowercase letters, digits and single hyphens, starting with a
/// letter, at most `max` characters, not ending with a hyphen (the strictest of RDS, ElastiCache
/// and MSK's rules; OpenSearch Service's are the same).
pub fn aws_identifier(raw: &str, max: usize) -> String {
    let mut out = String::new();
    for c in raw.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        if out.is_empty() && !c.is_ascii_alphabetic() {
            out.push('p');
        }
        out.push(c);
    }
    out.truncate(max);
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids_name_the_kind_unless_the_name_says_it() {
        assert_eq!(
            ComponentKind::Service.component_id("users"),
            "service/users"
        );
        assert_eq!(
            ComponentKind::Postgres.component_id("users"),
            "postgres/users"
        );
        assert_eq!(ComponentKind::Redis.component_id("redis"), "redis");
        assert_eq!(ComponentKind::Gateway.component_id("edge"), "gateway");
    }

    #[test]
    fn phases_follow_dependencies() {
        assert_eq!(Phase::of(None), Phase::DataStores);
        assert_eq!(Phase::of(Some(ComponentKind::Kafka)), Phase::DataStores);
        assert!(Phase::of(Some(ComponentKind::Service)) < Phase::of(Some(ComponentKind::Gateway)));
        for kind in ComponentKind::ALL {
            assert_eq!(ComponentKind::from_label(kind.as_str()), Some(kind));
        }
        assert_eq!(Backend::parse("aws"), Some(Backend::Aws));
        assert_eq!(Backend::parse("gcp"), None);
    }
}
