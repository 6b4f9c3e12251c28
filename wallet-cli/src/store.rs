//! The wallet's files: `config.json` (public: registry URL, pinned note keys, the last
//! checkpoint seen) and `keystore.json` (everything secret, encrypted with the
//! passphrase: see `keystore`).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use civitas_core::keys::SecretKey;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::keystore::{KdfParams, Keystore};

const CONFIG_FILE: &str = "config.json";
const KEYSTORE_FILE: &str = "keystore.json";

/// Public wallet settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Config {
    /// Default registry URL.
    #[serde(default)]
    pub(crate) registry: Option<String>,
    /// Pinned note verifier keys.
    #[serde(default)]
    pub(crate) log_keys: Vec<String>,
    /// Signatures of pinned keys a checkpoint needs.
    pub(crate) min_signatures: usize,
    /// Staleness bound, milliseconds.
    pub(crate) staleness_ms: u64,
    /// The last checkpoint accepted (signed note text).
    #[serde(default)]
    pub(crate) last_checkpoint: Option<String>,
}

/// A secret key kept in the keystore: seed as multibase text, wiped on drop.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub(crate) struct StoredKey(String);

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredKey(<secret>)")
    }
}

impl StoredKey {
    /// Stores `key`.
    pub(crate) fn new(key: &SecretKey) -> Self {
        Self(key.to_multibase_secret().to_string())
    }

    /// The key.
    pub(crate) fn key(&self) -> anyhow::Result<SecretKey> {
        SecretKey::from_multibase_secret(&self.0).context("a key in the keystore is damaged")
    }
}

/// A verification-method key this wallet holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeldVm {
    /// Its fragment.
    pub(crate) fragment: String,
    /// The key.
    pub(crate) key: StoredKey,
}

/// One DID of the wallet, with its secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeldDid {
    /// The DID.
    pub(crate) did: String,
    /// The recovery key (rotation key 0), until exported.
    #[serde(default)]
    pub(crate) recovery: Option<StoredKey>,
    /// The everyday rotation key (rotation key 1).
    pub(crate) rotation: StoredKey,
    /// Verification-method keys held here.
    pub(crate) vms: Vec<HeldVm>,
    /// The signed create operation, while not yet published.
    #[serde(default)]
    pub(crate) unpublished: Option<String>,
    /// Ids of the operations this wallet made, oldest first.
    #[serde(default)]
    pub(crate) ops: Vec<String>,
}

/// A credential this wallet holds (its disclosures' salts are secret: it lives in the
/// encrypted keystore).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HeldCredential {
    /// base32 SHA-256 of the issuer-signed JWT.
    pub(crate) id: String,
    /// The SD-JWT as issued, with every disclosure.
    pub(crate) sd_jwt: String,
    /// Its type.
    pub(crate) vct: String,
    /// The issuer DID.
    pub(crate) issuer: String,
    /// The Credential Issuer Identifier it came from.
    pub(crate) issuer_url: String,
    /// The holder DID (`sub`).
    pub(crate) holder: String,
    /// When it was received, unix ms.
    pub(crate) received_ms: u64,
}

impl std::fmt::Debug for HeldCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldCredential")
            .field("id", &self.id)
            .field("vct", &self.vct)
            .finish_non_exhaustive()
    }
}

/// The secret part of the wallet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Secrets {
    /// The DIDs, oldest first.
    pub(crate) dids: Vec<HeldDid>,
    /// The credentials, oldest first.
    #[serde(default)]
    pub(crate) credentials: Vec<HeldCredential>,
    /// The default DID.
    #[serde(default)]
    pub(crate) default_did: Option<String>,
}

impl Secrets {
    /// The DID named, or the default one.
    pub(crate) fn pick(&self, did: Option<&str>) -> anyhow::Result<&HeldDid> {
        let Some(wanted) = did.or(self.default_did.as_deref()) else {
            bail!("this wallet has no DID yet\n\nhint: run 'wallet did create'");
        };
        self.dids.iter().find(|d| d.did == wanted).with_context(|| {
            format!("{wanted} is not a DID of this wallet\n\nhint: 'wallet did list' shows them")
        })
    }

    /// The DID named, or the default one, for changing.
    pub(crate) fn pick_mut(&mut self, did: Option<&str>) -> anyhow::Result<&mut HeldDid> {
        let wanted = self.pick(did)?.did.clone();
        self.dids
            .iter_mut()
            .find(|d| d.did == wanted)
            .context("the DID vanished")
    }
}

/// An open wallet.
#[derive(Debug)]
pub(crate) struct Wallet {
    dir: PathBuf,
    /// Public settings.
    pub(crate) config: Config,
    /// Secrets.
    pub(crate) secrets: Secrets,
    keystore: Keystore,
}

fn config_path(dir: &Path) -> PathBuf {
    dir.join(CONFIG_FILE)
}

/// Writes a file atomically with mode 0600.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

impl Wallet {
    /// Whether a wallet exists in `dir`.
    pub(crate) fn exists(dir: &Path) -> bool {
        crate::keystore::exists(dir.join(KEYSTORE_FILE))
    }

    /// Creates a wallet.
    pub(crate) fn create(
        dir: &Path,
        passphrase: &str,
        config: Config,
        params: KdfParams,
    ) -> anyhow::Result<Self> {
        if Self::exists(dir) {
            bail!(
                "a wallet already exists in {}\n\nhint: use another --wallet-dir",
                dir.display()
            );
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let secrets = Secrets::default();
        let plain = Zeroizing::new(serde_json::to_vec(&secrets).context("encoding the wallet")?);
        let keystore =
            Keystore::create_with_params(dir.join(KEYSTORE_FILE), passphrase, &plain, params)
                .context("creating the keystore")?;
        let wallet = Self {
            dir: dir.to_owned(),
            config,
            secrets,
            keystore,
        };
        wallet.save_config()?;
        Ok(wallet)
    }

    /// Opens the wallet in `dir`.
    pub(crate) fn open(dir: &Path, passphrase: &str) -> anyhow::Result<Self> {
        if !Self::exists(dir) {
            bail!(
                "no wallet in {}\n\nhint: run 'wallet init' first",
                dir.display()
            );
        }
        let config_bytes = fs::read(config_path(dir))
            .with_context(|| format!("reading {}", config_path(dir).display()))?;
        let config: Config = serde_json::from_slice(&config_bytes)
            .with_context(|| format!("{} is damaged", config_path(dir).display()))?;
        let (keystore, plain) =
            Keystore::open(dir.join(KEYSTORE_FILE), passphrase).context("opening the keystore")?;
        let secrets: Secrets =
            serde_json::from_slice(&plain).context("the keystore content is damaged")?;
        Ok(Self {
            dir: dir.to_owned(),
            config,
            secrets,
            keystore,
        })
    }

    /// Saves the public settings.
    pub(crate) fn save_config(&self) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.config).context("encoding the config")?;
        write_private(&config_path(&self.dir), &bytes)
    }

    /// Saves the secrets (re-encrypted with a fresh nonce).
    pub(crate) fn save_secrets(&self) -> anyhow::Result<()> {
        let plain =
            Zeroizing::new(serde_json::to_vec(&self.secrets).context("encoding the wallet")?);
        self.keystore.save(&plain).context("saving the keystore")
    }

    /// The keystore's key-derivation parameters.
    pub(crate) fn kdf_params(&self) -> KdfParams {
        self.keystore.params()
    }
}
