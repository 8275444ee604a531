//! The `handler` command line.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use dispatcher::config::{catalog, InvalidSettings, LocalArgs, ServeArgs};
use dispatcher::runtime::azure::glibc::{self, Version};
use dispatcher::runtime::{self, shutdown_signal};
use dispatcher::telemetry::{self, Telemetry};
use std::path::PathBuf;
use std::process::ExitCode;

// Counts what each thread allocates, which bounds a webhook's transform (`dispatcher_core::template`).
#[global_allocator]
static ALLOCATOR: dispatcher_core::template::CountingAllocator = dispatcher_core::template::CountingAllocator;

#[derive(Parser)]
#[command(name = "handler", version, about = "Public event dispatcher for webhooks")]
struct Cli {
    /// Without one: `serve` when the Functions host started this process (FUNCTIONS_CUSTOMHANDLER_PORT is set).
    #[command(subcommand)]
    command: Option<Command>,
}

/// The settings `telemetry::init` reads, which both modes share.
const LOGGING: &str = "Logs (stderr): DISPATCHER_LOG=<tracing directives> (default info, e.g. dispatcher=debug,info), \
                       DISPATCHER_LOG_FORMAT=text|json (default text). Metrics at GET /metrics; with \
                       OTEL_EXPORTER_OTLP_ENDPOINT=<url> metrics and traces are also sent with OTLP (HTTP)";

