//! Data stores as AWS managed services: PostgreSQL on RDS, Redis on ElastiCache (replication
//! group), Kafka on MSK (provisioned), master credentials in Secrets Manager.
//!
//! Every store is reconciled the same way: describe, create when missing, modify what differs
//! (classified in [`model`]), report `creating` / `modifying` / `available` with the ARN and the
//! endpoint. Resources carry ownership tags (`panthera.dev/platform`, `panthera.dev/namespace`,
//! `panthera.dev/component`); a resource without them is never modified or deleted, and adopted
//! only when the spec names it (`existingIdentifier`). Configuration is the standard one
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, the credentials chain); throttling and transient errors are
//! retried by the SDK with exponential backoff, what is left is reported terminal or transient.

mod elasticache;
pub mod model;
mod msk;
mod rds;
mod secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};

use crate::api::{DeletionPolicy, PantheraPlatform};
pub use model::{Action, Observed, Owner, Planned, Service, Store};
use model::{Network, Phase};

/// An AWS failure, terminal (fix the spec, the account or the credentials) or transient (retry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{component}: {message}")]
pub struct Error {
    pub component: String,
    pub message: String,
    pub terminal: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Error codes that waiting cures: throttling, server trouble, a resource busy with another change.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerErrorException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBSubnetGroupStateFault",
    "InvalidReplicationGroupState",
    "InvalidReplicationGroupStateFault",
    "InvalidCacheClusterState",
    "InvalidCacheClusterStateFault",
    "InvalidCacheSubnetGroupStateFault",
    "ConflictException",
];

/// Whether an AWS error code needs a person (invalid parameter, quota, access) rather than time.
/// No code (timeouts, connection failures, a 5xx without a body) is transient.
pub fn is_terminal(code: Option<&str>) -> bool {
    code.is_some_and(|c| !TRANSIENT_CODES.contains(&c))
}

const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role (IRSA, ECS task role, EC2 instance profile)";

/// An error and its causes, by their Display only: the Debug form of an SDK error carries the raw
/// response, whose body may hold a secret (GetSecretValue).
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Turn an SDK error into what the user can act on, naming the failed action.
fn classify<E, R>(component: &str, action: &str, e: &SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = e.code().map(str::to_string);
    let (message, terminal) = match (&code, e) {
        (Some(code), _) => (
            format!(
                "cannot {action}: {code}: {}",
                e.message().unwrap_or("no message")
            ),
            is_terminal(Some(code)),
        ),
        (None, SdkError::ServiceError(_) | SdkError::ResponseError(_)) => {
            (format!("cannot {action}: {}", chain(e)), false)
        }
        (None, _) => {
            let text = chain(e);
            let lower = text.to_ascii_lowercase();
            if lower.contains("credential") {
                (format!("cannot {action}: {NO_CREDENTIALS} ({text})"), true)
            } else if (lower.contains("region") && lower.contains("missing"))
                || lower.contains("no region")
            {
                (
                    format!(
                        "cannot {action}: no AWS region: set AWS_REGION or spec.aws.region ({text})"
                    ),
                    true,
                )
            } else {
                (format!("cannot {action}: {text}"), false)
            }
        }
    };
    Error {
        component: component.to_string(),
        message,
        terminal,
    }
}

/// Retries of throttled and transient calls: 8 attempts, exponential backoff with jitter, at most
/// 20 s apart.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_max_backoff(Duration::from_secs(20))
}

/// HTTPS client of the SDK: rustls with ring, like kube (see Cargo.toml).
pub fn http_client() -> aws_sdk_rds::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// The service clients of one region.
struct Clients {
    rds: aws_sdk_rds::Client,
    elasticache: aws_sdk_elasticache::Client,
    kafka: aws_sdk_kafka::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

struct Inner {
    config: SdkConfig,
    by_region: Mutex<BTreeMap<String, Arc<Clients>>>,
    calls: AtomicUsize,
    writes: AtomicUsize,
    write_log: Mutex<Vec<String>>,
}

/// Clients for RDS, ElastiCache, MSK and Secrets Manager, with counters of the calls made (every
/// mutating call is counted: a re-apply of an unchanged platform makes none). Cheap to clone.
#[derive(Clone)]
pub struct Aws {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws")
            .field("region", &self.inner.config.region())
            .field("calls", &self.calls())
            .field("writes", &self.writes())
            .finish()
    }
}

