//! The issuer host's one secret: its signing key (`issuer.key`, multibase of the seed, mode
//! 0600 in the data directory). The department's rotation keys never come here.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use civitas_core::keys::SecretKey;

const KEY_FILE: &str = "issuer.key";

/// Why the key could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is malformed.
    #[error("{0} is not an issuer key file")]
    Malformed(PathBuf),
    /// Others may read it.
    #[error("{0} is readable by group or others; run 'chmod 600 {0}'")]
    Permissions(PathBuf),
    /// There is no key yet.
    #[error("no issuer key in {0}; run 'issuer init --data-dir {0}' first")]
    Missing(PathBuf),
    /// There is a key already.
    #[error("{0} already holds an issuer key")]
    Exists(PathBuf),
}

/// Makes the key in `dir` (refusing to replace one).
pub fn create(dir: &Path) -> Result<SecretKey, KeyFileError> {
    let path = dir.join(KEY_FILE);
    if path.exists() {
        return Err(KeyFileError::Exists(dir.to_owned()));
    }
    let io = |action, source| KeyFileError::Io {
        action,
        path: path.clone(),
        source,
    };
    fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    let key = SecretKey::generate();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io("creating", e))?;
    file.write_all(key.to_multibase_secret().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing", e))?;
    Ok(key)
}

/// Loads the key from `dir`.
pub fn load(dir: &Path) -> Result<SecretKey, KeyFileError> {
    let path = dir.join(KEY_FILE);
    if !path.exists() {
        return Err(KeyFileError::Missing(dir.to_owned()));
    }
    let io = |action, source| KeyFileError::Io {
        action,
        path: path.clone(),
        source,
    };
    let meta = fs::metadata(&path).map_err(|e| io("reading", e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(KeyFileError::Permissions(path));
    }
    let text = zeroize::Zeroizing::new(fs::read_to_string(&path).map_err(|e| io("reading", e))?);
    SecretKey::from_multibase_secret(text.trim()).map_err(|_| KeyFileError::Malformed(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_loaded_back() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let made = create(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let loaded = load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(made.public_key(), loaded.public_key());
        assert!(matches!(create(dir.path()), Err(KeyFileError::Exists(_))));
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            load(dir.path()),
            Err(KeyFileError::Permissions(_))
        ));
    }
}
