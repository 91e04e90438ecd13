//! Destroy: a platform's children in reverse order (gateway, services, then data stores), data
//! kept unless asked and allowed by each store's deletion policy, then its AWS resources.

use super::Engine;
use super::decide::{may_delete, teardown_rank};
use super::error::Result;
use super::report::{DestroyReport, Event};
use super::snapshot::{self, label, name_of};
use crate::api::{LABEL_COMPONENT, PantheraPlatform};

impl Engine {
    /// Delete a platform's children in reverse order: gateway, services, then data stores.
    /// Data (PVCs, and the connection Secrets that open it) is kept unless `keep_data` is false
    /// and the store's deletionPolicy is Delete. With an AWS client, the platform's AWS
    /// resources (found by their ownership tags) go by their deletionPolicy too (see
    /// [`crate::cloud::aws::Aws::destroy`]); AWS deletes asynchronously, so call again until
    /// [`DestroyReport::waiting`] is empty.
    /// AWS resources are looked for in the AWS client's region; [`Engine::destroy_platform`]
    /// uses the platform's `spec.aws.region`.
    pub async fn destroy(
        &self,
        platform: &str,
        namespace: &str,
        keep_data: bool,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<DestroyReport> {
        self.destroy_in(platform, namespace, Some(None), keep_data, on_event)
            .await
    }

    /// [`Engine::destroy`] of `platform`, looking for its AWS resources in `spec.aws.region`
    /// (the operator's finalizer has the resource at hand).
    pub async fn destroy_platform(
        &self,
        platform: &PantheraPlatform,
        keep_data: bool,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<DestroyReport> {
        let (name, namespace) = platform.ids();
        // Without `spec.aws` the platform never had AWS stores (the CRD requires it for them):
        // no AWS call, so a cluster-only platform needs no AWS credentials.
        let region = platform.spec.aws.as_ref().map(|aws| aws.region.as_deref());
        self.destroy_in(&name, &namespace, region, keep_data, on_event)
            .await
    }

    /// `aws`: `None` for no AWS teardown, else the region to look in (`None`: the client's).
    async fn destroy_in(
        &self,
        platform: &str,
        namespace: &str,
        aws: Option<Option<&str>>,
        keep_data: bool,
        on_event: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<DestroyReport> {
        let live = snapshot::children(
            &self.client,
            &self.limiter,
            self.cache.as_deref(),
            namespace,
            true,
        )
        .await?;
        let mut victims: Vec<(u8, &'static str, String)> = live
            .owned_by(platform)
            .filter(|(kind, o)| may_delete(kind, o, keep_data))
            .map(|(kind, o)| {
                (
                    teardown_rank(label(o, LABEL_COMPONENT)),
                    kind,
                    name_of(o).to_string(),
                )
            })
            .collect();
        victims.sort();
        let mut report = DestroyReport::default();
        for (_, kind, name) in victims {
            self.delete(namespace, kind, &name, false).await?;
            let id = format!("{kind}/{name}");
            on_event(Event::Pruned { id: id.clone() });
            report.deleted.push(id);
        }
        if let Some(region) = aws {
            self.destroy_aws(
                platform,
                namespace,
                region,
                keep_data,
                on_event,
                &mut report,
            )
            .await?;
        }
        Ok(report)
    }
}
