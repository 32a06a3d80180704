//! The deconfliction broker: a mutual-TLS gRPC service that matches agencies' opaque tokens
//! and tells each side only that a match exists.
//!
//! The folders are the layers, outside in: `transport` (TLS, connections, who is calling and
//! may they), `grpc` (the services: wire messages in, domain calls, wire messages out; the one
//! place an error becomes a `tonic::Status`), `ledger` (the domain: operations, matches,
//! alerts, the audit chain), `store` (bytes on disk behind a trait). Beside them: `secrets`
//! (pepper and secret files), `pki` (certificate tooling), `ops` (background work, metrics)
//! and `server` (assembling a running process from `config`).
//!
//! This crate deliberately does not depend on the selector normalization code
//! (`token-spec`): it never sees, and could not compute, a selector or canonical form.
//! Raw tokens are peppered in [`grpc::validate`] and go no further. See ARCHITECTURE.md.

pub mod config;
pub mod console;
pub mod core;
pub mod drills;
pub mod error;
pub mod grpc;
pub mod identity;
pub mod ledger;
pub mod ops;
pub mod pki;
pub mod secrets;
pub mod server;
pub mod store;
pub mod tokens;
pub mod transport;
