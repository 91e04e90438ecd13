//! The AWS side of each step: dereference reads the platform's stores (AWS and Secrets
//! Manager), apply creates or modifies them first in the data-store phase (see
//! [`crate::cloud::aws`]) and, asked to wait, waits for them; prune and destroy remove them by
//! their deletion policy.

use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::render::{known_password, secret_name};
use super::report::{ApplyReport, DestroyReport, Event};
use super::snapshot::Live;
use super::{ApplyOptions, Engine};
use crate::api::PantheraPlatform;
use crate::cloud::aws::{
    Action, Aws, Observation, Owner, Planned, ReconcileOptions, StoreState, model,
};
use crate::render::Names;

/// What the AWS part of an apply did.
#[derive(Default)]
pub(super) struct AwsOutcome {
    pub states: Vec<StoreState>,
    pub planned: Vec<Planned>,
    /// AWS published an endpoint (or Secrets Manager a password) the snapshot did not have:
    /// the connection Secrets rendered from the snapshot are out of date.
    pub learned: bool,
}

/// The host name the gateway's Ingress publishes (its load balancer's), if it does yet.
pub(super) fn gateway_host(live: &Live, platform: &PantheraPlatform) -> Option<String> {
    let (name, namespace) = platform.ids();
    let names = Names {
        platform: name,
        namespace,
    };
    ingress_host(live.get("Ingress", &names.gateway())?)
}

