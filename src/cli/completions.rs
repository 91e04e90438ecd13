//! `panthera completions SHELL`.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Result};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  panthera completions bash > /etc/bash_completion.d/panthera\n  panthera completions zsh > \"${fpath[1]}/_panthera\""
)]
pub struct Args {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &Args, out: &mut dyn Write) -> Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "panthera", out);
    Ok(())
}
