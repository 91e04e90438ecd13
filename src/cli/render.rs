//! `panthera render -f FILE`: the Kubernetes objects of a platform, in apply order.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::output::{self, Format};
use super::{Error, Result, TemplateArgs, io_err};
use crate::render::{Generated, Plan, Redacted, SecretValues};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera render -f shop.yaml\n  panthera render -f shop.yaml -o json\n  panthera render -f shop.yaml --out-dir manifests/\n  panthera render -f shop.yaml --show-secrets | kubectl apply -f -"
)]
pub struct Args {
    /// PantheraPlatform file.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
    /// Write one file per object (NN-kind-name.yaml) into DIR instead of stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Print generated passwords instead of REDACTED (new random values on every run).
    #[arg(long)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub templates: TemplateArgs,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let platform = crate::load::load_file(&args.file)?;
    let renderer = args.templates.renderer()?;
    let secrets: Box<dyn SecretValues> = if args.show_secrets {
        Box::new(Generated::new())
    } else {
        Box::new(Redacted)
    };
    let plan = renderer.render(&platform, secrets.as_ref())?;
    match &args.out_dir {
        Some(dir) => write_dir(&plan, dir, args.output, out),
        None => {
            let values: Vec<_> = plan.objects().map(|o| &o.value).collect();
            let text = output::objects(&values, args.output).map_err(Error::Usage)?;
            out.write_all(text.as_bytes())
                .map_err(io_err("write output"))
        }
    }
}

/// One file per object; everything is rendered before the first byte is written, and files go
/// through a temporary folder so a failure leaves no half-written directory.
fn write_dir(plan: &Plan, dir: &Path, format: Format, out: &mut dyn Write) -> Result<()> {
    let ext = match format {
        Format::Yaml => "yaml",
        Format::Json => "json",
    };
    let mut files = Vec::new();
    for (i, object) in plan.objects().enumerate() {
        let name = format!(
            "{:03}-{}-{}.{ext}",
            i + 1,
            object.kind().to_lowercase(),
            object.name()
        );
        let text = match format {
            Format::Yaml => {
                serde_yaml::to_string(&object.value).map_err(|e| Error::Usage(e.to_string()))?
            }
            Format::Json => {
                let mut t = serde_json::to_string_pretty(&object.value)
                    .map_err(|e| Error::Usage(e.to_string()))?;
                t.push('\n');
                t
            }
        };
        files.push((name, text));
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(format!("create {}", parent.display())))?;
    let staging = parent.join(format!(".panthera-render-{}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(io_err(format!("create {}", staging.display())))?;
    let written = (|| -> Result<()> {
        for (name, text) in &files {
            std::fs::write(staging.join(name), text).map_err(io_err(format!("write {name}")))?;
        }
        if dir.exists() {
            // Only replace a folder that holds rendered files, never someone's other work.
            for entry in
                std::fs::read_dir(dir).map_err(io_err(format!("read {}", dir.display())))?
            {
                let entry = entry.map_err(io_err(format!("read {}", dir.display())))?;
                let n = entry.file_name().to_string_lossy().to_string();
                let rendered = n.len() > 4
                    && n.as_bytes()[..3].iter().all(u8::is_ascii_digit)
                    && n.as_bytes()[3] == b'-';
                if !rendered {
                    return Err(Error::Usage(format!(
                        "{} holds {n}, which render did not write; choose an empty or a render-only folder",
                        dir.display()
                    )));
                }
            }
            std::fs::remove_dir_all(dir).map_err(io_err(format!("replace {}", dir.display())))?;
        }
        std::fs::rename(&staging, dir).map_err(io_err(format!("move files into {}", dir.display())))
    })();
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    written?;
    writeln!(out, "wrote {} objects to {}", files.len(), dir.display())
        .map_err(io_err("write output"))
}
