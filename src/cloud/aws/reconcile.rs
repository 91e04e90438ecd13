//! Plan and reconcile, read apart from write: [`Aws::observe_stores`] reads what AWS has of each
//! store (describe, and the master password in Secrets Manager), [`Aws::plan_observed`] plans
//! from that alone, and [`Aws::reconcile`] writes what the plan says, reading only to report the
//! fresh state of what it wrote.

use std::collections::BTreeMap;

use crate::api::{DeletionPolicy, PantheraPlatform};

use super::client::Ctx;
use super::model::{self, Action, Network, Observed, Owner, Phase, Planned, Store};
use super::service::{Create, Modify, ServiceApi, Settle};
use super::{Aws, Error, Observation, ReconcileOptions, Result, StoreState, secrets};

impl Aws {
    async fn describe(&self, ctx: &Ctx<'_>, store: &Store) -> Result<Option<Observed>> {
        ctx.api(store.service)
            .describe(ctx, &store.identifier)
            .await
    }

    /// What AWS has of each aws store of `platform`, and the master password Secrets Manager
    /// keeps for it; reads only.
    pub async fn observe_stores(&self, platform: &PantheraPlatform) -> Result<Vec<Observation>> {
        self.observations(platform, true).await
    }

    /// Describes each aws store; with `passwords`, reads its master password too (plan and
    /// observe do not need it, and make no Secrets Manager call).
    async fn observations(
        &self,
        platform: &PantheraPlatform,
        passwords: bool,
    ) -> Result<Vec<Observation>> {
        let owner = Owner::of(platform);
        let network = model::network(platform);
        let mut out = Vec::new();
        for mut store in model::stores(platform) {
            self.check_region(&network, &store.component)?;
            let ctx = self.ctx(network.region.as_deref(), &store.component);
            let mut observed = self.describe(&ctx, &store).await?;
            // After a restore the store runs on the restored instance: follow the marks the
            // restores left on this platform's instances (a bounded chain).
            for _ in 0..16 {
                let Some(next) = observed
                    .as_ref()
                    .filter(|o| owner.owns(&o.tags))
                    .and_then(|o| o.tags.get(model::TAG_SUPERSEDED_BY))
                    .cloned()
                else {
                    break;
                };
                let moved = Store {
                    identifier: next,
                    ..store.clone()
                };
                match self.describe(&ctx, &moved).await? {
                    Some(o) => {
                        observed = Some(o);
                        store.identifier = moved.identifier;
                    }
                    None => break,
                }
            }
            let password = if passwords && store.has_password() {
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

    /// What AWS has of the platform's edge, if its spec has one (reads only).
    pub async fn observe_edge(&self, platform: &PantheraPlatform) -> Result<Option<Observation>> {
        let network = model::network(platform);
        let Some(store) = model::stores(platform)
            .into_iter()
            .find(|s| s.service == model::Service::CloudFront)
        else {
            return Ok(None);
        };
        let ctx = self.ctx(network.region.as_deref(), &store.component);
        let observed = self.describe(&ctx, &store).await?;
        Ok(Some(Observation {
            store,
            observed,
            password: None,
        }))
    }

    /// What apply would do to each observed store, from the observations alone. Refuses
    /// (terminal) a resource that exists but is not the platform's.
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
                model::plan(&owner, &o.store, &network, o.observed.as_ref())
                    .map_err(|message| Error::terminal(&o.store.component, message))
            })
            .collect()
    }

    /// What apply would do to each aws store; reads only. Refuses (terminal) a resource that
    /// exists but is not the platform's.
    pub async fn plan(&self, platform: &PantheraPlatform) -> Result<Vec<Planned>> {
        let observations = self.observations(platform, false).await?;
        self.plan_observed(platform, &observations)
    }