fn ingress_host(ingress: &serde_json::Value) -> Option<String> {
    ingress
        .pointer("/status/loadBalancer/ingress")?
        .as_array()?
        .iter()
        .find_map(|i| i["hostname"].as_str())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

/// What apply says it did to a store; nothing for an edge still waiting for its origin.
fn applied(s: &StoreState) -> Option<Event> {
    let action = s.planned.as_ref()?.action;
    (action != Action::WaitOrigin).then(|| Event::Applied {
        component: s.store.component.clone(),
        created: usize::from(action == Action::Create),
        changed: usize::from(!matches!(action, Action::Create | Action::Unchanged)),
        unchanged: usize::from(action == Action::Unchanged),
    })
}

/// What a connection Secret is rendered from.
fn secret_inputs(s: &StoreState) -> (String, Option<String>, bool, bool, Option<String>) {
    (
        s.store.component.clone(),
        s.endpoint.clone(),
        s.tls,
        s.auth,
        s.password.clone(),
    )
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

    /// Dereference's AWS part: each store as AWS and Secrets Manager have it (reads only).
    /// `required`: a platform with AWS stores and no AWS client is an error (apply, plan);
    /// otherwise such stores are simply not observed (status).
    pub(super) async fn dereference_aws(
        &self,
        platform: &PantheraPlatform,
        required: bool,
    ) -> Result<Vec<Observation>> {
        let aws = match (required, &self.aws) {
            (true, _) => self.require_aws(platform)?,
            (false, aws) if !model::stores(platform).is_empty() => aws.as_ref(),
            (false, _) => None,
        };
        match aws {
            Some(aws) => Ok(Box::pin(aws.observe_stores(platform)).await?),
            None => Ok(Vec::new()),
        }
    }

    /// What apply would do to each AWS data store (pure, from the snapshot): create, adopt,
    /// modify in place, modify with reboot, modify in the maintenance window, replace, or nothing.
    pub(super) fn decide_aws(
        &self,
        platform: &PantheraPlatform,
        observations: &[Observation],
    ) -> Result<Vec<Planned>> {
        match &self.aws {
            Some(aws) if !observations.is_empty() => Ok(aws.plan_observed(platform, observations)?),
            _ => Ok(Vec::new()),
        }
    }

    /// Apply's AWS part, before the Kubernetes phases: create, adopt or modify each store, and
    /// with `wait`, wait until every one is available.
    pub(super) async fn apply_aws(
        &self,
        platform: &PantheraPlatform,
        observations: &[Observation],
        live: &Live,
        options: &ApplyOptions,
        started: Instant,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<AwsOutcome> {
        let Some(aws) = self.require_aws(platform)? else {
            return Ok(AwsOutcome::default());
        };
        let (name, namespace) = platform.ids();
        let names = Names {
            platform: name,
            namespace,
        };
        let known_passwords = observations
            .iter()
            .filter_map(|o| {
                known_password(live, &secret_name(&names, &o.store)?)
                    .map(|p| (o.store.component.clone(), p))
            })
            .collect();
        let reconcile = ReconcileOptions {
            allow_replace: options.allow_replace,
            dry_run: options.dry_run,
            known_passwords,
        };
        // Boxed: the AWS step's future is large (debug builds especially) and the operator runs it
        // on tokio worker threads, whose stacks are 2 MiB.
        let mut states = Box::pin(aws.reconcile(platform, observations, &reconcile)).await?;
        states.iter().filter_map(applied).for_each(on_event);
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
        let before: Vec<_> = observations
            .iter()
            .map(|o| secret_inputs(&StoreState::from_observation(o)))
            .collect();
        let learned = !options.dry_run
            && states
                .iter()
                .map(secret_inputs)
                .any(|s| s.1.is_some() && !before.contains(&s));
        Ok(AwsOutcome {
            planned: states.iter().filter_map(|s| s.planned.clone()).collect(),
            states,
            learned,
        })
    }

    /// Apply's edge step, after the gateway: read the gateway's Ingress again (with `wait`,
    /// until it publishes its load balancer's host name or the budget runs out), then create
    /// the edge in front of it. Without a host yet, the edge stays waiting (status says so) and
    /// the next apply or the operator's next reconcile creates it.
    pub(super) async fn apply_edge(
        &self,
        platform: &PantheraPlatform,
        options: &ApplyOptions,
        started: Instant,
        on_event: &(dyn Fn(Event) + Send + Sync),
        report: &mut ApplyReport,
    ) -> Result<()> {
        let Some(aws) = self.require_aws(platform)? else {
            return Ok(());
        };
        let (name, namespace) = platform.ids();
        let ingress_name = Names {
            platform: name,
            namespace: namespace.clone(),
        }
        .gateway();
        let api: kube::Api<k8s_openapi::api::networking::v1::Ingress> =
            kube::Api::namespaced(self.client.clone(), &namespace);
        let mut interval = Duration::from_secs(1);
        let host = loop {
            // A list by name: the operator's role lists and watches its children, it has no
            // `get`.
            let params =
                kube::api::ListParams::default().fields(&format!("metadata.name={ingress_name}"));
            let listed = super::retry::call(&self.limiter, || api.list(&params))
                .await
                .map_err(|e| {
                    super::error::classify(e, "list", "ingresses", &namespace, "Ingress")
                })?;
            let host = listed
                .items
                .into_iter()
                .find_map(|i| serde_json::to_value(i).ok().and_then(|v| ingress_host(&v)));
            if let Some(host) = host {
                break host;
            }
            if !options.wait {
                return Ok(());
            }
            if started.elapsed() >= options.timeout {
                return Err(Error::Timeout {
                    seconds: options.timeout.as_secs(),
                    pending: format!(
                        "edge (Ingress {ingress_name} publishes no load balancer host name)"
                    ),
                });
            }
            on_event(Event::Waiting {
                component: "edge".into(),
                reason: format!("Ingress {ingress_name} publishes no load balancer host name yet"),
                elapsed: started.elapsed(),
                budget: options.timeout,
            });
            tokio::time::sleep(interval.min(options.timeout.saturating_sub(started.elapsed())))
                .await;
            interval = (interval * 2).min(Duration::from_secs(15));
        };
        let Some(mut observation) = Box::pin(aws.observe_edge(platform)).await? else {
            return Ok(());
        };
        model::learn_origin(&mut observation.store, Some(&host));
        let reconcile = ReconcileOptions {
            allow_replace: options.allow_replace,
            dry_run: options.dry_run,
            known_passwords: Default::default(),
        };
        let mut states = Box::pin(aws.reconcile(platform, &[observation], &reconcile)).await?;
        states.iter().filter_map(applied).for_each(on_event);
        for planned in states.iter().filter_map(|s| s.planned.as_ref()) {
            // The plan the first step reported (wait for the origin) is replaced by this one.
            report.aws.retain(|p| p.component != planned.component);
            report.aws.push(planned.clone());
        }
        if options.wait {
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
        Ok(())
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
                // An edge waiting for the gateway's host is created after the gateway.
                let waits_origin = s
                    .planned
                    .as_ref()
                    .is_some_and(|p| p.action == Action::WaitOrigin);
                if s.ready || waits_origin {
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
        let teardown = Box::pin(aws.prune(platform)).await?;
        for id in teardown.deleted {
            on_event(Event::Pruned { id: id.clone() });
            report.pruned.push(id);
        }
        report.aws_waiting.extend(teardown.waiting);
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
