//! `panthera install`: put the operator in the cluster, or print its manifests for GitOps.

use std::io::Write;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

use super::cluster::{ClusterArgs, runtime};
use super::{Error, Result, TemplateArgs, io_err};
use crate::engine::api_message;
use crate::operator::install::{InstallOptions, manifests};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera install\n  panthera install --print > panthera-operator.yaml\n  panthera install -n platform-ops --image registry.example.com/panthera:0.1.0 --replicas 3\n  panthera install --watch-namespace shop\n  panthera install --env OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector.monitoring:4318"
)]
pub struct Args {
    /// Operator image.
    #[arg(long, default_value_t = InstallOptions::default_image())]
    pub image: String,
    /// Operator replicas; one leads, the others stand by.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=10))]
    pub replicas: u16,
    /// Reconcile platforms of this namespace only, with permissions granted there only.
    #[arg(long, value_name = "NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// A ServiceMonitor for the operator's metrics. Without it, install adds one when the
    /// cluster serves monitoring.coreos.com/v1 (the Prometheus operator); --print only when asked.
    #[arg(long)]
    pub service_monitor: bool,
    /// Label of the ServiceMonitor (repeatable), e.g. --monitor-label release=kube-prometheus-stack.
    #[arg(long = "monitor-label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub monitor_labels: Vec<(String, String)>,
    /// Print the manifests (YAML) instead of applying them.
    #[arg(long)]
    pub print: bool,
    /// Environment variable of the operator (repeatable), e.g. its traces:
    /// --env OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector.monitoring:4318.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Extra argument passed to `panthera operator` (repeatable), e.g. --operator-arg=--resync=5m.
    #[arg(long = "operator-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub operator_args: Vec<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub templates: TemplateArgs,
}

/// `NAME=VALUE` with a name Kubernetes takes and the operator does not set itself.
fn parse_env(text: &str) -> std::result::Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{name:?} is not an environment variable name (a letter or '_', then letters, digits or '_')"
        ));
    }
    if matches!(name, "POD_NAME" | "POD_NAMESPACE") {
        return Err(format!("{name} is set by the operator's Deployment itself"));
    }
    Ok((name.to_string(), value.to_string()))
}

fn parse_label(text: &str) -> std::result::Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let mut options = InstallOptions {
        namespace: args
            .cluster
            .namespace
            .clone()
            .unwrap_or_else(|| "panthera-system".into()),
        image: args.image.clone(),
        replicas: args.replicas,
        watch_namespace: args.watch_namespace.clone(),
        args: args.operator_args.clone(),
        service_monitor: args.service_monitor,
        monitor_labels: args.monitor_labels.iter().cloned().collect(),
        env: args.env.iter().cloned().collect(),
    };
    if args.print {
        let objects = manifests(&args.templates.renderer()?, &options)?;
        for object in &objects {
            let yaml = serde_yaml::to_string(&object.value)
                .map_err(|e| Error::Usage(format!("cannot encode {}: {e}", object.id())))?;
            write!(out, "---\n{yaml}").map_err(io_err("write output"))?;
        }
        return Ok(());
    }
    let renderer = args.templates.renderer()?;
    let rt = runtime()?;
    rt.block_on(async {
        let client = args.cluster.client().await?;
        if !options.service_monitor {
            // Discovered, not assumed: a ServiceMonitor where the API is missing would fail.
            options.service_monitor = crate::engine::snapshot::serves(
                &client,
                &crate::engine::retry::Limiter::unlimited(),
                &crate::api::kinds::SERVICE_MONITOR,
            )
            .await
            .map_err(|e| Error::Usage(format!("cannot discover the Prometheus operator's API: {e}")))?;
        }
        let objects = manifests(&renderer, &options)?;
        // The RoleBinding goes into the watched namespace: check it exists before writing
        // anything, rather than stop halfway with the operator installed but not allowed to work.
        if let Some(watched) = options
            .watch_namespace
            .as_deref()
            .filter(|ns| *ns != options.namespace)
        {
            let namespaces: Api<Namespace> = Api::all(client.clone());
            let found = namespaces.get_opt(watched).await.map_err(|e| {
                Error::Usage(format!("cannot read namespace {watched}: {}", api_message(&e)))
            })?;
            if found.is_none() {
                return Err(Error::Usage(format!(
                    "namespace {watched} (--watch-namespace) does not exist: create it first; nothing was applied"
                )));
            }
        }
        let params = PatchParams::apply(crate::api::MANAGER);
        for object in &objects {
            let (api_version, kind) = (
                object.value["apiVersion"].as_str().unwrap_or_default(),
                object.kind(),
            );
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let Some((plural, namespaced)) = scope(kind) else {
                return Err(Error::Usage(format!(
                    "{}: not an installable kind",
                    object.id()
                )));
            };
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, version, kind),
                plural,
            );
            let api: Api<DynamicObject> = match (namespaced, object.namespace()) {
                (true, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
                _ => Api::all_with(client.clone(), &resource),
            };
            api.patch(object.name(), &params, &Patch::Apply(&object.value))
                .await
                .map_err(|e| {
                    Error::Usage(format!("cannot apply {}: {}", object.id(), api_message(&e)))
                })?;
            writeln!(out, "applied {}", object.id()).map_err(io_err("write output"))?;
        }
        Ok(())
    })
}

/// Plural and whether namespaced, for the kinds `templates/operator/` renders.
fn scope(kind: &str) -> Option<(&'static str, bool)> {
    Some(match kind {
        "Namespace" => ("namespaces", false),
        "CustomResourceDefinition" => ("customresourcedefinitions", false),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "ServiceAccount" => ("serviceaccounts", true),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "Service" => ("services", true),
        "Deployment" => ("deployments", true),
        "ServiceMonitor" => ("servicemonitors", true),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_name_equals_value_and_never_the_operators_own() {
        assert_eq!(
            parse_env("OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318/a=b").unwrap(),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
                "http://c:4318/a=b".to_string()
            )
        );
        assert!(parse_env("NOVALUE").unwrap_err().contains("NAME=VALUE"));
        assert!(
            parse_env("1BAD=x")
                .unwrap_err()
                .contains("not an environment")
        );
        assert!(parse_env("POD_NAME=x").unwrap_err().contains("itself"));
    }
}
