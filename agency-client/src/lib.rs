//! The agency side of the federation: the only place selector plaintext lives.

pub mod control;
pub mod daemon;
pub mod normalize;
pub mod opfile;
pub mod token;
