//! `panthera plan -f FILE`: what apply would create, per component, in apply order. Offline: the
//! cluster diff comes with the apply engine.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::json;

use super::{Error, Result, TemplateArgs, io_err};
use crate::render::{Plan, Redacted};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PlanFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera plan -f examples/shop.yaml\n  panthera plan -f shop.yaml -o json | jq '.components[].name'"
)]
pub struct Args {
    /// PantheraPlatform file.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    #[command(flatten)]
    pub templates: TemplateArgs,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let platform = crate::load::load_file(&args.file)?;
    let plan = args.templates.renderer()?.render(&platform, &Redacted)?;
    let text = match args.output {
        PlanFormat::Text => text(&plan),
        PlanFormat::Json => {
            let mut t = serde_json::to_string_pretty(&json_plan(&plan))
                .map_err(|e| Error::Usage(e.to_string()))?;
            t.push('\n');
            t
        }
    };
    out.write_all(text.as_bytes())
        .map_err(io_err("write output"))
}

fn text(plan: &Plan) -> String {
    let total = plan.objects().count();
    let mut s = format!(
        "Plan for platform {} in namespace {}: {} objects in {} components (offline: everything is new)\n",
        plan.platform,
        plan.namespace,
        total,
        plan.components.len()
    );
    for c in &plan.components {
        let kind = c.kind.map_or("platform", |k| k.as_str());
        s.push_str(&format!("\n{kind} {} ({})\n", c.name, c.backend.as_str()));
        if let Some(external) = &c.external {
            s.push_str(&format!("  + {external}\n"));
        }
        for o in &c.objects {
            s.push_str(&format!("  + {}\n", o.id()));
        }
    }
    let external = plan
        .components
        .iter()
        .filter(|c| c.external.is_some())
        .count();
    s.push_str(&format!("\nPlan: {total} to add, 0 to change, 0 to prune"));
    if external > 0 {
        s.push_str(&format!("; {external} AWS resource(s) to provision"));
    }
    s.push('\n');
    s
}

fn json_plan(plan: &Plan) -> serde_json::Value {
    let components: Vec<_> = plan
        .components
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "kind": c.kind.map_or("platform", |k| k.as_str()),
                "backend": c.backend.as_str(),
                "external": c.external,
                "objects": c.objects.iter().map(|o| json!({
                    "action": "add",
                    "apiVersion": o.api_version(),
                    "kind": o.kind(),
                    "name": o.name(),
                    "namespace": o.namespace(),
                    "template": o.template,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "platform": plan.platform,
        "namespace": plan.namespace,
        "offline": true,
        "summary": {"add": plan.objects().count(), "change": 0, "prune": 0},
        "components": components,
    })
}
