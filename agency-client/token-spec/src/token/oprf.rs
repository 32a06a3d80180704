//! RFC 9497 VOPRF (mode 0x01), ciphersuite ristretto255-SHA512, with the `voprf` crate, behind
//! a plain-bytes API so that a gRPC layer can carry its messages unchanged.

use rand_core::{CryptoRng, OsRng, RngCore};
use voprf::{
    BlindedElement, EvaluationElement, Group, Proof, Ristretto255, VoprfClient, VoprfServer,
};

/// The ciphersuite of spec dcf1.
pub(super) type Suite = Ristretto255;

/// `info` of RFC 9497 DeriveKeyPair for development and test federations.
pub const TOKEN_SERVICE_INFO: &[u8] = b"deconfliction token service v1";
/// A compressed ristretto255 point: blinded and evaluated elements.
pub const ELEMENT_LEN: usize = 32;
/// The token service's public key, a compressed ristretto255 point.
pub const PUBLIC_KEY_LEN: usize = 32;
/// A batch DLEQ proof: two ristretto255 scalars.
pub const PROOF_LEN: usize = 64;
/// The token: the first 32 bytes of the 64-byte SHA-512 VOPRF output.
pub const TOKEN_LEN: usize = 32;

/// A token, as the broker receives it.
pub type Token = [u8; TOKEN_LEN];

/// Why no token could be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The batch proof does not verify against the pinned key. Never ignore this: a token made
    /// under an unknown key matches nothing, so a wrong key or key epoch would silently turn
    /// every registration into a miss.
    #[error(
        "TOKEN SERVICE PROOF DOES NOT VERIFY against the pinned public key: wrong key or key \
         epoch, or a tampered answer; no token was derived"
    )]
    ProofVerification,
    /// One share's token service of a joint federation failed: its proof, its answer or the
    /// call. Nothing was derived.
    #[error("joint token: the token service of share {share} failed: {source}")]
    JointShare {
        share: super::joint::Share,
        source: Box<TokenError>,
    },
    /// Nothing to blind.
    #[error("empty batch: nothing to blind")]
    EmptyBatch,
    /// More elements than RFC 9497 batches allow.
    #[error("batch of {0} elements is larger than 65535")]
    BatchTooLarge(usize),
    /// A canonical form is longer than 65535 bytes.
    #[error("canonical form {index} is longer than 65535 bytes")]
    Input {
        /// Its position in the batch.
        index: usize,
    },
    /// The token service answered a different number of elements than were sent.
    #[error("token service answered {got} evaluated elements for {expected} blinded")]
    CountMismatch {
        /// Elements sent.
        expected: usize,
        /// Elements received.
        got: usize,
    },
    /// Bytes that do not decode (wrong length, not a ristretto255 point or scalar).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message part.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other failure of the protocol library.
    #[error("VOPRF protocol failure: {0:?}")]
    Protocol(voprf::Error),
    /// The token service, or the connection to it, refused the call. The gRPC code is kept:
    /// `ResourceExhausted` means the agency's evaluation quota is spent (back off and retry
    /// later, see [`TokenError::is_resource_exhausted`]); `FailedPrecondition` usually means
    /// the service no longer serves the pinned key epoch.
    #[error("token service call failed: {}: {message}", grpc_code_name(*.code))]
    Rpc {
        /// The gRPC status code.
        code: tonic::Code,
        /// The service's message, meant for a person.
        message: String,
    },
    /// The token service answered under another key epoch than the one pinned. The answer is
    /// not used: its tokens would match nothing registered under the pinned epoch.
    #[error(
        "token service answered under key epoch {served}, but this agency pins epoch {pinned}; \
         no token was derived: update the pinned key from the federation administrator"
    )]
    EpochMismatch {
        /// The epoch this agency pins.
        pinned: u32,
        /// The epoch the service answered with.
        served: u32,
    },
    /// The local blinding or finalizing task failed (it panicked or was cancelled).
    #[error("token derivation failed locally: {0}")]
    Worker(String),
    /// The token service publishes another key or epoch than the one this agency pins.
    #[error(
        "token service publishes key {published_hex} epoch {published_epoch}; this agency pins \
         {pinned_hex} epoch {pinned_epoch}: update the pinned key from the federation \
         administrator, do not register until they agree"
    )]
    KeyMismatch {
        /// The published public key, hex.
        published_hex: String,
        /// The published key epoch.
        published_epoch: u32,
        /// The pinned public key, hex.
        pinned_hex: String,
        /// The pinned key epoch.
        pinned_epoch: u32,
    },
}

