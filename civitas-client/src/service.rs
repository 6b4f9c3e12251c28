//! What every Civitas service binary does the same way: pin the registry's note key in its
//! data directory, and stop on Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};

use civitas_core::note::NoteVerifier;

use crate::ClientError;

/// The file in a service's data directory holding the registry's pinned note key.
pub const LOG_KEY_FILE: &str = "registry-log.key";

/// Why the registry's note key could not be pinned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The key given on the command line is malformed.
    #[error("--log-key is not a note verifier key: {0}")]
    Given(String),
    /// The pinned key file is damaged.
    #[error("{} is damaged: {detail}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Reading or writing the file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The registry could not be asked for its key.
    #[error(transparent)]
    Registry(#[from] ClientError),
}

/// The registry note key to trust: `given` (then kept), else the one kept in `data_dir`,
/// else the registry's own, fetched on first contact and kept (trust on first use, logged).
pub async fn pinned_log_key(
    data_dir: &Path,
    registry: &str,
    given: Option<&str>,
) -> Result<NoteVerifier, PinError> {
    let path = data_dir.join(LOG_KEY_FILE);
    let write = |text: &str| {
        std::fs::write(&path, text).map_err(|source| PinError::Io {
            action: "writing",
            path: path.clone(),
            source,
        })
    };
    if let Some(text) = given {
        let key: NoteVerifier = text.parse().map_err(|e| PinError::Given(format!("{e}")))?;
        write(text)?;
        return Ok(key);
    }
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|source| PinError::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        return text.trim().parse().map_err(|e| PinError::Damaged {
            path: path.clone(),
            detail: format!("{e}"),
        });
    }
    let key = crate::fetch_log_key(registry).await?;
    write(&key.to_string())?;
    tracing::warn!(%key, "pinned the registry's log key on first contact");
    Ok(key)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
