//! Joint tokens (token spec section 5): the VOPRF under `k = k_A + k_B`, a key nobody holds.
//!
//! The client blinds each canonical form once, has both token services evaluate the same
//! blinded elements, verifies each batch proof against that side's pinned share, adds the two
//! evaluations pointwise, unblinds the sum and finalizes as RFC 9497 does. Neither service can
//! compute a joint token from a guess alone, and neither can slip in another key: a proof that
//! does not verify against its pinned share stops everything, and says which share it was.

use sha2::{Digest, Sha512};
use voprf::{Group, VoprfClient};

use super::oprf::{
    BlindedBatch, ELEMENT_LEN, PUBLIC_KEY_LEN, Suite, TOKEN_LEN, Token, TokenError, malformed,
    parse_answer, public_key, to_array,
};

/// Which of the two shares (for messages: "the token service of share A failed").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    A,
    B,
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Share::A => "A",
            Share::B => "B",
        })
    }
}

/// One token service's answer for a joint batch, with the share key it must verify against.
#[derive(Debug, Clone, Copy)]
pub struct ShareAnswer<'a> {
    pub evaluated: &'a [[u8; ELEMENT_LEN]],
    pub proof: &'a [u8],
    pub public_key: &'a [u8],
}

/// `P = P_A + P_B`: the joint key's public key, which clients may show as its fingerprint (no
/// proof is checked against it).
pub fn joint_public_key(
    a: &[u8; PUBLIC_KEY_LEN],
    b: &[u8; PUBLIC_KEY_LEN],
) -> Result<[u8; PUBLIC_KEY_LEN], TokenError> {
    let sum = public_key(a)? + public_key(b)?;
    to_array(&Suite::serialize_elem(sum), "joint public key")
}

impl BlindedBatch {
    /// Verifies both shares' batch proofs, each against its own key, then adds, unblinds and
    /// finalizes: one joint token per canonical form, in input order. Any failure names the
    /// share and returns no token at all.
    pub fn finalize_joint(
        self,
        a: ShareAnswer<'_>,
        b: ShareAnswer<'_>,
    ) -> Result<Vec<Token>, TokenError> {
        let n = self.inputs.len();
        let mut sums = Vec::with_capacity(n);
        let mut parsed = Vec::with_capacity(2);
        for (share, answer) in [(Share::A, a), (Share::B, b)] {
            let in_share = |e: TokenError| TokenError::JointShare {
                share,
                source: Box::new(e),
            };
            let (messages, proof) =
                parse_answer(answer.evaluated, answer.proof, n).map_err(in_share)?;
            let pk = public_key(answer.public_key).map_err(in_share)?;
            // Verification only (it happens before the iterator is returned): the outputs
            // under one share are never used, so the lazy iterator is dropped unread.
            let _unused =
                VoprfClient::batch_finalize(&self.inputs, &self.clients, &messages, &proof, pk)
                    .map_err(|e| {
                        in_share(match e {
                            voprf::Error::ProofVerification => TokenError::ProofVerification,
                            other => TokenError::Protocol(other),
                        })
                    })?;
            parsed.push(answer.evaluated);
        }
        for i in 0..n {
            let element = |share: Share, bytes: &[u8; ELEMENT_LEN]| {
                Suite::deserialize_elem(bytes).map_err(|_| TokenError::JointShare {
                    share,
                    source: Box::new(malformed(
                        format!("evaluated element {i}"),
                        "not a valid point",
                    )),
                })
            };
            let (Some(za), Some(zb)) = (parsed[0].get(i), parsed[1].get(i)) else {
                return Err(TokenError::CountMismatch {
                    expected: n,
                    got: i,
                });
            };
            sums.push(element(Share::A, za)? + element(Share::B, zb)?);
        }
        self.inputs
            .iter()
            .zip(&self.clients)
            .zip(sums)
            .enumerate()
            .map(|(index, ((input, client), sum))| {
                // The client state serializes as its blind scalar, then its blinded element.
                let state = client.serialize();
                let blind = state
                    .get(..32)
                    .and_then(|b| Suite::deserialize_scalar(b).ok())
                    .ok_or_else(|| malformed("blind", "the client state holds no blind"))?;
                let unblinded = sum * Suite::invert_scalar(blind);
                finalize(input, &Suite::serialize_elem(unblinded))
                    .ok_or(TokenError::Input { index })
            })
            .collect()
    }
}

/// RFC 9497 Finalize: `Hash(I2OSP(len(input), 2) || input || I2OSP(len(N), 2) || N ||
/// "Finalize")`, of which a token is the first 32 bytes.
fn finalize(input: &[u8], unblinded: &[u8]) -> Option<Token> {
    let input_len = u16::try_from(input.len()).ok()?;
    let element_len = u16::try_from(unblinded.len()).ok()?;
    let mut hash = Sha512::new();
    hash.update(input_len.to_be_bytes());
    hash.update(input);
    hash.update(element_len.to_be_bytes());
    hash.update(unblinded);
    hash.update(b"Finalize");
    let out = hash.finalize();
    let mut token = [0u8; TOKEN_LEN];
    token.copy_from_slice(out.get(..TOKEN_LEN)?);
    Some(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::token::{TOKEN_SERVICE_INFO, derive_keypair_from_seed};

    #[test]
    fn joint_tokens_are_neither_share_alone_and_a_wrong_share_is_named() {
        let a = derive_keypair_from_seed(&[1u8; 32], TOKEN_SERVICE_INFO).unwrap();
        let b = derive_keypair_from_seed(&[2u8; 32], TOKEN_SERVICE_INFO).unwrap();
        let forms = vec![b"dcf1\0phone\0+8613800138000".to_vec()];
        let joint = |a_pin: [u8; 32]| {
            let batch = BlindedBatch::blind(forms.clone()).unwrap();
            let (ea, pa) = a.evaluate(batch.blinded_elements()).unwrap();
            let (eb, pb) = b.evaluate(batch.blinded_elements()).unwrap();
            batch.finalize_joint(
                ShareAnswer {
                    evaluated: &ea,
                    proof: &pa,
                    public_key: &a_pin,
                },
                ShareAnswer {
                    evaluated: &eb,
                    proof: &pb,
                    public_key: &b.public_key(),
                },
            )
        };
        let tokens = joint(a.public_key()).unwrap();
        // Blinds differ between runs; the token does not.
        assert_eq!(tokens, joint(a.public_key()).unwrap());
        assert_ne!(tokens[0], a.direct_token(&forms[0]).unwrap());
        assert_ne!(tokens[0], b.direct_token(&forms[0]).unwrap());
        let e = joint(b.public_key()).unwrap_err();
        assert_eq!(
            e,
            TokenError::JointShare {
                share: Share::A,
                source: Box::new(TokenError::ProofVerification)
            }
        );
        assert!(e.to_string().contains("share A"), "{e}");
    }
}