impl Aws {
    /// The standard AWS configuration: `AWS_REGION`/profile, `AWS_ENDPOINT_URL` (and the
    /// per-service `AWS_ENDPOINT_URL_<SERVICE>`), the default credentials chain; throttling and
    /// transient errors retried up to 8 attempts with exponential backoff (at most 20 s apart).
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .retry_config(retry_config())
            .load()
            .await;
        Self::from_config(config)
    }

    /// Clients from an explicit configuration (tests, or a caller with its own settings).
    pub fn from_config(config: SdkConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                by_region: Mutex::new(BTreeMap::new()),
                calls: AtomicUsize::new(0),
                writes: AtomicUsize::new(0),
                write_log: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Region of the configuration (a platform's `spec.aws.region` overrides it).
    pub fn region(&self) -> Option<String> {
        self.inner.config.region().map(ToString::to_string)
    }

    /// AWS API calls made so far (reads and writes).
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// Mutating AWS API calls made so far.
    pub fn writes(&self) -> usize {
        self.inner.writes.load(Ordering::Relaxed)
    }

    /// The mutating calls made so far, as `Operation identifier`.
    pub fn write_log(&self) -> Vec<String> {
        self.inner
            .write_log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    fn clients(&self, region: Option<&str>) -> Arc<Clients> {
        let key = region.unwrap_or_default().to_string();
        let mut map = match self.inner.by_region.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry(key)
            .or_insert_with(|| {
                let region = region.map(|r| Region::new(r.to_string()));
                let config = &self.inner.config;
                let region = region.or_else(|| config.region().cloned());
                Arc::new(Clients {
                    rds: aws_sdk_rds::Client::from_conf(
                        aws_sdk_rds::config::Builder::from(config)
                            .region(region.clone())
                            .build(),
                    ),
                    elasticache: aws_sdk_elasticache::Client::from_conf(
                        aws_sdk_elasticache::config::Builder::from(config)
                            .region(region.clone())
                            .build(),
                    ),
                    kafka: aws_sdk_kafka::Client::from_conf(
                        aws_sdk_kafka::config::Builder::from(config)
                            .region(region.clone())
                            .build(),
                    ),
                    secrets: aws_sdk_secretsmanager::Client::from_conf(
                        aws_sdk_secretsmanager::config::Builder::from(config)
                            .region(region)
                            .build(),
                    ),
                })
            })
            .clone()
    }

    fn ctx<'a>(&'a self, region: Option<&str>, component: &'a str) -> Ctx<'a> {
        Ctx {
            aws: self,
            clients: self.clients(region),
            component,
        }
    }

    fn check_region(&self, network: &Network, component: &str) -> Result<()> {
        if network.region.is_none() && self.inner.config.region().is_none() {
            return Err(Error {
                component: component.to_string(),
                message: "no AWS region: set spec.aws.region or AWS_REGION".into(),
                terminal: true,
            });
        }
        Ok(())
    }
}

/// One component's calls: the clients, and the counters.
struct Ctx<'a> {
    aws: &'a Aws,
    clients: Arc<Clients>,
    component: &'a str,
}

impl Ctx<'_> {
    fn read(&self) {
        self.aws.inner.calls.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, operation: &str, target: &str) {
        self.aws.inner.calls.fetch_add(1, Ordering::Relaxed);
        self.aws.inner.writes.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut log) = self.aws.inner.write_log.lock() {
            log.push(format!("{operation} {target}"));
        }
    }

    fn err<E, R>(&self, action: &str, e: &SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        classify(self.component, action, e)
    }

    fn terminal(&self, message: impl Into<String>) -> Error {
        Error {
            component: self.component.to_string(),
            message: message.into(),
            terminal: true,
        }
    }
}

/// How to reconcile.
#[derive(Clone, Debug, Default)]
pub struct ReconcileOptions {
    /// Let a store be deleted (by its deletion policy) and created again when a change needs it.
    pub allow_replace: bool,
    /// Describe and plan only: no AWS write.
    pub dry_run: bool,
    /// Passwords already in the platform's connection Secrets, by component (`postgres/users`):
    /// used when Secrets Manager has none yet, so a password is never rotated by Panthera.
    pub known_passwords: BTreeMap<String, String>,
}

