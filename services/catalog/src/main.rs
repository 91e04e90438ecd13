use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let config = panthera_catalog::Config::parse();
    match panthera_catalog::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let chain = panthera_kit::outbox::error_chain(&error);
            tracing::error!(error = %chain, "panthera-catalog stopped");
            eprintln!("panthera-catalog: {chain}");
            ExitCode::FAILURE
        }
    }
}
