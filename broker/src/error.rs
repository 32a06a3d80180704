//! The broker's error type, and the one place where it becomes a gRPC status.
//!
//! Messages are written for the person reading them at the other end: they name the field
//! and the problem, and never contain a token or anything derived from one.

use tonic::{Code, Status};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("shutting down")]
    ShuttingDown,
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

pub fn invalid(msg: impl Into<String>) -> BrokerError {
    BrokerError::InvalidArgument(msg.into())
}

impl From<BrokerError> for Status {
    fn from(e: BrokerError) -> Self {
        let code = match &e {
            BrokerError::InvalidArgument(_) => Code::InvalidArgument,
            BrokerError::NotFound(_) => Code::NotFound,
            BrokerError::PermissionDenied(_) => Code::PermissionDenied,
            BrokerError::AlreadyExists(_) => Code::AlreadyExists,
            BrokerError::FailedPrecondition(_) => Code::FailedPrecondition,
            BrokerError::ResourceExhausted(_) => Code::ResourceExhausted,
            BrokerError::Unauthenticated(_) => Code::Unauthenticated,
            BrokerError::ShuttingDown => Code::Unavailable,
            BrokerError::Store(inner) => {
                // Storage trouble is the operator's to fix; the caller may retry later.
                tracing::error!(error = %inner, "storage failure");
                return Status::unavailable(
                    "the broker could not store this request durably; nothing was acknowledged, \
                     retry later",
                );
            }
        };
        Status::new(code, e.to_string())
    }
}
