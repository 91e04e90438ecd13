//! `apply --via-operator` and reading a platform resource: the CR is the only thing written,
//! the operator does the rest and reports through the status contract.

use std::io::Write;
use std::time::Instant;

use kube::api::{Api, Patch, PatchParams};

use super::apply::Args;
use super::{Error, Result, io_err};
use crate::api::{ConditionStatus, PantheraPlatform};

/// Apply the PantheraPlatform itself and, with --wait, follow its status until Ready or Stalled.
pub async fn apply_and_follow(
    args: &Args,
    platform: &PantheraPlatform,
    out: &mut dyn Write,
) -> Result<()> {
    let client = args.target.cluster.client().await?;
    let (name, namespace) = platform.ids();
    let api: Api<PantheraPlatform> = Api::namespaced(client, &namespace);
    let mut object = platform.clone();
    object.status = None;
    object.metadata.managed_fields = None;
    let mut params = PatchParams::apply(crate::api::MANAGER);
    params.force = args.force_conflicts;
    params.dry_run = args.dry_run == super::apply::DryRun::Server;
    let applied = api
        .patch(&name, &params, &Patch::Apply(&object))
        .await
        .map_err(|e| crd_error(e, &namespace))?;
    let generation = applied.metadata.generation.unwrap_or(0);
    writeln!(
        out,
        "pantheraplatform.panthera.dev/{name} applied (generation {generation})"
    )
    .map_err(io_err("write output"))?;
    if !args.wait || params.dry_run {
        return Ok(());
    }
    let started = Instant::now();
    loop {
        let current = api.get(&name).await.map_err(|e| crd_error(e, &namespace))?;
        if let Some(status) = &current.status {
            let observed = status.observed_generation.unwrap_or(0);
            let cond = |t: &str| {
                status.conditions.iter().find(|c| {
                    c.type_ == t && c.observed_generation.unwrap_or(observed) >= generation
                })
            };
            if observed >= generation {
                if let Some(c) = cond("Ready").filter(|c| c.status == ConditionStatus::True) {
                    writeln!(out, "Ready: {}", c.message).map_err(io_err("write output"))?;
                    return Ok(());
                }
                if let Some(c) = cond("Stalled").filter(|c| c.status == ConditionStatus::True) {
                    let not_ready: Vec<String> = status
                        .components
                        .iter()
                        .filter(|c| !c.ready)
                        .map(|c| c.name.clone())
                        .collect();
                    return Err(Error::Usage(format!(
                        "platform {name} is stalled ({}): {}; not ready: {}",
                        c.reason,
                        c.message,
                        not_ready.join(", ")
                    )));
                }
            }
        }
        if started.elapsed() >= args.timeout {
            return Err(Error::Usage(format!(
                "timed out after {}s waiting for the operator to report platform {name} Ready at generation {generation}; is `panthera operator` running?",
                args.timeout.as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A missing CRD is the usual reason a platform resource cannot be read or written.
pub fn crd_error(e: kube::Error, namespace: &str) -> Error {
    match &e {
        // A missing object reads `... "name" not found`; a missing resource type reads "the
        // server could not find the requested resource".
        kube::Error::Api(s) if s.code == 404 && !s.message.ends_with("not found") => {
            Error::Usage("the PantheraPlatform CRD is not installed: run `panthera crd | kubectl apply --server-side -f -`".into())
        }
        kube::Error::Api(s) if s.code == 403 => Error::Usage(format!(
            "forbidden to use pantheraplatforms in namespace {namespace}: {}",
            s.message
        )),
        _ => Error::Usage(format!("cannot read or write the platform resource: {e}")),
    }
}
