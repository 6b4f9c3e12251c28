//! The `did-registry` command line: `keygen` and `serve`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use civitas_core::did::Did;
use clap::{Parser, Subcommand};

use crate::{AppState, Ledger, LedgerOptions, Limits, NodeKeys};

/// Environment variable for `--listen`.
pub const ENV_LISTEN: &str = "REGISTRY_LISTEN";
/// Environment variable for `--data-dir`.
pub const ENV_DATA_DIR: &str = "REGISTRY_DATA_DIR";
/// Default checkpoint origin.
pub const DEFAULT_ORIGIN: &str = "civitas.registry/log";

/// A Civitas registry node.
#[derive(Debug, Parser)]
#[command(name = "did-registry", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the node's note key and ledger key and print the note verifier key.
    Keygen {
        /// Where the node keeps its keys and data.
        #[arg(long, env = ENV_DATA_DIR)]
        data_dir: PathBuf,
        /// The checkpoint origin, which names the note key.
        #[arg(long, default_value = DEFAULT_ORIGIN)]
        origin: String,
    },
    /// Run the node.
    Serve(ServeArgs),
}

/// `serve` options.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = ENV_LISTEN, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the node keeps its keys and data.
    #[arg(long, env = ENV_DATA_DIR)]
    pub data_dir: PathBuf,
    /// A root authority of the trust registry (repeatable); fixed at the first start.
    #[arg(long = "authority")]
    pub authorities: Vec<Did>,
    /// The checkpoint origin of a new ledger.
    #[arg(long, default_value = DEFAULT_ORIGIN)]
    pub origin: String,
    /// The recovery window of a new ledger (e.g. 72h, 30s); fixed at the first start.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub recovery_window: Option<Duration>,
    /// Write rate limit per client address, N/s (burst 2N); 0 turns limits off.
    #[arg(long, default_value = "200/s", value_parser = parse_rate)]
    pub rate_limit: u32,
    /// Seal an empty block after this long without writes.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub idle_seal: Duration,
}

fn parse_rate(text: &str) -> Result<u32, String> {
    let number = text.strip_suffix("/s").unwrap_or(text);
    number
        .parse()
        .map_err(|_| format!("expected N/s (for example 200/s) or 0, found {text:?}"))
}

/// Runs the command; `serve` returns when Ctrl-C or SIGTERM arrives.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen { data_dir, origin } => {
            let (keys, created) = NodeKeys::load_or_create(&data_dir, &origin)
                .with_context(|| format!("making keys in {}", data_dir.display()))?;
            if !created {
                eprintln!(
                    "keys already exist in {}; printing the existing key",
                    data_dir.display()
                );
            }
            println!("{}", keys.verifier());
            Ok(())
        }
        Command::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let ledger = Ledger::open(LedgerOptions {
        data_dir: args.data_dir.clone(),
        origin: args.origin.clone(),
        authorities: (!args.authorities.is_empty()).then(|| args.authorities.clone()),
        recovery_window: args.recovery_window,
        idle_seal: args.idle_seal,
    })
    .await
    .with_context(|| format!("opening the ledger in {}", args.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}").context("writing to stdout")?;
        stdout.flush().context("writing to stdout")?;
    }
    tracing::info!(%addr, key = %ledger.verifier(), "registry node started");
    let state = AppState {
        ledger,
        limits: Limits::new(args.rate_limit),
    };
    crate::serve(listener, state, civitas_client::service::shutdown_signal())
        .await
        .context("serving HTTP")
}
