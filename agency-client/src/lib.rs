//! The agency side of the federation: the only place selector plaintext lives.

pub mod normalize;
pub mod token;
