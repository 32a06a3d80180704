//! The client half of a joint federation's tokens over gRPC: blind once, have both shares'
//! token services evaluate the same elements (at the same time), verify each answer against
//! that share's pinned key and epoch, add, unblind, finalize. A failure of either side names
//! the share, and no token is derived.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use deconfliction_proto::v1;
use deconfliction_proto::v1::token_service_client::TokenServiceClient;
use tonic::transport::Channel;

use super::client::{DEFAULT_BATCH_SIZE, DEFAULT_CALL_TIMEOUT, MAX_BATCH_SIZE, offload};
use super::joint::{Share, ShareAnswer, joint_public_key};
use super::oprf::{BlindedBatch, ELEMENT_LEN, PUBLIC_KEY_LEN, Token, TokenError};
use super::{DeriverStats, PinnedKey};

/// One share's token service and the key this agency pins for it.
#[derive(Debug, Clone)]
pub struct ShareService {
    pub client: TokenServiceClient<Channel>,
    pub pinned: PinnedKey,
}

impl ShareService {
    /// A share's service over an established channel (mTLS with the agency certificate).
    pub fn from_channel(channel: Channel, pinned: PinnedKey) -> Self {
        Self {
            client: TokenServiceClient::new(channel),
            pinned,
        }
    }
}

/// Derives joint tokens (token spec section 5). Holds no cache: joint derivations are for the
/// few operations marked releasable, and each is derived once.
pub struct JointDeriver {
    a: ShareService,
    b: ShareService,
    batch_size: usize,
    call_timeout: Duration,
    stats: DeriverStats,
}

impl std::fmt::Debug for JointDeriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JointDeriver")
            .field("a", &self.a.pinned)
            .field("b", &self.b.pinned)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn in_share(share: Share) -> impl Fn(TokenError) -> TokenError {
    move |e| TokenError::JointShare {
        share,
        source: Box::new(e),
    }
}

impl JointDeriver {
    pub fn new(a: ShareService, b: ShareService) -> Self {
        Self {
            a,
            b,
            batch_size: DEFAULT_BATCH_SIZE,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            stats: DeriverStats::default(),
        }
    }

    /// Elements per call to each service, clamped to 1..=[`MAX_BATCH_SIZE`].
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.clamp(1, MAX_BATCH_SIZE);
        self
    }

    /// Deadline of each call.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The joint key's public key `P_A + P_B` (a fingerprint to show people).
    pub fn joint_public_key(&self) -> Result<[u8; PUBLIC_KEY_LEN], TokenError> {
        joint_public_key(self.a.pinned.public_key(), self.b.pinned.public_key())
    }

    pub fn stats(&self) -> DeriverStats {
        self.stats
    }

    /// Compares what each service publishes with its pin.
    pub async fn check_published_keys(&mut self) -> Result<(), TokenError> {
        for (share, service) in [(Share::A, &mut self.a), (Share::B, &mut self.b)] {
            let mut request = tonic::Request::new(v1::GetPublicKeyRequest {});
            request.set_timeout(self.call_timeout);
            let info = service
                .client
                .get_public_key(request)
                .await
                .map_err(|s| in_share(share)(s.into()))?
                .into_inner();
            service
                .pinned
                .check_published(&info.public_key, info.key_epoch)
                .map_err(in_share(share))?;
        }
        Ok(())
    }

    /// The joint token of each canonical form, in input order (duplicates allowed).
    pub async fn tokens(&mut self, canonicals: &[Vec<u8>]) -> Result<Vec<Token>, TokenError> {
        let mut unique: Vec<Vec<u8>> = Vec::new();
        {
            let mut seen: HashSet<&[u8]> = HashSet::new();
            for c in canonicals {
                if seen.insert(c.as_slice()) {
                    unique.push(c.clone());
                }
            }
        }
        let mut tokens: HashMap<Vec<u8>, Token> = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(self.batch_size) {
            let derived = self.evaluate_chunk(chunk.to_vec()).await?;
            tokens.extend(chunk.iter().cloned().zip(derived));
        }
        canonicals
            .iter()
            .map(|c| {
                tokens.get(c.as_slice()).copied().ok_or(TokenError::Worker(
                    "a canonical form was left without a joint token".into(),
                ))
            })
            .collect()
    }

    /// One round: blind once, both services at once, verify both, combine.
    async fn evaluate_chunk(&mut self, inputs: Vec<Vec<u8>>) -> Result<Vec<Token>, TokenError> {
        let n = inputs.len();
        let batch = offload(n, move || BlindedBatch::blind(inputs)).await?;
        let blinded: Vec<Vec<u8>> = batch
            .blinded_elements()
            .iter()
            .map(|e| e.to_vec())
            .collect();
        let call = |service: &ShareService| {
            let mut client = service.client.clone();
            let mut request = tonic::Request::new(v1::EvaluateRequest {
                blinded_elements: blinded.clone(),
                key_epoch: service.pinned.epoch(),
            });
            request.set_timeout(self.call_timeout);
            async move { client.evaluate(request).await }
        };
        let (answer_a, answer_b) = tokio::join!(call(&self.a), call(&self.b));
        self.stats.calls += 2;
        let a = checked(Share::A, &self.a.pinned, answer_a, n)?;
        let b = checked(Share::B, &self.b.pinned, answer_b, n)?;
        let (pk_a, pk_b) = (*self.a.pinned.public_key(), *self.b.pinned.public_key());
        let tokens = offload(n, move || {
            batch.finalize_joint(
                ShareAnswer {
                    evaluated: &a.0,
                    proof: &a.1,
                    public_key: &pk_a,
                },
                ShareAnswer {
                    evaluated: &b.0,
                    proof: &b.1,
                    public_key: &pk_b,
                },
            )
        })
        .await?;
        self.stats.evaluated += n as u64;
        Ok(tokens)
    }
}

type Answer = (Vec<[u8; ELEMENT_LEN]>, Vec<u8>);

/// One service's answer: under the pinned epoch, one element per blinded one, well formed.
fn checked(
    share: Share,
    pinned: &PinnedKey,
    answer: Result<tonic::Response<v1::EvaluateResponse>, tonic::Status>,
    n: usize,
) -> Result<Answer, TokenError> {
    let wrap = in_share(share);
    let response = answer.map_err(|s| wrap(s.into()))?.into_inner();
    if response.key_epoch != pinned.epoch() {
        return Err(wrap(TokenError::EpochMismatch {
            pinned: pinned.epoch(),
            served: response.key_epoch,
        }));
    }
    if response.evaluated_elements.len() != n {
        return Err(wrap(TokenError::CountMismatch {
            expected: n,
            got: response.evaluated_elements.len(),
        }));
    }
    let evaluated = response
        .evaluated_elements
        .iter()
        .enumerate()
        .map(|(i, e)| {
            <[u8; ELEMENT_LEN]>::try_from(e.as_slice()).map_err(|_| {
                wrap(TokenError::Malformed {
                    what: format!("evaluated element {i}"),
                    reason: format!("{} bytes, not {ELEMENT_LEN}", e.len()),
                })
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((evaluated, response.proof))
}
