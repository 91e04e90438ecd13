//! `panthera destroy`: tear a platform down in reverse order, keeping data unless told otherwise.

use std::io::{BufRead, IsTerminal, Write};

use kube::api::{Api, DeleteParams};

use super::cluster::{ClusterArgs, PlatformArgs, runtime};
use super::{Error, Result, TemplateArgs, io_err};
use crate::api::PantheraPlatform;
use crate::engine::Engine;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera destroy -f shop.yaml\n  panthera destroy shop -n shop --yes\n  panthera destroy -f shop.yaml --yes --keep-data=false   # also data whose deletionPolicy is Delete"
)]
pub struct Args {
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Keep volumes and the Secrets that open them (false: delete those whose deletionPolicy is Delete).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub keep_data: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub templates: TemplateArgs,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let mut from_file = None;
    let (name, namespace) = match (&args.platform.file, &args.platform.name) {
        (Some(file), _) => {
            let p = args.cluster.load(file)?;
            let ids = p.ids();
            from_file = Some(p);
            ids
        }
        (None, Some(name)) => (
            name.clone(),
            args.cluster
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        ),
        (None, None) => return Err(Error::Usage("name a platform or pass -f FILE".into())),
    };
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "refusing to destroy without --yes when no one can answer the prompt".into(),
            ));
        }
        eprint!(
            "Destroy platform {name} in namespace {namespace}{}? Type the platform name to confirm: ",
            if args.keep_data {
                " (data is kept)"
            } else {
                " INCLUDING data whose deletionPolicy is Delete"
            }
        );
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(io_err("read the confirmation"))?;
        if answer.trim() != name {
            return Err(Error::Usage("not confirmed; nothing was deleted".into()));
        }
    }
    let rt = runtime()?;
    let report = rt.block_on(async {
        let client = args.cluster.client().await?;
        // Delete the resource first so an operator does not recreate what is being removed; read
        // it before, so that its AWS data stores (and their region) are known.
        let api: Api<PantheraPlatform> = Api::namespaced(client.clone(), &namespace);
        let platform = match from_file {
            Some(p) => Some(p),
            None => api.get_opt(&name).await.ok().flatten(),
        };
        match api.delete(&name, &DeleteParams::foreground()).await {
            Ok(_) => eprintln!("deleted pantheraplatform {name}"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => eprintln!("warning: could not delete the pantheraplatform resource: {e}"),
        }
        let engine = Engine::new(client, args.templates.renderer()?)
            .with_rate_limit(args.cluster.qps, args.cluster.burst);
        let on_event = |e| {
            if let crate::engine::Event::Pruned { id } = e {
                eprintln!("deleted {id}");
            }
        };
        match platform {
            Some(p) => {
                let engine = super::aws::attach(engine, &p).await;
                engine.destroy_platform(&p, args.keep_data, &on_event).await
            }
            None => {
                engine
                    .destroy(&name, &namespace, args.keep_data, &on_event)
                    .await
            }
        }
        .map_err(Error::from)
    })?;
    for waiting in &report.waiting {
        writeln!(out, "waiting: {waiting}").map_err(io_err("write output"))?;
    }
    writeln!(
        out,
        "destroyed platform {name}: {} deleted{}{}",
        report.deleted.len(),
        if args.keep_data { "; data kept" } else { "" },
        if report.waiting.is_empty() {
            String::new()
        } else {
            format!(
                "; AWS is still deleting {} resource(s): run destroy again to confirm they are gone",
                report.waiting.len()
            )
        }
    )
    .map_err(io_err("write output"))
}
