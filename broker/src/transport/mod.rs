//! Transport: TLS with the federation's CA and CRL, the accept loop that attaches the caller's
//! identity to each connection, and the gate every call passes (role, suspension, revocation,
//! rate). Nothing here knows what a call asks for.

pub mod access;
pub mod listener;
pub mod ratelimit;
pub mod tls;
