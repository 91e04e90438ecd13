//! Fault injection: errors per verb/resource, latency, watch stream drops, and a switch that makes
//! the server stop answering.

use std::time::Duration;

use parking_lot::RwLock;

use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    Internal500,
    TooManyRequests { retry_after_s: u64 },
    Conflict409,
}

#[derive(Debug, Clone)]
struct ErrorRule {
    verb: Option<String>,
    resource: Option<String>,
    rate: f64,
    kind: FaultKind,
}

#[derive(Debug, Default)]
struct FaultConfig {
    rules: Vec<ErrorRule>,
    latency: Duration,
    drop_watches_every: Option<Duration>,
    unavailable: bool,
}

/// Shared handle; changes apply to the next request.
#[derive(Debug, Default)]
pub struct Faults {
    config: RwLock<FaultConfig>,
}

impl Faults {
    /// Fails `rate` (0..=1) of matching requests; `None` matches any verb/resource. The resource is
    /// the plural (`configmaps`, `deployments`), verbs as in [`crate::CounterSnapshot`]. Setting the
    /// same verb/resource again replaces the rule; a rate of 0 removes it. When several rules match a
    /// request, the most recently set one decides.
    pub fn set_error_rate(
        &self,
        verb: Option<&str>,
        resource: Option<&str>,
        rate: f64,
        kind: FaultKind,
    ) {
        let mut c = self.config.write();
        let verb = verb.map(str::to_owned);
        let resource = resource.map(str::to_owned);
        c.rules
            .retain(|r| !(r.verb == verb && r.resource == resource));
        if rate > 0.0 {
            c.rules.push(ErrorRule {
                verb,
                resource,
                rate: rate.min(1.0),
                kind,
            });
        }
    }

    pub fn set_latency(&self, latency: Duration) {
        self.config.write().latency = latency;
    }

    pub fn drop_watches_every(&self, every: Option<Duration>) {
        self.config.write().drop_watches_every = every;
    }

    /// While set, requests get no answer (they hang until it is cleared or the client gives up)
    /// and open watches are closed.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.config.write().unavailable = unavailable;
    }

    pub fn clear(&self) {
        *self.config.write() = FaultConfig::default();
    }

    pub fn latency(&self) -> Duration {
        self.config.read().latency
    }

    pub fn unavailable(&self) -> bool {
        self.config.read().unavailable
    }

    pub fn watch_drop_interval(&self) -> Option<Duration> {
        self.config.read().drop_watches_every
    }

    /// The injected error for this request, if the dice say so.
    pub fn roll(&self, verb: &str, resource: &str, name: &str) -> Option<ApiError> {
        let c = self.config.read();
        let rule = c.rules.iter().rev().find(|r| {
            r.verb.as_deref().is_none_or(|v| v == verb)
                && r.resource.as_deref().is_none_or(|x| x == resource)
        })?;
        if fastrand::f64() >= rule.rate {
            return None;
        }
        Some(match rule.kind {
            FaultKind::Internal500 => ApiError::internal(format!("injected fault: {verb} {resource} failed")),
            FaultKind::TooManyRequests { retry_after_s } => ApiError::too_many_requests(retry_after_s),
            FaultKind::Conflict409 => ApiError::bad_request(format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ))
            .with_code(409, "Conflict"),
        })
    }
}
