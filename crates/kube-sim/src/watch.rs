//! Watch streams: resume from a resourceVersion, synthetic ADDED events, bookmarks, 410 Gone for a
//! compacted resourceVersion, server-side timeouts, and selector transitions.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::lifecycle::present;
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::state::SimState;
use crate::status::{ApiError, ApiResult};
use crate::store::{EventType, StoreError, WatchEvent, encode_frame};

/// Timers must not be zero (interval panics) and deadlines must not overflow `Instant`.
const MIN_TICK: Duration = Duration::from_millis(10);
const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

fn later(after: Duration) -> Instant {
    Instant::now() + after.min(MAX_WAIT)
}

/// How long a watcher waits after an event for more to send them together.
const COALESCE: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct WatchParams {
    pub namespace: Option<String>,
    pub resource_version: Option<u64>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Duration,
    pub partial_metadata: bool,
}

struct Filter {
    rt: Arc<ResourceType>,
    params: WatchParams,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.params.labels.matches(obj) && self.params.fields.matches(obj)
    }

    fn encode(&self, event_type: EventType, obj: &Value, cached: Option<&WatchEvent>) -> Bytes {
        let same_version =
            obj.get("apiVersion").and_then(Value::as_str) == Some(self.rt.api_version().as_str());
        if let Some(ev) = cached
            && same_version
            && !self.params.partial_metadata
            && ev.event_type == event_type
        {
            return ev.frame();
        }
        let out = if self.params.partial_metadata {
            partial_metadata(obj)
        } else {
            present(&self.rt, obj)
        };
        encode_frame(event_type.as_str(), &out)
    }

    /// The frame this watcher sends for an event, if any.
    fn frame_for(&self, ev: &WatchEvent) -> Option<Bytes> {
        if ev.resource != self.rt.group_resource() {
            return None;
        }
        if let Some(ns) = &self.params.namespace
            && ns != &ev.namespace
        {
            return None;
        }
        let now = self.matches(&ev.object);
        let before = ev.previous.as_ref().is_some_and(|p| self.matches(p));
        match ev.event_type {
            EventType::Modified if now && !before => {
                Some(self.encode(EventType::Added, &ev.object, None))
            }
            EventType::Modified if !now && before => {
                Some(self.encode(EventType::Deleted, &ev.object, None))
            }
            _ if now => Some(self.encode(ev.event_type, &ev.object, Some(ev))),
            _ => None,
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        encode_frame(
            "BOOKMARK",
            &json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": meta}),
        )
    }
}

pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Starts a watch; the response streams until timeout, client disconnect or an injected fault.
pub fn start(
    state: Arc<SimState>,
    rt: Arc<ResourceType>,
    params: WatchParams,
) -> ApiResult<Response> {
    let gr = rt.group_resource();
    let filter = Filter { rt, params };
    let mut initial: Vec<Bytes> = Vec::new();
    let (subscription, expired) = match filter.params.resource_version {
        Some(rv) if rv > 0 => match state.store.subscribe(Some(rv)) {
            Ok(sub) => (sub, None),
            Err(StoreError::Expired { requested, oldest }) => {
                let sub = state
                    .store
                    .subscribe(None)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                (
                    sub,
                    Some(ApiError::gone(format!(
                        "too old resource version: {requested} ({oldest})"
                    ))),
                )
            }
            Err(e) => return Err(ApiError::internal(e.to_string())),
        },
        _ => {
            let (items, sub) = state
                .store
                .snapshot_and_subscribe(&gr, filter.params.namespace.as_deref());
            for obj in items.iter().filter(|o| filter.matches(o)) {
                initial.push(filter.encode(EventType::Added, obj, None));
            }
            if filter.params.send_initial_events && filter.params.bookmarks {
                initial.push(filter.bookmark(sub.resource_version, true));
            }
            (sub, None)
        }
    };

    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let body = Body::from_stream(futures::StreamExt::map(
        tokio_stream::wrappers::ReceiverStream::new(rx),
        Ok::<_, Infallible>,
    ));
    tokio::spawn(async move {
        if let Some(err) = expired {
            let _ = tx.send(encode_frame("ERROR", &err.to_status_json())).await;
            return;
        }
        let mut last_rv = subscription.resource_version;
        for frame in initial {
            if tx.send(frame).await.is_err() {
                return;
            }
        }
        for ev in &subscription.backlog {
            last_rv = ev.resource_version;
            if let Some(frame) = filter.frame_for(ev)
                && tx.send(frame).await.is_err()
            {
                return;
            }
        }
        let backlog_end = last_rv;
        let mut live = subscription.live;
        let deadline = later(filter.params.timeout);
        let drop_at = state.faults.watch_drop_interval().map(later);
        let mut bookmark_tick = tokio::time::interval(state.config.bookmark_interval.max(MIN_TICK));
        bookmark_tick.tick().await;
        let mut health_tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                ev = live.recv() => match ev {
                    Ok(ev) => {
                        // Wait a moment and drain what queued up into one write: with many
                        // watchers following a burst of writes this cuts wakeups and syscalls
                        // by an order of magnitude, for at most COALESCE of added latency.
                        if live.is_empty() {
                            tokio::time::sleep(COALESCE).await;
                        }
                        let mut batch = bytes::BytesMut::new();
                        let mut next = Some(ev);
                        let mut taken = 0;
                        while let Some(ev) = next.take() {
                            if ev.resource_version > backlog_end {
                                last_rv = ev.resource_version;
                                if let Some(frame) = filter.frame_for(&ev) {
                                    batch.extend_from_slice(&frame);
                                }
                            }
                            taken += 1;
                            if taken < 1024 {
                                match live.try_recv() {
                                    Ok(more) => next = Some(more),
                                    Err(broadcast::error::TryRecvError::Lagged(_)) => return,
                                    Err(_) => {}
                                }
                            }
                        }
                        if !batch.is_empty() && tx.send(batch.freeze()).await.is_err() {
                            return;
                        }
                    }
                    // A watcher too slow to keep up is closed; the client re-watches.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = bookmark_tick.tick(), if filter.params.bookmarks => {
                    if tx.send(filter.bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                _ = health_tick.tick() => {
                    if tx.is_closed() || state.faults.unavailable() {
                        return;
                    }
                    if drop_at.is_some_and(|t| Instant::now() >= t) {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if filter.params.bookmarks {
                        let _ = tx.send(filter.bookmark(last_rv, false)).await;
                    }
                    return;
                }
            }
        }
    });
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}