    /// State of each aws store, without writing.
    pub async fn observe(&self, platform: &PantheraPlatform) -> Result<Vec<StoreState>> {
        let observations = self.observations(platform, false).await?;
        Ok(observations
            .iter()
            .map(StoreState::from_observation)
            .collect())
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
            let owner = Owner::of(platform);
            let tags = model::tags(&owner, &state.store);
            let login = Login {
                secret: &model::secret_name(&owner, &state.store.component),
                password: state.password.as_deref(),
            };
            self.create_store(&ctx, &state.store, &network, &tags, login)
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

    /// Reconcile the aws stores of `platform` from what [`Aws::observe_stores`] read of them:
    /// plan all first (nothing is written when a store is foreign, or would be replaced without
    /// `allow_replace`), then create, adopt or modify. Nothing is described or read from Secrets
    /// Manager before a write; a store written to is described after, to report its fresh state.
    pub async fn reconcile(
        &self,
        platform: &PantheraPlatform,
        observations: &[Observation],
        options: &ReconcileOptions,
    ) -> Result<Vec<StoreState>> {
        let owner = Owner::of(platform);
        let network = model::network(platform);
        let plans = self.plan_observed(platform, observations)?;
        refuse_replace(&plans, options.allow_replace)?;
        let mut out = Vec::new();
        for (observation, planned) in observations.iter().zip(plans) {
            let store = &observation.store;
            let observed = observation.observed.as_ref();
            let ctx = self.ctx(network.region.as_deref(), &store.component);
            if let Some(o) = observed
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
                Some(self.password(&ctx, &owner, observation, options).await?)
            } else {
                None
            };
            let secret = model::secret_name(&owner, &store.component);
            let login = Login {
                secret: &secret,
                password: password.as_deref(),
            };
            let mut deferred = None;
            if !options.dry_run {
                deferred = Box::pin(self.execute(&ctx, store, &network, observed, &planned, login))
                    .await?;
            }
            let mut fresh = if planned.writes() && !options.dry_run {
                self.describe(&ctx, store).await?
            } else {
                observed.cloned()
            };
            // AWS may finish the delete of a replace at once: create the store again in the
            // same pass instead of leaving it to the next reconcile.
            if planned.action == Action::Replace && fresh.is_none() && !options.dry_run {
                let tags = model::tags(&owner, store);
                self.create_store(&ctx, store, &network, &tags, login)
                    .await?;
                fresh = self.describe(&ctx, store).await?;
            }
            if let (Some(o), false) = (fresh.as_ref(), options.dry_run) {
                let settle = Settle {
                    store,
                    observed: o,
                    secret: &secret,
                };
                let waits = Box::pin(ctx.api(store.service).settle(&ctx, settle)).await?;
                deferred = match (deferred, waits) {
                    (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                    (a, b) => a.or(b),
                };
            }
            let mut state = StoreState::from_observed(store, fresh.as_ref());
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

    /// The master password: Secrets Manager's (as observed), else the connection Secret's
    /// (copied back to Secrets Manager), else — only for a store about to be created or adopted —
    /// a new one, stored in Secrets Manager before the resource is created, so it is generated
    /// once. An existing store whose password is in neither place is an error: a new one would
    /// not open it.
    async fn password(
        &self,
        ctx: &Ctx<'_>,
        owner: &Owner,
        observation: &Observation,
        options: &ReconcileOptions,
    ) -> Result<String> {
        if let Some(p) = &observation.password {
            return Ok(p.clone());
        }
        let store = &observation.store;
        let creating = observation.observed.is_none();
        let name = model::secret_name(owner, &store.component);
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
            let generated = crate::render::Generated::new().value(&name, "password");
            model::password_for(store.service, generated)
        });
        if !options.dry_run {
            secrets::create(
                ctx,
                &name,
                &store.username,
                &password,
                store.kms_key.as_deref(),
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
        login: Login<'_>,
    ) -> Result<()> {
        let new = Create {
            store,
            network,
            tags,
            password: login.password.unwrap_or_default(),
            secret: login.secret,
        };
        ctx.api(store.service).create(ctx, new).await
    }

    /// Carry out a plan. Returns why a modification waits, when it does.
    async fn execute(
        &self,
        ctx: &Ctx<'_>,
        store: &Store,
        network: &Network,
        observed: Option<&Observed>,
        planned: &Planned,
        login: Login<'_>,
    ) -> Result<Option<String>> {
        match (planned.action, observed) {
            // An edge without its origin is created by the apply step after the gateway's.
            (Action::Unchanged | Action::WaitDeleted | Action::WaitOrigin, _) => Ok(None),
            (Action::Create, _) => {
                self.create_store(ctx, store, network, &planned.tags, login)
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
                let change = Modify {
                    store,
                    network,
                    observed: o,
                    planned,
                    adopt_password: login.password.filter(|_| action == Action::Adopt),
                };
                // Tags first: adopting is tagging, and it needs no wait.
                let api = ctx.api(store.service);
                api.tag(ctx, &o.arn, &planned.tags).await?;
                api.modify(ctx, change).await
            }
        }
    }
}

/// The credentials of a store: where Secrets Manager keeps them, and the password.
#[derive(Clone, Copy)]
struct Login<'a> {
    secret: &'a str,
    password: Option<&'a str>,
}

/// Without `allow_replace`, a plan that replaces a store is refused as a whole, before anything
/// is written: a replace deletes the store (by its deletion policy) and creates it empty.
fn refuse_replace(plans: &[Planned], allow_replace: bool) -> Result<()> {
    if allow_replace {
        return Ok(());
    }
    let replaced: Vec<&Planned> = plans
        .iter()
        .filter(|p| p.action == Action::Replace)
        .collect();
    let Some(first) = replaced.first() else {
        return Ok(());
    };
    let summaries: Vec<&str> = replaced.iter().map(|p| p.summary.as_str()).collect();
    Err(Error::terminal(
        &first.component,
        format!(
            "refusing to replace a data store: {}; rerun with --allow-replace to delete it (by its deletionPolicy) and create it again, or change the spec back",
            summaries.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::cloud::aws::model::{Network, TAG_DELETION_POLICY, TAG_MANAGED_BY, TAG_PLATFORM};

    fn platform() -> PantheraPlatform {
        serde_yaml::from_str(include_str!("../../../examples/aws.yaml")).unwrap()
    }

    /// No client is built: planning makes no call.
    fn aws() -> Aws {
        Aws::from_config(
            aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .build(),
        )
    }

    /// What AWS would have of `store` had this platform created it as the spec says.
    fn as_created(store: &Store, network: &Network, owner: &Owner) -> Observed {
        Observed {
            arn: format!("arn:aws:test:{}", store.identifier),
            status: "available".into(),
            endpoint: Some("host:1".into()),
            tags: model::tags(owner, store),
            settings: Some(store.settings.clone()),
            subnet_ids: network.subnet_ids.clone(),
            security_group_ids: network.security_group_ids.clone(),
            ..Observed::default()
        }
    }

    fn observations(p: &PantheraPlatform, observed: bool) -> Vec<Observation> {
        let (owner, network) = (Owner::of(p), model::network(p));
        model::stores(p)
            .into_iter()
            .map(|store| Observation {
                observed: observed.then(|| as_created(&store, &network, &owner)),
                password: None,
                store,
            })
            .collect()
    }

    #[test]
    fn plan_observed_plans_from_the_observations_alone() {
        let p = platform();
        let planned = aws().plan_observed(&p, &observations(&p, false)).unwrap();
        assert_eq!(planned.len(), 4);
        assert!(planned.iter().all(|p| p.action == Action::Create));
        let planned = aws().plan_observed(&p, &observations(&p, true)).unwrap();
        assert!(planned.iter().all(|p| p.action == Action::Unchanged));
    }

    #[test]
    fn plan_observed_refuses_a_foreign_resource() {
        let p = platform();
        let mut obs = observations(&p, true);
        let orders = &mut obs[1];
        orders.observed.as_mut().unwrap().tags =
            BTreeMap::from([("team".to_string(), "data".to_string())]);
        let err = aws().plan_observed(&p, &obs).unwrap_err();
        assert!(err.terminal);
        assert_eq!(err.component, "postgres/orders");
        assert!(err.message.contains("not created by Panthera"), "{err}");
        // Another platform's resource, even when the spec names it for adoption.
        let orders = &mut obs[1];
        orders.store.adopt = true;
        orders
            .observed
            .as_mut()
            .unwrap()
            .tags
            .insert(TAG_PLATFORM.into(), "other".into());
        let err = aws().plan_observed(&p, &obs).unwrap_err();
        assert!(err.terminal);
        assert!(err.message.contains("belongs to platform other"), "{err}");
    }

    #[test]
    fn missing_or_stale_tags_are_planned_as_a_modification_of_only_those_tags() {
        let p = platform();
        let mut obs = observations(&p, true);
        let tags = &mut obs[2].observed.as_mut().unwrap().tags;
        tags.remove(TAG_DELETION_POLICY);
        tags.insert(TAG_MANAGED_BY.into(), "someone-else".into());
        tags.insert("team".into(), "cache".into());
        let planned = aws().plan_observed(&p, &obs).unwrap();
        let redis = &planned[2];
        assert_eq!(redis.action, Action::Modify);
        assert!(redis.changes.is_empty());
        assert_eq!(
            redis.tags.keys().collect::<Vec<_>>(),
            [TAG_MANAGED_BY, TAG_DELETION_POLICY],
            "only Panthera's tags that differ; foreign tags are left"
        );
        assert_eq!(redis.tags[TAG_MANAGED_BY], "panthera");
        assert!(
            planned
                .iter()
                .enumerate()
                .all(|(i, p)| i == 2 || !p.writes())
        );
    }

    #[test]
    fn a_replace_is_refused_as_a_whole_unless_allowed() {
        let p = platform();
        let mut obs = observations(&p, true);
        // Kafka's brokers cannot shrink in place.
        if let Some(model::Settings::Kafka(kafka)) = &mut obs[3].observed.as_mut().unwrap().settings
        {
            kafka.brokers += 3;
        }
        let planned = aws().plan_observed(&p, &obs).unwrap();
        assert_eq!(planned[3].action, Action::Replace);
        let err = refuse_replace(&planned, false).unwrap_err();
        assert!(err.terminal);
        assert_eq!(err.component, "kafka");
        assert!(
            err.message
                .starts_with("refusing to replace a data store: "),
            "{err}"
        );
        assert!(err.message.contains(&planned[3].summary), "{err}");
        assert!(refuse_replace(&planned, true).is_ok());
        assert!(refuse_replace(&planned[..3], false).is_ok());
    }

    #[test]
    fn an_observations_state_carries_the_secrets_manager_password() {
        let p = platform();
        let mut obs = observations(&p, true).remove(0);
        obs.password = Some("from-secrets-manager".into());
        let state = StoreState::from_observation(&obs);
        assert!(state.ready);
        assert_eq!(state.password.as_deref(), Some("from-secrets-manager"));
        assert_eq!(state.arn.as_deref(), Some("arn:aws:test:shop-aws-users"));
        obs.observed = None;
        let state = StoreState::from_observation(&obs);
        assert!(!state.ready);
        assert_eq!(state.message, "not created yet");
    }
}