/// One store after reconcile or observe.
#[derive(Clone, Debug)]
pub struct StoreState {
    pub store: Store,
    pub planned: Option<Planned>,
    pub ready: bool,
    /// `creating`, `modifying`, `available`, ...; never a secret.
    pub message: String,
    pub arn: Option<String>,
    /// `host:port`, or the MSK bootstrap broker list.
    pub endpoint: Option<String>,
    /// Clients must use TLS (ElastiCache in-transit encryption).
    pub tls: bool,
    /// The store checks a password (false for an adopted ElastiCache group without AUTH).
    pub auth: bool,
    /// The master password (reconcile only), for the connection Secret.
    pub password: Option<String>,
}

impl StoreState {
    fn from_observed(store: &Store, observed: Option<&Observed>) -> Self {
        let (ready, message) = match observed {
            Some(o) => model::progress(store.service, o),
            None => (false, "not created yet".to_string()),
        };
        Self {
            store: store.clone(),
            planned: None,
            ready,
            message,
            arn: observed.map(|o| o.arn.clone()),
            endpoint: observed.and_then(|o| o.endpoint.clone()),
            tls: observed.is_some_and(|o| o.tls),
            auth: observed.is_none_or(|o| o.auth),
            password: None,
        }
    }
}

/// What dereference reads of one aws store, before anything is written.
#[derive(Clone, Debug)]
pub struct Observation {
    pub store: Store,
    /// AWS's description of the resource; `None`: it does not exist.
    pub observed: Option<Observed>,
    /// The master password in Secrets Manager, if there is one.
    pub password: Option<String>,
}

impl StoreState {
    /// The state of an observed store, with the password Secrets Manager holds.
    pub fn from_observation(o: &Observation) -> Self {
        let mut state = Self::from_observed(&o.store, o.observed.as_ref());
        state.password = o.password.clone();
        state
    }
}

/// What destroy did and what AWS is still deleting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Teardown {
    /// Resources deleted, or retained and untagged, in this call.
    pub deleted: Vec<String>,
    /// Resources AWS is still deleting, with what and for how long.
    pub waiting: Vec<String>,
}

impl Aws {
    async fn describe(&self, ctx: &Ctx<'_>, store: &Store) -> Result<Option<Observed>> {
        match store.service {
            Service::Rds => rds::observe(ctx, &store.identifier).await,
            Service::ElastiCache => elasticache::observe(ctx, &store.identifier).await,
            Service::Msk => msk::observe(ctx, &store.identifier).await,
        }
    }

    /// What apply would do to each aws store; reads only. Refuses (terminal) a resource that
    /// exists but is not the platform's.
    pub async fn plan(&self, platform: &PantheraPlatform) -> Result<Vec<Planned>> {
        let observations = self.observe_stores(platform).await?;
        self.plan_observed(platform, &observations)
    }

    /// Reads every aws store of `platform`: AWS's description and the password Secrets Manager
    /// holds. Nothing is written.
    pub async fn observe_stores(&self, platform: &PantheraPlatform) -> Result<Vec<Observation>> {
        let owner = Owner::of(platform);
        let network = model::network(platform);
        let mut out = Vec::new();
        for store in model::stores(platform) {
            self.check_region(&network, &store.component)?;
            let ctx = self.ctx(network.region.as_deref(), &store.component);
            let observed = self.describe(&ctx, &store).await?;
            let password = if store.has_password() {
                secrets::get(&ctx, &model::secret_name(&owner, &store.component)).await?
            } else {
                None
            };
            out.push(Observation {
                store,
                observed,
                password,
            });
        }
        Ok(out)
    }

    /// Plans each observed store (pure). Refuses (terminal) a resource that exists but is not
    /// the platform's.
    pub fn plan_observed(
        &self,
        platform: &PantheraPlatform,
        observations: &[Observation],
    ) -> Result<Vec<Planned>> {
        let owner = Owner::of(platform);
        let network = model::network(platform);
        observations
            .iter()
            .map(|o| {
                model::plan(&owner, &o.store, &network, o.observed.as_ref()).map_err(|m| Error {
                    component: o.store.component.clone(),
                    message: m,
                    terminal: true,
                })
            })
            .collect()
    }