#[derive(Subcommand)]
enum Command {
    /// Run the whole dispatcher in this process: API, delivery workers, SQLite queue and store.
    #[command(after_help = LOGGING)]
    Local(Box<LocalArgs>),
    /// Run as the Azure Functions custom handler (the host starts it; see function-app/).
    #[command(after_help = LOGGING)]
    Serve(Box<ServeArgs>),
    /// Regenerate schemas/ (JSON Schemas, catalog, OpenAPI), the event tables of docs/events.md and the API table
    /// of docs/api.md from the code.
    Schemas {
        /// The repository root, holding schemas/ and docs/.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Write nothing; fail when the generated files are stale.
        #[arg(long)]
        check: bool,
        /// Document this catalog file instead of the built-in one.
        #[arg(long, env = "DISPATCHER_CATALOG")]
        catalog: Option<String>,
    },
    /// Check a catalog file, or print the built-in one to start your own from.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Assemble the Azure function app (function-app/ and this binary as `handler`) into a folder to publish
    /// with `func azure functionapp publish <app> --custom`.
    Package {
        /// The folder to create (it must not exist, or be empty).
        #[arg(long)]
        out: PathBuf,
        /// The function app's sources.
        #[arg(long, default_value = "function-app")]
        source: PathBuf,
        /// The handler binary to include (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// The newest glibc the binary may need: the oldest the workers may carry (2.31, Debian 11's). Raise it
        /// only for workers known to have a newer one (a custom container).
        #[arg(long, default_value_t = glibc::FLOOR)]
        max_glibc: Version,
        /// A catalog file to ship with the app, checked first, as `catalog.json` (then set the app setting
        /// DISPATCHER_CATALOG=catalog.json).
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Check a catalog file as `handler local` and `handler serve` do at start, without starting: every problem,
    /// each with its path inside the file; exits non-zero when there is one.
    Check {
        /// The catalog file.
        file: PathBuf,
    },
    /// Print the built-in catalog file (the IO platform's events and mapping).
    Show,
}

fn main() -> ExitCode {
    let command = match Cli::parse().command {
        Some(command) => command,
        None if ServeArgs::started_by_host() => match Cli::parse_from(["handler", "serve"]).command {
            Some(command) => command,
            None => return ExitCode::FAILURE,
        },
        None => {
            eprintln!("error: a command is needed (see `handler --help`)");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Local(args) => local(*args),
        Command::Serve(args) => serve(*args),
        Command::Schemas { root, check, catalog } => {
            load_catalog(catalog.as_deref()).and_then(|()| schemas(root, check))
        }
        Command::Catalog(CatalogCommand::Check { file }) => check_catalog(&file),
        Command::Catalog(CatalogCommand::Show) => {
            print!("{}", dispatcher_core::events::catalog::BUILT_IN);
            Ok(())
        }
        Command::Package { out, source, binary, max_glibc, catalog } => {
            package(out, source, binary, max_glibc, catalog)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn package(
    out: PathBuf,
    source: PathBuf,
    binary: Option<PathBuf>,
    max_glibc: Version,
    catalog: Option<PathBuf>,
) -> anyhow::Result<()> {
    let binary = match binary {
        Some(binary) => binary,
        None => std::env::current_exe().context("finding this binary")?,
    };
    // A catalog that would keep the app from starting is refused before anything is written.
    if let Some(file) = &catalog {
        check_catalog(file)?;
    }
    let mut files = runtime::azure::package::assemble(&source, &binary, &out, max_glibc)?;
    if let Some(file) = &catalog {
        std::fs::copy(file, out.join("catalog.json")).with_context(|| format!("copying {}", file.display()))?;
        files.push(PathBuf::from("catalog.json"));
        println!("with catalog.json: set the app setting DISPATCHER_CATALOG=catalog.json");
    }
    println!(
        "{}: {} files; publish with: cd {} && func azure functionapp publish <app> --custom",
        out.display(),
        files.len(),
        out.display()
    );
    Ok(())
}

/// The settings checked, logs, metrics and traces set up, and the runtime to run the command on.
fn start<T>(settings: Result<T, InvalidSettings>) -> anyhow::Result<(T, Telemetry, tokio::runtime::Runtime)> {
    let config = settings?;
    // The OTLP exporters' HTTP client, like every client here, runs on rustls with ring.
    dispatcher::adapters::tls::install();
    let telemetry = telemetry::init().map_err(|e| anyhow::anyhow!("setting up telemetry: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    Ok((config, telemetry, runtime))
}

/// Loads and installs the catalog `setting` names, for the commands that read it without other settings.
fn load_catalog(setting: Option<&str>) -> anyhow::Result<()> {
    let catalog = catalog::load(setting).map_err(|problems| anyhow::anyhow!("{}", problems.join("\n  ")))?;
    catalog::install(catalog)
}

fn check_catalog(file: &std::path::Path) -> anyhow::Result<()> {
    let path = file.to_string_lossy();
    let loaded = catalog::load(Some(&path)).map_err(|problems| {
        anyhow::anyhow!("{} is not a valid catalog file:\n  {}", file.display(), problems.join("\n  "))
    })?;
    println!(
        "{}: {} events ({} public), {} mapping rules",
        file.display(),
        loaded.events.len(),
        loaded.names(true).len(),
        loaded.mappings.len()
    );
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (config, telemetry, runtime) = start(args.validate())?;
    catalog::install(config.delivery.catalog)?;
    let port = config.port;
    let served = runtime.block_on(runtime::azure::serve(config, shutdown_signal()));
    telemetry.shutdown();
    served.with_context(|| format!("cannot serve on port {port}"))
}

fn local(args: LocalArgs) -> anyhow::Result<()> {
    let (config, telemetry, runtime) = start(args.validate())?;
    catalog::install(config.delivery.catalog)?;
    let ran = runtime.block_on(runtime::local::run(config, shutdown_signal()));
    telemetry.shutdown();
    Ok(ran?)
}

fn schemas(root: PathBuf, check: bool) -> anyhow::Result<()> {
    let pages = dispatcher::schemas::PAGES.map(|page| page.path);
    let missing: Vec<&str> = pages.iter().copied().filter(|path| !root.join(path).is_file()).collect();
    if !missing.is_empty() {
        bail!("{} has no {}: run from the repository root or pass --root", root.display(), missing.join(" nor "));
    }
    let pages = pages.join(" and ");
    if check {
        let stale = dispatcher::schemas::stale(&root).context("reading the generated files")?;
        if !stale.is_empty() {
            bail!("stale generated files (run `cargo run -p handler -- schemas`): {}", stale.join(", "));
        }
        println!("schemas/ and the tables of {pages} are up to date");
    } else {
        dispatcher::schemas::write(&root).context("writing the generated files")?;
        println!(
            "wrote {} files in {} and the tables of {pages}",
            dispatcher::schemas::files().len(),
            root.join("schemas").display()
        );
    }
    Ok(())
}
