//! The client half of the token service over gRPC: blind, call `Evaluate`, verify the batch
//! proof against the **pinned** public key, finalize, and cache canonical form → token for the
//! pinned key epoch.
//!
//! The public key and its epoch come from the agency's own configuration, handed out by the
//! federation administrator. The key the service publishes (`GetPublicKey`, or the broker's
//! `GetFederationInfo`) is only ever *compared* with the pinned one
//! ([`TokenDeriver::check_published_key`], [`PinnedKey::check_published`]), never adopted: a
//! service that could choose the key could give every agency tokens that match nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::token_service_client::TokenServiceClient;
use tonic::transport::Channel;

use super::oprf::{BlindedBatch, ELEMENT_LEN, PUBLIC_KEY_LEN, Token, TokenError, public_key};

/// Blinded elements per `Evaluate` call unless configured otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// The token service's hard limit on elements per call.
pub const MAX_BATCH_SIZE: usize = 10_000;
/// Deadline of one call to the token service unless configured otherwise.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Cached tokens kept per epoch unless configured otherwise (about 100 MB at most for typical
/// canonical forms); past it, new tokens are returned but not cached.
pub const DEFAULT_MAX_CACHE_ENTRIES: usize = 1_000_000;
/// Batches at least this large are blinded and finalized on a blocking thread (about 0.1 ms
/// of curve arithmetic per element), so that they do not stall the async workers.
const OFFLOAD_MIN: usize = 32;
/// Longest canonical form the VOPRF accepts (2-byte length prefix in finalize).
const MAX_INPUT_LEN: usize = u16::MAX as usize;

/// The token service's public key and key epoch as this agency's configuration pins them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PinnedKey {
    public_key: [u8; PUBLIC_KEY_LEN],
    epoch: u32,
}

impl std::fmt::Debug for PinnedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedKey")
            .field("public_key", &hex::encode(self.public_key))
            .field("epoch", &self.epoch)
            .finish()
    }
}

fn bad_pin(what: &str, reason: impl Into<String>) -> TokenError {
    TokenError::Malformed {
        what: format!("pinned {what}"),
        reason: reason.into(),
    }
}

impl PinnedKey {
    /// A pinned key: a valid ristretto255 point and an epoch other than 0 (which the service
    /// reads as "whatever is current", the opposite of pinning).
    pub fn new(public_key_bytes: [u8; PUBLIC_KEY_LEN], epoch: u32) -> Result<Self, TokenError> {
        public_key(&public_key_bytes).map_err(|_| {
            bad_pin(
                "public key",
                "not a ristretto255 point; copy it again from the federation administrator",
            )
        })?;
        if epoch == 0 {
            return Err(bad_pin(
                "key epoch",
                "0 means \"current\" to the token service; pin the epoch the federation \
                 administrator gave with the key",
            ));
        }
        Ok(Self {
            public_key: public_key_bytes,
            epoch,
        })
    }

    /// As [`PinnedKey::new`], from the 64 hex digits found in configuration files.
    pub fn from_hex(public_key_hex: &str, epoch: u32) -> Result<Self, TokenError> {
        let bytes = hex::decode(public_key_hex.trim())
            .map_err(|e| bad_pin("public key", format!("not hex: {e}")))?;
        let bytes = <[u8; PUBLIC_KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
            bad_pin(
                "public key",
                format!("{} bytes, not {PUBLIC_KEY_LEN}", bytes.len()),
            )
        })?;
        Self::new(bytes, epoch)
    }

    /// The pinned public key (compressed ristretto255).
    pub fn public_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public_key
    }

    /// The pinned key epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Compares what a token service or broker publishes with this pin.
    /// [`TokenError::KeyMismatch`] explains the difference and what to do about it.
    pub fn check_published(
        &self,
        published_key: &[u8],
        published_epoch: u32,
    ) -> Result<(), TokenError> {
        if published_key == self.public_key.as_slice() && published_epoch == self.epoch {
            return Ok(());
        }
        Err(TokenError::KeyMismatch {
            published_hex: hex::encode(published_key),
            published_epoch,
            pinned_hex: hex::encode(self.public_key),
            pinned_epoch: self.epoch,
        })
    }
}

/// Counters of one [`TokenDeriver`], for logs and metrics (no selector data).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeriverStats {
    /// `Evaluate` calls made.
    pub calls: u64,
    /// Canonical forms evaluated by the token service and verified.
    pub evaluated: u64,
    /// Canonical forms answered from the cache.
    pub cache_hits: u64,
}

/// Derives tokens through a token service over gRPC, with a local cache for the pinned epoch.
///
/// Holds plaintext canonical forms in its cache: it lives on the agency side only, and its
/// `Debug` shows sizes, never contents.
pub struct TokenDeriver {
    client: TokenServiceClient<Channel>,
    pinned: PinnedKey,
    batch_size: usize,
    call_timeout: Duration,
    max_cache_entries: usize,
    cache: HashMap<Vec<u8>, Token>,
    stats: DeriverStats,
}

