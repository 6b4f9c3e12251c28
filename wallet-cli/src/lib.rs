//! The Civitas wallet: an encrypted keystore of Ed25519 keys, the did:civ lifecycle
//! (create, publish, rotate, recover, deactivate), trust entries for root authorities, and
//! audits of the registry's log. Every registry answer it uses is proof-checked by
//! `civitas-client` against pinned note keys.
//!
//! `main.rs` only parses the command line and calls [`run`]; tests call [`run`] with a
//! buffer for stdout.
//!
//! ```text
//!  cli::Cli ──run──▶ commands::{init, did, trust, log} ──▶ store::Wallet (keystore.json, config.json)
//!                                         └──▶ civitas_client::RegistryClient ──HTTP──▶ did-registry
//! ```

pub mod cli;
mod commands;
pub mod keystore;
mod store;

use std::io::Write;
use std::path::PathBuf;

use zeroize::Zeroizing;

pub use crate::cli::Cli;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It did what was asked.
    Success,
    /// It ran, and the answer is "no" (for example a log that fails verification).
    Failure,
}

/// What the process environment gives a command.
#[derive(Debug, Default)]
pub struct Env {
    /// The passphrase (from `CIVITAS_PASSPHRASE`); prompted for when `None`.
    pub passphrase: Option<Zeroizing<String>>,
    /// The home directory, for the default wallet directory.
    pub home: Option<PathBuf>,
}

impl Env {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self {
            passphrase: std::env::var(cli::ENV_PASSPHRASE).ok().map(Zeroizing::new),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// Runs one wallet command, writing its data output to `out` (stderr gets messages).
pub async fn run(cli: Cli, env: &Env, out: &mut (dyn Write + Send)) -> anyhow::Result<ExitStatus> {
    commands::run(cli, env, out).await
}
