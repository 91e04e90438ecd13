//! The `panthera` command line: one module per verb, kubectl-like flags.

mod apply;
mod aws;
mod cluster;
mod completions;
mod crd;
mod destroy;
mod init;
mod install;
mod operator;
mod operator_follow;
mod output;
mod plan;
mod render;
mod restore;
mod status;
mod validate;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Control plane for application platforms on Kubernetes.
///
/// Describe a whole platform (API gateway, services, PostgreSQL, Redis, Kafka) in one
/// PantheraPlatform file; validate, render and plan it offline.
#[derive(Debug, Parser)]
#[command(
    name = "panthera",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Examples:\n  panthera init --example shop > shop.yaml\n  panthera validate -f shop.yaml\n  panthera plan -f shop.yaml\n  panthera apply -f shop.yaml --wait\n  panthera status -f shop.yaml\n  panthera render -f shop.yaml --out-dir manifests/"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a starter PantheraPlatform file.
    Init(init::Args),
    /// Check a PantheraPlatform file against the CRD schema and its CEL rules.
    Validate(validate::Args),
    /// Render the Kubernetes objects of a platform.
    Render(render::Args),
    /// Show what apply would change: a diff per object against the cluster, or offline.
    Plan(plan::Args),
    /// Apply a platform to the cluster: create or update what changed, wait, prune.
    Apply(apply::Args),
    /// Show components, backends, endpoints and conditions of a platform.
    Status(status::Args),
    /// Delete a platform in reverse order, keeping its data by default.
    Destroy(destroy::Args),
    /// Restore an RDS database to a point in time or from a snapshot, into a new instance.
    Restore(restore::Args),
    /// Print the PantheraPlatform CustomResourceDefinition.
    Crd(crd::Args),
    /// Install the operator: CRD, RBAC, Deployment and metrics Service (or print them).
    Install(install::Args),
    /// Run the in-cluster controller that reconciles PantheraPlatforms.
    Operator(operator::Args),
    /// Print shell completions.
    Completions(completions::Args),
}

/// An error of a verb: printed as `error: ...` with exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(#[from] crate::load::Diagnostics),
    #[error("render failed: {0}")]
    Render(#[from] crate::render::Error),
    #[error("{0}")]
    Engine(#[from] crate::engine::Error),
    /// `plan --exit-code` found changes: exit 2, nothing printed as an error.
    #[error("changes pending")]
    ChangesPending,
    #[error("{action}: {source}")]
    Io {
        action: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Template override folder shared by the verbs that render.
#[derive(Debug, clap::Args)]
pub struct TemplateArgs {
    /// Folder of tera templates replacing the built-in ones (same layout: service/deployment.yaml).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

impl TemplateArgs {
    fn renderer(&self) -> Result<crate::render::Renderer> {
        Ok(match &self.templates {
            Some(dir) => crate::render::Renderer::with_overrides(dir)?,
            None => crate::render::Renderer::embedded()?,
        })
    }
}

/// Run a parsed command line; the exit code follows kubectl: 0 ok, 1 error.
pub fn run(cli: Cli) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        Command::Init(args) => init::run(&args, &mut out),
        Command::Validate(args) => validate::run(&args, &mut out),
        Command::Render(args) => render::run(&args, &mut out),
        Command::Plan(args) => plan::run(&args, &mut out),
        Command::Apply(args) => apply::run(&args, &mut out),
        Command::Status(args) => status::run(&args, &mut out),
        Command::Destroy(args) => destroy::run(&args, &mut out),
        Command::Restore(args) => restore::run(&args, &mut out),
        Command::Crd(args) => crd::run(&args, &mut out),
        Command::Install(args) => install::run(&args, &mut out),
        Command::Operator(args) => operator::run(&args, &mut out),
        Command::Completions(args) => completions::run(&args, &mut out),
    };
    let flushed = out.flush();
    match result {
        Ok(()) if flushed.is_ok() => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
        Err(Error::ChangesPending) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn io_err(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let action = action.into();
    move |source| Error::Io { action, source }
}
