//! 32-byte secret files (pepper, token-service seed): created once with mode 0600, never
//! printed, and refused when others than their owner may read them. As PostgreSQL does for
//! its key, a file owned by root may also be readable by its group (0640, 0440): that is how
//! Kubernetes mounts a secret for a pod whose user is not root (the pod's `fsGroup`).

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
    #[error(
        "{what} file {path} can be read by others than its owner (mode {mode:o}): run \
         `chmod 600 {path}` (and check who has read it); only a file owned by root may also \
         be readable by its group (0640)"
    )]
    Exposed {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("cannot create {what} file {path}: {reason}")]
    Create {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
}

pub fn load_secret(path: &Path, what: &'static str) -> Result<[u8; 32], SecretFileError> {
    refuse_exposed(path, what)?;
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

/// A secret that its group or the world may read is refused, with the command that fixes it.
fn refuse_exposed(path: &Path, what: &'static str) -> Result<(), SecretFileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| SecretFileError::Read {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        use std::os::unix::fs::MetadataExt;
        let mode = meta.permissions().mode() & 0o777;
        // Root-owned: its group may read (not write); nobody else may do anything.
        let allowed = if meta.uid() == 0 { 0o040 } else { 0 };
        if mode & 0o077 & !allowed != 0 {
            return Err(SecretFileError::Exposed {
                what,
                path: path.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}

pub fn load_or_create_secret(path: &Path, what: &'static str) -> Result<[u8; 32], SecretFileError> {
    if path.exists() {
        return load_secret(path, what);
    }
    let mut secret = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
    create_private(path, &secret).map_err(|e| SecretFileError::Create {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(secret)
}

/// Creates a folder (and its parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes a file readable by its owner only, whole or not at all, replacing what was there
/// (the revocation list, a re-issued key): a temp file, fsynced, renamed into place, then the
/// folder fsynced so the new name survives a crash.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    place_private(path, bytes, false)
}

/// As [`write_private`], but only if nothing is there yet: a secret is created once and never
/// replaced by accident (two processes starting at once keep one pepper, not two).
pub fn create_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    place_private(path, bytes, true)
}

fn place_private(path: &Path, bytes: &[u8], create_new: bool) -> std::io::Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(parent)?;
    let tmp = path.with_extension("tmp");
    // A temp file left by a crash holds nothing anyone relies on.
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    if create_new {
        // A link fails if the name exists: the temp file never replaces anything.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        linked?;
    } else {
        std::fs::rename(&tmp, path)?;
    }
    std::fs::File::open(parent)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_others_can_read_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/pepper");
        let created = load_or_create_secret(&path, "pepper").unwrap();
        assert_eq!(load_secret(&path, "pepper").unwrap(), created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = load_secret(&path, "pepper").unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
            assert!(load_or_create_secret(&path, "pepper").is_err());
            // Readable by its group: only a root-owned file (a Kubernetes secret mounted with
            // an fsGroup), never one its group may write.
            use std::os::unix::fs::MetadataExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let owned_by_root = std::fs::metadata(&path).unwrap().uid() == 0;
            assert_eq!(load_secret(&path, "pepper").is_ok(), owned_by_root);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
            assert!(load_secret(&path, "pepper").is_err());
        }
    }

    #[test]
    fn an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        create_private(&path, b"first").unwrap();
        assert!(create_private(&path, b"second").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert!(!path.with_extension("tmp").exists());
        // Replacing is what write_private is for.
        write_private(&path, b"third").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"third");
    }
}
