//! The `issuer` command line: `init` and `serve`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use civitas_client::RegistryClient;
use civitas_core::did::Did;
use civitas_core::proof::PinnedKeys;
use clap::{Parser, Subcommand};

use crate::schemas::Schemas;
use crate::store::Store;
use crate::{AppState, IssuerOptions};

/// Environment variable for `--data-dir`.
pub const ENV_DATA_DIR: &str = "ISSUER_DATA_DIR";

/// A Civitas credential issuer.
#[derive(Debug, Parser)]
#[command(name = "issuer", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the issuer's signing key and print its public key (multibase), to be made an
    /// assertionMethod key of the department DID.
    Init {
        /// Where the issuer keeps its key and data.
        #[arg(long, env = ENV_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Run the issuer.
    Serve(ServeArgs),
}

/// `serve` options.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The department DID (its assertionMethod holds this issuer's key).
    #[arg(long)]
    pub did: Did,
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Where the issuer keeps its key and data.
    #[arg(long, env = ENV_DATA_DIR)]
    pub data_dir: PathBuf,
    /// The registry URL.
    #[arg(long)]
    pub registry: String,
    /// The registry's note key to pin (otherwise pinned on first contact and kept).
    #[arg(long)]
    pub log_key: Option<String>,
    /// The directory of credential type schemas.
    #[arg(long)]
    pub schemas: PathBuf,
    /// The Credential Issuer Identifier (the DID's OID4VCI service URL).
    #[arg(long)]
    pub public_url: String,
    /// A DID allowed to use the admin API (repeatable).
    #[arg(long = "operator")]
    pub operators: Vec<Did>,
    /// How often status lists are published (and anchored) without changes.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub status_interval: Duration,
}

/// Runs the command; `serve` returns when Ctrl-C or SIGTERM arrives.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init { data_dir } => {
            let key = crate::keys::create(&data_dir)?;
            println!("{}", key.public_key().to_multibase());
            eprintln!(
                "issuer key created in {}; make it an assertion key of the department DID:\n  wallet did create --assertion-key {} --service OID4VCI=<public URL>",
                data_dir.display(),
                key.public_key().to_multibase()
            );
            Ok(())
        }
        Command::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let key = crate::keys::load(&args.data_dir)?;
    let schemas = Schemas::load_dir(&args.schemas)
        .with_context(|| format!("loading schemas from {}", args.schemas.display()))?;
    let log_key = civitas_client::service::pinned_log_key(
        &args.data_dir,
        &args.registry,
        args.log_key.as_deref(),
    )
    .await?;
    let registry = RegistryClient::new(
        &args.registry,
        PinnedKeys {
            verifiers: vec![log_key],
            min_signatures: 1,
        },
    )?;
    let store = Store::open(&args.data_dir.join("store"))
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let audit = std::sync::Arc::new(
        verifier::audit::AuditLog::open(&args.data_dir.join("audit"), args.did.clone())
            .context("opening the audit trail")?,
    );
    let state = AppState::start(IssuerOptions {
        store,
        key,
        did: args.did,
        public_url: args.public_url,
        registry,
        schemas,
        operators: args.operators,
        status_interval: args.status_interval,
        audit,
    })
    .await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}").context("writing to stdout")?;
        stdout.flush().context("writing to stdout")?;
    }
    tracing::info!(%addr, did = %state.did, "issuer started");
    crate::serve(listener, state, civitas_client::service::shutdown_signal())
        .await
        .context("serving HTTP")
}
