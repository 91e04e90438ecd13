//! Resending a request upstream when that is safe: one loop for both upstream transports.
//!
//! A request is sent up to `1 + retries` times when its method is idempotent, once otherwise;
//! every attempt has the route's timeout. An attempt's error says itself whether another attempt
//! may help ([`Retryable`]): a failed connection or a timeout may, a body over the limit may not.
//! There is no backoff between attempts: they go to the next pooled or a fresh connection at once,
//! as the route's timeout already bounds how long a client waits.

use std::future::Future;
use std::time::Duration;

use http::Method;
use tokio::time::error::Elapsed;

/// Methods whose repetition has the same effect as one request (RFC 9110 §9.2.2), so a request
/// whose outcome is unknown may be sent again.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// An attempt's error, telling whether the request may be sent again.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

/// How often, and for how long each time, one request may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    timeout: Duration,
}

impl RetryPolicy {
    /// `retries` more attempts after the first for idempotent methods, none for the others.
    pub fn new(method: &Method, retries: u32, timeout: Duration) -> Self {
        let retries = if is_idempotent(method) { retries } else { 0 };
        Self {
            attempts: retries.saturating_add(1),
            timeout,
        }
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// How long one attempt may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the request may be sent more than once; its body then has to be kept to be sent
    /// again (a streamed body can be sent only once).
    pub fn may_resend(&self) -> bool {
        self.attempts > 1
    }

    /// Runs `attempt` (given its index from 0) until it succeeds, fails with an error that is not
    /// retryable, or the attempts are used up; each attempt is bounded by the timeout. The error
    /// is the last attempt's.
    pub async fn run<T, E, F, Fut>(&self, route: &str, mut attempt: F) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Retryable + From<Elapsed> + std::fmt::Debug,
    {
        let mut index = 0;
        loop {
            let error = match tokio::time::timeout(self.timeout, attempt(index)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => error,
                Err(elapsed) => E::from(elapsed),
            };
            if !error.is_retryable() {
                return Err(error);
            }
            tracing::debug!(route, attempt = index, ?error, "upstream attempt failed");
            index += 1;
            if index >= self.attempts {
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Failure {
        Unavailable(u32),
        Timeout,
        Fatal,
    }

    impl Retryable for Failure {
        fn is_retryable(&self) -> bool {
            !matches!(self, Self::Fatal)
        }
    }

    impl From<Elapsed> for Failure {
        fn from(_: Elapsed) -> Self {
            Self::Timeout
        }
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// Runs `policy` with attempts that fail with `fail(index)` until `succeed_at`; returns the
    /// outcome and how many attempts were made.
    async fn run(
        policy: RetryPolicy,
        succeed_at: Option<u32>,
        fail: impl Fn(u32) -> Failure,
    ) -> (Result<u32, Failure>, u32) {
        let calls = Cell::new(0);
        let result = policy
            .run("test", |index| {
                calls.set(calls.get() + 1);
                let outcome = if Some(index) == succeed_at {
                    Ok(index)
                } else {
                    Err(fail(index))
                };
                async move { outcome }
            })
            .await;
        (result, calls.get())
    }

    #[test]
    fn idempotent_methods() {
        for method in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::TRACE,
            Method::PUT,
            Method::DELETE,
        ] {
            assert!(is_idempotent(&method), "{method}");
        }
        for method in [Method::POST, Method::PATCH, Method::CONNECT] {
            assert!(!is_idempotent(&method), "{method}");
        }
    }

    #[tokio::test]
    async fn non_idempotent_methods_are_not_retried() {
        for method in [Method::POST, Method::PATCH] {
            let policy = RetryPolicy::new(&method, 3, TIMEOUT);
            assert_eq!(policy.attempts(), 1);
            assert!(!policy.may_resend());
            let (result, calls) = run(policy, None, Failure::Unavailable).await;
            assert_eq!(result, Err(Failure::Unavailable(0)));
            assert_eq!(calls, 1, "{method} sent again");
        }
    }

    #[tokio::test]
    async fn the_budget_holds() {
        let policy = RetryPolicy::new(&Method::GET, 2, TIMEOUT);
        assert_eq!(policy.attempts(), 3);
        assert!(policy.may_resend());
        let (result, calls) = run(policy, None, Failure::Unavailable).await;
        assert_eq!(result, Err(Failure::Unavailable(2)), "the last error");
        assert_eq!(calls, 3);

        let (result, calls) = run(policy, Some(1), Failure::Unavailable).await;
        assert_eq!(result, Ok(1));
        assert_eq!(calls, 2, "no attempt after a success");

        let once = RetryPolicy::new(&Method::GET, 0, TIMEOUT);
        assert_eq!(run(once, None, Failure::Unavailable).await.1, 1);

        // The largest budget does not overflow into none.
        assert_eq!(
            RetryPolicy::new(&Method::GET, u32::MAX, TIMEOUT).attempts(),
            u32::MAX
        );
    }

    #[tokio::test]
    async fn errors_that_are_not_retryable_end_the_loop() {
        let policy = RetryPolicy::new(&Method::PUT, 5, TIMEOUT);
        let (result, calls) = run(policy, None, |_| Failure::Fatal).await;
        assert_eq!(result, Err(Failure::Fatal));
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn a_timed_out_attempt_is_retried() {
        let policy = RetryPolicy::new(&Method::GET, 1, Duration::from_millis(20));
        let calls = Cell::new(0);
        let result: Result<(), Failure> = policy
            .run("test", |_| {
                calls.set(calls.get() + 1);
                async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(())
                }
            })
            .await;
        assert_eq!(result, Err(Failure::Timeout));
        assert_eq!(calls.get(), 2);
    }
}
