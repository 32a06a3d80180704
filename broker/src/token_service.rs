//! The token service: RFC 9497 VOPRF evaluation (ristretto255-SHA512, verifiable mode).
//!
//! It sees only blinded elements, which are uniformly random points that say nothing of the
//! input; it logs and counts per agency, never elements. Served inside the broker by default,
//! or alone (`deconflict-broker token-service`), with its own key file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use deconfliction_proto::v1;
use deconfliction_proto::v1::token_service_server::TokenService;
use tonic::{Request, Response, Status};
use voprf::{BlindedElement, Group, Ristretto255, VoprfServer};

use crate::access::{Gate, Need};
use crate::audit::AuditEvent;
use crate::core::Core;
use crate::error::{BrokerError, invalid};
use crate::identity::AgencyId;
use crate::metrics::{EvaluationLabel, Metrics};
use crate::secret_file::{SecretFileError, load_or_create_secret};

/// RFC 9497 DeriveKeyPair `info` for this federation's token service.
pub const KEY_INFO: &[u8] = b"deconfliction token service v1";

/// Largest batch one call may evaluate (RFC 9497 batches are limited to u16::MAX; ours is
/// the per-operation token limit).
pub const MAX_BATCH: usize = 10_000;

/// The evaluation key of one epoch.
pub struct TokenKey {
    epoch: u32,
    server: VoprfServer<Ristretto255>,
    public_key: Vec<u8>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    #[error(transparent)]
    File(#[from] SecretFileError),
    #[error("cannot derive the token-service key from its seed: {0}")]
    Derive(String),
}

impl TokenKey {
    /// RFC 9497 DeriveKeyPair(seed, "deconfliction token service v1").
    pub fn from_seed(seed: &[u8], epoch: u32) -> Result<Self, TokenKeyError> {
        let server = VoprfServer::<Ristretto255>::new_from_seed(seed, KEY_INFO)
            .map_err(|e| TokenKeyError::Derive(format!("{e:?}")))?;
        let public_key = Ristretto255::serialize_elem(server.get_public_key()).to_vec();
        Ok(Self {
            epoch,
            server,
            public_key,
        })
    }

    /// Loads the seed file, creating a random one (mode 0600) on first start.
    pub fn load_or_create(path: &Path, epoch: u32) -> Result<Self, TokenKeyError> {
        let seed = load_or_create_secret(path, "token-service seed")?;
        Self::from_seed(&seed, epoch)
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Evaluates a batch with one proof. Returns (evaluated elements, proof).
    pub fn evaluate(&self, blinded: &[Vec<u8>]) -> Result<(Vec<Vec<u8>>, Vec<u8>), BrokerError> {
        self.evaluate_parsed(&parse_elements(blinded)?)
    }

    fn evaluate_parsed(
        &self,
        elements: &[BlindedElement<Ristretto255>],
    ) -> Result<(Vec<Vec<u8>>, Vec<u8>), BrokerError> {
        let result = self
            .server
            .batch_blind_evaluate(&mut rand_core::OsRng, &elements.to_vec())
            .map_err(|e| invalid(format!("batch cannot be evaluated: {e:?}")))?;
        let messages = result
            .messages
            .iter()
            .map(|m| m.serialize().to_vec())
            .collect();
        Ok((messages, result.proof.serialize().to_vec()))
    }
}

/// Checks every blinded element is a valid point before anything is spent on the batch.
fn parse_elements(blinded: &[Vec<u8>]) -> Result<Vec<BlindedElement<Ristretto255>>, BrokerError> {
    blinded
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            BlindedElement::<Ristretto255>::deserialize(bytes).map_err(|_| {
                invalid(format!(
                    "blinded_elements[{i}] is not a valid ristretto255 point ({} bytes)",
                    bytes.len()
                ))
            })
        })
        .collect()
}

/// Batches up to this size are evaluated on the calling worker: the hand-off to the
/// blocking pool costs more than the evaluation.
const INLINE_BATCH: usize = 8;

/// Per-agency evaluation quota, in elements per minute and per day.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub per_minute: u64,
    pub per_day: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            per_minute: 100_000,
            per_day: 5_000_000,
        }
    }
}

#[derive(Debug, Default)]
struct Usage {
    minute: i64,
    minute_count: u64,
    day: i64,
    day_count: u64,
}

/// The previous key during a rotation: still served until `until` (unix seconds), so that
/// agencies can re-derive their open operations under the new key without missing matches.
#[derive(Debug, Clone)]
pub struct PreviousKey {
    pub key: Arc<TokenKey>,
    pub until: i64,
}

pub struct TokenServiceImpl {
    key: Arc<TokenKey>,
    previous: Option<PreviousKey>,
    quota: Quota,
    usage: Mutex<HashMap<AgencyId, Usage>>,
    metrics: Arc<Metrics>,
    /// Admission, and (through its ledger) the audit trail of evaluations.
    gate: Arc<Gate>,
}

