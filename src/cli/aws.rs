//! The AWS client of the verbs, built only for platforms with `backend: aws` data stores (a
//! cluster-only platform never needs AWS configuration).

use crate::api::PantheraPlatform;
use crate::cloud::aws::{Aws, Planned, model};
use crate::engine::Engine;

/// `--allow-replace`, of plan and apply.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ReplaceArgs {
    /// Let an AWS data store be replaced (deleted by its deletionPolicy, then created again) when
    /// a change cannot be made in place (e.g. smaller storage); without it, apply refuses and
    /// plan exits 1.
    #[arg(long)]
    pub allow_replace: bool,
}

/// Whether `platform` has data stores with `backend: aws`.
pub fn needed(platform: &PantheraPlatform) -> bool {
    !model::stores(platform).is_empty()
}

/// `engine` with an AWS client from the standard configuration when `platform` needs one.
pub async fn attach(engine: Engine, platform: &PantheraPlatform) -> Engine {
    if needed(platform) && engine.aws().is_none() {
        engine.with_aws(Aws::from_env().await)
    } else {
        engine
    }
}

/// Plan lines of the AWS side: `+ postgres/users: create RDS instance shop-users (...)`.
pub fn plan_lines(planned: &[Planned], allow_replace: bool) -> String {
    let mut s = String::new();
    for p in planned {
        let refused = if p.action == model::Action::Replace && !allow_replace {
            " [refused without --allow-replace]"
        } else {
            ""
        };
        s.push_str(&format!(
            "{} {}: {}{refused}\n",
            p.action.sign(),
            p.component,
            p.summary
        ));
        if let Some(status) = &p.status {
            s.push_str(&format!("    status: {status}\n"));
        }
    }
    s
}

/// `AWS: 1 to create, 1 to modify, 0 to replace, 2 unchanged.`
pub fn summary(planned: &[Planned]) -> String {
    use model::Action;
    let count = |f: &dyn Fn(Action) -> bool| planned.iter().filter(|p| f(p.action)).count();
    format!(
        "AWS: {} to create, {} to modify, {} to replace, {} unchanged.",
        count(&|a| matches!(a, Action::Create | Action::WaitDeleted | Action::WaitOrigin)),
        count(&|a| matches!(
            a,
            Action::Adopt
                | Action::Modify
                | Action::BlueGreen
                | Action::Reboot
                | Action::MaintenanceWindow
        )),
        count(&|a| a == Action::Replace),
        count(&|a| a == Action::Unchanged),
    )
}

/// The refusal `plan` and `apply` give for a replace without `--allow-replace`.
pub fn refuse_replace(planned: &[Planned]) -> Option<String> {
    let replaced: Vec<String> = planned
        .iter()
        .filter(|p| p.action == model::Action::Replace)
        .map(|p| format!("{} ({})", p.component, p.identifier))
        .collect();
    (!replaced.is_empty()).then(|| {
        format!(
            "the plan replaces data store(s) {}: their data goes by their deletionPolicy; rerun with --allow-replace to accept",
            replaced.join(", ")
        )
    })
}
