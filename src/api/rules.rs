//! Messages of the CRD's CEL rules, shared by the CRD (`x-kubernetes-validations`) and the
//! native evaluation in `panthera validate` so both say the same thing.

/// One constant per rule message.
pub mod msg {
    pub const NAME_LENGTH: &str =
        "metadata.name must be at most 24 characters: child object names append suffixes to it";
    pub const DATABASE_EXISTS: &str =
        "every services[].database must name an entry of spec.databases";
    pub const ROUTE_SERVICE_EXISTS: &str =
        "every gateway.routes[].service must name an entry of spec.services";
    pub const CACHE_NEEDS_REDIS: &str = "a service with cache: true needs spec.redis";
    pub const TOPIC_EXISTS: &str =
        "every services[].topics entry must name a topic of spec.kafka.topics";
    pub const SHARED_LIMIT_NEEDS_REDIS: &str = "gateway.rateLimit.shared needs spec.redis";
    pub const MIN_LE_MAX: &str = "minReplicas must be <= maxReplicas";
    pub const TLS_NEEDS_HOST: &str = "gateway.tls needs gateway.host";
    pub const ONE_KEY_SOURCE: &str =
        "set exactly one of jwksUrl (RS256/ES256) or hs256SecretRef (HS256)";
    pub const CUSTOM_NEEDS_IMAGE: &str = "a service of kind custom needs image";
    pub const RESERVED_ENV: &str = "this variable is set by Panthera from the platform's connection Secrets and cannot be overridden";
    pub const DATABASE_BACKEND_IMMUTABLE: &str = "backend is immutable: moving a database between cluster and aws would lose its data; add a new database instead";
    pub const DATABASE_STORAGE_IMMUTABLE: &str =
        "storage of a cluster database is immutable (StatefulSet volume claims cannot change)";
    pub const DATABASE_VERSION_IMMUTABLE: &str =
        "version of a cluster database is immutable: a major upgrade needs pg_upgrade";
    pub const BACKEND_IMMUTABLE: &str = "backend is immutable";
    pub const REPLICATION_LE_BROKERS: &str =
        "a topic's replicationFactor cannot exceed kafka.brokers";
    pub const TOPIC_NAME: &str =
        "topic names are 1-100 characters of letters, digits, '.', '_' and '-'";
    pub const PARTITIONS_NOT_DECREASED: &str = "partitions cannot be decreased";
    pub const AWS_NEEDS_SPEC: &str =
        "data stores with backend: aws need spec.aws (subnetIds and securityGroupIds)";
    pub const MSK_BROKERS_PER_SUBNET: &str = "an MSK cluster (kafka backend: aws) needs kafka.brokers to be a multiple of the number of spec.aws.subnetIds";
    pub const ROLES_NEED_JWT: &str =
        "route rules that require roles or scopes need gateway.auth.jwt";
    pub const METHOD_IN_ONE_RULE: &str = "a method may appear in one rule of a route only";
    pub const PUBLIC_RULE_NO_ROLES: &str = "a public rule cannot require roles or scopes";
    pub const ADMIN_SECRET_USERS_ONLY: &str = "adminSecret is for services of kind users";
    pub const NO_BACKUPS_NEEDS_DELETE: &str = "backup.retentionDays 0 turns off the backups that restore and the final snapshot rely on; it needs deletionPolicy: Delete";
    pub const DATABASE_AWS_ONLY: &str = "highAvailability, maxStorage, maintenanceWindow and backup.window are RDS settings and need backend: aws";
    pub const REDIS_AWS_ONLY: &str =
        "replicas and snapshot.window are ElastiCache settings and need backend: aws";
    pub const KAFKA_AWS_ONLY: &str =
        "clientAuthentication and scramKmsKey are MSK settings and need backend: aws";
    pub const SCRAM_NEEDS_KMS_KEY: &str = "kafka with backend: aws and SCRAM authentication needs scramKmsKey: MSK refuses SCRAM secrets encrypted with the default key";
    pub const MONITORING_NEEDS_SELECTOR: &str =
        "gateway.monitoring needs a namespaceSelector or a podSelector";
    pub const LABEL_KEY: &str = "label keys are an optional DNS subdomain and '/', then 1-63 letters, digits, '-', '_' or '.' starting and ending with a letter or digit";
    pub const RESOURCE_ATTRIBUTE_KEY: &str = "observability.tracing.resourceAttributes keys start with a letter, then letters, digits, '.', '_' or '-'";
    pub const MONITORING_LABEL_RESERVED: &str = "observability.prometheus.labels cannot set panthera.dev/ or app.kubernetes.io/ labels: Panthera sets those itself";
    pub const SEARCH_NEEDS_SPEC: &str = "a service with search: true needs spec.search";
    pub const SEARCH_AWS_ONLY: &str = "instanceCount, availabilityZones and dedicatedMasters are OpenSearch Service settings and need backend: aws (in the cluster, search runs as one node)";
    pub const SEARCH_NODES_PER_ZONE: &str =
        "search.instanceCount must be a multiple of search.availabilityZones";
    pub const SEARCH_SUBNET_PER_ZONE: &str = "an OpenSearch Service domain (search backend: aws) needs a subnet per availability zone: spec.aws.subnetIds must list at least search.availabilityZones subnets";
    pub const BUCKET_AWS_SETTINGS: &str = "kmsKeyId and lifecycle.transitions are S3 settings and need backend: aws (the server in the cluster has no KMS and one storage class)";
    pub const EMPTY_ON_DELETE_NEEDS_DELETE: &str =
        "emptyOnDelete deletes the bucket's objects and needs deletionPolicy: Delete";
    pub const BUCKET_EXISTS: &str =
        "every services[].buckets entry must name a bucket of spec.buckets";
    pub const EDGE_NEEDS_AWS: &str = "edge (CloudFront and WAF) runs on AWS and needs spec.aws";
    pub const EDGE_NEEDS_GATEWAY_HOST: &str = "edge needs gateway.host: the platform's host is the distribution's alias and the Host its origin is asked for";
    pub const EDGE_ASSETS_BUCKET: &str =
        "edge.staticAssets.bucket must name a bucket of spec.buckets with backend: aws";
    pub const SEARCH_MASTER_COUNT: &str = "dedicatedMasters.count is 3 or 5";
    pub const EXISTING_NEEDS_AWS: &str =
        "existingIdentifier names an AWS resource to adopt and needs backend: aws";
}

/// Rules `validate` checks natively that are not in the CRD: their worst case over the schema's
/// bounds (1,000 routes x 1,000 services, 1,000 services x 10 buckets) is over the API server's
/// CEL cost budget, and the server would refuse the whole CRD. The operator reports them as
/// Stalled/InvalidSpec.
pub const NATIVE_ONLY: &[&str] = &[msg::ROUTE_SERVICE_EXISTS, msg::BUCKET_EXISTS];

/// Environment variables a service may not set itself (see the reserved-env rule).
pub const RESERVED_ENV_NAMES: &[&str] = &[
    "PORT",
    "SERVICE_NAME",
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BROKERS",
    "KAFKA_TOPICS",
    "JWT_HS256_SECRET",
    "CATALOG_URL",
    "IDENTITY_KEYS",
    "IDENTITY_VERIFY",
    "SEARCH_ENDPOINT",
    "SEARCH_USERNAME",
    "SEARCH_PASSWORD",
    "S3_BUCKET",
    "S3_REGION",
    "S3_ENDPOINT",
    "S3_FORCE_PATH_STYLE",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
];
