//! The deconfliction broker: a mutual-TLS gRPC service that matches agencies' opaque tokens
//! and tells each side only that a match exists.
//!
//! This crate deliberately does not depend on the selector normalization code
//! (`agency-client`): it never sees, and could not compute, a selector or canonical form.
//! Raw tokens are peppered in [`validate`] and go no further. See ARCHITECTURE.md.

pub mod access;
pub mod admin_service;
pub mod audit;
pub mod background;
pub mod config;
pub mod core;
pub mod dev;
pub mod error;
pub mod identity;
pub mod ledger;
pub mod listener;
pub mod metrics;
pub mod oversight_service;
pub mod pepper;
pub mod pki;
pub mod pki_dir;
pub mod ratelimit;
pub mod relay_service;
pub mod secret_file;
pub mod server;
pub mod service;
pub mod status_map;
pub mod store;
pub mod tls;
pub mod token_service;
pub mod validate;
