//! The `atoll` command: `serve` runs the gateway, `check` validates a config; the commands in
//! [`cli`] talk to a running gateway's admin API (`deploy`, `tokens`, `backup`) or work on a
//! data directory offline (`restore`).

use std::path::PathBuf;
use std::process::ExitCode;

mod cli;

use atoll_gateway::log_writer::{self, DEFAULT_FILTER, FlushGuard, LogFormat};
use atoll_gateway::{Config, ServerHandle};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Atoll: a multi-tenant WebAssembly edge gateway.
#[derive(Debug, Parser)]
#[command(name = "atoll", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the proxy and admin listeners until SIGINT or SIGTERM.
    Serve {
        /// The config file; without it, the embedded default (proxy on 127.0.0.1:8080, admin on
        /// 127.0.0.1:8081, data in ./atoll-data, no tenants).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a config file and exit; errors name the file, line and key.
    Check {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Deploy a component as a new version of a tenant's function.
    Deploy(cli::deploy::Request),
    /// A tenant's API tokens, and the operator token's rotation.
    Tokens(cli::tokens::Tokens),
    /// Write a backup of a running gateway's state, components and key-value data.
    Backup(cli::backup::Backup),
    /// Make a new data directory from a backup (offline).
    Restore(cli::backup::Restore),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_writer = init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::Check { config } => check(config),
        Command::Deploy(request) => cli::deploy::run(&request),
        Command::Tokens(tokens) => cli::tokens::run(&tokens),
        Command::Backup(request) => cli::backup::run_backup(&request),
        Command::Restore(request) => cli::backup::run_restore(&request),
    };
    // Writes the log lines still buffered, before the last word.
    drop(log_writer);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atoll: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr with `RUST_LOG` (or the default filter); see `atoll_gateway::log_writer`.
fn init_logging(format: LogFormat) -> FlushGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    log_writer::install(format, filter, std::io::stderr(), ansi)
}

fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(path) => Config::load(&path)?,
        None => Config::embedded_default(),
    })
}

fn check(path: PathBuf) -> anyhow::Result<()> {
    let config = load_config(Some(path.clone()))?;
    config.check_files()?;
    let functions: usize = config.tenants.values().map(|t| t.functions.len()).sum();
    println!(
        "{}: ok ({} tenants, {functions} functions)",
        path.display(),
        config.tenants.len()
    );
    Ok(())
}

fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    // Listen for the signals before serving, so that one sent as soon as the gateway says it
    // serves is never missed.
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = signals.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        anyhow::Ok((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    let handle = ServerHandle::start(config)?;
    signals.block_on(async {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    });
    tracing::info!("shutting down");
    handle.stop();
    Ok(())
}
