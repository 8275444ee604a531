//! The test agent: drives a dispatcher as producer and consumer.
//! `testagent load` measures throughput, latency and resources of `handler local` (see `load.rs`).

mod load;
mod receiver;

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
