//! What an AWS failure tells the user: the failed action, AWS's code and message, and whether
//! waiting can cure it (throttling, a busy resource) or a person must act (terminal).

use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};

/// An AWS failure, terminal (fix the spec, the account or the credentials) or transient (retry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{component}: {message}")]
pub struct Error {
    pub component: String,
    pub message: String,
    pub terminal: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure only a person can fix (the spec, the account), in `component`.
    pub fn terminal(component: &str, message: impl Into<String>) -> Self {
        Self {
            component: component.to_string(),
            message: message.into(),
            terminal: true,
        }
    }
}

/// Error codes that waiting cures: throttling, server trouble, a resource busy with another change.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerErrorException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBSubnetGroupStateFault",
    "InvalidReplicationGroupState",
    "InvalidReplicationGroupStateFault",
    "InvalidCacheClusterState",
    "InvalidCacheClusterStateFault",
    "InvalidCacheSubnetGroupStateFault",
    "ConflictException",
];

/// Whether an AWS error code needs a person (invalid parameter, quota, access) rather than time.
/// No code (timeouts, connection failures, a 5xx without a body) is transient.
pub fn is_terminal(code: Option<&str>) -> bool {
    code.is_some_and(|c| !TRANSIENT_CODES.contains(&c))
}

const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with a role (IRSA, ECS task role, EC2 instance profile)";

/// A service's error, as every SDK's `SdkError` carries it.
pub(super) trait ServiceError:
    ProvideErrorMetadata + std::error::Error + Send + Sync + 'static
{
}
impl<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static> ServiceError for E {}

/// The raw response an `SdkError` keeps.
pub(super) trait RawResponse: std::fmt::Debug + Send + Sync + 'static {}
impl<R: std::fmt::Debug + Send + Sync + 'static> RawResponse for R {}

/// Turn an SDK error into what the user can act on, naming the failed action.
pub(super) fn classify<E, R>(component: &str, action: &str, e: &SdkError<E, R>) -> Error
where
    E: ServiceError,
    R: RawResponse,
{
    let code = e.code().map(str::to_string);
    let (message, terminal) = match (&code, e) {
        (Some(code), _) => (
            format!(
                "cannot {action}: {code}: {}",
                e.message().unwrap_or("no message")
            ),
            is_terminal(Some(code)),
        ),
        (None, SdkError::ServiceError(_) | SdkError::ResponseError(_)) => (
            format!("cannot {action}: {}", crate::errors::chain(e)),
            false,
        ),
        (None, _) => {
            let text = crate::errors::chain(e);
            let lower = text.to_ascii_lowercase();
            if lower.contains("credential") {
                (format!("cannot {action}: {NO_CREDENTIALS} ({text})"), true)
            } else if (lower.contains("region") && lower.contains("missing"))
                || lower.contains("no region")
            {
                (
                    format!(
                        "cannot {action}: no AWS region: set AWS_REGION or spec.aws.region ({text})"
                    ),
                    true,
                )
            } else {
                (format!("cannot {action}: {text}"), false)
            }
        }
    };
    Error {
        component: component.to_string(),
        message,
        terminal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_busy_resources_are_transient_everything_else_terminal() {
        assert!(!is_terminal(Some("Throttling")));
        assert!(!is_terminal(Some("ThrottlingException")));
        assert!(!is_terminal(Some("TooManyRequestsException")));
        assert!(!is_terminal(Some("InvalidDBInstanceState")));
        assert!(!is_terminal(None), "timeouts and connection errors");
        assert!(is_terminal(Some("InvalidParameterValue")));
        assert!(is_terminal(Some("InstanceQuotaExceeded")));
        assert!(is_terminal(Some("AccessDenied")));
    }
}
