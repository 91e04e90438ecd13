//! `panthera init`: a starter file from the shipped examples.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;

use super::{Error, Result, io_err};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Example {
    /// One service and its database.
    #[default]
    Minimal,
    /// Gateway with JWT, users/catalog/orders, two databases, Redis, Kafka.
    Shop,
    /// The shop with every data store on AWS (RDS, ElastiCache, MSK).
    Aws,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera init > platform.yaml\n  panthera init --example shop --name acme --namespace acme platform.yaml"
)]
pub struct Args {
    /// Which example to start from.
    #[arg(long, value_enum, default_value_t = Example::Minimal)]
    pub example: Example,
    /// Platform name (metadata.name).
    #[arg(long)]
    pub name: Option<String>,
    /// Namespace (metadata.namespace).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Write to FILE instead of stdout (refuses to overwrite).
    pub file: Option<PathBuf>,
}

pub fn example_text(example: Example) -> &'static str {
    match example {
        Example::Minimal => include_str!("../../examples/minimal.yaml"),
        Example::Shop => include_str!("../../examples/shop.yaml"),
        Example::Aws => include_str!("../../examples/aws.yaml"),
    }
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let mut text = example_text(args.example).to_string();
    let mut value: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| Error::Usage(format!("built-in example is broken: {e}")))?;
    let default_name = value["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let default_ns = value["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(name) = &args.name {
        value["metadata"]["name"] = serde_yaml::Value::String(name.clone());
        text = text.replacen(
            &format!("name: {default_name}"),
            &format!("name: {name}"),
            1,
        );
    }
    if let Some(ns) = &args.namespace {
        text = text.replacen(
            &format!("namespace: {default_ns}"),
            &format!("namespace: {ns}"),
            1,
        );
    }
    // The result must be valid: catch a bad --name before the user does.
    crate::load::load_str("<init>", &text)?;
    match &args.file {
        None => out
            .write_all(text.as_bytes())
            .map_err(io_err("write output")),
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(io_err(format!(
                    "create {} (init never overwrites)",
                    path.display()
                )))?;
            file.write_all(text.as_bytes())
                .map_err(io_err(format!("write {}", path.display())))?;
            writeln!(out, "wrote {}", path.display()).map_err(io_err("write output"))
        }
    }
}
