//! Who may call what: the identity from the certificate, checked against revocation and the
//! agency registry (role, suspension) on every call.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use deconfliction_proto::v1;
use tonic::Request;

use crate::error::BrokerError;
use crate::identity::{AgencyId, CertRef, PeerInfo};
use crate::ledger::Ledger;
use crate::ops::metrics::Metrics;
use crate::transport::tls::ReloadableTls;

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone admitted, whatever its role: who am I, and what does this federation publish.
    AnyRole,
    /// The agency role: registering, checking, alerts, the relay, token evaluation.
    Agency,
    /// The watch centre's federation-wide view (watch centre or admin role).
    WatchCentre,
    /// Enrolment and suspension (admin role).
    Admin,
    /// Reading the registry: the admin, and a stand-alone token service that mirrors it.
    RegistryRead,
}

#[derive(Debug)]
pub struct Gate {
    tls: Arc<ReloadableTls>,
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    require_enrolment: bool,
    /// When each agency's last admitted call came (unix seconds), for the watch centre's
    /// agency board. In memory: a restarted broker has seen nobody yet.
    /// Every admitted call records here, so the usual case is a shared read lock and an atomic
    /// store; the write lock is taken once per agency.
    last_contact: std::sync::RwLock<std::collections::HashMap<String, AtomicI64>>,
}

impl Gate {
    pub fn new(
        tls: Arc<ReloadableTls>,
        ledger: Arc<Ledger>,
        metrics: Arc<Metrics>,
        require_enrolment: bool,
    ) -> Self {
        Self {
            tls,
            ledger,
            metrics,
            require_enrolment,
            last_contact: std::sync::RwLock::default(),
        }
    }

    /// The caller's agency id and role, or the status that refuses it.
    pub fn admit<T>(
        &self,
        req: &Request<T>,
        need: Need,
    ) -> Result<(AgencyId, v1::Role), BrokerError> {
        let peer = authenticate(req, &self.tls)?;
        let agency = peer.agency.clone();
        let entry = self.ledger.agency_entry(&agency)?;
        let role = match &entry {
            Some(e) if e.suspended => {
                self.metrics.call_refused("suspended");
                let reason = if e.suspension_reason.is_empty() {
                    "no reason given".to_owned()
                } else {
                    e.suspension_reason.clone()
                };
                return Err(BrokerError::Suspended { agency, reason });
            }
            Some(e) => v1::Role::try_from(e.role).unwrap_or(v1::Role::Agency),
            None if self.require_enrolment => {
                self.metrics.call_refused("not_enrolled");
                return Err(BrokerError::NotAdmitted(agency));
            }
            None => {
                // Admitted means in the registry: enrolled on first contact.
                self.ledger.enrol_on_first_contact(
                    &agency,
                    time::OffsetDateTime::now_utc().unix_timestamp(),
                )?;
                tracing::info!(agency = %agency, "agency enrolled on first contact");
                v1::Role::Agency
            }
        };
        let allowed = match need {
            // Agency calls are for agencies only: a watch centre or admin that registered a
            // guessed token would learn from its match list which agency works on it.
            Need::AnyRole => true,
            Need::Agency => role == v1::Role::Agency,
            Need::WatchCentre => matches!(role, v1::Role::WatchCentre | v1::Role::Admin),
            Need::Admin => role == v1::Role::Admin,
            Need::RegistryRead => matches!(role, v1::Role::Admin | v1::Role::TokenService),
        };
        if !allowed {
            self.metrics.call_refused("role");
            return Err(BrokerError::WrongRole {
                agency,
                needs: role_name(match need {
                    Need::AnyRole | Need::Agency => v1::Role::Agency,
                    Need::WatchCentre => v1::Role::WatchCentre,
                    Need::Admin | Need::RegistryRead => v1::Role::Admin,
                }),
                has: role_name(role),
            });
        }
        self.record_contact(&agency);
        Ok((agency, role))
    }

    /// When `agency`'s last admitted call came (0: not since this process started).
    pub fn last_contact(&self, agency: &str) -> i64 {
        self.last_contact
            .read()
            .ok()
            .and_then(|seen| seen.get(agency).map(|at| at.load(Ordering::Relaxed)))
            .unwrap_or(0)
    }

    fn record_contact(&self, agency: &AgencyId) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Ok(seen) = self.last_contact.read()
            && let Some(at) = seen.get(agency.as_str())
        {
            at.store(now, Ordering::Relaxed);
            return;
        }
        if let Ok(mut seen) = self.last_contact.write() {
            seen.entry(agency.as_str().to_owned())
                .or_default()
                .store(now, Ordering::Relaxed);
        }
    }

    /// Whether an agency admitted earlier (on a stream opened then) still may be served: its
    /// certificate not revoked since, the agency not suspended since.
    pub fn still_admitted(&self, agency: &AgencyId, cert: &CertRef) -> Result<(), BrokerError> {
        if self.tls.is_revoked(cert) {
            return Err(BrokerError::Revoked);
        }
        match self.ledger.agency_entry(agency)? {
            Some(e) if e.suspended => Err(BrokerError::Suspended {
                agency: agency.clone(),
                reason: if e.suspension_reason.is_empty() {
                    "no reason given".to_owned()
                } else {
                    e.suspension_reason
                },
            }),
            _ => Ok(()),
        }
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }
}

pub fn role_name(role: v1::Role) -> &'static str {
    match role {
        v1::Role::Unspecified | v1::Role::Agency => "agency",
        v1::Role::WatchCentre => "watch centre",
        v1::Role::Admin => "admin",
        v1::Role::TokenService => "token service",
    }
}

/// The caller's identity as established by the TLS layer; refused if its certificate has
/// been revoked since the connection was opened.
pub fn authenticate<'r, T>(
    req: &'r Request<T>,
    tls: &ReloadableTls,
) -> Result<&'r PeerInfo, BrokerError> {
    let peer = req
        .extensions()
        .get::<PeerInfo>()
        .ok_or(BrokerError::NoCertificate)?;
    if tls.is_revoked(&peer.cert) {
        return Err(BrokerError::Revoked);
    }
    Ok(peer)
}
