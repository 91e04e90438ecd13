//! Step 4, apply: the writes. Server-side apply of each object the decisions say changes (as
//! field manager `panthera`), deletes of pruned children, and the namespace when it is missing.

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::Value;

use super::decide::{ComponentDecisions, Verdict};
use super::error::{Error, Result, api_message, classify, is_code};
use super::report::{ApplyReport, Event};
use super::snapshot::{Live, name_of};
use super::{ApplyOptions, Engine};
use crate::api::{Kind, LABEL_MANAGED_BY, MANAGER};

impl Engine {
    fn api(&self, kind: &Kind, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &kind.api_resource())
    }

    /// Create the platform's namespace when it is missing (not on a dry run).
    pub(super) async fn ensure_namespace(&self, namespace: &str, dry_run: bool) -> Result<()> {
        use k8s_openapi::api::core::v1::Namespace;
        let api: Api<Namespace> = Api::all(self.client.clone());
        let id = format!("Namespace/{namespace}");
        match super::retry::call(&self.limiter, || api.get_opt(namespace)).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) if dry_run => Ok(()),
            Ok(None) => {
                let mut ns = Namespace::default();
                ns.metadata.name = Some(namespace.to_string());
                ns.metadata.labels =
                    Some([(LABEL_MANAGED_BY.to_string(), MANAGER.to_string())].into());
                let params = PostParams::default();
                super::retry::call(&self.limiter, || api.create(&params, &ns))
                    .await
                    .map(|_| ())
                    .or_else(|e| if is_code(&e, 409) { Ok(()) } else { Err(e) })
                    .map_err(|e| classify(e, "create", "namespaces", namespace, &id))
            }
            Err(e) => Err(classify(e, "get", "namespaces", namespace, &id)),
        }
    }

    /// Server-side apply of one prepared object; returns the object as the server has it.
    pub(super) async fn patch(
        &self,
        namespace: &str,
        desired: &Value,
        dry_run: bool,
        force: bool,
    ) -> Result<Value> {
        let text = |key: &str| desired.get(key).and_then(Value::as_str).unwrap_or_default();
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        let name = name_of(desired).to_string();
        let id = format!("{kind}/{name}");
        let managed = Kind::find(api_version, kind)
            .filter(|k| k.role == crate::api::kinds::Role::Child)
            .ok_or_else(|| Error::Unmanaged {
                id: id.clone(),
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            })?;
        let api = self.api(managed, namespace);
        let mut params = PatchParams::apply(MANAGER);
        params.force = force;
        params.dry_run = dry_run;
        let patch = Patch::Apply(desired);
        match super::retry::call(&self.limiter, || api.patch(&name, &params, &patch)).await {
            Ok(o) => Ok(serde_json::to_value(&o).unwrap_or(Value::Null)),
            Err(e) if is_code(&e, 409) => Err(Error::Conflict {
                id,
                message: api_message(&e),
            }),
            Err(e) => Err(classify(e, "apply", managed.plural, namespace, &id)),
        }
    }

    /// Delete one child; one that is already gone is fine.
    pub(super) async fn delete(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<()> {
        let Some(managed) = Kind::named(kind) else {
            return Ok(());
        };
        let api = self.api(managed, namespace);
        let mut params = DeleteParams::background();
        params.dry_run = dry_run;
        match super::retry::call(&self.limiter, || api.delete(name, &params)).await {
            Ok(_) => Ok(()),
            Err(e) if is_code(&e, 404) => Ok(()),
            Err(e) => Err(classify(
                e,
                "delete",
                managed.plural,
                namespace,
                &format!("{kind}/{name}"),
            )),
        }
    }

    /// Write what one component's decisions say changes; `live` learns what the server answered.
    pub(super) async fn write_component(
        &self,
        namespace: &str,
        component: &ComponentDecisions<'_>,
        options: &ApplyOptions,
        live: &mut Live,
        report: &mut ApplyReport,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<()> {
        let (mut created, mut changed, mut same) = (0, 0, 0);
        for decision in &component.objects {
            let id = decision.object.id();
            match decision.verdict {
                Verdict::Unchanged => {
                    same += 1;
                    continue;
                }
                Verdict::Add => {
                    created += 1;
                    report.created.push(id);
                }
                Verdict::Change => {
                    changed += 1;
                    report.changed.push(id);
                }
            }
            let written = self
                .patch(
                    namespace,
                    &decision.desired,
                    options.dry_run,
                    options.force_conflicts,
                )
                .await?;
            if !options.dry_run {
                live.insert(decision.object.kind(), written);
            }
        }
        report.unchanged += same;
        on_event(Event::Applied {
            component: component.id.clone(),
            created,
            changed,
            unchanged: same,
        });
        Ok(())
    }
}
