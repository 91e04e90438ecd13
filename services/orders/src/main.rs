use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let config = panthera_orders::Config::parse();
    match panthera_orders::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let chain = panthera_kit::outbox::error_chain(&error);
            tracing::error!(error = %chain, "panthera-orders stopped");
            eprintln!("panthera-orders: {chain}");
            ExitCode::FAILURE
        }
    }
}
