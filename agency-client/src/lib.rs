//! The agency side of the federation: the only place selector plaintext lives.
