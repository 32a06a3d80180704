//! Who is calling: the agency id, read from the client certificate and nowhere else.

use std::fmt;

/// The SAN URI prefix that names an agency in its certificate.
pub const AGENCY_URI_PREFIX: &str = "urn:deconfliction:agency:";

const MAX_AGENCY_ID_LEN: usize = 64;

/// Names the broker uses for itself (the audit log's actor for what no agency asked for):
/// never an agency's, so that no certificate or enrolment can pass as the broker.
pub const RESERVED_IDS: &[&str] = &["broker"];

/// An agency id: 1 to 64 of `a-z 0-9 - _ .`, starting with a letter or digit.
///
/// The restricted alphabet keeps ids safe to use in store keys, metric labels and file names.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AgencyId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error(
        "invalid agency id {0:?}: use 1 to {MAX_AGENCY_ID_LEN} characters of a-z, 0-9, '-', '_' \
         or '.', starting with a letter or digit"
    )]
    BadAgencyId(String),
    #[error("client certificate cannot be parsed: {0}")]
    BadCertificate(String),
    #[error("{0:?} is reserved for the broker itself and cannot name an agency")]
    Reserved(String),
    #[error("client certificate has no SAN URI {AGENCY_URI_PREFIX}<id>")]
    NoAgencyUri,
    #[error("client certificate names more than one agency")]
    SeveralAgencyUris,
}

impl AgencyId {
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_AGENCY_ID_LEN
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
            })
            && s.as_bytes()[0].is_ascii_alphanumeric();
        if ok && RESERVED_IDS.contains(&s) {
            Err(IdentityError::Reserved(s.to_owned()))
        } else if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdentityError::BadAgencyId(s.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
            found = Some(AgencyId::parse(id)?);
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
        for bad in ["", "-x", "Upper", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(AgencyId::parse(bad).is_err(), "{bad:?} accepted");
        }
        // The audit log's own actor can be neither enrolled, certified nor presented.
        assert_eq!(
            AgencyId::parse("broker"),
            Err(IdentityError::Reserved("broker".into()))
        );
    }
}
