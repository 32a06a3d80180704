//! Token derivation, client side (token spec dcf1, section 2).
//!
//! ```text
//! token = first 32 bytes of VOPRF-Evaluate(k_ts, canonical)
//! ```
//!
//! The agency blinds its canonical forms, the token service evaluates them blind (one batch,
//! one proof), and the agency verifies the proof against the pinned public key before
//! finalizing. The token service never sees a canonical form; the broker never sees a token.
//!
//! [`BlindedBatch`] is the protocol on plain bytes; [`TokenDeriver`] carries it over gRPC to
//! the federation's `TokenService`, in batches, with a cache per pinned key epoch.
//!
//! A joint federation (spec section 5) derives under a key split in two shares that nobody
//! holds whole: [`BlindedBatch::finalize_joint`] on bytes, [`JointDeriver`] over gRPC with both
//! shares' token services.

mod client;
mod joint;
mod joint_client;
mod oprf;

pub use client::{
    DEFAULT_BATCH_SIZE, DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_CACHE_ENTRIES, DeriverStats,
    MAX_BATCH_SIZE, PinnedKey, TokenDeriver,
};
pub use joint::{Share, ShareAnswer, joint_public_key};
pub use joint_client::{JointDeriver, ShareService};
pub use oprf::{
    BlindedBatch, DevTokenService, ELEMENT_LEN, PROOF_LEN, PUBLIC_KEY_LEN, TOKEN_LEN,
    TOKEN_SERVICE_INFO, Token, TokenError, derive_keypair_from_seed, grpc_code_name,
};
