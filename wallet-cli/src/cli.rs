//! The `wallet` command line (clap types only).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Environment variable holding the wallet passphrase (prompted for when unset).
pub const ENV_PASSPHRASE: &str = "CIVITAS_PASSPHRASE";
/// Environment variable for `--wallet-dir`.
pub const ENV_WALLET_DIR: &str = "CIVITAS_WALLET_DIR";
/// Environment variable for `--registry`.
pub const ENV_REGISTRY: &str = "CIVITAS_REGISTRY";

/// The Civitas wallet: keys, DIDs, trust entries, log audits.
#[derive(Debug, Parser)]
#[command(name = "wallet", version, about)]
pub struct Cli {
    /// Options for every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options for every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The wallet directory (default: ~/.civitas/wallet).
    #[arg(long, global = true, env = ENV_WALLET_DIR)]
    pub wallet_dir: Option<PathBuf>,
    /// The registry URL (saved at init; this overrides it).
    #[arg(long, global = true, env = ENV_REGISTRY)]
    pub registry: Option<String>,
    /// Print JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new wallet (no registry needed).
    Init(InitArgs),
    /// DIDs: create, publish, show, resolve, rotate, recover, deactivate, history.
    #[command(subcommand)]
    Did(DidCommand),
    /// Trust registry entries, as a root authority.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// The registry's transparency log.
    #[command(subcommand)]
    Log(LogCommand),
    /// Credentials: receive, list, show, present, verify; offer and revoke as an operator.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Make a signed request to a protected service, presenting a credential (curl-like).
    Request(RequestArgs),
    /// List the audit records a verifier keeps about you, and check each proof up to a
    /// ledger checkpoint.
    Audit(AuditArgs),
}

/// `wallet request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The HTTP method, e.g. GET.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// The credential to present (its id, see 'wallet credential list').
    #[arg(long)]
    pub credential: Option<String>,
    /// Claims to disclose, comma-separated (dotted paths for nested claims).
    #[arg(long, value_delimiter = ',')]
    pub disclose: Vec<String>,
    /// The purpose code the route asks for.
    #[arg(long)]
    pub purpose: Option<String>,
    /// A free-text note on the purpose.
    #[arg(long)]
    pub purpose_note: Option<String>,
    /// The body: a file, or '-' for stdin.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// An extra header, 'Name: value' (repeatable).
    #[arg(long = "header")]
    pub headers: Vec<String>,
    /// Add a key-binding JWT to the presentation (audience = the URL's origin).
    #[arg(long)]
    pub kb_jwt: bool,
    /// Print the exact signed HTTP/1.1 request instead of sending it.
    #[arg(long)]
    pub print_request: bool,
    /// The DID to sign as, for requests without a credential (default: the only one).
    #[arg(long = "as")]
    pub signer: Option<String>,
}

/// `wallet audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The verifier's base URL.
    #[arg(long)]
    pub verifier: String,
    /// List the records about this data subject (yours by default).
    #[arg(long)]
    pub subject: Option<String>,
    /// List the records of this caller.
    #[arg(long)]
    pub caller: Option<String>,
    /// The DID to sign as (default: the only one).
    #[arg(long = "as")]
    pub signer: Option<String>,
}

/// Key-derivation cost of the keystore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KdfProfile {
    /// Argon2id m=64 MiB, t=3 (RFC 9106 second recommendation).
    Default,
    /// Argon2id m=19 MiB, t=2 (OWASP's minimum), for small machines.
    Minimum,
}

/// `wallet init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Pin this registry note verifier key (repeatable); otherwise the key is pinned on
    /// first contact.
    #[arg(long = "log-key")]
    pub log_keys: Vec<String>,
    /// Signatures of pinned keys a checkpoint needs.
    #[arg(long, default_value_t = 1)]
    pub min_signatures: usize,
    /// Refuse registry answers whose checkpoint is older than this.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub staleness: std::time::Duration,
    /// Keystore key-derivation cost.
    #[arg(long, value_enum, default_value_t = KdfProfile::Default)]
    pub kdf: KdfProfile,
}