impl TokenError {
    /// The gRPC code, when the token service (or the transport) refused the call.
    pub fn grpc_code(&self) -> Option<tonic::Code> {
        match self {
            Self::Rpc { code, .. } => Some(*code),
            Self::JointShare { source, .. } => source.grpc_code(),
            _ => None,
        }
    }

    /// True when the evaluation quota is spent (`RESOURCE_EXHAUSTED`): the caller should back
    /// off and retry later rather than give up or retry at once.
    pub fn is_resource_exhausted(&self) -> bool {
        self.grpc_code() == Some(tonic::Code::ResourceExhausted)
    }
}

impl From<tonic::Status> for TokenError {
    fn from(status: tonic::Status) -> Self {
        Self::Rpc {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// The canonical gRPC name of a status code (`RESOURCE_EXHAUSTED`), as operators know it.
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

pub(super) fn malformed(what: impl Into<String>, reason: impl Into<String>) -> TokenError {
    TokenError::Malformed {
        what: what.into(),
        reason: reason.into(),
    }
}

/// A token service's answer to a batch of `expected` blinded elements: its evaluated elements
/// and its batch proof, decoded.
pub(super) fn parse_answer(
    evaluated: &[[u8; ELEMENT_LEN]],
    proof: &[u8],
    expected: usize,
) -> Result<(Vec<EvaluationElement<Suite>>, Proof<Suite>), TokenError> {
    if evaluated.len() != expected {
        return Err(TokenError::CountMismatch {
            expected,
            got: evaluated.len(),
        });
    }
    if proof.len() != PROOF_LEN {
        return Err(malformed(
            "proof",
            format!("{} bytes, not {PROOF_LEN}", proof.len()),
        ));
    }
    let proof = Proof::<Suite>::deserialize(proof)
        .map_err(|_| malformed("proof", "not two ristretto255 scalars"))?;
    let messages = evaluated
        .iter()
        .enumerate()
        .map(|(i, e)| {
            EvaluationElement::<Suite>::deserialize(e)
                .map_err(|_| malformed(format!("evaluated element {i}"), "not a valid point"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((messages, proof))
}

/// Decodes the token service's public key (32 bytes, a valid non-identity point).
pub(super) fn public_key(bytes: &[u8]) -> Result<<Suite as Group>::Elem, TokenError> {
    if bytes.len() != PUBLIC_KEY_LEN {
        return Err(malformed(
            "public key",
            format!("{} bytes, not 32", bytes.len()),
        ));
    }
    Suite::deserialize_elem(bytes).map_err(|_| malformed("public key", "not a ristretto255 point"))
}

pub(super) fn to_array<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N], TokenError> {
    <[u8; N]>::try_from(bytes)
        .map_err(|_| malformed(what, format!("{} bytes, not {N}", bytes.len())))
}

/// A batch of canonical forms, blinded: the client's state between the request to the token
/// service and its answer. The blinds never leave this value.
pub struct BlindedBatch {
    pub(super) inputs: Vec<Vec<u8>>,
    pub(super) clients: Vec<VoprfClient<Suite>>,
    blinded: Vec<[u8; ELEMENT_LEN]>,
}

impl std::fmt::Debug for BlindedBatch {
    /// Shows the size only: the inputs are plaintext selectors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlindedBatch")
            .field("len", &self.inputs.len())
            .finish_non_exhaustive()
    }
}

impl BlindedBatch {
    /// Blinds every canonical form with fresh randomness from the operating system.
    pub fn blind(inputs: Vec<Vec<u8>>) -> Result<Self, TokenError> {
        Self::blind_with_rng(inputs, &mut OsRng)
    }

    /// Blinds every canonical form with blinds drawn from `rng`.
    pub fn blind_with_rng<R: RngCore + CryptoRng>(
        inputs: Vec<Vec<u8>>,
        rng: &mut R,
    ) -> Result<Self, TokenError> {
        if inputs.is_empty() {
            return Err(TokenError::EmptyBatch);
        }
        if inputs.len() > usize::from(u16::MAX) {
            return Err(TokenError::BatchTooLarge(inputs.len()));
        }
        let mut clients = Vec::with_capacity(inputs.len());
        let mut blinded = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            // Finalize hashes the input with a 2-byte length prefix: refuse early, not after
            // a round trip to the token service.
            if input.len() > usize::from(u16::MAX) {
                return Err(TokenError::Input { index });
            }
            let result = VoprfClient::<Suite>::blind(input, rng).map_err(|e| match e {
                voprf::Error::Input => TokenError::Input { index },
                other => TokenError::Protocol(other),
            })?;
            blinded.push(to_array(&result.message.serialize(), "blinded element")?);
            clients.push(result.state);
        }
        Ok(Self {
            inputs,
            clients,
            blinded,
        })
    }

    /// The blinded elements to send to the token service, in input order.
    pub fn blinded_elements(&self) -> &[[u8; ELEMENT_LEN]] {
        &self.blinded
    }

    /// Number of canonical forms in the batch.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Always false: an empty batch cannot be built.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Verifies the token service's batch proof against the pinned `public_key` and finalizes:
    /// one token per canonical form, in input order. A proof that does not verify is
    /// [`TokenError::ProofVerification`], and no token at all is returned.
    pub fn finalize(
        self,
        evaluated: &[[u8; ELEMENT_LEN]],
        proof: &[u8],
        public_key_bytes: &[u8],
    ) -> Result<Vec<Token>, TokenError> {
        let (messages, proof) = parse_answer(evaluated, proof, self.inputs.len())?;
        let pk = public_key(public_key_bytes)?;
        let outputs =
            VoprfClient::batch_finalize(&self.inputs, &self.clients, &messages, &proof, pk)
                .map_err(|e| match e {
                    voprf::Error::ProofVerification => TokenError::ProofVerification,
                    other => TokenError::Protocol(other),
                })?;
        outputs
            .enumerate()
            .map(|(index, out)| {
                let out = out.map_err(|e| match e {
                    voprf::Error::Input => TokenError::Input { index },
                    other => TokenError::Protocol(other),
                })?;
                let head = out.get(..TOKEN_LEN).unwrap_or_default();
                to_array(head, "VOPRF output")
            })
            .collect()
    }
}

/// RFC 9497 `DeriveKeyPair(seed, info)`: the token service key of a development or test
/// federation, reproducible from its seed. Production keys come from a CSPRNG.
pub fn derive_keypair_from_seed(seed: &[u8], info: &[u8]) -> Result<DevTokenService, TokenError> {
    let server = VoprfServer::<Suite>::new_from_seed(seed, info).map_err(TokenError::Protocol)?;
    Ok(DevTokenService { server })
}

/// An in-process token service for tests, development federations and the conformance check
/// against the vectors. The broker runs the real one.
pub struct DevTokenService {
    server: VoprfServer<Suite>,
}

impl std::fmt::Debug for DevTokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevTokenService")
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

impl DevTokenService {
    /// The public key clients pin.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let bytes = Suite::serialize_elem(self.server.get_public_key());
        let mut out = [0u8; PUBLIC_KEY_LEN];
        for (dst, src) in out.iter_mut().zip(bytes.iter()) {
            *dst = *src;
        }
        out
    }

    /// Evaluates a batch of blinded elements with one proof: `(evaluated elements, proof)`.
    pub fn evaluate(
        &self,
        blinded: &[[u8; ELEMENT_LEN]],
    ) -> Result<(Vec<[u8; ELEMENT_LEN]>, Vec<u8>), TokenError> {
        let elements = blinded
            .iter()
            .enumerate()
            .map(|(i, b)| {
                BlindedElement::<Suite>::deserialize(b)
                    .map_err(|_| malformed(format!("blinded element {i}"), "not a valid point"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .server
            .batch_blind_evaluate(&mut OsRng, &elements)
            .map_err(TokenError::Protocol)?;
        let evaluated = result
            .messages
            .iter()
            .map(|m| to_array(&m.serialize(), "evaluated element"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((evaluated, result.proof.serialize().to_vec()))
    }

    /// The token of one canonical form computed directly with the key (no blinding): what a
    /// client must arrive at. For tests.
    pub fn direct_token(&self, canonical: &[u8]) -> Result<Token, TokenError> {
        let out = self
            .server
            .evaluate(canonical)
            .map_err(TokenError::Protocol)?;
        to_array(out.get(..TOKEN_LEN).unwrap_or_default(), "VOPRF output")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn service() -> DevTokenService {
        derive_keypair_from_seed(&[7u8; 32], TOKEN_SERVICE_INFO).unwrap()
    }

    #[test]
    fn round_trip_is_deterministic_and_blinding_independent() {
        let svc = service();
        let inputs = vec![
            b"dcf1\0vin\x001HGCM82633A004352".to_vec(),
            b"dcf1\0email\0a@b".to_vec(),
        ];
        let mut tokens = Vec::new();
        for _ in 0..2 {
            let batch = BlindedBatch::blind(inputs.clone()).unwrap();
            let (evaluated, proof) = svc.evaluate(batch.blinded_elements()).unwrap();
            tokens.push(
                batch
                    .finalize(&evaluated, &proof, &svc.public_key())
                    .unwrap(),
            );
        }
        assert_eq!(tokens[0], tokens[1]);
        assert_ne!(tokens[0][0], tokens[0][1]);
        assert_eq!(tokens[0][0], svc.direct_token(&inputs[0]).unwrap());
    }

    #[test]
    fn wrong_key_is_a_loud_error() {
        let svc = service();
        let other = derive_keypair_from_seed(&[8u8; 32], TOKEN_SERVICE_INFO).unwrap();
        let batch = BlindedBatch::blind(vec![b"x".to_vec()]).unwrap();
        let (evaluated, proof) = svc.evaluate(batch.blinded_elements()).unwrap();
        let err = batch
            .finalize(&evaluated, &proof, &other.public_key())
            .unwrap_err();
        assert_eq!(err, TokenError::ProofVerification);
        assert!(err.to_string().contains("DOES NOT VERIFY"));
    }

    #[test]
    fn tampered_answer_fails_verification() {
        let svc = service();
        let batch = BlindedBatch::blind(vec![b"a".to_vec(), b"b".to_vec()]).unwrap();
        let (mut evaluated, proof) = svc.evaluate(batch.blinded_elements()).unwrap();
        evaluated.swap(0, 1);
        let err = batch
            .finalize(&evaluated, &proof, &svc.public_key())
            .unwrap_err();
        assert_eq!(err, TokenError::ProofVerification);
    }

    #[test]
    fn malformed_messages() {
        let svc = service();
        let batch = BlindedBatch::blind(vec![b"a".to_vec()]).unwrap();
        let (evaluated, proof) = svc.evaluate(batch.blinded_elements()).unwrap();
        let pk = svc.public_key();
        let again = || BlindedBatch::blind(vec![b"a".to_vec()]).unwrap();
        assert!(matches!(
            again().finalize(&[], &proof, &pk),
            Err(TokenError::CountMismatch {
                expected: 1,
                got: 0
            })
        ));
        assert!(matches!(
            again().finalize(&evaluated, &proof[..10], &pk),
            Err(TokenError::Malformed { .. })
        ));
        assert!(matches!(
            again().finalize(&evaluated, &proof, &[0u8; 31]),
            Err(TokenError::Malformed { .. })
        ));
        assert!(matches!(
            again().finalize(&[[0xffu8; 32]], &proof, &pk),
            Err(TokenError::Malformed { .. })
        ));
        assert!(matches!(
            BlindedBatch::blind(vec![]),
            Err(TokenError::EmptyBatch)
        ));
        assert!(matches!(
            BlindedBatch::blind(vec![b"a".to_vec(), vec![0u8; 70_000]]),
            Err(TokenError::Input { index: 1 })
        ));
        let _ = batch;
    }
}
