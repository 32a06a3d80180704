//! The mutual-TLS server configuration, built by hand with rustls (ring provider) because
//! tonic's own TLS configuration cannot check CRLs.
//!
//! The configuration is reloadable: a new CRL (or a renewed server certificate) is read from
//! disk and swapped in for new connections, and the set of revoked serials is also checked on
//! every call, so a revoked agency's already-open connection stops working at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} holds no {what}")]
    Empty { path: PathBuf, what: &'static str },
    #[error("TLS configuration rejected: {0}")]
    Config(String),
}

/// Where the server's TLS material lives on disk.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Optional: without a CRL file nothing is revoked.
    pub crl: Option<PathBuf>,
    /// Also accept TLS 1.2 (off by default: TLS 1.3 only).
    pub allow_tls12: bool,
}

/// The current server configuration plus the revoked serials, swapped atomically on reload.
#[derive(Debug)]
pub struct ReloadableTls {
    paths: TlsPaths,
    current: RwLock<Arc<ServerConfig>>,
    revoked: RwLock<Arc<HashSet<Vec<u8>>>>,
}

impl ReloadableTls {
    pub fn load(paths: TlsPaths) -> Result<Arc<Self>, TlsError> {
        let (config, revoked) = build(&paths)?;
        Ok(Arc::new(Self {
            paths,
            current: RwLock::new(Arc::new(config)),
            revoked: RwLock::new(Arc::new(revoked)),
        }))
    }

    /// Re-reads certificates and CRL. On error the previous configuration stays in force.
    pub fn reload(&self) -> Result<usize, TlsError> {
        let (config, revoked) = build(&self.paths)?;
        let count = revoked.len();
        if let Ok(mut guard) = self.current.write() {
            *guard = Arc::new(config);
        }
        if let Ok(mut guard) = self.revoked.write() {
            *guard = Arc::new(revoked);
        }
        Ok(count)
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        match self.revoked.read() {
            Ok(guard) => guard.contains(serial),
            Err(poisoned) => poisoned.into_inner().contains(serial),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn parse_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Loads every PEM certificate of a file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| parse_err(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_owned(),
            what: "PEM certificate",
        });
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| parse_err(path, e))
}

fn build(paths: &TlsPaths) -> Result<(ServerConfig, HashSet<Vec<u8>>), TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in load_certs(&paths.ca_cert)? {
        roots
            .add(ca)
            .map_err(|e| parse_err(&paths.ca_cert, format!("not a usable CA: {e}")))?;
    }
    let mut crls = Vec::new();
    let mut revoked = HashSet::new();
    if let Some(crl_path) = &paths.crl {
        let pem = read(crl_path)?;
        for crl in CertificateRevocationListDer::pem_slice_iter(&pem) {
            let crl = crl.map_err(|e| parse_err(crl_path, e))?;
            revoked.extend(revoked_serials(&crl).map_err(|e| parse_err(crl_path, e))?);
            crls.push(crl);
        }
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        // The CA itself is not on any CRL we hold; only agency certificates are revoked.
        .only_check_end_entity_revocation()
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let chain = load_certs(&paths.server_cert)?;
    let key = load_key(&paths.server_key)?;
    // TLS 1.3 only unless told otherwise: every client of ours speaks it, and 1.2 brings
    // cipher-suite and renegotiation choices an operator should not have to audit.
    let versions: &[&rustls::SupportedProtocolVersion] = if paths.allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((config, revoked))
}

fn revoked_serials(crl: &CertificateRevocationListDer<'_>) -> Result<Vec<Vec<u8>>, String> {
    use x509_parser::prelude::FromDer;
    let (_, parsed) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl)
        .map_err(|e| format!("not a CRL: {e}"))?;
    Ok(parsed
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect())
}
