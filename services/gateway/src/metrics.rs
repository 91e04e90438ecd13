//! Prometheus metrics served on the admin listener's `/metrics`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Route name label; `Arc<str>` so that labelling a request does not allocate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteLabel(pub Arc<str>);

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusLabel(pub u16);

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        write!(encoder, "{}", self.0)
    }
}

/// Standard methods by name; anything else collapses to `OTHER` so clients cannot inflate
/// the number of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodLabel(&'static str);

impl MethodLabel {
    pub fn of(method: &Method) -> Self {
        Self(match *method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::OPTIONS => "OPTIONS",
            _ => "OTHER",
        })
    }
}

impl EncodeLabelValue for MethodLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: RouteLabel,
    pub method: MethodLabel,
    pub status: StatusLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct LatencyLabels {
    pub route: RouteLabel,
    pub status: StatusLabel,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: &'static str,
}

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    reloads: Family<ReloadLabels, Counter>,
    /// The series of each (route, method, status) seen so far, so that a request costs one cheap
    /// lookup instead of two SipHashed family lookups. The key space is bounded (routes come from
    /// the config, methods and statuses are capped), so a non-DoS-resistant hash is fine.
    series: RwLock<HashMap<SeriesKey, (Counter, Histogram), BuildHasherDefault<Fnv>>>,
}

type SeriesKey = (Arc<str>, MethodLabel, u16);

/// FNV-1a: a few bytes of route name plus two small integers per key.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        // Both results exist from the start at 0: `increase()` over a series that appears only
        // at the first reload misses that reload, and a dashboard shows nothing instead of 0.
        for result in ["ok", "error"] {
            let _ = reloads.get_or_create(&ReloadLabels { result });
        }
        registry.register(
            "requests",
            "Requests handled, by route, method and response status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request received to response headers sent, by route and status",
            latency.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reload attempts by result",
            reloads.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            reloads,
            series: RwLock::default(),
        }
    }

    pub fn observe_request(
        &self,
        route: &Arc<str>,
        method: &Method,
        status: u16,
        elapsed: Duration,
    ) {
        let key = (Arc::clone(route), MethodLabel::of(method), status);
        if let Ok(series) = self.series.read()
            && let Some((counter, histogram)) = series.get(&key)
        {
            counter.inc();
            histogram.observe(elapsed.as_secs_f64());
            return;
        }
        let (route, method, status) = key;
        let counter = self
            .requests
            .get_or_create(&RequestLabels {
                route: RouteLabel(route.clone()),
                method,
                status: StatusLabel(status),
            })
            .clone();
        let histogram = self
            .latency
            .get_or_create(&LatencyLabels {
                route: RouteLabel(route.clone()),
                status: StatusLabel(status),
            })
            .clone();
        counter.inc();
        histogram.observe(elapsed.as_secs_f64());
        if let Ok(mut series) = self.series.write() {
            series.insert((route, method, status), (counter, histogram));
        }
    }

    pub fn observe_reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Prometheus text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