/// `wallet did ...`.
#[derive(Debug, Subcommand)]
pub enum DidCommand {
    /// Create a did:civ and publish it (or keep it with --offline).
    Create(CreateArgs),
    /// Publish a DID created with --offline.
    Publish {
        /// The DID (default: the wallet's default DID).
        did: Option<String>,
    },
    /// Show a DID this wallet holds, as the registry has it.
    Show {
        /// The DID (default: the wallet's default DID).
        did: Option<String>,
    },
    /// Resolve any DID, with every proof checked.
    Resolve {
        /// The DID.
        did: String,
        /// The version in effect at this RFC 3339 time.
        #[arg(long, conflicts_with = "version_id")]
        version_time: Option<String>,
        /// The version with this operation id.
        #[arg(long)]
        version_id: Option<String>,
    },
    /// Replace the DID's verification keys; the old ones are marked rotated (or compromised).
    Rotate {
        /// The DID (default: the wallet's default DID).
        did: Option<String>,
        /// Mark the old keys compromised: nothing they signed stays valid.
        #[arg(long)]
        compromised: bool,
    },
    /// Deactivate the DID (final once the recovery window has passed).
    Deactivate {
        /// The DID (default: the wallet's default DID).
        did: Option<String>,
    },
    /// Move the recovery key out of the wallet into an encrypted file for offline keeping.
    ExportRecovery {
        /// The DID.
        did: String,
        /// The file to write (must not exist).
        file: PathBuf,
    },
    /// Recover the DID with its recovery key: supersedes operations made with stolen keys
    /// within the recovery window, and replaces every other key.
    Recover {
        /// The DID.
        did: String,
        /// The recovery key file made by export-recovery.
        #[arg(long)]
        recovery_key: PathBuf,
    },
    /// List the DID's operations, including those a recovery nullified.
    History {
        /// The DID.
        did: String,
    },
    /// List the DIDs this wallet holds.
    List,
}

/// `wallet did create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Keep the DID in the wallet without publishing it (publish later).
    #[arg(long)]
    pub offline: bool,
    /// A did:civ of this wallet that controls the new DID.
    #[arg(long)]
    pub controller: Option<String>,
    /// A key (multibase) held elsewhere, e.g. by an issuer host, to list as #key-2 in
    /// assertionMethod.
    #[arg(long)]
    pub assertion_key: Option<String>,
    /// A service, TYPE=URL (repeatable), e.g. OID4VCI=https://issuer.example.
    #[arg(long = "service")]
    pub services: Vec<String>,
}

/// `wallet trust ...`.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Accredit an issuer for a credential type.
    Accredit {
        /// The issuer DID.
        #[arg(long)]
        issuer: String,
        /// The credential type (vct).
        #[arg(long)]
        vct: String,
        /// The highest claim classification the issuer may issue.
        #[arg(long, default_value = "sensitive")]
        max_level: String,
        /// A claim constraint, 'CLAIM OP VALUE' (repeatable).
        #[arg(long = "constraint")]
        constraints: Vec<String>,
        /// The root authority DID of this wallet that signs (default: the default DID).
        #[arg(long = "as")]
        signer: Option<String>,
    },
    /// Withdraw an accreditation (retroactive unless --prospective).
    Withdraw {
        /// The issuer DID.
        #[arg(long)]
        issuer: String,
        /// The credential type (vct).
        #[arg(long)]
        vct: String,
        /// Keep credentials issued before the withdrawal valid.
        #[arg(long)]
        prospective: bool,
        /// The root authority DID of this wallet that signs (default: the default DID).
        #[arg(long = "as")]
        signer: Option<String>,
    },
    /// List the current accreditations for a credential type.
    List {
        /// The credential type (vct).
        #[arg(long)]
        vct: String,
        /// As of this RFC 3339 time.
        #[arg(long)]
        at: Option<String>,
    },
}