    /// State of each aws store, without writing.
    pub async fn observe(&self, platform: &PantheraPlatform) -> Result<Vec<StoreState>> {
        let network = model::network(platform);
        let mut out = Vec::new();
        for store in model::stores(platform) {
            self.check_region(&network, &store.component)?;
            let ctx = self.ctx(network.region.as_deref(), &store.component);
            let observed = self.describe(&ctx, &store).await?;
            out.push(StoreState::from_observed(&store, observed.as_ref()));
        }
        Ok(out)
    }

    /// Describe one store again (for waits); a replaced store whose delete is done is created
    /// again here, so one `apply --wait` carries a replace through.
    pub async fn refresh(&self, platform: &PantheraPlatform, state: &mut StoreState) -> Result<()> {
        let network = model::network(platform);
        let ctx = self.ctx(network.region.as_deref(), &state.store.component);
        let mut observed = self.describe(&ctx, &state.store).await?;
        // The delete of a replace is done: the wait goes on with the new store.
        if observed.is_none()
            && state
                .planned
                .as_ref()
                .is_some_and(|p| p.action == Action::Replace)
        {
            let tags = model::tags(&Owner::of(platform), &state.store);
            self.create_store(
                &ctx,
                &state.store,
                &network,
                &tags,
                state.password.as_deref(),
            )
            .await?;
            observed = self.describe(&ctx, &state.store).await?;
        }
        if let Some(o) = &observed
            && model::phase(state.store.service, &o.status) == Phase::Failed
        {
            return Err(ctx.terminal(format!(
                "{} {} failed (status {})",
                state.store.service.resource(),
                state.store.identifier,
                o.status
            )));
        }
        let fresh = StoreState::from_observed(&state.store, observed.as_ref());
        state.ready = fresh.ready;
        state.message = fresh.message;
        state.arn = fresh.arn;
        state.endpoint = fresh.endpoint;
        state.tls = fresh.tls;
        state.auth = fresh.auth;
        Ok(())
    }

    /// Reconcile every aws store of `platform`: plan all first (nothing is written when a store
    /// is foreign, or would be replaced without `allow_replace`), then create, adopt or modify.
    pub async fn reconcile(
        &self,
        platform: &PantheraPlatform,
        observations: &[Observation],
        options: &ReconcileOptions,
    ) -> Result<Vec<StoreState>> {
        let owner = Owner::of(platform);
        let network = model::network(platform);
        let planned = self.plan_observed(platform, observations)?;
        let work: Vec<(Store, Option<Observed>, Option<String>, Planned)> = observations
            .iter()
            .zip(planned)
            .map(|(o, p)| (o.store.clone(), o.observed.clone(), o.password.clone(), p))
            .collect();
        if !options.allow_replace {
            let replaced: Vec<String> = work
                .iter()
                .filter(|(_, _, _, p)| p.action == Action::Replace)
                .map(|(_, _, _, p)| p.summary.clone())
                .collect();
            if let Some((store, _, _, _)) =
                work.iter().find(|(_, _, _, p)| p.action == Action::Replace)
            {
                return Err(Error {
                    component: store.component.clone(),
                    message: format!(
                        "refusing to replace a data store: {}; rerun with --allow-replace to delete it (by its deletionPolicy) and create it again, or change the spec back",
                        replaced.join("; ")
                    ),
                    terminal: true,
                });
            }
        }
        let mut out = Vec::new();
        for (store, observed, stored_password, planned) in work {
            let ctx = self.ctx(network.region.as_deref(), &store.component);
            if let Some(o) = &observed
                && model::phase(store.service, &o.status) == Phase::Failed
            {
                return Err(ctx.terminal(format!(
                    "{} {} failed (status {}); see the AWS console for why",
                    store.service.resource(),
                    store.identifier,
                    o.status
                )));
            }
            let password = if store.has_password() {
                Some(
                    self.password(
                        &ctx,
                        &owner,
                        &store,
                        stored_password,
                        options,
                        observed.is_none(),
                    )
                    .await?,
                )
            } else {
                None
            };
            let mut deferred = None;
            if !options.dry_run {
                deferred = self
                    .execute(
                        &ctx,
                        &store,
                        &network,
                        observed.as_ref(),
                        &planned,
                        password.as_deref(),
                    )
                    .await?;
            }
            let mut fresh = if planned.writes() && !options.dry_run {
                self.describe(&ctx, &store).await?
            } else {
                observed
            };
            // AWS may finish the delete of a replace at once: create the store again in the
            // same pass instead of leaving it to the next reconcile.
            if planned.action == Action::Replace && fresh.is_none() && !options.dry_run {
                let tags = model::tags(&owner, &store);
                self.create_store(&ctx, &store, &network, &tags, password.as_deref())
                    .await?;
                fresh = self.describe(&ctx, &store).await?;
            }
            let mut state = StoreState::from_observed(&store, fresh.as_ref());
            if let Some(why) = deferred {
                state.message = format!("{}; {why}", state.message);
            }
            if planned.action == Action::Replace && fresh.is_some() {
                state.message = format!("replacing: {}", state.message);
            }
            state.password = password;
            state.planned = Some(planned);
            out.push(state);
        }
        Ok(out)
    }

