//! What AWS's status words mean: the phase of a resource, its readiness and the message for it.

use super::{Observed, Service};

/// Where a resource is in its life, from AWS's status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Available,
    Creating,
    Modifying,
    Deleting,
    /// Cannot recover by waiting: the message says why.
    Failed,
    /// Stopped or another state that needs a person.
    Other,
}

/// The phase of an AWS status word.
pub fn phase(service: Service, status: &str) -> Phase {
    let s = status.to_ascii_lowercase();
    match service {
        Service::Rds => match s.as_str() {
            "available" | "backing-up" | "storage-optimization" => Phase::Available,
            s if s.starts_with("configuring-") => Phase::Available,
            "creating" => Phase::Creating,
            "modifying"
            | "upgrading"
            | "rebooting"
            | "resetting-master-credentials"
            | "renaming"
            | "moving-to-vpc"
            | "maintenance"
            | "starting" => Phase::Modifying,
            "deleting" => Phase::Deleting,
            "failed" | "restore-error" | "storage-full" | "insufficient-capacity" => Phase::Failed,
            s if s.starts_with("incompatible-") || s.starts_with("inaccessible-") => Phase::Failed,
            _ => Phase::Other,
        },
        Service::ElastiCache => match s.as_str() {
            "available" | "snapshotting" => Phase::Available,
            "creating" => Phase::Creating,
            "modifying" => Phase::Modifying,
            "deleting" => Phase::Deleting,
            "create-failed" => Phase::Failed,
            _ => Phase::Other,
        },
        // The domain's processing status, or the word `describe` makes of its flags.
        Service::OpenSearch => match s.as_str() {
            "active" => Phase::Available,
            "creating" => Phase::Creating,
            "modifying" | "upgradingengineversion" | "updatingservicesoftware" => Phase::Modifying,
            "deleting" => Phase::Deleting,
            _ => Phase::Other,
        },
        // A bucket exists or does not: describe says `available` once HeadBucket finds it.
        Service::S3 => match s.as_str() {
            "available" => Phase::Available,
            _ => Phase::Other,
        },
        // The words `describe` makes of a distribution's state and its `Enabled` flag:
        // `Deployed` and `InProgress` while it serves, `Disabling` and `Disabled` on the way
        // to its deletion (CloudFront deletes only a disabled, deployed distribution).
        Service::CloudFront => match s.as_str() {
            "deployed" => Phase::Available,
            "inprogress" => Phase::Modifying,
            "disabling" => Phase::Deleting,
            _ => Phase::Other,
        },
        Service::Msk => match s.as_str() {
            "active" => Phase::Available,
            "creating" => Phase::Creating,
            "updating" | "maintenance" | "rebooting_broker" | "healing" => Phase::Modifying,
            "deleting" => Phase::Deleting,
            "failed" => Phase::Failed,
            _ => Phase::Other,
        },
    }
}

pub fn is_deleting(service: Service, status: &str) -> bool {
    phase(service, status) == Phase::Deleting
}

/// Readiness and the status message of an existing resource: `available`, `creating`,
/// `modifying`, ... with AWS's word and pending changes when they add something.
pub fn progress(service: Service, observed: &Observed) -> (bool, String) {
    let phase = phase(service, &observed.status);
    let edge = service == Service::CloudFront;
    let word = match phase {
        // A distribution's own words: deployed to the edge locations, or on its way there.
        Phase::Available if edge => "deployed",
        Phase::Modifying if edge => "in progress",
        Phase::Available => "available",
        Phase::Creating if service == Service::Msk => "creating (MSK cluster provisioning)",
        Phase::Creating => "creating",
        Phase::Modifying => "modifying",
        Phase::Deleting => "deleting",
        Phase::Failed => "failed",
        Phase::Other => "not available",
    };
    let mut message = word.to_string();
    if !observed
        .status
        .eq_ignore_ascii_case(word.split(' ').next().unwrap_or(word))
    {
        message.push_str(&format!(
            " ({} status {})",
            service.resource(),
            observed.status
        ));
    }
    if !observed.pending.is_empty() {
        message.push_str(&format!("; pending: {}", observed.pending.join(", ")));
    }
    let ready = phase == Phase::Available && observed.endpoint.is_some();
    if phase == Phase::Available && observed.endpoint.is_none() {
        message = format!("{message}; endpoint not published yet");
    }
    (ready, message)
}
