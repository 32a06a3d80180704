//! 32-byte secret files (pepper, token-service seed): created once with mode 0600, never
//! printed.

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("cannot read {what} file {path}: {reason}")]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{what} file {path} must hold exactly 32 bytes, it holds {len}")]
    Length {
        what: &'static str,
        path: PathBuf,
        len: usize,
    },
    #[error("cannot create {what} file {path}: {reason}")]
    Create {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
}

pub fn load_secret(path: &Path, what: &'static str) -> Result<[u8; 32], SecretFileError> {
    let bytes = std::fs::read(path).map_err(|e| SecretFileError::Read {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| SecretFileError::Length {
        what,
        path: path.to_owned(),
        len: bytes.len(),
    })
}

pub fn load_or_create_secret(path: &Path, what: &'static str) -> Result<[u8; 32], SecretFileError> {
    if path.exists() {
        return load_secret(path, what);
    }
    let mut secret = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
    write_private(path, &secret).map_err(|e| SecretFileError::Create {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(secret)
}

/// Writes a file readable by its owner only, atomically (temp file + rename + fsync).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