/// `wallet credential ...`.
#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// As an issuer's operator: create an offer and print its URI (and tx code).
    Offer {
        /// The issuer URL (its Credential Issuer Identifier).
        #[arg(long)]
        issuer: String,
        /// The credential type (e.g. ResidentIdentity) or its vct.
        #[arg(long)]
        vct: String,
        /// A JSON file with the claims.
        #[arg(long)]
        claims: PathBuf,
        /// Bind the offer to this holder DID (required for identity credentials; without
        /// it the offer gets a tx code).
        #[arg(long)]
        holder: Option<String>,
        /// How long the credential stays valid (e.g. 365d).
        #[arg(long, value_parser = humantime::parse_duration)]
        valid_for: Option<std::time::Duration>,
        /// The operator DID of this wallet that signs (default: the default DID).
        #[arg(long = "as")]
        signer: Option<String>,
        /// Present this OfficialRole (role issuer-operator, from the issuer's department)
        /// instead of signing as an operator DID.
        #[arg(long, conflicts_with = "signer")]
        credential: Option<String>,
    },
    /// Receive a credential from an openid-credential-offer:// URI.
    Receive {
        /// The offer URI.
        offer: String,
        /// The tx code the issuer gave you by another channel.
        #[arg(long)]
        tx_code: Option<String>,
        /// The DID of this wallet to hold it (default: the default DID).
        #[arg(long = "as")]
        holder: Option<String>,
    },
    /// List the credentials this wallet holds, oldest first.
    List,
    /// Show a credential's claims, their classification and which are disclosable.
    Show {
        /// The credential id.
        id: String,
        /// The schemas directory.
        #[arg(long, default_value = "schemas")]
        schemas: PathBuf,
    },
    /// Print an SD-JWT presentation disclosing only the named claims, with a KB-JWT.
    Present {
        /// The credential id.
        id: String,
        /// The claims to disclose, comma-separated (nested ones as a/b).
        #[arg(long, value_delimiter = ',')]
        disclose: Vec<String>,
        /// The audience (the verifier's origin).
        #[arg(long)]
        audience: String,
        /// The verifier's nonce.
        #[arg(long)]
        nonce: String,
    },
    /// Verify a presentation (or credential) fully and print the disclosed claims.
    Verify {
        /// The presentation (SD-JWT); '-' reads it from stdin.
        presentation: String,
        /// The audience its KB-JWT must name.
        #[arg(long, requires = "nonce")]
        audience: Option<String>,
        /// The nonce its KB-JWT must carry.
        #[arg(long, requires = "audience")]
        nonce: Option<String>,
        /// The schemas directory.
        #[arg(long, default_value = "schemas")]
        schemas: PathBuf,
        /// Refuse status lists older than this (0s: fetch a fresh one).
        #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
        max_status_age: std::time::Duration,
    },
    /// As an issuer's operator: revoke (or suspend, or reinstate) a credential.
    Revoke {
        /// The issuer URL.
        #[arg(long)]
        issuer: String,
        /// The credential id.
        id: String,
        /// Suspend instead of revoking (revocation is final).
        #[arg(long, conflicts_with = "reinstate")]
        suspend: bool,
        /// Lift a suspension.
        #[arg(long)]
        reinstate: bool,
        /// The operator DID of this wallet that signs (default: the default DID).
        #[arg(long = "as")]
        signer: Option<String>,
        /// Present this OfficialRole (role issuer-operator, from the issuer's department)
        /// instead of signing as an operator DID.
        #[arg(long, conflicts_with = "signer")]
        credential: Option<String>,
    },
}

/// `wallet log ...`.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Verify the current checkpoint's signatures and its consistency with the last
    /// checkpoint this wallet saw; fails on a fork.
    Verify,
}
