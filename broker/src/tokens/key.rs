//! The token service's key material: one VOPRF key per epoch (RFC 9497, ristretto255-SHA512,
//! verifiable mode), derived from a seed file, and batch evaluation with one proof.

use std::path::Path;
use std::sync::Arc;

use voprf::{BlindedElement, Group, Ristretto255, VoprfServer};

use crate::error::{BrokerError, invalid};
use crate::secrets::file::{SecretFileError, load_or_create_secret};

/// `P_A + P_B`: a joint federation's public key from its two shares' (a fingerprint that
/// agencies may show; nothing is verified against it).
pub fn joint_public_key(a: &[u8], b: &[u8]) -> Result<[u8; 32], String> {
    let point = |bytes: &[u8]| {
        Ristretto255::deserialize_elem(bytes).map_err(|_| "not a ristretto255 point".to_owned())
    };
    let sum = point(a)? + point(b)?;
    let bytes = Ristretto255::serialize_elem(sum);
    let mut out = [0u8; 32];
    if bytes.len() != out.len() {
        return Err("not 32 bytes".to_owned());
    }
    out.iter_mut().zip(bytes.iter()).for_each(|(o, b)| *o = *b);
    Ok(out)
}

/// RFC 9497 DeriveKeyPair `info` for this federation's token service.
pub const KEY_INFO: &[u8] = b"deconfliction token service v1";

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

    pub fn evaluate_parsed(
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
pub fn parse_elements(
    blinded: &[Vec<u8>],
) -> Result<Vec<BlindedElement<Ristretto255>>, BrokerError> {
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

/// The previous key during a rotation: still served until `until` (unix seconds), so that
/// agencies can re-derive their open operations under the new key without missing matches.
#[derive(Debug, Clone)]
pub struct PreviousKey {
    pub key: Arc<TokenKey>,
    pub until: i64,
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
