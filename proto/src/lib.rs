//! The gRPC contract of the deconfliction federation, package `deconfliction.v1`.
//!
//! The Rust code under `src/gen/` is generated from `deconfliction/v1/*.proto` by a pure-Rust
//! path (protox + tonic-prost-build), so no system `protoc` is needed. It is committed; the
//! test `tests/codegen.rs` fails when it is stale. Regenerate with
//! `DECONFLICTION_REGEN=1 cargo test -p deconfliction-proto --test codegen`.

/// Package `deconfliction.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    include!("gen/deconfliction.v1.rs");
}

/// Package `deconfliction.agent.v1`: the local control API of `agencyd` (Unix socket).
pub mod agent {
    /// Version 1 of the control API.
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        include!("gen/deconfliction.agent.v1.rs");
    }
}

/// The encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("gen/descriptor.bin");

/// Length in bytes of every token and every stored token hash.
pub const TOKEN_LEN: usize = 32;

/// The token spec version this contract speaks.
pub const SPEC_VERSION: &str = "dcf1";