    /// The master password: Secrets Manager's, else the connection Secret's (copied back to
    /// Secrets Manager), else — only for a store about to be created or adopted — a new one,
    /// stored in Secrets Manager before the resource is created, so it is generated once. An
    /// existing store whose password is in neither place is an error: a new one would not open it.
    async fn password(
        &self,
        ctx: &Ctx<'_>,
        owner: &Owner,
        store: &Store,
        stored: Option<String>,
        options: &ReconcileOptions,
        creating: bool,
    ) -> Result<String> {
        let name = model::secret_name(owner, &store.component);
        if let Some(p) = stored {
            return Ok(p);
        }
        let known = options.known_passwords.get(&store.component).cloned();
        if known.is_none() && !creating && !store.adopt {
            return Err(ctx.terminal(format!(
                "the master password of {} {} is neither in Secrets Manager ({name}) nor in the connection Secret; restore one of them (a new password would not open the store)",
                store.service.resource(),
                store.identifier
            )));
        }
        let password = known.unwrap_or_else(|| {
            use crate::render::SecretValues as _;
            crate::render::Generated::new().value(&name, "password")
        });
        if !options.dry_run {
            secrets::create(
                ctx,
                &name,
                &store.username,
                &password,
                &model::tags(owner, store),
            )
            .await?;
        }
        Ok(password)
    }

    async fn create_store(
        &self,
        ctx: &Ctx<'_>,
        store: &Store,
        network: &Network,
        tags: &BTreeMap<String, String>,
        password: Option<&str>,
    ) -> Result<()> {
        let password = password.unwrap_or_default();
        match store.service {
            Service::Rds => rds::create(ctx, store, network, tags, password).await,
            Service::ElastiCache => elasticache::create(ctx, store, network, tags, password).await,
            Service::Msk => msk::create(ctx, store, network, tags).await,
        }
    }

    /// Carry out a plan. Returns why a modification waits, when it does.
    async fn execute(
        &self,
        ctx: &Ctx<'_>,
        store: &Store,
        network: &Network,
        observed: Option<&Observed>,
        planned: &Planned,
        password: Option<&str>,
    ) -> Result<Option<String>> {
        match (planned.action, observed) {
            (Action::Unchanged | Action::WaitDeleted, _) => Ok(None),
            (Action::Create, _) => {
                self.create_store(ctx, store, network, &planned.tags, password)
                    .await?;
                Ok(None)
            }
            (_, None) => Ok(None),
            (Action::Replace, Some(o)) => {
                if store.deletion_policy == DeletionPolicy::Retain {
                    return Err(ctx.terminal(format!(
                        "{} {} must be replaced ({}) but its deletionPolicy is Retain; delete it yourself or change the spec back",
                        store.service.resource(),
                        store.identifier,
                        planned.changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                    )));
                }
                self.delete_store(
                    ctx,
                    store.service,
                    &store.identifier,
                    o,
                    store.deletion_policy,
                )
                .await?;
                Ok(None)
            }
            (action, Some(o)) => {
                let adopt = action == Action::Adopt;
                match store.service {
                    Service::Rds => {
                        rds::modify(
                            ctx,
                            store,
                            network,
                            o,
                            planned,
                            adopt.then_some(password).flatten(),
                        )
                        .await
                    }
                    Service::ElastiCache => {
                        elasticache::modify(
                            ctx,
                            store,
                            o,
                            planned,
                            adopt.then_some(password).flatten(),
                        )
                        .await
                    }
                    Service::Msk => msk::modify(ctx, store, o, planned).await,
                }
            }
        }
    }

