//! The token spec alone (dcf1): selector canonical forms ([`normalize`]) and the client half of
//! the VOPRF that turns them into tokens ([`token`]).
//!
//! It is its own crate so that another agency's system can link exactly the rules every agency
//! must share, without agencyd, its store, its configuration or its CLI. Plaintext selectors
//! live only on the agency side: this crate runs there, and only blinded points leave it.

pub mod normalize;
pub mod token;
