//! `panthera apply -f FILE`: the main job. Applies what changed, waits in dependency order,
//! prunes, and exits non-zero naming what did not become ready.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::cluster::{FileArgs, runtime};
use super::{Error, Result, io_err};
use crate::engine::{ApplyOptions, Engine, Event};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRun {
    /// Nothing is sent.
    None,
    /// The API server validates and defaults every object but persists nothing.
    Server,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera apply -f shop.yaml --wait\n  panthera apply -f shop.yaml --prune --wait --timeout 10m\n  panthera apply -f shop.yaml --dry-run=server\n  panthera apply -f shop.yaml --via-operator --wait"
)]
pub struct Args {
    #[command(flatten)]
    pub target: FileArgs,
    /// Wait for every component to be ready, data stores before services before the gateway.
    #[arg(long)]
    pub wait: bool,
    /// Time budget when waiting (e.g. 90s, 10m).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Delete children of this platform that the file no longer describes (never data).
    #[arg(long)]
    pub prune: bool,
    /// `server`: let the API server check everything, persist nothing.
    #[arg(long, value_enum, default_value_t = DryRun::None, num_args = 0..=1, default_missing_value = "server", require_equals = true)]
    pub dry_run: DryRun,
    /// Take over fields that another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    #[command(flatten)]
    pub replace: super::aws::ReplaceArgs,
    /// Apply only the PantheraPlatform resource and follow the operator's status.
    #[arg(long)]
    pub via_operator: bool,
}

pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 5m or 1h"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?} is not a duration like 90s, 5m or 1h")),
    }
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let platform = args.target.platform()?;
    let renderer = args.target.templates.renderer()?;
    let rt = runtime()?;
    if args.via_operator {
        return rt.block_on(super::operator_follow::apply_and_follow(
            args, &platform, out,
        ));
    }
    let options = ApplyOptions {
        dry_run: args.dry_run == DryRun::Server,
        prune: args.prune,
        wait: args.wait,
        timeout: args.timeout,
        force_conflicts: args.force_conflicts,
        create_namespace: true,
        allow_replace: args.replace.allow_replace,
    };
    let report = rt.block_on(async {
        let client = args.target.cluster.client().await?;
        let engine = Engine::new(client, renderer)
            .with_rate_limit(args.target.cluster.qps, args.target.cluster.burst);
        let engine = super::aws::attach(engine, &platform).await;
        let progress = Progress::new();
        let result = engine
            .apply(&platform, &options, &|e| progress.event(e))
            .await;
        progress.finish();
        result.map_err(Error::from)
    })?;
    let dry = if options.dry_run {
        " (server dry run)"
    } else {
        ""
    };
    for (verb, ids) in [
        ("created", &report.created),
        ("changed", &report.changed),
        ("pruned", &report.pruned),
    ] {
        for id in ids {
            writeln!(out, "{verb} {id}{dry}").map_err(io_err("write output"))?;
        }
    }
    // What was written, and an edge that waits for the gateway's load balancer.
    let said = |p: &&crate::cloud::aws::Planned| {
        p.writes() || p.action == crate::cloud::aws::Action::WaitOrigin
    };
    for planned in report.aws.iter().filter(said) {
        writeln!(out, "aws {}: {}{dry}", planned.component, planned.summary)
            .map_err(io_err("write output"))?;
    }
    for waiting in &report.aws_waiting {
        writeln!(out, "waiting: {waiting}").map_err(io_err("write output"))?;
    }
    if super::aws::needed(&platform) {
        writeln!(
            out,
            "AWS: {} API calls, {} writes{dry}",
            report.aws_calls, report.aws_writes
        )
        .map_err(io_err("write output"))?;
    }
    writeln!(
        out,
        "{} created, {} changed, {} unchanged, {} pruned{dry}",
        report.created.len(),
        report.changed.len(),
        report.unchanged,
        report.pruned.len()
    )
    .map_err(io_err("write output"))?;
    // After --wait every component's readiness is known; otherwise only the AWS stores' state
    // (creating, modifying, available) is worth printing: workloads were just written.
    let shown: Vec<_> = report
        .components
        .iter()
        .filter(|c| args.wait || c.backend == crate::api::Backend::Aws)
        .cloned()
        .collect();
    if !shown.is_empty() {
        super::status::print_table(&shown, out)?;
    }
    Ok(())
}

/// Progress per component: bars on a terminal, plain lines in logs.
struct Progress {
    bars: Option<MultiProgress>,
    by_component: Mutex<Vec<(String, ProgressBar)>>,
    started: Instant,
}

impl Progress {
    fn new() -> Self {
        let bars = std::io::stderr().is_terminal().then(MultiProgress::new);
        Self {
            bars,
            by_component: Mutex::new(Vec::new()),
            started: Instant::now(),
        }
    }

    fn bar(&self, component: &str) -> Option<ProgressBar> {
        let multi = self.bars.as_ref()?;
        let mut bars = self.by_component.lock().ok()?;
        if let Some((_, b)) = bars.iter().find(|(c, _)| c == component) {
            return Some(b.clone());
        }
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:>12} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(component.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bars.push((component.to_string(), bar.clone()));
        Some(bar)
    }

    fn event(&self, event: Event) {
        let line = match &event {
            Event::Applied {
                component,
                created,
                changed,
                unchanged,
            } => {
                format!(
                    "{component}: applied ({created} created, {changed} changed, {unchanged} unchanged)"
                )
            }
            Event::Waiting {
                component,
                reason,
                elapsed,
                budget,
            } => format!(
                "{component}: waiting for {reason} ({}s of {}s)",
                elapsed.as_secs(),
                budget.as_secs()
            ),
            Event::Ready { component } => format!(
                "{component}: ready after {}s",
                self.started.elapsed().as_secs()
            ),
            Event::Pruned { id } => format!("pruned {id}"),
        };
        let component = match &event {
            Event::Applied { component, .. }
            | Event::Waiting { component, .. }
            | Event::Ready { component } => Some(component),
            Event::Pruned { .. } => None,
        };
        match component.and_then(|c| self.bar(c)) {
            Some(bar) => {
                if matches!(event, Event::Ready { .. }) {
                    bar.finish_with_message(line);
                } else {
                    bar.set_message(line);
                }
            }
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Ok(bars) = self.by_component.lock() {
            for (_, b) in bars.iter() {
                if !b.is_finished() {
                    b.abandon();
                }
            }
        }
    }
}
