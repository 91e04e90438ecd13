//! The SDK clients of each region, the counters of calls and writes, and [`Ctx`], what one
//! component's calls share (its clients, its name in errors).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::error::SdkError;

use super::error::{RawResponse, ServiceError};
use super::model::{Network, Service};
use super::service::Api;
use super::{Error, Result, classify};

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
pub(super) struct Clients {
    pub(super) rds: aws_sdk_rds::Client,
    pub(super) elasticache: aws_sdk_elasticache::Client,
    pub(super) kafka: aws_sdk_kafka::Client,
    pub(super) opensearch: aws_sdk_opensearch::Client,
    pub(super) s3: aws_sdk_s3::Client,
    pub(super) secrets: aws_sdk_secretsmanager::Client,
    pub(super) edge: super::edge::EdgeClients,
}

struct Inner {
    config: SdkConfig,
    by_region: Mutex<BTreeMap<String, Arc<Clients>>>,
    calls: AtomicUsize,
    writes: AtomicUsize,
    write_log: Mutex<Vec<String>>,
}

/// Clients for RDS, ElastiCache, MSK, OpenSearch Service, S3 and Secrets Manager, with counters of the calls made (every
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

    /// [`Aws::from_env`] for the operator in a pod: the region only from `AWS_REGION` or the
    /// profile, never from instance metadata. In a pod that is the node's region (and outside
    /// AWS a request that leaves the cluster and times out at every start); a platform's region
    /// is `spec.aws.region`. Credentials are still the default chain, resolved on first use.
    pub async fn from_env_for_pod() -> Self {
        use aws_config::environment::EnvironmentVariableRegionProvider;
        use aws_config::meta::region::RegionProviderChain;
        use aws_config::profile::ProfileFileRegionProvider;
        let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
            .or_else(ProfileFileRegionProvider::new());
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .retry_config(retry_config())
            .region(region)
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
                let region = region.or_else(|| self.inner.config.region().cloned());
                // The shared configuration with this region: each service's settings
                // (`AWS_ENDPOINT_URL_<SERVICE>`) still come from it.
                let config = self.inner.config.to_builder().region(region).build();
                // CloudFront, WAF's CLOUDFRONT scope and Route 53 are global: their API
                // answers in us-east-1 whatever the platform's region.
                let global = self
                    .inner
                    .config
                    .to_builder()
                    .region(Region::from_static("us-east-1"))
                    .build();
                // A custom endpoint (an S3-compatible server, a test double) has no bucket
                // subdomains: buckets go in the path there.
                let s3 = aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(&config)
                        .force_path_style(config.endpoint_url().is_some())
                        .build(),
                );
                Arc::new(Clients {
                    rds: aws_sdk_rds::Client::new(&config),
                    elasticache: aws_sdk_elasticache::Client::new(&config),
                    kafka: aws_sdk_kafka::Client::new(&config),
                    opensearch: aws_sdk_opensearch::Client::new(&config),
                    s3: s3.clone(),
                    secrets: aws_sdk_secretsmanager::Client::new(&config),
                    edge: super::edge::EdgeClients {
                        cloudfront: aws_sdk_cloudfront::Client::new(&global),
                        waf: aws_sdk_wafv2::Client::new(&global),
                        route53: aws_sdk_route53::Client::new(&global),
                        s3,
                    },
                })
            })
            .clone()
    }

    pub(super) fn ctx<'a>(&'a self, region: Option<&str>, component: &'a str) -> Ctx<'a> {
        Ctx {
            aws: self,
            clients: self.clients(region),
            component,
        }
    }

    pub(super) fn check_region(&self, network: &Network, component: &str) -> Result<()> {
        if network.region.is_none() && self.inner.config.region().is_none() {
            return Err(Error::terminal(
                component,
                "no AWS region: set spec.aws.region or AWS_REGION",
            ));
        }
        Ok(())
    }
}

/// One component's calls: the clients, and the counters.
pub(super) struct Ctx<'a> {
    aws: &'a Aws,
    pub(super) clients: Arc<Clients>,
    pub(super) component: &'a str,
}

/// How a request is counted: a read, or a write of `operation` on `target` (kept in the write log).
#[derive(Clone, Copy, Debug)]
pub(super) enum Counted<'a> {
    Read,
    Write(&'a str, &'a str),
}

