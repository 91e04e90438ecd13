//! Client-side throttling (`--qps`/`--burst`, like kubectl and client-go) and retries of API
//! calls that may succeed on a second try: server errors, throttling (the client already honours
//! Retry-After for 429/503/504; this adds 500 and optimistic-lock conflicts) and dropped
//! connections. Bounded, with exponential backoff and jitter.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

const ATTEMPTS: u32 = 10;
/// A cluster that does not answer at all is reported quickly rather than retried for long.
const TRANSPORT_ATTEMPTS: u32 = 3;

fn retryable(e: &kube::Error) -> bool {
    match e {
        // A 409 from server-side apply is a field-manager conflict: retrying cannot fix it.
        kube::Error::Api(s) if s.code == 409 => !s.message.starts_with("Apply failed"),
        kube::Error::Api(s) => matches!(s.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

fn is_transport(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

/// Token bucket shared by every call of an engine.
#[derive(Clone, Debug)]
pub struct Limiter {
    state: Arc<Mutex<(f64, Instant)>>,
    qps: f64,
    burst: f64,
}

impl Limiter {
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            state: Arc::new(Mutex::new((burst, Instant::now()))),
            qps: qps.max(0.1),
            burst,
        }
    }

    /// Unlimited (tests, benchmarks against a local simulator).
    pub fn unlimited() -> Self {
        Self::new(1e9, u32::MAX)
    }

    async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let (tokens, last) = *state;
                let now = Instant::now();
                let tokens =
                    (tokens + now.duration_since(last).as_secs_f64() * self.qps).min(self.burst);
                if tokens >= 1.0 {
                    *state = (tokens - 1.0, now);
                    return;
                }
                *state = (tokens, now);
                Duration::from_secs_f64((1.0 - tokens) / self.qps)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Call `f` until it succeeds, fails for good, or runs out of attempts.
pub async fn call<T, F, Fut>(limiter: &Limiter, mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        limiter.acquire().await;
        match f().await {
            Ok(v) => return Ok(v),
            Err(e)
                if attempt < ATTEMPTS
                    && retryable(&e)
                    && (attempt < TRANSPORT_ATTEMPTS || !is_transport(&e)) =>
            {
                let jitter = Duration::from_millis(u64::from(rand::random::<u8>()) % 50);
                tokio::time::sleep(delay + jitter).await;
                delay = (delay * 2).min(Duration::from_secs(2));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limiter_spreads_calls_beyond_the_burst() {
        let limiter = Limiter::new(100.0, 5);
        let start = Instant::now();
        for _ in 0..15 {
            limiter.acquire().await;
        }
        // 5 from the burst, 10 more at 100/s: at least ~100 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(90),
            "{:?}",
            start.elapsed()
        );
    }
}
