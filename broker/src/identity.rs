//! Who is calling: the agency id, read from the client certificate and nowhere else.

use std::fmt;

/// The SAN URI prefix that names an agency in its certificate.
pub const AGENCY_URI_PREFIX: &str = "urn:deconfliction:agency:";

const MAX_AGENCY_ID_LEN: usize = 64;

/// Names the broker uses for itself (the audit log's actor for what no agency asked for):
/// never an agency's, so that no certificate or enrolment can pass as the broker.
pub const RESERVED_IDS: &[&str] = &["broker"];

/// An agency id: 1 to 64 of `a-z 0-9 - _ .`, starting with a letter or digit; where several
/// CAs are trusted (a joint federation), prefixed by the namespace of the CA that issued the
/// agency's certificate: `cn/yn-psb`, `la/vte-police`.
///
/// The restricted alphabet keeps ids safe to use in store keys, metric labels and file names.
/// A certificate names only the local part: the namespace comes from the broker's trust
/// configuration, so no certificate can claim another CA's namespace.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AgencyId(String);

/// Longest namespace (`[tls] namespace`, a partner CA's namespace).
pub const MAX_NAMESPACE_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error(
        "invalid agency id {0:?}: use 1 to {MAX_AGENCY_ID_LEN} characters of a-z, 0-9, '-', '_' \
         or '.', starting with a letter or digit (a joint federation's ids may be prefixed by a \
         namespace: cn/yn-psb)"
    )]
    BadAgencyId(String),
    #[error(
        "invalid namespace {0:?}: use 1 to {MAX_NAMESPACE_LEN} characters of a-z, 0-9 and '-', \
         starting with a letter or digit"
    )]
    BadNamespace(String),
    #[error("client certificate cannot be parsed: {0}")]
    BadCertificate(String),
    #[error("{0:?} is reserved for the broker itself and cannot name an agency")]
    Reserved(String),
    #[error("client certificate has no SAN URI {AGENCY_URI_PREFIX}<id>")]
    NoAgencyUri,
    #[error("client certificate names more than one agency")]
    SeveralAgencyUris,
}

fn local_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_AGENCY_ID_LEN
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        })
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

/// Checks a namespace: 1 to 16 of `a-z 0-9 -`, starting with a letter or digit.
pub fn check_namespace(ns: &str) -> Result<(), IdentityError> {
    let ok = !ns.is_empty()
        && ns.len() <= MAX_NAMESPACE_LEN
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && ns.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(IdentityError::BadNamespace(ns.chars().take(40).collect()))
    }
}

impl AgencyId {
    /// An id as people and the registry write it: local, or `namespace/local`.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        match s.split_once('/') {
            Some((ns, local)) => {
                check_namespace(ns).map_err(|_| IdentityError::BadAgencyId(clip(s)))?;
                let local = Self::parse_local(local).map_err(|e| match e {
                    IdentityError::Reserved(_) => e,
                    _ => IdentityError::BadAgencyId(clip(s)),
                })?;
                Ok(Self::namespaced(ns, &local))
            }
            None => Self::parse_local(s),
        }
    }

    /// An id without a namespace: what a certificate and `pki issue-agency` may name.
    pub fn parse_local(s: &str) -> Result<Self, IdentityError> {
        if !local_ok(s) {
            Err(IdentityError::BadAgencyId(clip(s)))
        } else if RESERVED_IDS.contains(&s) {
            Err(IdentityError::Reserved(s.to_owned()))
        } else {
            Ok(Self(s.to_owned()))
        }
    }

    /// `namespace/local`, for an agency whose certificate a namespaced CA issued. `ns` must
    /// have passed [`check_namespace`] (the TLS configuration checks it at load).
    pub fn namespaced(ns: &str, local: &AgencyId) -> Self {
        Self(format!("{ns}/{}", local.local()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the namespace (all of it when there is none).
    pub fn local(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(_, local)| local)
    }

    /// The namespace of the CA that issued the agency's certificate, if it has one.
    pub fn namespace(&self) -> Option<&str> {
        self.0.split_once('/').map(|(ns, _)| ns)
    }
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

impl fmt::Display for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AgencyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgencyId({})", self.0)
    }
}

/// Reads the agency id from a DER client certificate's SAN URIs.
pub fn agency_from_cert_der(der: &[u8]) -> Result<AgencyId, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::BadCertificate(e.to_string()))?
        .ok_or(IdentityError::NoAgencyUri)?;
    let mut found = None;
    for name in &san.value.general_names {
        if let x509_parser::extensions::GeneralName::URI(uri) = name
            && let Some(id) = uri.strip_prefix(AGENCY_URI_PREFIX)
        {
            if found.is_some() {
                return Err(IdentityError::SeveralAgencyUris);
            }
            // Never a namespace from the certificate itself: that is the trust configuration's.
            found = Some(AgencyId::parse_local(id)?);
        }
    }
    found.ok_or(IdentityError::NoAgencyUri)
}

/// Which certificate: its issuer's name (DER) and its serial number. A serial is unique only
/// per issuer, so revocation is checked on both (several CAs may be trusted at once).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertRef {
    pub issuer: Vec<u8>,
    pub serial: Vec<u8>,
}

/// The issuer and serial of a DER certificate (for per-call revocation checks).
pub fn cert_ref_from_der(der: &[u8]) -> Result<CertRef, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
    Ok(CertRef {
        issuer: cert.issuer().as_raw().to_vec(),
        serial: cert.tbs_certificate.raw_serial().to_vec(),
    })
}

/// What the TLS layer learnt about a connection's peer; tonic puts it in each request's
/// extensions.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub agency: AgencyId,
    pub cert: CertRef,
    pub remote: Option<std::net::SocketAddr>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn agency_ids() {
        assert!(AgencyId::parse("yn-psb").is_ok());
        assert!(AgencyId::parse("national.bureau_1").is_ok());
        for bad in ["", "-x", "Upper", "a b", "é", &"a".repeat(65)] {
            assert!(AgencyId::parse(bad).is_err(), "{bad:?} accepted");
        }
        // Namespaced ids: one namespace, then a local id; never in a certificate.
        let la = AgencyId::parse("la/vte-police").unwrap();
        assert_eq!((la.namespace(), la.local()), (Some("la"), "vte-police"));
        for bad in ["a/b/c", "/x", "x/", "la_x/vte", "LA/vte", "la/-x"] {
            assert!(AgencyId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(AgencyId::parse_local("la/vte-police").is_err());
        assert_eq!(
            AgencyId::parse("cn/broker"),
            Err(IdentityError::Reserved("broker".into()))
        );
        // The audit log's own actor can be neither enrolled, certified nor presented.
        assert_eq!(
            AgencyId::parse("broker"),
            Err(IdentityError::Reserved("broker".into()))
        );
    }
}
