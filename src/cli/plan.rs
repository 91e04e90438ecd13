//! `panthera plan -f FILE`: against a cluster, a server-side dry run of every object that may
//! change and a unified diff per object; without one (or with --offline), the objects apply
//! would create, per component, in apply order.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use serde_json::json;

use super::cluster::{FileArgs, runtime};
use super::{Error, Result, io_err};
use crate::engine::{Action, Change, Diff, DiffLine, Engine};
use crate::render::{Plan, Redacted};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PlanFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Color {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera plan -f examples/shop.yaml\n  panthera plan -f shop.yaml --prune --exit-code   # CI: exit 2 when there are changes\n  panthera plan -f shop.yaml -o json | jq '.summary'\n  panthera plan -f shop.yaml --offline"
)]
pub struct Args {
    #[command(flatten)]
    pub target: FileArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = PlanFormat::Text)]
    pub output: PlanFormat,
    /// Exit with 2 when there are changes (0: none, 1: error).
    #[arg(long)]
    pub exit_code: bool,
    /// Also show the children apply --prune would delete.
    #[arg(long)]
    pub prune: bool,
    /// Do not contact a cluster even if one is configured.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub replace: super::aws::ReplaceArgs,
    /// Colour the diff.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let platform = args.target.platform()?;
    let renderer = args.target.templates.renderer()?;
    if args.offline || !args.target.cluster.configured() {
        let plan = renderer.render(&platform, &Redacted)?;
        let text = match args.output {
            PlanFormat::Text => offline_text(
                &plan,
                &crate::cloud::aws::model::stores(&platform),
                !args.offline,
            ),
            PlanFormat::Json => pretty(&offline_json(&plan))?,
        };
        out.write_all(text.as_bytes())
            .map_err(io_err("write output"))?;
        return if args.exit_code && plan.objects().next().is_some() {
            Err(Error::ChangesPending)
        } else {
            Ok(())
        };
    }
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && args.output == PlanFormat::Text,
    };
    let (changes, aws, notes) = runtime()?.block_on(async {
        let client = args.target.cluster.client().await?;
        let engine = Engine::new(client, renderer)
            .with_rate_limit(args.target.cluster.qps, args.target.cluster.burst);
        let engine = super::aws::attach(engine, &platform).await;
        let plan = engine.plan(&platform, args.prune).await?;
        Ok::<_, Error>((plan.changes, plan.aws, plan.notes))
    })?;
    // An edge waiting for the gateway's load balancer is still to create: a change pending.
    let aws_changes = aws
        .iter()
        .filter(|p| p.action != crate::cloud::aws::Action::Unchanged)
        .count();
    let (name, namespace) = platform.ids();
    let count = |a: Action| changes.iter().filter(|c| c.action == a).count();
    let (add, change, prune, same) = (
        count(Action::Add),
        count(Action::Change),
        count(Action::Prune),
        count(Action::Unchanged),
    );
    let text = match args.output {
        PlanFormat::Text => {
            let mut s = format!("Plan for platform {name} in namespace {namespace}\n");
            for c in changes.iter().filter(|c| c.action != Action::Unchanged) {
                let sign = match c.action {
                    Action::Add => "+",
                    Action::Change => "~",
                    Action::Prune => "-",
                    Action::Unchanged => " ",
                };
                s.push_str(&format!("\n{sign} {} ({})\n", c.id, c.component));
                if let Some(d) = &c.diff {
                    s.push_str(&paint(d, color));
                }
            }
            for note in &notes {
                s.push_str(&format!("\nNote: {note}\n"));
            }
            s.push_str(&format!(
                "\nPlan: {add} to add, {change} to change, {prune} to prune, {same} unchanged.\n"
            ));
            if !aws.is_empty() {
                s.push_str("\nAWS (data stores and the edge):\n");
                s.push_str(&super::aws::plan_lines(&aws, args.replace.allow_replace));
                s.push_str(&format!("\n{}\n", super::aws::summary(&aws)));
            }
            s
        }
        PlanFormat::Json => pretty(&json!({
            "platform": name,
            "namespace": namespace,
            "offline": false,
            "summary": {"add": add, "change": change, "prune": prune, "unchanged": same, "aws": aws_changes},
            "changes": changes.iter().map(change_json).collect::<Vec<_>>(),
            "aws": aws,
            "notes": notes,
        }))?,
    };
    out.write_all(text.as_bytes())
        .map_err(io_err("write output"))?;
    if !args.replace.allow_replace
        && let Some(refusal) = super::aws::refuse_replace(&aws)
    {
        return Err(Error::Usage(refusal));
    }
    if args.exit_code && add + change + prune + aws_changes > 0 {
        Err(Error::ChangesPending)
    } else {
        Ok(())
    }
}

/// The diff as text, coloured like git's on a terminal.
fn paint(diff: &Diff, color: bool) -> String {
    let mut out = String::new();
    for (kind, line) in diff.lines() {
        let code = match kind {
            DiffLine::Added => "32",
            DiffLine::Removed => "31",
            DiffLine::Hunk => "36",
            DiffLine::Header | DiffLine::Context => "",
        };
        if color && !code.is_empty() {
            out.push_str(&format!("\x1b[{code}m{line}\x1b[0m\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn change_json(c: &Change) -> serde_json::Value {
    json!({"component": c.component, "object": c.id, "action": c.action, "diff": c.diff})
}

fn pretty(v: &serde_json::Value) -> Result<String> {
    serde_json::to_string_pretty(v)
        .map(|t| t + "\n")
        .map_err(|e| Error::Usage(e.to_string()))
}

fn offline_text(plan: &Plan, stores: &[crate::cloud::aws::Store], no_cluster: bool) -> String {
    let total = plan.objects().count();
    let why = if no_cluster {
        "no cluster configured"
    } else {
        "--offline"
    };
    let mut s = format!(
        "Plan for platform {} in namespace {}: {} objects in {} components (offline, {why}: everything is new)\n",
        plan.platform,
        plan.namespace,
        total,
        plan.components.len()
    );
    for c in &plan.components {
        let kind = c.kind.map_or("platform", |k| k.as_str());
        s.push_str(&format!("\n{kind} {} ({})\n", c.name, c.backend.as_str()));
        if c.external.is_some()
            && let Some(store) = stores
                .iter()
                .find(|st| Some(st.service.kind()) == c.kind && st.name == c.name)
        {
            s.push_str(&format!(
                "  + create {} {} ({})\n",
                store.service.resource(),
                store.identifier,
                store.settings
            ));
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
    if plan
        .objects()
        .any(|o| crate::api::Kind::find(o.api_version(), o.kind()).is_some_and(|k| k.optional()))
    {
        s.push_str(&format!(
            "\nNote: the {} objects are applied only where the cluster serves that API (the Prometheus operator's CRDs); plan against the cluster says whether it does\n",
            crate::api::kinds::MONITORING_API_VERSION
        ));
    }
    s.push_str(&format!("\nPlan: {total} to add, 0 to change, 0 to prune"));
    if external > 0 {
        s.push_str(&format!("; {external} AWS resource(s) to provision"));
    }
    s.push('\n');
    s
}

fn offline_json(plan: &Plan) -> serde_json::Value {
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
