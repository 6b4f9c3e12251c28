//! The node's two keys, kept in its data directory with mode 0600: the note key that signs
//! checkpoints (`note.key`, in the signed-note private key form) and the ledger key that
//! signs seals and the genesis config (`ledger.key`, multibase of the seed).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use civitas_core::keys::SecretKey;
use civitas_core::note::{NoteSigner, NoteVerifier};

/// Why the node keys could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    /// Reading or writing a key file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A key file is malformed.
    #[error("{path} is not a valid key file: {detail}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A key file is readable by others.
    #[error("{0} is readable by group or others; run 'chmod 600 {0}'")]
    Permissions(PathBuf),
}

/// The node's keys.
#[derive(Debug)]
pub struct NodeKeys {
    /// Signs checkpoints.
    pub note: NoteSigner,
    /// Signs seals and the genesis config.
    pub ledger: SecretKey,
}

const NOTE_FILE: &str = "note.key";
const LEDGER_FILE: &str = "ledger.key";

impl NodeKeys {
    /// Loads the keys from `dir`, making them first if there are none. `origin` names the
    /// note key of a new node.
    pub fn load_or_create(dir: &Path, origin: &str) -> Result<(Self, bool), NodeKeyError> {
        let note_path = dir.join(NOTE_FILE);
        let ledger_path = dir.join(LEDGER_FILE);
        if note_path.exists() || ledger_path.exists() {
            return Ok((Self::load(dir)?, false));
        }
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| NodeKeyError::Io {
                action,
                path,
                source,
            }
        };
        fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let note = NoteSigner::new(origin, SecretKey::generate()).map_err(|e| {
            NodeKeyError::Malformed {
                path: note_path.clone(),
                detail: e.to_string(),
            }
        })?;
        let ledger = SecretKey::generate();
        let encoded = note.encode().map_err(|e| NodeKeyError::Malformed {
            path: note_path.clone(),
            detail: e.to_string(),
        })?;
        write_private(&note_path, encoded.as_bytes()).map_err(io("writing", &note_path))?;
        write_private(&ledger_path, ledger.to_multibase_secret().as_bytes())
            .map_err(io("writing", &ledger_path))?;
        Ok((Self { note, ledger }, true))
    }

    /// Loads existing keys.
    pub fn load(dir: &Path) -> Result<Self, NodeKeyError> {
        let note_path = dir.join(NOTE_FILE);
        let ledger_path = dir.join(LEDGER_FILE);
        let note_text = read_private(&note_path)?;
        let note: NoteSigner =
            note_text
                .trim()
                .parse()
                .map_err(|e: civitas_core::note::NoteError| NodeKeyError::Malformed {
                    path: note_path.clone(),
                    detail: e.to_string(),
                })?;
        let ledger_text = read_private(&ledger_path)?;
        let ledger = SecretKey::from_multibase_secret(ledger_text.trim()).map_err(|e| {
            NodeKeyError::Malformed {
                path: ledger_path.clone(),
                detail: e.to_string(),
            }
        })?;
        Ok(Self { note, ledger })
    }

    /// The note verifier key, as `GET /log/key` serves it.
    pub fn verifier(&self) -> NoteVerifier {
        self.note.verifier()
    }
}

fn read_private(path: &Path) -> Result<String, NodeKeyError> {
    let meta = fs::metadata(path).map_err(|source| NodeKeyError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(NodeKeyError::Permissions(path.to_owned()));
    }
    fs::read_to_string(path).map_err(|source| NodeKeyError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}
