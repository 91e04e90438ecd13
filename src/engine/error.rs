//! What can go wrong between a platform and a cluster, each with what to do about it, and how a
//! client error becomes one of them.

/// What went wrong, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot reach the Kubernetes API ({source}); check --kubeconfig, --context and that the cluster is up"
    )]
    Unreachable { source: kube::Error },
    #[error(
        "the cluster runs Kubernetes {version}; Panthera needs {minimum} or newer, and this server lacks: {missing}; upgrade the cluster"
    )]
    UnsupportedServer {
        version: String,
        minimum: String,
        missing: String,
    },
    #[error(
        "the server does not serve {resource}: Panthera needs Kubernetes v1.{}+ with every API it manages; upgrade the cluster or enable that API",
        super::server_version::MINIMUM_MINOR
    )]
    MissingApi { resource: String },
    #[error(
        "forbidden: cannot {verb} {resource} in namespace {namespace}: {message}; grant this to your user or service account"
    )]
    Forbidden {
        verb: String,
        resource: String,
        namespace: String,
        message: String,
    },
    #[error(
        "{id}: fields are owned by another field manager: {message}; change them where they are managed, or rerun with --force-conflicts to take them over"
    )]
    Conflict { id: String, message: String },
    #[error(
        "{id} already exists and is not part of platform {platform}{owner}; rename or delete it, Panthera does not take over objects it did not create"
    )]
    Foreign {
        id: String,
        platform: String,
        owner: String,
    },
    /// An object of a kind Panthera does not manage in a platform's namespace (an override
    /// template that renders, say, a Role): it would be applied but never pruned.
    #[error(
        "{id}: {api_version} {kind} is not a kind Panthera manages in a platform's namespace; remove it from the templates"
    )]
    Unmanaged {
        id: String,
        api_version: String,
        kind: String,
    },
    // The server's message only: kube's Display appends a debug dump of the whole Status.
    #[error("cannot {action} {id}: {}", api_message(.source))]
    Api {
        action: &'static str,
        id: String,
        source: kube::Error,
    },
    #[error("render failed: {0}")]
    Render(#[from] crate::render::Error),
    #[error("{component} is stalled: {reason}")]
    Stalled { component: String, reason: String },
    /// A data store's version change that a roll cannot carry out (see `upgrade`); the message
    /// says what to do instead.
    #[error("{0}")]
    UnsafeUpgrade(String),
    /// Secrets the user provides are missing (see `preflight`); the message says how to create them.
    #[error("{0}")]
    MissingSecrets(String),
    #[error("timed out after {seconds}s; not ready: {pending}")]
    Timeout { seconds: u64, pending: String },
    /// An AWS data store failed. `terminal`: retrying will not help (invalid parameter, quota,
    /// missing credentials, a foreign resource, a refused replace) — report it as Stalled;
    /// otherwise (throttling after the SDK's retries, a busy resource, a network error) retry.
    #[error("{component}: AWS: {message}")]
    Aws {
        component: String,
        message: String,
        terminal: bool,
    },
}

impl Error {
    /// Whether retrying cannot help: the operator reports these as Stalled.
    pub fn is_terminal(&self) -> bool {
        match self {
            Self::Aws { terminal, .. } => *terminal,
            Self::Forbidden { .. }
            | Self::Conflict { .. }
            | Self::Foreign { .. }
            | Self::Unmanaged { .. }
            | Self::Render(_)
            | Self::UnsupportedServer { .. }
            | Self::MissingApi { .. }
            | Self::MissingSecrets(_)
            | Self::UnsafeUpgrade(_)
            | Self::Stalled { .. } => true,
            Self::Unreachable { .. } | Self::Api { .. } | Self::Timeout { .. } => false,
        }
    }
}

impl From<crate::cloud::aws::Error> for Error {
    fn from(e: crate::cloud::aws::Error) -> Self {
        Self::Aws {
            component: e.component,
            message: e.message,
            terminal: e.terminal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(super) fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The API server's own words for a refused request (kube's Display adds a debug dump).
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// Turn a client error into what the user can act on.
pub(super) fn classify(
    e: kube::Error,
    verb: &'static str,
    resource: &str,
    namespace: &str,
    id: &str,
) -> Error {
    match &e {
        kube::Error::Api(s) if s.code == 403 => Error::Forbidden {
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            message: s.message.clone(),
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => Error::Unreachable { source: e },
        // Listing a type the server does not know (a namespace that does not exist lists empty).
        kube::Error::Api(s) if s.code == 404 && verb == "list" => Error::MissingApi {
            resource: format!("{resource} ({id})"),
        },
        _ => Error::Api {
            action: verb,
            id: id.to_string(),
            source: e,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `classify` of a 404 answered to `verb` on `resource`.
    fn not_found(message: &str, verb: &'static str, resource: &str, id: &str) -> Error {
        let status = kube::core::Status::failure(message, "NotFound").with_code(404);
        classify(kube::Error::Api(status.boxed()), verb, resource, "ns", id)
    }

    #[test]
    fn api_errors_read_as_the_server_message_without_a_debug_dump() {
        let message = "namespaces \"nowhere\" not found";
        let e = not_found(message, "apply", "deployments", "Deployment/web");
        assert_eq!(
            e.to_string(),
            "cannot apply Deployment/web: namespaces \"nowhere\" not found"
        );
    }

    #[test]
    fn a_type_the_server_does_not_serve_is_named_with_the_minimum_version() {
        let message = "the server could not find the requested resource";
        let hpa = "autoscaling/v2 HorizontalPodAutoscaler";
        let e = not_found(message, "list", "horizontalpodautoscalers", hpa);
        assert!(e.is_terminal());
        assert_eq!(
            e.to_string(),
            "the server does not serve horizontalpodautoscalers (autoscaling/v2 HorizontalPodAutoscaler): Panthera needs Kubernetes v1.29+ with every API it manages; upgrade the cluster or enable that API"
        );
    }
}
