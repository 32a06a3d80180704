//! Token derivation, client side (token spec dcf1, section 2).
//!
//! ```text
//! token = first 32 bytes of VOPRF-Evaluate(k_ts, canonical)
//! ```
//!
//! The agency blinds its canonical forms, the token service evaluates them blind (one batch,
//! one proof), and the agency verifies the proof against the pinned public key before
//! finalizing. The token service never sees a canonical form; the broker never sees a token.

mod oprf;

pub use oprf::{
    BlindedBatch, DevTokenService, ELEMENT_LEN, PROOF_LEN, PUBLIC_KEY_LEN, TOKEN_LEN,
    TOKEN_SERVICE_INFO, Token, TokenError, derive_keypair_from_seed,
};
