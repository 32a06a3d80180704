//! The token service's domain: its keys per epoch and batch evaluation (`key`), and who may
//! evaluate how much (`quota`). The gRPC face is `grpc::token_service`.

mod key;
mod quota;

pub use key::{KEY_INFO, PreviousKey, TokenKey, TokenKeyError, joint_public_key, parse_elements};
pub use quota::{KeyRing, Quota, QuotaBook};
