//! The `handler` command line.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "handler", version, about = "Public event dispatcher for webhooks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate schemas/ (JSON Schemas, catalog) and the README's event tables from the event catalog.
    Schemas {
        /// The repository root, holding README.md and schemas/.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Write nothing; fail when the generated files are stale.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Schemas { root, check } => schemas(root, check),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn schemas(root: PathBuf, check: bool) -> anyhow::Result<()> {
    if !root.join("README.md").is_file() {
        bail!("{} has no README.md: run from the repository root or pass --root", root.display());
    }
    if check {
        let stale = dispatcher::schemas::stale(&root).context("reading the generated files")?;
        if !stale.is_empty() {
            bail!("stale generated files (run `cargo run -p handler -- schemas`): {}", stale.join(", "));
        }
        println!("schemas/ and the README tables are up to date");
    } else {
        dispatcher::schemas::write(&root).context("writing the generated files")?;
        println!(
            "wrote {} files in {} and the README tables",
            dispatcher::schemas::files().len(),
            root.join("schemas").display()
        );
    }
    Ok(())
}