    /// Delete one resource: a final snapshot first under Snapshot.
    async fn delete_store(
        &self,
        ctx: &Ctx<'_>,
        service: Service,
        identifier: &str,
        observed: &Observed,
        policy: DeletionPolicy,
    ) -> Result<String> {
        let now = now_rfc3339();
        let snapshot = (policy == DeletionPolicy::Snapshot && service != Service::Msk)
            .then(|| model::final_snapshot_id(identifier, &now));
        let mut marks = BTreeMap::from([(model::TAG_DELETION_REQUESTED.to_string(), now)]);
        if let Some(s) = &snapshot {
            marks.insert(model::TAG_FINAL_SNAPSHOT.to_string(), s.clone());
        }
        match service {
            Service::Rds => {
                rds::tag(ctx, &observed.arn, &marks).await?;
                rds::delete(ctx, identifier, snapshot.as_deref()).await?;
            }
            Service::ElastiCache => {
                elasticache::tag(ctx, &observed.arn, &marks).await?;
                elasticache::delete(ctx, identifier, snapshot.as_deref()).await?;
            }
            Service::Msk => {
                msk::tag(ctx, &observed.arn, &marks).await?;
                msk::delete(ctx, &observed.arn).await?;
            }
        }
        Ok(match snapshot {
            Some(s) => format!("final snapshot {s}"),
            None => "no final snapshot".into(),
        })
    }

    /// Delete (or retain and untag) every resource `owner` has in AWS, by each one's deletion
    /// policy tag. With `keep_data`, `Delete` is treated as `Snapshot` (RDS, ElastiCache) or
    /// `Retain` (MSK, which has no snapshots), like the cluster backend keeps volumes. Call again
    /// until `waiting` is empty: AWS deletes asynchronously.
    pub async fn destroy(
        &self,
        owner: &Owner,
        region: Option<&str>,
        keep_data: bool,
    ) -> Result<Teardown> {
        self.teardown(owner, region, keep_data, &BTreeSet::new())
            .await
    }

    /// Remove the stores of `platform` that its spec no longer has (apply `--prune`), by their
    /// deletion policy with data kept (`Delete` acts as `Snapshot`, MSK's as `Retain`), like
    /// prune keeps the volumes of cluster stores. Reads only when there is nothing to prune.
    pub async fn prune(&self, platform: &PantheraPlatform) -> Result<Teardown> {
        let owner = Owner::of(platform);
        let network = model::network(platform);
        let keep: BTreeSet<String> = model::stores(platform)
            .into_iter()
            .map(|s| s.identifier)
            .collect();
        self.teardown(&owner, network.region.as_deref(), true, &keep)
            .await
    }

