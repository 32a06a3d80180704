//! The token service's domain: its keys per epoch and batch evaluation (`key`), and who may
//! evaluate how much (`quota`). The gRPC face is `grpc::token_service`.

mod key;
mod quota;

pub use key::{KEY_INFO, PreviousKey, TokenKey, TokenKeyError, parse_elements};
pub use quota::{KeyRing, Quota, QuotaBook};