impl TokenServiceImpl {
    pub fn new(key: Arc<TokenKey>, quota: Quota, metrics: Arc<Metrics>, gate: Arc<Gate>) -> Self {
        Self {
            key,
            previous: None,
            quota,
            usage: Mutex::new(HashMap::new()),
            metrics,
            gate,
        }
    }

    /// Also serves `previous` until its end (a key rotation's overlap).
    pub fn with_previous(mut self, previous: Option<PreviousKey>) -> Self {
        self.previous = previous;
        self
    }

    /// The key for a requested epoch (0: the current one), or why it is not served.
    fn key_for(&self, epoch: u32, now: i64) -> Result<Arc<TokenKey>, BrokerError> {
        if epoch == 0 || epoch == self.key.epoch {
            return Ok(self.key.clone());
        }
        match &self.previous {
            Some(p) if p.key.epoch == epoch && now < p.until => Ok(p.key.clone()),
            Some(p) if p.key.epoch == epoch => Err(BrokerError::FailedPrecondition(format!(
                "key epoch {epoch} was retired at {} (unix); re-derive under epoch {} with the \
                 key from the federation administrator",
                p.until, self.key.epoch
            ))),
            _ => Err(BrokerError::FailedPrecondition(format!(
                "key epoch {epoch} is not served; the current epoch is {} (update the pinned key)",
                self.key.epoch
            ))),
        }
    }

    fn take_quota(&self, agency: &AgencyId, n: u64, now: i64) -> Result<(), BrokerError> {
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let u = usage.entry(agency.clone()).or_default();
        let (minute, day) = (now.div_euclid(60), now.div_euclid(86_400));
        if u.minute != minute {
            u.minute = minute;
            u.minute_count = 0;
        }
        if u.day != day {
            u.day = day;
            u.day_count = 0;
        }
        if n > self.quota.per_minute || n > self.quota.per_day {
            return Err(BrokerError::ResourceExhausted(format!(
                "a batch of {n} elements is larger than this agency's quota ({} per minute, {} \
                 per day): split the batch",
                self.quota.per_minute, self.quota.per_day
            )));
        }
        if u.minute_count + n > self.quota.per_minute {
            return Err(BrokerError::ResourceExhausted(format!(
                "token evaluation quota exceeded: {} per minute; retry in a minute",
                self.quota.per_minute
            )));
        }
        if u.day_count + n > self.quota.per_day {
            return Err(BrokerError::ResourceExhausted(format!(
                "token evaluation quota exceeded: {} per day; ask the token-service operator",
                self.quota.per_day
            )));
        }
        u.minute_count += n;
        u.day_count += n;
        Ok(())
    }
}

#[tonic::async_trait]
impl TokenService for TokenServiceImpl {
    async fn evaluate(
        &self,
        req: Request<v1::EvaluateRequest>,
    ) -> Result<Response<v1::EvaluateResponse>, Status> {
        let (agency, _) = self.gate.admit(&req, Need::Agency)?;
        let req = req.into_inner();
        let now = Core::now();
        let key = self.key_for(req.key_epoch, now)?;
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
        if let Err(e) = self.take_quota(&agency, n as u64, now) {
            self.metrics.call_refused("evaluation_quota");
            return Err(e.into());
        }
        let epoch = key.epoch;
        let (evaluated, proof) = if n <= INLINE_BATCH {
            key.evaluate_parsed(&elements)?
        } else {
            // A proved batch costs ~76 µs per element: keep it off the async workers.
            tokio::task::spawn_blocking(move || key.evaluate_parsed(&elements))
                .await
                .map_err(|_| Status::internal("evaluation task failed"))??
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
        let previous = self.previous.as_ref().filter(|p| now < p.until);
        Ok(Response::new(v1::PublicKeyInfo {
            public_key: self.key.public_key.clone(),
            key_epoch: self.key.epoch,
            previous_public_key: previous
                .map(|p| p.key.public_key.clone())
                .unwrap_or_default(),
            previous_key_epoch: previous.map(|p| p.key.epoch).unwrap_or_default(),
            previous_valid_until_unix: previous.map(|p| p.until).unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn public_key_matches_the_spec_vector() {
        let key = TokenKey::from_seed(&[7u8; 32], 1).unwrap();
        assert_eq!(
            hex::encode(key.public_key()),
            "78606ab822970c9e3bb9499099fbe2b548e676147dbe9b1a3985e851b592385a"
        );
    }

    #[test]
    fn garbage_elements_are_refused_with_their_index() {
        let key = TokenKey::from_seed(&[7u8; 32], 1).unwrap();
        let err = key.evaluate(&[vec![0xff; 32]]).unwrap_err();
        assert!(err.to_string().contains("blinded_elements[0]"), "{err}");
    }
}
