//! What the controller watches: the platforms (cached, for the reconciles) and every child kind
//! (into the engine's caches, and mapped back to their platform as triggers).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use super::cache::Children;
use super::controller::{Guarded, PAUSE_ANNOTATION, Settings};
use crate::api::{Kind, LABEL_PLATFORM};
use crate::engine::ChildCache;

/// The platforms' watch (full objects, cached) and a reader of its cache.
pub fn platforms(
    client: &Client,
    settings: &Settings,
) -> (
    Store<Guarded>,
    impl Stream<Item = Result<Guarded, watcher::Error>> + Send + 'static,
) {
    let api: Api<Guarded> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .backoff(WatchBackoff::default())
        // Who owns which field is the API server's business, and most of a platform's size.
        .modify(|platform| platform.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects()
        // Status writes (ours included) do not need a reconcile; spec, pause, finalizers and
        // deletion do. Children's changes arrive through their own watches.
        .predicate_filter(what_needs_a_reconcile, PredicateConfig::default());
    (reader, stream)
}

fn what_needs_a_reconcile(platform: &Guarded) -> Option<u64> {
    let meta = platform.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(PAUSE_ANNOTATION))
        .hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp
        .as_ref()
        .map(|t| t.0)
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// The controller: platforms plus a watch per child kind that fills `children` (the caches the
/// engine reads) and maps each child back to its platform by the `panthera.dev/platform` label
/// (children carry no ownerReferences, so the garbage collector can never delete data behind
/// the finalizer's back). Unlabelled objects are watched too: the engine must see a name
/// someone else took, and the Secrets a platform needs.
pub fn build(
    client: &Client,
    settings: &Settings,
    children: Arc<Children>,
    reader: Store<Guarded>,
    platforms: impl Stream<Item = Result<Guarded, watcher::Error>> + Send + 'static,
) -> Controller<Guarded> {
    let config = controller::Config::default()
        .concurrency(settings.concurrency)
        .debounce(settings.debounce);
    // Every trigger stream's error also pauses the merged trigger stream; kube's default pause
    // grows to 30 s and resets only after two quiet minutes, so a flaky API server would hold
    // back every platform's events. Ours resets on the next event.
    let mut controller = Controller::for_stream(platforms, reader)
        .with_config(config)
        .trigger_backoff(WatchBackoff::default());
    // The optional kinds (the Prometheus operator's) are watched only where the cluster served
    // them at start: a watch of an API that is not there fails forever.
    for managed in Kind::children().filter(|k| !k.optional() || children.served(k) == Some(true)) {
        let resource = managed.api_resource();
        let api: Api<DynamicObject> = match &settings.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let cache = children.clone();
        let events = watcher(api, watcher::Config::default())
            .backoff(WatchBackoff::default())
            .map_ok(move |event| {
                cache.apply(managed, &event);
                event
            })
            .touched_objects();
        controller = controller.watches_stream_with(events, platform_of_child, resource);
    }
    controller
}

/// Delay between attempts to restart a failed watch (and before passing on trigger events
/// after an error): 200 ms doubling to 5 s, back to 200 ms after any success. kube's default climbs to 30 s and resets only after two quiet minutes, so
/// a flaky API server would leave the operator blind to changes for half a minute at a time.
#[derive(Clone, Debug)]
pub(super) struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(5);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

fn platform_of_child(child: DynamicObject) -> Option<ObjectRef<Guarded>> {
    let platform = child.labels().get(LABEL_PLATFORM)?;
    let namespace = child.namespace()?;
    Some(ObjectRef::new(platform).within(&namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_backoff_is_capped_and_resets() {
        use kube::runtime::utils::Backoff;
        let mut b = WatchBackoff::default();
        let delays: Vec<Duration> = b.by_ref().take(7).collect();
        assert_eq!(delays[0], Duration::from_millis(200));
        assert_eq!(delays[6], Duration::from_secs(5));
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(200)));
    }
}
