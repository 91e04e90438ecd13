//! `panthera status`: components, backends, endpoints and conditions of a platform.

use std::io::Write;
use std::time::Duration;

use kube::api::Api;
use serde_json::json;

use super::cluster::{ClusterArgs, PlatformArgs, runtime};
use super::operator_follow::crd_error;
use super::{Error, Result, TemplateArgs, io_err};
use crate::api::PantheraPlatform;
use crate::engine::{ComponentState, Engine};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum StatusFormat {
    #[default]
    Table,
    Json,
    Yaml,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera status -f shop.yaml\n  panthera status shop -n shop -o json\n  panthera status shop -n shop --watch"
)]
pub struct Args {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = StatusFormat::Table)]
    pub output: StatusFormat,
    /// Print again every 2 seconds until interrupted.
    #[arg(short = 'w', long)]
    pub watch: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub templates: TemplateArgs,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let client = args.cluster.client().await?;
        let mut engine = Engine::new(client.clone(), args.templates.renderer()?)
            .with_rate_limit(args.cluster.qps, args.cluster.burst);
        loop {
            let (platform, conditions) = match (&args.platform.file, &args.platform.name) {
                (Some(file), _) => (args.cluster.load(file)?, Vec::new()),
                (None, Some(name)) => {
                    let ns = args.cluster.namespace.clone().unwrap_or_else(|| client.default_namespace().to_string());
                    let api: Api<PantheraPlatform> = Api::namespaced(client.clone(), &ns);
                    let p = api.get(name).await.map_err(|e| match &e {
                        kube::Error::Api(s) if s.code == 404 && s.message.contains(&format!("\"{name}\"")) => {
                            Error::Usage(format!("pantheraplatform {name} not found in namespace {ns}"))
                        }
                        _ => crd_error(e, &ns),
                    })?;
                    let conditions = p.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
                    (p, conditions)
                }
                (None, None) => return Err(Error::Usage("name a platform or pass -f FILE".into())),
            };
            engine = super::aws::attach(engine, &platform).await;
            let components = engine.observe(&platform).await?;
            let (name, namespace) = platform.ids();
            match args.output {
                StatusFormat::Table => {
                    writeln!(out, "Platform {name} (namespace {namespace})").map_err(io_err("write output"))?;
                    for c in &conditions {
                        writeln!(out, "  {}={:?} {}: {}", c.type_, c.status, c.reason, c.message).map_err(io_err("write output"))?;
                    }
                    print_table(&components, out)?;
                }
                format => {
                    let doc = json!({"name": name, "namespace": namespace, "conditions": conditions, "components": components});
                    let text = if format == StatusFormat::Json {
                        serde_json::to_string_pretty(&doc).map(|t| t + "\n").map_err(|e| Error::Usage(e.to_string()))?
                    } else {
                        serde_yaml::to_string(&doc).map_err(|e| Error::Usage(e.to_string()))?
                    };
                    out.write_all(text.as_bytes()).map_err(io_err("write output"))?;
                }
            }
            out.flush().map_err(io_err("write output"))?;
            if !args.watch {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
}

/// The component table shared by `status` and `apply --wait`.
pub fn print_table(components: &[ComponentState], out: &mut dyn Write) -> Result<()> {
    let w = components
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(9);
    let mut text = format!(
        "{:<w$}  {:<8}  {:<7}  {:<5}  {:<40}  MESSAGE\n",
        "COMPONENT", "KIND", "BACKEND", "READY", "ENDPOINT"
    );
    for c in components {
        text.push_str(&format!(
            "{:<w$}  {:<8}  {:<7}  {:<5}  {:<40}  {}\n",
            c.name,
            c.kind.as_str(),
            c.backend.as_str(),
            if c.ready { "True" } else { "False" },
            c.endpoint.as_deref().unwrap_or("-"),
            c.message
        ));
    }
    out.write_all(text.as_bytes())
        .map_err(io_err("write output"))
}
