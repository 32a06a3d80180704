//! The gRPC layer: each service admits the caller, turns wire messages into domain values
//! (`validate`), calls the ledger, waits for durability and turns domain values back into wire
//! messages. `status` is the one place a [`crate::error::BrokerError`] becomes a
//! `tonic::Status`.

pub mod admin;
pub mod broker;
pub(crate) mod drills;
pub mod oversight;
pub mod oversize;
pub mod paging;
pub mod relay;
pub mod status;
pub mod streams;
pub mod token_service;
pub mod validate;
pub mod wire;
