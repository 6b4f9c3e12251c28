//! The `verifier` command line: `serve`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use civitas_client::RegistryClient;
use civitas_core::proof::PinnedKeys;
use civitas_core::schema::SchemaSet;
use clap::{Parser, Subcommand};

use crate::audit::AuditLog;
use crate::check::Settings;
use crate::gateway::{Gateway, GatewayOptions, Identity};
use crate::policy::Policy;

/// The Civitas verifier: a data gateway that admits only signed, credential-backed,
/// policy-compliant requests and keeps an anchored audit trail.
#[derive(Debug, Parser)]
#[command(name = "verifier", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
}

/// `serve` options.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The public origin clients sign for (`https://data.example.gov`); also the service
    /// endpoint in the gateway's DID.
    #[arg(long)]
    pub public_origin: String,
    /// Where the gateway keeps its identity and audit trail.
    #[arg(long, env = "VERIFIER_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The registry URL.
    #[arg(long)]
    pub registry: String,
    /// The registry's note key to pin (otherwise pinned on first contact and kept).
    #[arg(long)]
    pub log_key: Option<String>,
    /// The policy file (TOML).
    #[arg(long)]
    pub policy: PathBuf,
    /// The directory of credential type schemas.
    #[arg(long)]
    pub schemas: PathBuf,
    /// The data service requests are forwarded to.
    #[arg(long)]
    pub upstream: Option<String>,
    /// How old a status list may be, seconds (0: fetched for every request).
    #[arg(long, default_value_t = 300)]
    pub max_status_age: u64,
    /// How long DID documents and issuer verdicts are reused, seconds (0: never).
    #[arg(long, default_value_t = 60)]
    pub max_registry_age: u64,
    /// How often audit batches are anchored, seconds.
    #[arg(long, default_value_t = 1)]
    pub anchor_interval: u64,
}

/// Runs the command; `serve` returns on Ctrl-C or SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
    }
}

/// Loads every `*.schema.json` in `dir`.
pub fn load_schemas(dir: &Path) -> anyhow::Result<SchemaSet> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".schema.json") {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            files.push((name, bytes));
        }
    }
    SchemaSet::from_files(files).with_context(|| format!("loading schemas from {}", dir.display()))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let public_origin = args.public_origin.trim_end_matches('/').to_owned();
    anyhow::ensure!(
        civitas_client::credential::acceptable_issuer_url(&public_origin)
            && civitas_client::credential::origin(&public_origin) == Some(public_origin.as_str()),
        "--public-origin: expected an origin such as https://data.example.gov (http:// only on loopback), found {public_origin:?}"
    );
    let schemas = load_schemas(&args.schemas)?;
    let policy_text = std::fs::read_to_string(&args.policy)
        .with_context(|| format!("reading {}", args.policy.display()))?;
    let policy = Policy::from_toml(&policy_text, &schemas)
        .with_context(|| format!("in {}", args.policy.display()))?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let log_key = civitas_client::service::pinned_log_key(
        &args.data_dir,
        &args.registry,
        args.log_key.as_deref(),
    )
    .await?;
    let registry = Arc::new(RegistryClient::new(
        &args.registry,
        PinnedKeys {
            verifiers: vec![log_key],
            min_signatures: 1,
        },
    )?);
    let (identity, created) =
        Identity::load_or_create(&args.data_dir, &public_origin, &registry).await?;
    let audit = Arc::new(
        AuditLog::open(&args.data_dir.join("audit"), identity.did().clone())
            .context("opening the audit store")?,
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut settings = Settings::new(public_origin);
    settings.max_status_age = Duration::from_secs(args.max_status_age);
    settings.max_registry_age = Duration::from_secs(args.max_registry_age);
    let gateway = Gateway::new(GatewayOptions {
        policy,
        schemas,
        settings,
        registry,
        audit,
        identity: Arc::new(identity),
        upstream: args.upstream,
        anchor_interval: Duration::from_secs(args.anchor_interval.max(1)),
    })?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {addr}").context("writing to stdout")?;
        writeln!(stdout, "service did: {}", gateway.did()).context("writing to stdout")?;
        stdout.flush().context("writing to stdout")?;
    }
    if created {
        tracing::info!(did = %gateway.did(), "created and published the service DID");
    }
    let anchoring = tokio::spawn(gateway.clone().anchor_loop());
    let result = axum::serve(
        listener,
        gateway
            .router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(civitas_client::service::shutdown_signal())
    .await;
    anchoring.abort();
    result.context("serving HTTP")
}