impl Ctx<'_> {
    pub(super) fn count(&self, counted: Counted<'_>) {
        self.aws.inner.calls.fetch_add(1, Ordering::Relaxed);
        if let Counted::Write(operation, target) = counted {
            self.aws.inner.writes.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut log) = self.aws.inner.write_log.lock() {
                log.push(format!("{operation} {target}"));
            }
        }
    }

    pub(super) fn err<E, R>(&self, action: &str, e: &SdkError<E, R>) -> Error
    where
        E: ServiceError,
        R: RawResponse,
    {
        classify(self.component, action, e)
    }

    pub(super) fn terminal(&self, message: impl Into<String>) -> Error {
        Error::terminal(self.component, message)
    }

    /// The client of `service`.
    pub(super) fn api(&self, service: Service) -> Api<'_> {
        let clients = &*self.clients;
        match service {
            Service::Rds => Api::Rds(&clients.rds),
            Service::ElastiCache => Api::ElastiCache(&clients.elasticache),
            Service::Msk => Api::Msk(&clients.kafka),
            Service::OpenSearch => Api::OpenSearch(&clients.opensearch),
            Service::S3 => Api::S3(&clients.s3),
            Service::CloudFront => Api::Edge(&clients.edge),
        }
    }

    /// Send one request, counted as `counted`; a failure names `action`. The request runs boxed:
    /// an SDK request future is large, and every caller's state machine would otherwise hold it
    /// inline (in debug builds the engine's reconcile outgrew a 2 MiB thread stack).
    pub(super) fn call<'a, T, E, R>(
        &'a self,
        counted: Counted<'_>,
        action: &'a str,
        request: impl Future<Output = Result<T, SdkError<E, R>>> + Send + 'a,
    ) -> impl Future<Output = Result<T>> + Send + 'a
    where
        E: ServiceError + Send + 'a,
        R: RawResponse + Send + 'a,
    {
        self.count(counted);
        let request = Box::pin(request);
        async move { request.await.map_err(|e| self.err(action, &e)) }
    }

    /// [`Ctx::call`], with `None` when the request failed with the one service error `expected`
    /// accepts: deleting what is already gone, describing what does not exist, creating what an
    /// interrupted apply left.
    pub(super) fn call_or_none<'a, T, E, R>(
        &'a self,
        counted: Counted<'_>,
        action: &'a str,
        request: impl Future<Output = Result<T, SdkError<E, R>>> + Send + 'a,
        expected: impl FnOnce(&E) -> bool + Send + 'a,
    ) -> impl Future<Output = Result<Option<T>>> + Send + 'a
    where
        E: ServiceError + Send + 'a,
        R: RawResponse + Send + 'a,
    {
        self.count(counted);
        let request = Box::pin(request);
        async move {
            match request.await {
                Ok(out) => Ok(Some(out)),
                Err(e) if e.as_service_error().is_some_and(expected) => Ok(None),
                Err(e) => Err(self.err(action, &e)),
            }
        }
    }

    /// Every page of a listing, one counted read a page: `page` fetches the page after the
    /// marker it is given (the first with `None`) and returns it with the next marker.
    pub(super) async fn paged<P, F, Fut>(&self, mut page: F) -> Result<Vec<P>>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<(P, Option<String>)>>,
    {
        let mut pages = Vec::new();
        let mut marker = None;
        loop {
            self.count(Counted::Read);
            let (out, next) = page(marker).await?;
            pages.push(out);
            marker = next;
            if marker.is_none() {
                return Ok(pages);
            }
        }
    }

    /// [`Ctx::paged`] for an SDK listing: `send` sends the request from a marker, `next` reads
    /// the next marker of a page; a failure names `action`.
    pub(super) async fn pages<P, E, R, Fut>(
        &self,
        action: &str,
        send: impl Fn(Option<String>) -> Fut,
        next: impl Fn(&P) -> Option<&str>,
    ) -> Result<Vec<P>>
    where
        Fut: Future<Output = Result<P, SdkError<E, R>>>,
        E: ServiceError,
        R: RawResponse,
    {
        self.paged(|marker| {
            let sent = send(marker);
            let next = &next;
            async move {
                let page = sent.await.map_err(|e| self.err(action, &e))?;
                let marker = next(&page).map(str::to_string);
                Ok((page, marker))
            }
        })
        .await
    }
}
