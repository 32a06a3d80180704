//! The federation's certificate authority: CA, broker and agency certificates, and the CRL.
//!
//! Used by `deconflict-broker pki ...`, by `dev` mode, and by tests, which make their
//! certificates at run time (nothing expiring is ever committed).

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::identity::{AGENCY_URI_PREFIX, AgencyId};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot parse certificate: {0}")]
    Parse(String),
    #[error("invalid validity: {0}")]
    Validity(String),
    #[error(
        "{0}: a certificate names the agency without a namespace; the namespace is the \
         trusting side's ([tls] namespace of the CA that issues it)"
    )]
    NamespacedId(String),
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertAndKey {
    // Never print a private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAndKey").finish_non_exhaustive()
    }
}

/// When a certificate is valid. Tests use past windows to make expired certificates.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From one hour ago (tolerates clock skew) for `days` days.
    pub fn days_from_now(days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    bytes[0] &= 0x7f; // a positive INTEGER
    bytes[0] |= 0x01; // and no leading zero byte to strip
    SerialNumber::from_slice(&bytes)
}

fn base_params(common_name: &str, validity: Validity) -> Result<CertificateParams, PkiError> {
    if validity.not_after <= validity.not_before {
        return Err(PkiError::Validity(
            "not_after must be after not_before".into(),
        ));
    }
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Deconfliction federation");
    params.distinguished_name = dn;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial());
    params.key_identifier_method = KeyIdMethod::Sha256;
    Ok(params)
}

/// Creates a self-signed federation CA.
pub fn create_ca(name: &str, validity: Validity) -> Result<CertAndKey, PkiError> {
    let mut params = base_params(name, validity)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn issuer(ca: &CertAndKey) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let key = KeyPair::from_pem(&ca.key_pem)?;
    Ok(Issuer::from_ca_cert_pem(&ca.cert_pem, key)?)
}

/// Signs a leaf certificate (server or client) with a fresh key.
fn sign_leaf(
    mut params: CertificateParams,
    usage: ExtendedKeyUsagePurpose,
    ca: &CertAndKey,
) -> Result<CertAndKey, PkiError> {
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer(ca)?)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a server certificate (for the broker or a stand-alone token service).
pub fn issue_server(
    ca: &CertAndKey,
    common_name: &str,
    dns_names: &[String],
    ips: &[std::net::IpAddr],
    validity: Validity,
) -> Result<CertAndKey, PkiError> {
    let mut params = base_params(common_name, validity)?;
    for dns in dns_names {
        params.subject_alt_names.push(SanType::DnsName(
            dns.clone()
                .try_into()
                .map_err(|_| PkiError::Parse(format!("bad DNS name {dns:?}")))?,
        ));
    }
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    sign_leaf(params, ExtendedKeyUsagePurpose::ServerAuth, ca)
}

/// Issues an agency's client certificate, carrying `urn:deconfliction:agency:<id>`.
pub fn issue_agency(
    ca: &CertAndKey,
    agency: &AgencyId,
    validity: Validity,
) -> Result<CertAndKey, PkiError> {
    if agency.namespace().is_some() {
        return Err(PkiError::NamespacedId(agency.to_string()));
    }
    let mut params = base_params(agency.as_str(), validity)?;
    let uri = format!("{AGENCY_URI_PREFIX}{agency}");
    params
        .subject_alt_names
        .push(SanType::URI(uri.try_into().map_err(|_| {
            PkiError::Parse("agency URI is not IA5".into())
        })?));
    sign_leaf(params, ExtendedKeyUsagePurpose::ClientAuth, ca)
}

/// The serial number of a PEM certificate, as big-endian bytes.
pub fn serial_of(cert_pem: &str) -> Result<Vec<u8>, PkiError> {
    let der = pem_to_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| PkiError::Parse(format!("not an X.509 certificate: {e}")))?;
    Ok(cert.tbs_certificate.raw_serial().to_vec())
}

fn pem_to_der(cert_pem: &str) -> Result<Vec<u8>, PkiError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| PkiError::Parse(format!("not a PEM certificate: {e}")))?;
    Ok(der.to_vec())
}

/// One revoked certificate, as kept in the PKI folder's revocation ledger.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Revoked {
    pub serial_hex: String,
    pub revoked_unix: i64,
}

/// Signs a CRL listing `revoked`, valid for `valid_days`.
pub fn write_crl(
    ca: &CertAndKey,
    revoked: &[Revoked],
    valid_days: i64,
) -> Result<String, PkiError> {
    let now = OffsetDateTime::now_utc();
    write_crl_between(
        ca,
        revoked,
        now - Duration::minutes(5),
        now + Duration::days(valid_days.max(1)),
    )
}

/// Signs a CRL listing `revoked` with explicit this-update and next-update times (tests of a
/// CRL gone stale use it).
pub fn write_crl_between(
    ca: &CertAndKey,
    revoked: &[Revoked],
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Result<String, PkiError> {
    let now = OffsetDateTime::now_utc();
    let mut revoked_certs = Vec::with_capacity(revoked.len());
    for r in revoked {
        let serial = hex::decode(&r.serial_hex)
            .map_err(|_| PkiError::Parse(format!("bad serial {:?}", r.serial_hex)))?;
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: OffsetDateTime::from_unix_timestamp(r.revoked_unix)
                .map_err(|e| PkiError::Validity(e.to_string()))?,
            reason_code: None,
            invalidity_date: None,
        });
    }
    let crl_number = now.unix_timestamp_nanos().to_be_bytes();
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from_slice(&crl_number[4..]),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    Ok(params.signed_by(&issuer(ca)?)?.pem()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn agency_certificate_carries_its_id() {
        let ca = create_ca("test CA", Validity::days_from_now(1)).unwrap();
        let id = AgencyId::parse("gd-pSB").unwrap_err();
        assert!(id.to_string().contains("agency id"));
        let id = AgencyId::parse("gd-psb").unwrap();
        let cert = issue_agency(&ca, &id, Validity::days_from_now(1)).unwrap();
        let der = pem_to_der(&cert.cert_pem).unwrap();
        assert_eq!(crate::identity::agency_from_cert_der(&der).unwrap(), id);
        assert!(!serial_of(&cert.cert_pem).unwrap().is_empty());
    }

    #[test]
    fn crl_lists_revoked_serials() {
        let ca = create_ca("test CA", Validity::days_from_now(1)).unwrap();
        let crl = write_crl(
            &ca,
            &[Revoked {
                serial_hex: "0102".into(),
                revoked_unix: 1_700_000_000,
            }],
            7,
        )
        .unwrap();
        assert!(crl.contains("BEGIN X509 CRL"));
    }
}
