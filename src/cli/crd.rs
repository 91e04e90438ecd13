//! `panthera crd`: the CustomResourceDefinition generated from the Rust types (crds/ is this output).

use std::io::Write;

use kube::CustomResourceExt;

use super::output::Format;
use super::{Error, Result, io_err};
use crate::api::PantheraPlatform;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera crd > crds/pantheraplatform.yaml\n  panthera crd | kubectl apply --server-side -f -"
)]
pub struct Args {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let text = match args.output {
        Format::Yaml => crate::api::crd_yaml().map_err(|e| Error::Usage(e.to_string()))?,
        Format::Json => {
            let mut t = serde_json::to_string_pretty(&PantheraPlatform::crd())
                .map_err(|e| Error::Usage(e.to_string()))?;
            t.push('\n');
            t
        }
    };
    out.write_all(text.as_bytes())
        .map_err(io_err("write output"))
}
