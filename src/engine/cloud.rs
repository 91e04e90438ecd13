//! The AWS side of apply, observe and destroy: data stores with `backend: aws` are reconciled in
//! the data-store phase (see [`crate::cloud::aws`]) and their connection Secrets written, with the
//! same keys as the cluster backend, once AWS has published the endpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use super::{
    ApplyOptions, ApplyReport, ComponentState, DestroyReport, Engine, Error, Event, Live, Result,
};
use crate::api::PantheraPlatform;
use crate::cloud::aws::{Aws, Owner, Planned, ReconcileOptions, Service, StoreState, model};
use crate::render::{Generated, Names, Object};

/// What the AWS part of an apply produced.
#[derive(Default)]
pub(super) struct AwsOutcome {
    /// Connection Secrets to apply, by component id (`postgres/users`, `redis`, `kafka`).
    pub secrets: BTreeMap<String, Object>,
    pub states: Vec<ComponentState>,
    pub planned: Vec<Planned>,
    pub calls: usize,
    pub writes: usize,
}

fn secret_name(names: &Names, store: &model::Store) -> String {
    match store.service {
        Service::Rds => names.database_secret(&store.name),
        Service::ElastiCache => names.redis_secret(),
        Service::Msk => names.kafka_secret(),
    }
}

/// (`Secret`, name) of every AWS store's connection Secret.
pub(super) fn aws_secret_ids(platform: &PantheraPlatform) -> BTreeSet<(String, String)> {
    let (platform_name, namespace) = super::ids(platform);
    let names = Names {
        platform: platform_name,
        namespace,
    };
    model::stores(platform)
        .iter()
        .map(|s| ("Secret".to_string(), secret_name(&names, s)))
        .collect()
}

fn decoded(live: &Live, secret: &str, key: &str) -> Option<String> {
    live.get("Secret", secret)
        .and_then(|s| s.pointer(&format!("/data/{key}")))
        .and_then(Value::as_str)
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|p| !p.is_empty() && p != crate::render::REDACTED)
}

/// Put what AWS reports in place of the aws stores' entries observed from the cluster (which
/// know only that the store is external).
pub(super) fn merge_aws_states(states: &mut [ComponentState], fresh: Vec<ComponentState>) {
    for fresh in fresh {
        if let Some(slot) = states
            .iter_mut()
            .find(|c| c.backend == "aws" && c.kind == fresh.kind && c.name == fresh.name)
        {
            *slot = fresh;
        }
    }
}

fn state_of(s: &StoreState) -> ComponentState {
    let message = match (&s.endpoint, &s.arn) {
        (Some(_), Some(arn)) if !arn.is_empty() => format!("{} ({arn})", s.message),
        _ => s.message.clone(),
    };
    ComponentState {
        name: s.store.name.clone(),
        kind: s.store.service.kind().as_str().to_string(),
        backend: "aws".into(),
        ready: s.ready,
        stalled: false,
        message,
        endpoint: s
            .endpoint
            .clone()
            .or_else(|| s.arn.clone().filter(|a| !a.is_empty())),
    }
}

impl Engine {
    /// Reconcile data stores with `backend: aws` through `aws` (RDS, ElastiCache, MSK). Without
    /// it, applying a platform that has such stores fails with a terminal [`Error::Aws`].
    pub fn with_aws(mut self, aws: Aws) -> Self {
        self.aws = Some(aws);
        self
    }

    /// The AWS client, with its call counters.
    pub fn aws(&self) -> Option<&Aws> {
        self.aws.as_ref()
    }

