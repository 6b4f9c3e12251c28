//! `issuer`: see `issuer --help`.

use std::process::ExitCode;

use clap::Parser as _;

/// Issuance allocates many small, short-lived buffers from several threads at once, where
/// mimalloc measured markedly faster than the system allocator (see ARCHITECTURE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "issuer=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = issuer::cli::Cli::parse();
    match issuer::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