    /// Delete or retain every resource of `owner` except the identifiers in `keep`.
    async fn teardown(
        &self,
        owner: &Owner,
        region: Option<&str>,
        keep_data: bool,
        keep: &BTreeSet<String>,
    ) -> Result<Teardown> {
        let mut out = Teardown::default();
        let found = {
            let ctx = self.ctx(region, "aws");
            let mut found = Vec::new();
            for (id, o) in rds::list_owned(&ctx, owner).await? {
                found.push((Service::Rds, id, o));
            }
            for (id, o) in elasticache::list_owned(&ctx, owner).await? {
                found.push((Service::ElastiCache, id, o));
            }
            for (id, o) in msk::list_owned(&ctx, owner).await? {
                found.push((Service::Msk, id, o));
            }
            found.retain(|(_, id, _)| !keep.contains(id));
            found
        };
        for (service, identifier, observed) in found {
            let component = observed
                .tags
                .get(model::TAG_COMPONENT)
                .cloned()
                .unwrap_or_else(|| service.kind().as_str().to_string());
            let ctx = self.ctx(region, &component);
            let mut policy = model::policy_of(&observed.tags);
            if keep_data && policy == DeletionPolicy::Delete {
                policy = DeletionPolicy::Snapshot;
            }
            if service == Service::Msk && policy == DeletionPolicy::Snapshot {
                // MSK keeps no snapshots: keeping the data means keeping the cluster.
                policy = DeletionPolicy::Retain;
            }
            let resource = service.resource();
            if policy == DeletionPolicy::Retain {
                let keys = model::panthera_tags_on(&observed.tags);
                match service {
                    Service::Rds => {
                        rds::untag(&ctx, &observed.arn, &keys).await?;
                        if let Some(group) = &observed.subnet_group {
                            rds::untag_subnet_group(&ctx, group, owner).await?;
                        }
                    }
                    Service::ElastiCache => elasticache::untag(&ctx, &observed.arn, &keys).await?,
                    Service::Msk => msk::untag(&ctx, &observed.arn, &keys).await?,
                }
                if service != Service::Msk {
                    secrets::untag(&ctx, &model::secret_name(owner, &component)).await?;
                }
                out.deleted.push(format!(
                    "{component}: {resource} {identifier} retained (Panthera's tags removed)"
                ));
                continue;
            }
            if model::is_deleting(service, &observed.status) {
                out.waiting
                    .push(waiting_line(&component, resource, &identifier, &observed));
                continue;
            }
            let what = match self
                .delete_store(&ctx, service, &identifier, &observed, policy)
                .await
            {
                Ok(what) => what,
                // Busy (creating, modifying, backing up): AWS refuses the delete for now.
                Err(e) if !e.terminal => {
                    out.waiting.push(format!(
                        "{component}: {resource} {identifier} is {}; deleted once AWS accepts it ({})",
                        observed.status.to_ascii_lowercase(),
                        e.message
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if policy == DeletionPolicy::Delete {
                secrets::delete(&ctx, &model::secret_name(owner, &component)).await?;
            }
            let still = match service {
                Service::Rds => rds::observe(&ctx, &identifier).await?,
                Service::ElastiCache => elasticache::observe(&ctx, &identifier).await?,
                Service::Msk => msk::observe(&ctx, &identifier).await?,
            };
            match still {
                Some(o) => out
                    .waiting
                    .push(waiting_line(&component, resource, &identifier, &o)),
                None => out.deleted.push(format!(
                    "{component}: {resource} {identifier} deleted ({what})"
                )),
            }
        }
        let ctx = self.ctx(region, "aws");
        let busy = |resource: &str| out.waiting.iter().any(|w| w.contains(resource));
        let (rds_busy, ec_busy) = (
            busy(Service::Rds.resource()),
            busy(Service::ElastiCache.resource()),
        );
        out.waiting
            .extend(rds::cleanup_subnet_groups(&ctx, owner, rds_busy, keep).await?);
        out.waiting
            .extend(elasticache::cleanup_subnet_groups(&ctx, owner, ec_busy, keep).await?);
        Ok(out)
    }
}

/// `postgres/users: RDS instance shop-users deleting (final snapshot ...), 2m10s`.
fn waiting_line(component: &str, resource: &str, identifier: &str, o: &Observed) -> String {
    let snapshot = o
        .tags
        .get(model::TAG_FINAL_SNAPSHOT)
        .map(|s| format!(" (final snapshot {s})"))
        .unwrap_or_default();
    let since = o
        .tags
        .get(model::TAG_DELETION_REQUESTED)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0);
            format!(", {}m{:02}s", secs / 60, secs % 60)
        })
        .unwrap_or_default();
    format!(
        "{component}: {resource} {identifier} {}{snapshot}{since}",
        o.status.to_ascii_lowercase()
    )
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_busy_resources_are_transient_everything_else_terminal() {
        assert!(!is_terminal(Some("Throttling")));
        assert!(!is_terminal(Some("ThrottlingException")));
        assert!(!is_terminal(Some("TooManyRequestsException")));
        assert!(!is_terminal(Some("InvalidDBInstanceState")));
        assert!(!is_terminal(None), "timeouts and connection errors");
        assert!(is_terminal(Some("InvalidParameterValue")));
        assert!(is_terminal(Some("InstanceQuotaExceeded")));
        assert!(is_terminal(Some("AccessDenied")));
    }

    #[test]
    fn waiting_lines_say_what_and_for_how_long() {
        let o = Observed {
            status: "deleting".into(),
            tags: BTreeMap::from([
                (
                    model::TAG_FINAL_SNAPSHOT.to_string(),
                    "shop-users-final-20261125010203".to_string(),
                ),
                (
                    model::TAG_DELETION_REQUESTED.to_string(),
                    (chrono::Utc::now() - chrono::Duration::seconds(130))
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
            ]),
            ..Observed::default()
        };
        let line = waiting_line("postgres/users", "RDS instance", "shop-users", &o);
        assert!(
            line.starts_with("postgres/users: RDS instance shop-users deleting (final snapshot shop-users-final-20261125010203), 2m1"),
            "{line}"
        );
    }
}
