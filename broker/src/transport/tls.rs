//! The mutual-TLS server configuration, built by hand with rustls (ring provider) because
//! tonic's own TLS configuration cannot check CRLs.
//!
//! The configuration is reloadable: a new CRL (or a renewed server certificate) is read from
//! disk and swapped in for new connections, and the set of revoked serials is also checked on
//! every call, so a revoked agency's already-open connection stops working at once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::RootCertStore;

use crate::identity::{AgencyId, CertRef, check_namespace};
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
    /// What a CRL past its next-update time does.
    pub stale_crl: StaleCrl,
    /// The namespace of `ca_cert`'s agencies (None: their ids as certified).
    pub namespace: Option<String>,
    /// Other federations' CAs trusted besides `ca_cert` (a joint broker, a token service
    /// serving a partner's agencies), each with its namespace and its own CRL.
    pub partners: Vec<PartnerTrust>,
}

/// A partner federation's CA: its agencies are admitted as `namespace/id`, and its CRL
/// revokes them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerTrust {
    pub namespace: String,
    pub ca_cert: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<PathBuf>,
}

/// What to do with a CRL past its next-update time: a CA that stopped re-signing it may
/// also have stopped revoking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaleCrl {
    /// Keep serving, and say so loudly (log and metric) until it is re-signed.
    #[default]
    Warn,
    /// Refuse every client certificate the stale CRL covers (every agency's) until it is
    /// re-signed: safer, and the federation is dark meanwhile.
    Refuse,
}

/// The current server configuration plus the revoked serials, swapped atomically on reload.
#[derive(Debug)]
pub struct ReloadableTls {
    paths: TlsPaths,
    current: RwLock<Arc<ServerConfig>>,
    revoked: RwLock<Arc<HashSet<CertRef>>>,
    /// The earliest next-update time of the loaded CRLs (Unix seconds), if any says one.
    crl_next_update: RwLock<Option<i64>>,
    /// Each trusted CA's name (DER) and the namespace of the agencies it certifies.
    namespaces: RwLock<Arc<Namespaces>>,
}

type Namespaces = HashMap<Vec<u8>, Option<String>>;

impl ReloadableTls {
    pub fn load(paths: TlsPaths) -> Result<Arc<Self>, TlsError> {
        let built = build(&paths)?;
        let tls = Arc::new(Self {
            paths,
            current: RwLock::new(Arc::new(built.config)),
            revoked: RwLock::new(Arc::new(built.revoked)),
            crl_next_update: RwLock::new(built.next_update),
            namespaces: RwLock::new(Arc::new(built.namespaces)),
        });
        tls.report_stale_crl(time::OffsetDateTime::now_utc().unix_timestamp());
        Ok(tls)
    }

