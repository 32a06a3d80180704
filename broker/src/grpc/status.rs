//! The one place a [`BrokerError`] becomes a `tonic::Status`: each meaning gets its gRPC
//! code here, and nowhere else in the broker builds a status.

use tonic::{Code, Status};

use crate::error::BrokerError;

/// The gRPC code for each kind of error.
fn code(e: &BrokerError) -> Code {
    use BrokerError as E;
    match e {
        E::Invalid(_) => Code::InvalidArgument,
        E::NoCertificate | E::Revoked => Code::Unauthenticated,
        E::Suspended { .. } | E::NotAdmitted(_) | E::WrongRole { .. } => Code::PermissionDenied,
        E::NoSuchOperation(_)
        | E::NotOwner(_)
        | E::NotParty(_)
        | E::NotEnrolled(_)
        | E::NoSuchMatch(_) => Code::NotFound,
        E::IdTaken(_) | E::ChangedRegistration(_) => Code::AlreadyExists,
        E::OperationEnded { .. }
        | E::OwnMatch { .. }
        | E::CardsExchanged(_)
        | E::ResolvedOtherwise(_)
        | E::SelfSuspension
        | E::BackupTargetExists(_)
        | E::KeyEpochNotServed(_)
        | E::QueueRestarted { .. }
        | E::DrillHalted(_)
        | E::DrillsNotServed(_)
        | E::DrillStore(_)
        | E::ClaimedByOther { .. } => Code::FailedPrecondition,
        E::DrillExists(_) => Code::AlreadyExists,
        E::NoSuchDrill(_) => Code::NotFound,
        E::DrillHost(_) => Code::Unavailable,
        E::QuotaExceeded(_)
        | E::RateExceeded { .. }
        | E::LargerThanRate { .. }
        | E::TooManyStreams { .. } => Code::ResourceExhausted,
        E::Store(_) | E::ShuttingDown | E::RegistryStale(_) => Code::Unavailable,
        E::TaskFailed(_) => Code::Internal,
    }
}

impl From<BrokerError> for Status {
    fn from(e: BrokerError) -> Self {
        if let BrokerError::Store(inner) = &e {
            // Storage trouble is the operator's to fix; the caller may retry later.
            tracing::error!(error = %inner, "storage failure");
            return Status::unavailable(
                "the broker could not store this request durably; nothing was acknowledged, \
                 retry later",
            );
        }
        Status::new(code(&e), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meanings_map_to_the_codes_clients_rely_on() {
        let id = uuid::Uuid::nil();
        assert_eq!(code(&BrokerError::NotParty(id)), Code::NotFound);
        // Another agency's operation answers as one that does not exist: no existence oracle.
        assert_eq!(code(&BrokerError::NotOwner(id)), Code::NotFound);
        assert_eq!(
            BrokerError::NotOwner(id).to_string(),
            BrokerError::NoSuchOperation(id).to_string()
        );
        assert_eq!(
            code(&BrokerError::RateExceeded {
                what: "checks",
                retry_after_secs: 1
            }),
            Code::ResourceExhausted
        );
        assert_eq!(code(&BrokerError::Revoked), Code::Unauthenticated);
        assert_eq!(code(&BrokerError::ShuttingDown), Code::Unavailable);
    }

    #[test]
    fn storage_failures_say_nothing_was_acknowledged() {
        let s = Status::from(BrokerError::Store(crate::store::StoreError::Corrupt {
            key: "x".into(),
            reason: "y".into(),
        }));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(
            s.message().contains("nothing was acknowledged"),
            "{}",
            s.message()
        );
    }
}