impl std::fmt::Debug for TokenDeriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenDeriver")
            .field("pinned", &self.pinned)
            .field("batch_size", &self.batch_size)
            .field("cached", &self.cache.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl TokenDeriver {
    /// A deriver calling `client` and trusting only `pinned`.
    pub fn new(client: TokenServiceClient<Channel>, pinned: PinnedKey) -> Self {
        Self {
            client,
            pinned,
            batch_size: DEFAULT_BATCH_SIZE,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_cache_entries: DEFAULT_MAX_CACHE_ENTRIES,
            cache: HashMap::new(),
            stats: DeriverStats::default(),
        }
    }

    /// A deriver over an established channel (mTLS with the agency certificate).
    pub fn from_channel(channel: Channel, pinned: PinnedKey) -> Self {
        Self::new(TokenServiceClient::new(channel), pinned)
    }

    /// Elements per `Evaluate` call, clamped to 1..=[`MAX_BATCH_SIZE`].
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.clamp(1, MAX_BATCH_SIZE);
        self
    }

    /// Deadline of each call to the token service.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Largest number of cached tokens (0 disables the cache).
    pub fn with_max_cache_entries(mut self, entries: usize) -> Self {
        self.max_cache_entries = entries;
        if self.cache.len() > entries {
            self.cache.clear();
        }
        self
    }

    /// The pinned key and epoch.
    pub fn pinned(&self) -> &PinnedKey {
        &self.pinned
    }

    /// Elements per `Evaluate` call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Pins another key or epoch (a key rotation announced by the federation administrator).
    /// The cache belongs to the old epoch and is emptied when the pin changes.
    pub fn repin(&mut self, pinned: PinnedKey) {
        if pinned != self.pinned {
            self.cache.clear();
            self.pinned = pinned;
        }
    }

    /// Number of cached tokens.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Forgets every cached token.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Counters since creation.
    pub fn stats(&self) -> DeriverStats {
        self.stats
    }

    /// Asks the token service which key and epoch it serves and compares them with the pin.
    /// Run it before registering anything: on [`TokenError::KeyMismatch`], every token would
    /// fail verification (or, with a wrong pin, match nothing).
    pub async fn check_published_key(&mut self) -> Result<(), TokenError> {
        let mut request = tonic::Request::new(v1::GetPublicKeyRequest {});
        request.set_timeout(self.call_timeout);
        let info = self.client.get_public_key(request).await?.into_inner();
        self.pinned
            .check_published(&info.public_key, info.key_epoch)
    }

    /// The token of each canonical form, in input order (duplicates allowed).
    ///
    /// Forms already cached for the pinned epoch are not sent again; the rest are deduplicated,
    /// blinded and evaluated in batches of at most [`TokenDeriver::batch_size`]. Every batch
    /// proof is verified against the pinned key before its tokens are used: any failure
    /// (proof, epoch, element count, status) returns an error and no token at all. Batches
    /// verified before the failure stay cached, so a retry after `RESOURCE_EXHAUSTED` resumes
    /// where it stopped.
    pub async fn tokens(&mut self, canonicals: &[Vec<u8>]) -> Result<Vec<Token>, TokenError> {
        if let Some(index) = canonicals.iter().position(|c| c.len() > MAX_INPUT_LEN) {
            return Err(TokenError::Input { index });
        }
        let mut misses: Vec<Vec<u8>> = Vec::new();
        {
            let mut seen: HashSet<&[u8]> = HashSet::new();
            for c in canonicals {
                if self.cache.contains_key(c.as_slice()) {
                    self.stats.cache_hits += 1;
                } else if seen.insert(c.as_slice()) {
                    misses.push(c.clone());
                }
            }
        }
        let mut fresh: HashMap<Vec<u8>, Token> = HashMap::with_capacity(misses.len());
        let mut rest = misses;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(self.batch_size));
            let chunk = std::mem::replace(&mut rest, tail);
            let tokens = self.evaluate_chunk(chunk.clone()).await?;
            for (canonical, token) in chunk.into_iter().zip(tokens) {
                if self.cache.len() < self.max_cache_entries {
                    self.cache.insert(canonical.clone(), token);
                }
                fresh.insert(canonical, token);
            }
        }
        canonicals
            .iter()
            .map(|c| {
                fresh
                    .get(c.as_slice())
                    .or_else(|| self.cache.get(c.as_slice()))
                    .copied()
                    .ok_or(TokenError::Worker(
                        "a canonical form was left without a token".into(),
                    ))
            })
            .collect()
    }

    /// The token of one canonical form.
    pub async fn token(&mut self, canonical: &[u8]) -> Result<Token, TokenError> {
        let tokens = self.tokens(&[canonical.to_vec()]).await?;
        tokens.into_iter().next().ok_or(TokenError::CountMismatch {
            expected: 1,
            got: 0,
        })
    }

    /// One `Evaluate` round trip: blind, call, check, verify, finalize.
    async fn evaluate_chunk(&mut self, inputs: Vec<Vec<u8>>) -> Result<Vec<Token>, TokenError> {
        let n = inputs.len();
        let batch = offload(n, move || BlindedBatch::blind(inputs)).await?;
        let mut request = tonic::Request::new(v1::EvaluateRequest {
            blinded_elements: batch
                .blinded_elements()
                .iter()
                .map(|e| e.to_vec())
                .collect(),
            key_epoch: self.pinned.epoch,
        });
        request.set_timeout(self.call_timeout);
        self.stats.calls += 1;
        let response = self.client.evaluate(request).await?.into_inner();
        if response.key_epoch != self.pinned.epoch {
            return Err(TokenError::EpochMismatch {
                pinned: self.pinned.epoch,
                served: response.key_epoch,
            });
        }
        if response.evaluated_elements.len() != n {
            return Err(TokenError::CountMismatch {
                expected: n,
                got: response.evaluated_elements.len(),
            });
        }
        let evaluated = response
            .evaluated_elements
            .iter()
            .enumerate()
            .map(|(i, e)| {
                <[u8; ELEMENT_LEN]>::try_from(e.as_slice()).map_err(|_| TokenError::Malformed {
                    what: format!("evaluated element {i}"),
                    reason: format!("{} bytes, not {ELEMENT_LEN}", e.len()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let proof = response.proof;
        let pk = self.pinned.public_key;
        let tokens = offload(n, move || batch.finalize(&evaluated, &proof, &pk)).await?;
        self.stats.evaluated += n as u64;
        Ok(tokens)
    }
}

/// Runs `work` on a blocking thread when the batch is large enough to matter.
pub(super) async fn offload<T, F>(n: usize, work: F) -> Result<T, TokenError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, TokenError> + Send + 'static,
{
    if n < OFFLOAD_MIN {
        return work();
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| TokenError::Worker(format!("blinding or finalizing task failed: {e}")))?
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::token::{TOKEN_SERVICE_INFO, derive_keypair_from_seed};

    fn dev_key() -> [u8; 32] {
        derive_keypair_from_seed(&[7u8; 32], TOKEN_SERVICE_INFO)
            .unwrap()
            .public_key()
    }

    #[test]
    fn pins_are_validated() {
        assert!(PinnedKey::new(dev_key(), 1).is_ok());
        assert!(matches!(
            PinnedKey::new(dev_key(), 0),
            Err(TokenError::Malformed { .. })
        ));
        assert!(matches!(
            PinnedKey::new([0xff; 32], 1),
            Err(TokenError::Malformed { .. })
        ));
        assert!(matches!(
            PinnedKey::from_hex("abcd", 1),
            Err(TokenError::Malformed { .. })
        ));
        assert!(matches!(
            PinnedKey::from_hex("zz", 1),
            Err(TokenError::Malformed { .. })
        ));
        let pin = PinnedKey::from_hex(
            "78606ab822970c9e3bb9499099fbe2b548e676147dbe9b1a3985e851b592385a",
            3,
        )
        .unwrap();
        assert_eq!(pin.public_key(), &dev_key());
        assert_eq!(pin.epoch(), 3);
    }

    #[test]
    fn published_key_mismatch_explains_itself() {
        let pin = PinnedKey::new(dev_key(), 2).unwrap();
        assert!(pin.check_published(&dev_key(), 2).is_ok());
        let err = pin.check_published(&dev_key(), 3).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("epoch 3; this agency pins"), "{text}");
        assert!(text.contains(&hex::encode(dev_key())), "{text}");
        assert!(text.contains("do not register until they agree"), "{text}");
        let err = pin.check_published(&[1u8; 32], 2).unwrap_err();
        assert!(matches!(err, TokenError::KeyMismatch { .. }));
    }

    #[test]
    fn statuses_keep_their_code() {
        let err = TokenError::from(tonic::Status::resource_exhausted("quota"));
        assert!(err.is_resource_exhausted());
        assert!(err.to_string().contains("RESOURCE_EXHAUSTED"), "{err}");
        assert!(err.to_string().contains("quota"), "{err}");
        let err = TokenError::from(tonic::Status::unavailable("down"));
        assert!(!err.is_resource_exhausted());
        assert_eq!(err.grpc_code(), Some(tonic::Code::Unavailable));
        assert_eq!(TokenError::ProofVerification.grpc_code(), None);
    }
}