    /// When the CRL is past its next-update time: since when (Unix seconds).
    pub fn crl_stale_since(&self, now: i64) -> Option<i64> {
        let next = match self.crl_next_update.read() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        };
        next.filter(|next| *next <= now)
    }

    /// Logs a stale CRL loudly; returns whether it is stale. Called at load and by the TLS
    /// file watcher on every tick.
    pub fn report_stale_crl(&self, now: i64) -> bool {
        let Some(since) = self.crl_stale_since(now) else {
            return false;
        };
        let consequence = match self.paths.stale_crl {
            StaleCrl::Warn => "still serving (tls.stale_crl = warn)",
            StaleCrl::Refuse => "every agency certificate is refused (tls.stale_crl = refuse)",
        };
        tracing::error!(
            crl = %self.paths.crl.as_deref().unwrap_or(Path::new("")).display(),
            stale_for_seconds = now - since,
            "the CRL is past its next-update time: {consequence}; re-sign it with \
             `deconflict-broker pki crl` and it is picked up at once"
        );
        true
    }

    /// Re-reads certificates and CRL. On error the previous configuration stays in force.
    pub fn reload(&self) -> Result<usize, TlsError> {
        let built = build(&self.paths)?;
        let count = built.revoked.len();
        if let Ok(mut guard) = self.crl_next_update.write() {
            *guard = built.next_update;
        }
        if let Ok(mut guard) = self.namespaces.write() {
            *guard = Arc::new(built.namespaces);
        }
        if let Ok(mut guard) = self.current.write() {
            *guard = Arc::new(built.config);
        }
        if let Ok(mut guard) = self.revoked.write() {
            *guard = Arc::new(built.revoked);
        }
        Ok(count)
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The agency a verified certificate names: its own id, in the namespace of the CA that
    /// issued it.
    pub fn agency_for(&self, local: AgencyId, issuer: &[u8]) -> Result<AgencyId, String> {
        let namespaces = match self.namespaces.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match namespaces.get(issuer) {
            Some(None) => Ok(local),
            Some(Some(ns)) => Ok(AgencyId::namespaced(ns, &local)),
            None => Err("the certificate's issuer is not one of the trusted CAs".into()),
        }
    }

    /// Whether the CRL of the certificate's issuer lists it.
    pub fn is_revoked(&self, cert: &CertRef) -> bool {
        match self.revoked.read() {
            Ok(guard) => guard.contains(cert),
            Err(poisoned) => poisoned.into_inner().contains(cert),
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

struct Built {
    config: ServerConfig,
    revoked: HashSet<CertRef>,
    next_update: Option<i64>,
    namespaces: Namespaces,
}

/// A trusted CA: its namespace, its certificate file and its CRL file.
type Trusted<'a> = (Option<String>, &'a Path, Option<&'a Path>);

/// The trusted CAs with their namespaces and CRLs: ours first, then the partners'.
fn trusted(paths: &TlsPaths) -> Result<Vec<Trusted<'_>>, TlsError> {
    let mut out = vec![(
        paths.namespace.clone(),
        paths.ca_cert.as_path(),
        paths.crl.as_deref(),
    )];
    for p in &paths.partners {
        out.push((
            Some(p.namespace.clone()),
            p.ca_cert.as_path(),
            p.crl.as_deref(),
        ));
    }
    let mut seen = HashSet::new();
    for (ns, path, _) in &out {
        if let Some(ns) = ns {
            check_namespace(ns).map_err(|e| parse_err(path, e))?;
            if !seen.insert(ns.clone()) {
                return Err(TlsError::Config(format!(
                    "namespace {ns:?} is given to two CAs; each federation needs its own"
                )));
            }
        }
    }
    Ok(out)
}

fn build(paths: &TlsPaths) -> Result<Built, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let mut namespaces = Namespaces::new();
    let mut crls = Vec::new();
    let mut revoked = HashSet::new();
    let mut next_update: Option<i64> = None;
    for (namespace, ca_path, crl_path) in trusted(paths)? {
        for ca in load_certs(ca_path)? {
            // A certificate's issuer is matched to its CA by name, so two trusted CAs must
            // not share one: the namespace would be ambiguous.
            let subject = subject_of(&ca).map_err(|e| parse_err(ca_path, e))?;
            if namespaces.insert(subject, namespace.clone()).is_some() {
                return Err(TlsError::Config(format!(
                    "{} holds a CA whose name another trusted CA has too; each federation's \
                     CA needs its own name",
                    ca_path.display()
                )));
            }
            roots
                .add(ca)
                .map_err(|e| parse_err(ca_path, format!("not a usable CA: {e}")))?;
        }
        let Some(crl_path) = crl_path else {
            continue;
        };
        let pem = read(crl_path)?;
        for crl in CertificateRevocationListDer::pem_slice_iter(&pem) {
            let crl = crl.map_err(|e| parse_err(crl_path, e))?;
            let (serials, next) = crl_contents(&crl).map_err(|e| parse_err(crl_path, e))?;
            revoked.extend(serials);
            if let Some(next) = next {
                next_update = Some(next_update.map_or(next, |n| n.min(next)));
            }
            crls.push(crl);
        }
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .with_crls(crls)
            // The CA itself is not on any CRL we hold; only agency certificates are revoked.
            .only_check_end_entity_revocation();
    if paths.stale_crl == StaleCrl::Refuse {
        // Checked at each handshake, so a CRL that goes stale while serving refuses too.
        builder = builder.enforce_revocation_expiration();
    }
    let verifier = builder
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
    Ok(Built {
        config,
        revoked,
        next_update,
        namespaces,
    })
}

/// A CA certificate's subject name (DER), as its certificates name their issuer.
fn subject_of(ca: &CertificateDer<'_>) -> Result<Vec<u8>, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(ca).map_err(|e| format!("not a certificate: {e}"))?;
    Ok(cert.subject().as_raw().to_vec())
}

/// A CRL's revoked certificates (its issuer and each serial) and its next-update time (Unix
/// seconds), if it gives one.
fn crl_contents(
    crl: &CertificateRevocationListDer<'_>,
) -> Result<(Vec<CertRef>, Option<i64>), String> {
    use x509_parser::prelude::FromDer;
    let (_, parsed) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl)
        .map_err(|e| format!("not a CRL: {e}"))?;
    let issuer = parsed.issuer().as_raw().to_vec();
    let serials = parsed
        .iter_revoked_certificates()
        .map(|r| CertRef {
            issuer: issuer.clone(),
            serial: r.raw_serial().to_vec(),
        })
        .collect();
    Ok((serials, parsed.next_update().map(|t| t.timestamp())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::identity::{AgencyId, cert_ref_from_der};
    use crate::pki::{self, Revoked, Validity};

    #[test]
    fn revocation_is_by_issuer_and_serial() {
        let dir = tempfile::tempdir().unwrap();
        let ca = pki::create_ca("CA", Validity::days_from_now(2)).unwrap();
        let server = pki::issue_server(
            &ca,
            "broker",
            &["localhost".into()],
            &[],
            Validity::days_from_now(2),
        )
        .unwrap();
        let agency = AgencyId::parse("gd-psb").unwrap();
        let leaf = pki::issue_agency(&ca, &agency, Validity::days_from_now(2)).unwrap();
        let serial_hex = hex::encode(pki::serial_of(&leaf.cert_pem).unwrap());
        let crl = pki::write_crl(
            &ca,
            &[Revoked {
                serial_hex,
                revoked_unix: 0,
            }],
            7,
        )
        .unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let tls = ReloadableTls::load(TlsPaths {
            ca_cert: file("ca.pem", &ca.cert_pem),
            server_cert: file("broker.pem", &server.cert_pem),
            server_key: file("broker.key", &server.key_pem),
            crl: Some(file("crl.pem", &crl)),
            allow_tls12: false,
            stale_crl: StaleCrl::Warn,
            namespace: None,
            partners: Vec::new(),
        })
        .unwrap();
        let der = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap();
        let revoked = cert_ref_from_der(&der).unwrap();
        assert!(tls.is_revoked(&revoked));
        // The same serial from another issuer is another certificate.
        let other = CertRef {
            issuer: b"another CA".to_vec(),
            serial: revoked.serial.clone(),
        };
        assert!(!tls.is_revoked(&other));
    }
}
