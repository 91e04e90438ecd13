use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    panthera::cli::run(panthera::cli::Cli::parse())
}
