//! Plan and reconcile: describe each store, plan it against the spec, then create, adopt or
//! modify it; the master password kept in Secrets Manager.

use crate::api::{DeletionPolicy, PantheraPlatform};

use super::client::Ctx;
use std::collections::BTreeMap;

use super::model::{self, Action, Network, Observed, Owner, Phase, Planned, Store};
use super::service::ServiceApi;
use super::{Aws, Error, ReconcileOptions, Result, StoreState, secrets};

impl Aws {
    async fn describe(&self, ctx: &Ctx<'_>, store: &Store) -> Result<Option<Observed>> {
        ctx.api(store.service)
            .describe(ctx, &store.identifier)
            .await
    }

    /// What apply would do to each aws store; reads only. Refuses (terminal) a resource that
    /// exists but is not the platform's.
    pub async fn plan(&self, platform: &PantheraPlatform) -> Result<Vec<Planned>> {
        let network = model::network(platform);
        let work = self.plan_stores(platform, &network).await?;
        Ok(work.into_iter().map(|(_, _, planned)| planned).collect())
    }

    /// Describes each aws store of `platform` and plans it, as `plan` and `reconcile` both need.
    async fn plan_stores(
        &self,
        platform: &PantheraPlatform,
        network: &Network,
    ) -> Result<Vec<(Store, Option<Observed>, Planned)>> {
        let owner = Owner::of(platform);
        let mut work = Vec::new();
        for store in model::stores(platform) {
            self.check_region(network, &store.component)?;
            let ctx = self.ctx(network.region.as_deref(), &store.component);
            let observed = self.describe(&ctx, &store).await?;
            let planned = model::plan(&owner, &store, network, observed.as_ref())
                .map_err(|m| ctx.terminal(m))?;
            work.push((store, observed, planned));
        }
        Ok(work)
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
        options: &ReconcileOptions,
    ) -> Result<Vec<StoreState>> {
        let owner = Owner::of(platform);
        let network = model::network(platform);
        let work = self.plan_stores(platform, &network).await?;
        if !options.allow_replace {
            let replaced: Vec<String> = work
                .iter()
                .filter(|(_, _, p)| p.action == Action::Replace)
                .map(|(_, _, p)| p.summary.clone())
                .collect();
            if let Some((store, _, _)) = work.iter().find(|(_, _, p)| p.action == Action::Replace) {
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
        for (store, observed, planned) in work {
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
                    self.password(&ctx, &owner, &store, options, observed.is_none())
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
        options: &ReconcileOptions,
        creating: bool,
    ) -> Result<String> {
        let name = model::secret_name(owner, &store.component);
        if let Some(p) = secrets::get(ctx, &name).await? {
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
        ctx.api(store.service)
            .create(ctx, store, network, tags, password.unwrap_or_default())
            .await
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
                let adopt_password = password.filter(|_| action == Action::Adopt);
                ctx.api(store.service)
                    .modify(ctx, store, network, o, planned, adopt_password)
                    .await
            }
        }
    }
}
