//! The test agent: drives a dispatcher as producer and consumer.
//! `testagent run` plays the scenarios as producer and consumer (`scenarios.rs`, `consumer.rs`);
//! `testagent receive` serves standing webhook receivers (`consumer.rs`);
//! `testagent publish` publishes events through the API or to a Service Bus queue (`producer.rs`);
//! `testagent load` measures throughput, latency and resources of `handler local` (`load.rs`);
//! `testagent api-load` the cost of a credential on API calls (`api_load.rs`).

mod api_load;
mod apis;
mod consumer;
mod functions_host;
mod load;
mod producer;
mod receiver;
mod scenarios;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "testagent", version, about = "Test agent for the public event dispatcher")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish many events to a `handler local`, receive every delivery, and report rates, latency and resources.
    Load(load::LoadArgs),
    /// Read a webhook from concurrent clients with the operator's key or a tenant's token; report requests a second.
    ApiLoad(api_load::ApiLoadArgs),
    /// Run the scenarios (the original integration set and ours) against a dispatcher; one line each.
    Run(scenarios::RunArgs),
    /// Publish events through a dispatcher's API, or straight to a Service Bus queue; one line each.
    Publish(producer::PublishArgs),
    /// Serve webhook receivers on the given ports until interrupted; one JSON line per request received.
    Receive(consumer::ReceiveArgs),
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match Cli::parse().command {
        Command::Load(args) => runtime.block_on(load::run(args)),
        Command::ApiLoad(args) => runtime.block_on(api_load::run(args)),
        Command::Run(args) => runtime.block_on(scenarios::run(args)),
        Command::Publish(args) => runtime.block_on(producer::publish(args)),
        Command::Receive(args) => runtime.block_on(consumer::receive_forever(args)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
