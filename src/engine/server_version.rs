//! The oldest Kubernetes Panthera supports, checked once on connect.
//!
//! Against an older server the first symptom would be a bare "the server could not find the
//! requested resource" halfway through an apply (autoscaling/v2 is missing on 1.22), or a CRD
//! whose rules the server silently ignores. Asking `/version` first turns that into one message
//! naming the version and what the cluster lacks.

use super::{Error, Result};

/// The oldest minor version of Kubernetes 1.x that has everything below.
pub const MINIMUM_MINOR: u32 = 29;

/// What Panthera uses, with the first minor version that serves it (on by default).
const FEATURES: &[(u32, &str)] = &[
    (21, "policy/v1 PodDisruptionBudget"),
    (23, "autoscaling/v2 HorizontalPodAutoscaler"),
    (
        27,
        "StatefulSet persistentVolumeClaimRetentionPolicy (how data volumes are kept)",
    ),
    (
        28,
        "fieldPath and reason in CRD validation rules (the CRD's CEL rules)",
    ),
    (29, "CRD validation rules (CEL) as a stable API"),
];

/// Refuse a server older than [`MINIMUM_MINOR`], naming what it lacks.
pub async fn check(client: &kube::Client) -> Result<()> {
    let info = client
        .apiserver_version()
        .await
        .map_err(|e| super::error::classify(e, "get", "version", "", "the server version"))?;
    check_info(&info.major, &info.minor, &info.git_version)
}

fn check_info(major: &str, minor: &str, git_version: &str) -> Result<()> {
    // Managed clusters report minors like "29+"; only the number counts.
    let number = |s: &str| -> Option<u32> {
        s.trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()
    };
    let (Some(major), Some(minor)) = (number(major), number(minor)) else {
        // A server that does not say which version it is (some proxies, development builds) is
        // given the benefit of the doubt: a missing API is still reported when it is used.
        return Ok(());
    };
    if major > 1 || minor >= MINIMUM_MINOR {
        return Ok(());
    }
    let missing: Vec<String> = FEATURES
        .iter()
        .filter(|(since, _)| *since > minor)
        .map(|(since, what)| format!("{what} (1.{since})"))
        .collect();
    Err(Error::UnsupportedServer {
        version: if git_version.is_empty() {
            format!("v{major}.{minor}")
        } else {
            git_version.to_string()
        },
        minimum: format!("v1.{MINIMUM_MINOR}"),
        missing: missing.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_minimum_and_newer_and_managed_minors() {
        assert!(check_info("1", "29", "v1.29.0").is_ok());
        assert!(check_info("1", "35", "v1.35.4").is_ok());
        assert!(check_info("1", "31+", "v1.31.2-eks-1").is_ok());
        assert!(check_info("2", "0", "v2.0.0").is_ok());
        assert!(check_info("", "", "").is_ok(), "unknown is not refused");
    }

    #[test]
    fn refuses_an_old_server_naming_version_minimum_and_what_is_missing() {
        let e = check_info("1", "20", "v1.20.2").unwrap_err().to_string();
        assert!(e.contains("v1.20.2") && e.contains("v1.29"), "{e}");
        assert!(
            e.contains("policy/v1 PodDisruptionBudget (1.21)")
                && e.contains("autoscaling/v2 HorizontalPodAutoscaler (1.23)"),
            "{e}"
        );
        let e = check_info("1", "27+", "v1.27.9-gke.1")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("autoscaling/v2"), "1.27 has it: {e}");
        assert!(e.contains("fieldPath"), "{e}");
    }
}