    fn require_aws(&self, platform: &PantheraPlatform) -> Result<Option<&Aws>> {
        let stores = model::stores(platform);
        let Some(first) = stores.first() else {
            return Ok(None);
        };
        match &self.aws {
            Some(aws) => Ok(Some(aws)),
            None => Err(Error::Aws {
                component: first.component.clone(),
                message: format!(
                    "{} use backend: aws but no AWS client is configured; configure AWS access (AWS_REGION and credentials: environment, profile or role)",
                    stores
                        .iter()
                        .map(|s| s.component.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                terminal: true,
            }),
        }
    }

    /// What apply would do to each AWS data store (reads only): create, adopt, modify in place,
    /// modify with reboot, modify in the maintenance window, replace, or nothing.
    pub async fn plan_aws(&self, platform: &PantheraPlatform) -> Result<Vec<Planned>> {
        match self.require_aws(platform)? {
            None => Ok(Vec::new()),
            Some(aws) => Ok(aws.plan(platform).await?),
        }
    }

    pub(super) async fn reconcile_aws(
        &self,
        platform: &PantheraPlatform,
        live: &Live,
        options: &ApplyOptions,
        started: Instant,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<AwsOutcome> {
        let Some(aws) = self.require_aws(platform)? else {
            return Ok(AwsOutcome::default());
        };
        let (calls, writes) = (aws.calls(), aws.writes());
        let (name, namespace) = super::ids(platform);
        let names = Names {
            platform: name,
            namespace,
        };
        let mut known_passwords = BTreeMap::new();
        for store in model::stores(platform) {
            if let Some(p) = decoded(live, &secret_name(&names, &store), "password") {
                known_passwords.insert(store.component.clone(), p);
            }
        }
        let reconcile = ReconcileOptions {
            allow_replace: options.allow_replace,
            dry_run: options.dry_run,
            known_passwords,
        };
        let observations = aws.observe_stores(platform).await?;
        let mut states = aws.reconcile(platform, &observations, &reconcile).await?;
        for s in &states {
            on_event(Event::Applied {
                component: s.store.component.clone(),
                created: usize::from(
                    s.planned
                        .as_ref()
                        .is_some_and(|p| p.action == model::Action::Create),
                ),
                changed: usize::from(s.planned.as_ref().is_some_and(|p| {
                    !matches!(p.action, model::Action::Create | model::Action::Unchanged)
                })),
                unchanged: usize::from(
                    s.planned
                        .as_ref()
                        .is_some_and(|p| p.action == model::Action::Unchanged),
                ),
            });
        }
        if options.wait && !options.dry_run {
            self.wait_aws(
                aws,
                platform,
                &mut states,
                started,
                options.timeout,
                on_event,
            )
            .await?;
        }
        let mut outcome = AwsOutcome::default();
        for s in &states {
            let Some(endpoint) = &s.endpoint else {
                continue;
            };
            let mut known = BTreeMap::new();
            // An adopted ElastiCache group without AUTH takes no password.
            let password = if s.auth {
                s.password.clone()
            } else {
                Some(String::new())
            };
            if let Some(p) = &password {
                known.insert(
                    (secret_name(&names, &s.store), "password".to_string()),
                    p.clone(),
                );
            }
            let secret = self.renderer.aws_secret(
                platform,
                &Generated::with_known(known),
                s.store.service.kind(),
                &s.store.name,
                endpoint,
                s.tls,
            )?;
            outcome.secrets.insert(s.store.component.clone(), secret);
        }
        outcome.states = states.iter().map(state_of).collect();
        outcome.planned = states.into_iter().filter_map(|s| s.planned).collect();
        outcome.calls = aws.calls() - calls;
        outcome.writes = aws.writes() - writes;
        Ok(outcome)
    }

    /// Poll the stores until every one is available (or the budget runs out).
    async fn wait_aws(
        &self,
        aws: &Aws,
        platform: &PantheraPlatform,
        states: &mut [StoreState],
        started: Instant,
        timeout: Duration,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<()> {
        let mut interval = Duration::from_secs(1);
        loop {
            let mut pending = Vec::new();
            for s in states.iter_mut() {
                if s.ready {
                    continue;
                }
                aws.refresh(platform, s).await?;
                if s.ready {
                    on_event(Event::Ready {
                        component: s.store.component.clone(),
                    });
                } else {
                    on_event(Event::Waiting {
                        component: s.store.component.clone(),
                        reason: format!(
                            "{} {}: {}",
                            s.store.service.resource(),
                            s.store.identifier,
                            s.message
                        ),
                        elapsed: started.elapsed(),
                        budget: timeout,
                    });
                    pending.push(s.store.component.clone());
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(Error::Timeout {
                    seconds: timeout.as_secs(),
                    pending: pending.join(", "),
                });
            }
            tokio::time::sleep(interval.min(timeout.saturating_sub(started.elapsed()))).await;
            interval = (interval * 2).min(Duration::from_secs(15));
        }
    }

    /// Replace the placeholder state of AWS components with what AWS reports (reads only).
    pub(super) async fn observe_aws(
        &self,
        platform: &PantheraPlatform,
        states: &mut [ComponentState],
    ) -> Result<()> {
        let Some(aws) = &self.aws else {
            return Ok(());
        };
        if model::stores(platform).is_empty() {
            return Ok(());
        }
        let fresh: Vec<ComponentState> =
            aws.observe(platform).await?.iter().map(state_of).collect();
        merge_aws_states(states, fresh);
        Ok(())
    }

    /// Apply `--prune`: the AWS stores of the platform that its spec no longer has go by their
    /// deletion policy, data kept (see [`Aws::prune`]).
    pub(super) async fn prune_aws(
        &self,
        platform: &PantheraPlatform,
        on_event: &(dyn Fn(Event) + Send + Sync),
        report: &mut ApplyReport,
    ) -> Result<()> {
        let Some(aws) = &self.aws else {
            return Ok(());
        };
        // No `spec.aws`, no AWS stores now or before (the CRD requires it for them): a
        // cluster-only platform makes no AWS call and needs no credentials.
        if platform.spec.aws.is_none() {
            return Ok(());
        }
        let (calls, writes) = (aws.calls(), aws.writes());
        let teardown = aws.prune(platform).await?;
        for id in teardown.deleted {
            on_event(Event::Pruned { id: id.clone() });
            report.pruned.push(id);
        }
        report.aws_waiting.extend(teardown.waiting);
        report.aws_calls += aws.calls() - calls;
        report.aws_writes += aws.writes() - writes;
        Ok(())
    }

    pub(super) async fn destroy_aws(
        &self,
        platform: &str,
        namespace: &str,
        region: Option<&str>,
        keep_data: bool,
        on_event: &(dyn Fn(Event) + Send + Sync),
        report: &mut DestroyReport,
    ) -> Result<()> {
        let Some(aws) = &self.aws else {
            return Ok(());
        };
        let teardown = aws
            .destroy(&Owner::new(platform, namespace), region, keep_data)
            .await?;
        for id in teardown.deleted {
            on_event(Event::Pruned { id: id.clone() });
            report.deleted.push(id);
        }
        report.waiting.extend(teardown.waiting);
        Ok(())
    }
}
