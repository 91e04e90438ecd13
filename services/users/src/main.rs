use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let config = panthera_users::Config::parse();
    match panthera_users::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %panthera_kit::outbox::error_chain(&error), "panthera-users stopped");
            eprintln!(
                "panthera-users: {}",
                panthera_kit::outbox::error_chain(&error)
            );
            ExitCode::FAILURE
        }
    }
}
