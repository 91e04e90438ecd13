//! `panthera validate -f FILE`: the answer the API server would give, before a cluster sees it.

use std::io::Write;
use std::path::PathBuf;

use super::{Result, TemplateArgs, io_err};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera validate -f shop.yaml\n  panthera validate -f a.yaml -f b.yaml --render"
)]
pub struct Args {
    /// PantheraPlatform file(s) to check.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Also render the platform, so template and override errors are caught too.
    #[arg(long)]
    pub render: bool,
    #[command(flatten)]
    pub templates: TemplateArgs,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let renderer = if args.render {
        Some(args.templates.renderer()?)
    } else {
        None
    };
    let mut failed = Vec::new();
    for file in &args.files {
        match crate::load::load_file(file) {
            Ok(platform) => {
                if let Some(renderer) = &renderer
                    && let Err(e) = renderer.render(&platform, &crate::render::Redacted)
                {
                    eprintln!("error: {}: {e}", file.display());
                    failed.push(file.display().to_string());
                    continue;
                }
                writeln!(out, "{}: valid", file.display()).map_err(io_err("write output"))?;
            }
            Err(diagnostics) => {
                for d in &diagnostics.0 {
                    eprintln!("error: {d}");
                }
                failed.push(file.display().to_string());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(super::Error::Usage(format!(
            "{} invalid: {}",
            failed.len(),
            failed.join(", ")
        )))
    }
}
