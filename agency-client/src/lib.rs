//! The agency side of the federation: the only place selector plaintext lives.

pub mod control;
pub mod daemon;
pub mod opfile;
