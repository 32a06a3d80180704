//! A PKI folder as the `pki` subcommands and `dev` mode keep it:
//! `ca.pem`, `ca.key` (0600), `revoked.json` (the revocation ledger) and `crl.pem`.

use std::path::{Path, PathBuf};

use crate::identity::AgencyId;
use crate::pki::{self, CertAndKey, PkiError, Revoked, Validity};
use crate::secrets::file::{create_private, write_private};

/// How long a CRL is valid; re-sign it (`pki crl`) before then.
pub const CRL_VALID_DAYS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum PkiDirError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{0} already holds a CA; refusing to overwrite it")]
    Exists(PathBuf),
    #[error(
        "{0} holds no CA (ca.pem and ca.key): run `deconflict-broker pki init-ca --dir {0}` first"
    )]
    NoCa(PathBuf),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PkiDirError + '_ {
    move |e| PkiDirError::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

#[derive(Debug)]
pub struct PkiDir {
    dir: PathBuf,
    ca: CertAndKey,
}

impl PkiDir {
    pub fn create(dir: &Path, name: &str, validity_days: i64) -> Result<Self, PkiDirError> {
        if dir.join("ca.key").exists() {
            return Err(PkiDirError::Exists(dir.to_owned()));
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let ca = pki::create_ca(name, Validity::days_from_now(validity_days))?;
        std::fs::write(dir.join("ca.pem"), &ca.cert_pem).map_err(io(dir))?;
        create_private(&dir.join("ca.key"), ca.key_pem.as_bytes()).map_err(io(dir))?;
        let pki = Self {
            dir: dir.to_owned(),
            ca,
        };
        pki.write_revoked(&[])?;
        pki.write_crl()?;
        Ok(pki)
    }

    pub fn open(dir: &Path) -> Result<Self, PkiDirError> {
        if !dir.join("ca.pem").exists() && !dir.join("ca.key").exists() {
            return Err(PkiDirError::NoCa(dir.to_owned()));
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(io(&path))
        };
        Ok(Self {
            dir: dir.to_owned(),
            ca: CertAndKey {
                cert_pem: read("ca.pem")?,
                key_pem: read("ca.key")?,
            },
        })
    }

    pub fn ca(&self) -> &CertAndKey {
        &self.ca
    }

    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// Writes `<out>.pem` and `<out>.key` (0600).
    pub fn save(pair: &CertAndKey, cert: &Path, key: &Path) -> Result<(), PkiDirError> {
        if let Some(parent) = cert.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(cert, &pair.cert_pem).map_err(io(cert))?;
        write_private(key, pair.key_pem.as_bytes()).map_err(io(key))?;
        Ok(())
    }

    pub fn issue_server(
        &self,
        name: &str,
        dns: &[String],
        ips: &[std::net::IpAddr],
        days: i64,
    ) -> Result<CertAndKey, PkiDirError> {
        Ok(pki::issue_server(
            &self.ca,
            name,
            dns,
            ips,
            Validity::days_from_now(days),
        )?)
    }

    pub fn issue_agency(&self, agency: &AgencyId, days: i64) -> Result<CertAndKey, PkiDirError> {
        Ok(pki::issue_agency(
            &self.ca,
            agency,
            Validity::days_from_now(days),
        )?)
    }

    fn revoked_path(&self) -> PathBuf {
        self.dir.join("revoked.json")
    }

    pub fn revoked(&self) -> Result<Vec<Revoked>, PkiDirError> {
        let path = self.revoked_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| PkiDirError::Io {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn write_revoked(&self, list: &[Revoked]) -> Result<(), PkiDirError> {
        let path = self.revoked_path();
        let text = serde_json::to_string_pretty(list).map_err(|e| PkiDirError::Io {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_private(&path, text.as_bytes()).map_err(io(&path))
    }

    /// Adds the certificate to the revocation ledger and re-signs the CRL. Returns its serial.
    pub fn revoke(&self, cert_pem: &str) -> Result<String, PkiDirError> {
        let serial = hex::encode(pki::serial_of(cert_pem)?);
        let mut list = self.revoked()?;
        if !list.iter().any(|r| r.serial_hex == serial) {
            list.push(Revoked {
                serial_hex: serial.clone(),
                revoked_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
            });
            self.write_revoked(&list)?;
        }
        self.write_crl()?;
        Ok(serial)
    }

    /// Re-signs the CRL from the revocation ledger (atomically replaced).
    pub fn write_crl(&self) -> Result<PathBuf, PkiDirError> {
        let crl = pki::write_crl(&self.ca, &self.revoked()?, CRL_VALID_DAYS)?;
        let path = self.crl_path();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, crl).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(path)
    }
}
