//! Data stores as AWS managed services: PostgreSQL on RDS, Redis on ElastiCache (replication
//! group), Kafka on MSK (provisioned), search on OpenSearch Service (a VPC domain), buckets on
//! S3, master credentials in Secrets Manager; the edge in front of the gateway on CloudFront,
//! WAF and Route 53.
//!
//! Every store is reconciled the same way: describe, create when missing, modify what differs
//! (classified in [`model`]), report `creating` / `modifying` / `available` with the ARN and the
//! endpoint. Resources carry ownership tags (`panthera.dev/platform`, `panthera.dev/namespace`,
//! `panthera.dev/component`); a resource without them is never modified or deleted, and adopted
//! only when the spec names it (`existingIdentifier`). Configuration is the standard one
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, the credentials chain); throttling and transient errors are
//! retried by the SDK with exponential backoff, what is left is reported terminal or transient.

mod client;
mod edge;
mod elasticache;
mod error;
pub mod model;
mod msk;
mod opensearch;
mod rds;
mod reconcile;
mod restore;
mod s3;
mod secrets;
mod service;
mod teardown;

use std::collections::BTreeMap;

pub use client::{Aws, http_client, retry_config};
use client::{Counted, Ctx};
use error::classify;
pub use error::{Error, Result, is_terminal};
pub use model::{Action, Observed, Owner, Planned, Service, Store};
pub use restore::{RestoreSource, Restored};

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

/// What dereference reads of one aws store (reads only), and all that reconcile needs to know of
/// it before writing.
#[derive(Clone, Debug)]
pub struct Observation {
    pub store: Store,
    /// What AWS has; `None` when the resource does not exist.
    pub observed: Option<Observed>,
    /// The master password in Secrets Manager, if there is one.
    pub password: Option<String>,
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
    /// The master password, for the connection Secret: the one reconcile used, or the one an
    /// observation found in Secrets Manager.
    pub password: Option<String>,
}

impl StoreState {
    /// The state an observation shows, with the password Secrets Manager keeps.
    pub fn from_observation(o: &Observation) -> Self {
        Self {
            password: o.password.clone(),
            ..Self::from_observed(&o.store, o.observed.as_ref())
        }
    }

    fn from_observed(store: &Store, observed: Option<&Observed>) -> Self {
        let (ready, message) = match observed {
            Some(o) => model::progress(store.service, o),
            None if model::waits_for_origin(store) => (
                false,
                "not created yet: waiting for the gateway's Ingress to publish its load balancer's host name"
                    .to_string(),
            ),
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

/// What destroy did and what AWS is still deleting.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Teardown {
    /// Resources deleted, or retained and untagged, in this call.
    pub deleted: Vec<String>,
    /// Resources AWS is still deleting, with what and for how long.
    pub waiting: Vec<String>,
}
