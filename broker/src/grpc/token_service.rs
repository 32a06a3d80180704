//! The token service's gRPC face: admit the agency, check the batch, charge its quota, evaluate
//! (off the async workers when the batch is large), count and audit. The key material and the
//! quotas are `crate::tokens`.
//!
//! It sees only blinded elements, which are uniformly random points that say nothing of the
//! input; it logs and counts per agency, never elements. Served inside the broker by default,
//! or alone (`deconflict-broker token-service`), with its own key file.

use std::sync::Arc;

use deconfliction_proto::v1;
use deconfliction_proto::v1::token_service_server::TokenService;
use tonic::{Request, Response, Status};

use crate::core::Core;
use crate::error::{BrokerError, invalid};
use crate::ledger::audit::AuditEvent;
use crate::ops::metrics::{EvaluationLabel, Metrics};
use crate::ops::registry_mirror::MirrorHealth;
use crate::tokens::{KeyRing, PreviousKey, Quota, QuotaBook, TokenKey, parse_elements};
use crate::transport::access::{Gate, Need};

/// Largest batch one call may evaluate (RFC 9497 batches are limited to u16::MAX; ours is
/// the per-operation token limit).
pub const MAX_BATCH: usize = 10_000;

/// Batches up to this size are evaluated on the calling worker: the hand-off to the
/// blocking pool costs more than the evaluation.
const INLINE_BATCH: usize = 8;

pub struct TokenServiceImpl {
    keys: KeyRing,
    quotas: QuotaBook,
    metrics: Arc<Metrics>,
    /// Admission, and (through its ledger) the audit trail of evaluations.
    gate: Arc<Gate>,
    /// A stand-alone token service's mirror of the broker's registry, which the gate reads:
    /// evaluations stop while it is stale.
    registry: Option<Arc<MirrorHealth>>,
}

impl TokenServiceImpl {
    pub fn new(key: Arc<TokenKey>, quota: Quota, metrics: Arc<Metrics>, gate: Arc<Gate>) -> Self {
        Self {
            keys: KeyRing {
                current: key,
                previous: None,
            },
            quotas: QuotaBook::new(quota),
            metrics,
            gate,
            registry: None,
        }
    }

    /// Refuses evaluations while `registry` is stale.
    pub fn with_registry_mirror(mut self, registry: Option<Arc<MirrorHealth>>) -> Self {
        self.registry = registry;
        self
    }

    /// Also serves `previous` until its end (a key rotation's overlap).
    pub fn with_previous(mut self, previous: Option<PreviousKey>) -> Self {
        self.keys.previous = previous;
        self
    }
}

#[tonic::async_trait]
impl TokenService for TokenServiceImpl {
    async fn evaluate(
        &self,
        req: Request<v1::EvaluateRequest>,
    ) -> Result<Response<v1::EvaluateResponse>, Status> {
        let now = Core::now();
        if let Some(registry) = &self.registry
            && let Err(stale) = registry.check(now)
        {
            self.metrics.call_refused("registry_stale");
            return Err(stale.into());
        }
        let (agency, _) = self.gate.admit(&req, Need::Agency)?;
        let req = req.into_inner();
        let key = self.keys.key_for(req.key_epoch, now)?;
        let n = req.blinded_elements.len();
        if n == 0 {
            return Err(invalid("blinded_elements is empty").into());
        }
        if n > MAX_BATCH {
            return Err(invalid(format!(
                "{n} blinded elements in one call; at most {MAX_BATCH}, split the batch"
            ))
            .into());
        }
        // Bad elements are refused before the quota is charged.
        let elements = parse_elements(&req.blinded_elements)?;
        if let Err(e) = self.quotas.take(&agency, n as u64, now) {
            self.metrics.call_refused("evaluation_quota");
            return Err(e.into());
        }
        let epoch = key.epoch();
        let (evaluated, proof) = if n <= INLINE_BATCH {
            key.evaluate_parsed(&elements)?
        } else {
            // A proved batch costs ~76 µs per element: keep it off the async workers.
            tokio::task::spawn_blocking(move || key.evaluate_parsed(&elements))
                .await
                .map_err(|_| BrokerError::TaskFailed("evaluation task"))??
        };
        self.metrics
            .token_evaluations
            .get_or_create(&EvaluationLabel {
                agency: agency.to_string(),
                key_epoch: epoch,
            })
            .inc_by(n as u64);
        self.gate.ledger().audit_only(
            vec![
                AuditEvent::new(agency.as_str(), "evaluate")
                    .count("elements", n as u64)
                    .count("key_epoch", u64::from(epoch)),
            ],
            now,
        )?;
        tracing::info!(agency = %agency, elements = n, epoch, "token evaluation");
        Ok(Response::new(v1::EvaluateResponse {
            evaluated_elements: evaluated,
            proof,
            key_epoch: epoch,
        }))
    }

    async fn get_public_key(
        &self,
        req: Request<v1::GetPublicKeyRequest>,
    ) -> Result<Response<v1::PublicKeyInfo>, Status> {
        self.gate.admit(&req, Need::Agency)?;
        let now = Core::now();
        let previous = self.keys.previous.as_ref().filter(|p| now < p.until);
        Ok(Response::new(v1::PublicKeyInfo {
            public_key: self.keys.current.public_key().to_vec(),
            key_epoch: self.keys.current.epoch(),
            previous_public_key: previous
                .map(|p| p.key.public_key().to_vec())
                .unwrap_or_default(),
            previous_key_epoch: previous.map(|p| p.key.epoch()).unwrap_or_default(),
            previous_valid_until_unix: previous.map(|p| p.until).unwrap_or_default(),
        }))
    }
}
