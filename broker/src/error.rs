//! The broker's error type: what went wrong, named by meaning (Garage-style), never by gRPC
//! code. `grpc::status` is the one place an error becomes a `tonic::Status`.
//!
//! Messages are written for the person reading them at the other end: they name the field
//! and the problem, and never contain a token or anything derived from one.

use std::path::PathBuf;

use uuid::Uuid;

use crate::identity::AgencyId;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    // --- The request itself.
    /// A request field is malformed, missing or out of range.
    #[error("{0}")]
    Invalid(String),

    // --- Who is calling.
    /// The connection carries no client certificate identity.
    #[error("no client certificate: connect with your agency certificate")]
    NoCertificate,
    /// The caller's certificate was revoked after its connection was opened.
    #[error("your agency certificate has been revoked; ask the federation administrator")]
    Revoked,
    /// The caller is suspended in the registry.
    #[error("agency {agency} is suspended ({reason}); ask the federation administrator")]
    Suspended { agency: AgencyId, reason: String },
    /// Enrolment is required and the caller is not in the registry.
    #[error("agency {0} is not enrolled in this federation; ask the administrator")]
    NotAdmitted(AgencyId),
    /// The call needs another role than the caller's.
    #[error("this call needs the {needs} role; agency {agency} has the {has} role")]
    WrongRole {
        agency: AgencyId,
        needs: &'static str,
        has: &'static str,
    },

    // --- Operations.
    /// No operation with this id.
    #[error("no operation {0}")]
    NoSuchOperation(Uuid),
    /// The operation exists but belongs to another agency. Said exactly as for an operation
    /// that does not exist, so that operation ids cannot be probed.
    #[error("no operation {0}")]
    NotOwner(Uuid),
    /// Another agency registered an operation under this id.
    #[error("operation id {0} is already taken; choose a new UUID")]
    IdTaken(Uuid),
    /// The id was registered before with other content.
    #[error(
        "operation {0} was already registered with different content; amend it, or register \
         under a new id"
    )]
    ChangedRegistration(Uuid),
    /// Only open operations can change.
    #[error("operation {id} is {state}; only open operations can be amended (register a new one)")]
    OperationEnded { id: Uuid, state: &'static str },

    // --- Matches and the relay.
    /// The caller is not a party to a match with this id (or it does not exist: the same
    /// answer, so that match ids cannot be probed).
    #[error("no match {0} among your matches")]
    NotParty(Uuid),
    /// Both sides of the match are the caller's; the relay is for other agencies.
    #[error(
        "both operations of match {id} are your agency's ({a} and {b}): coordinate internally, \
         the relay is for other agencies"
    )]
    OwnMatch { id: Uuid, a: Uuid, b: Uuid },
    /// Cards once exchanged cannot be withdrawn.
    #[error("the cards of match {0} were already exchanged; a delivered card cannot be taken back")]
    CardsExchanged(Uuid),
    /// Resolving again with a different outcome needs a reopen first.
    #[error("match {0} is already resolved with another outcome; reopen it first")]
    ResolvedOtherwise(Uuid),

    // --- The watch centre's coordination.
    /// No match with this id (the watch centre sees every match, so no probing concern).
    #[error("no match {0}")]
    NoSuchMatch(Uuid),
    /// Another watch officer holds the claim.
    #[error("match {id} is claimed by {officer}; ask them to release it (or add a note instead)")]
    ClaimedByOther { id: Uuid, officer: String },

    // --- The registry and administration.
    /// The agency an admin acts on is not in the registry.
    #[error("agency {0} is not enrolled; enrol it first")]
    NotEnrolled(AgencyId),
    /// An admin tried to suspend itself.
    #[error("an admin cannot suspend itself; ask another admin")]
    SelfSuspension,
    /// A backup goes into a new folder only.
    #[error("{} already exists; back up into a new folder", .0.display())]
    BackupTargetExists(PathBuf),

    // --- Exercises.
    /// The drill was halted: it takes nothing new.
    #[error("this exercise was halted ({0}); it takes nothing new")]
    DrillHalted(String),
    /// A drill id is used once, ever, per broker.
    #[error("drill {0} exists already (ended drills keep their id); choose another id")]
    DrillExists(String),
    /// No drill of this id is running here.
    #[error("no running drill {0} on this broker")]
    NoSuchDrill(String),
    /// Drills are not served by this process (a drill itself, a token service, a joint
    /// broker, or `[drills] enabled = false`).
    #[error("{0}")]
    DrillsNotServed(String),
    /// A store of a drill served as live, of live data served as a drill, or of another drill.
    #[error("{0}")]
    DrillStore(String),
    /// A drill could not be started or stopped (its port, its folder…).
    #[error("{0}")]
    DrillHost(String),

    // --- The token service.
    /// The requested key epoch is not (or no longer) served.
    #[error("{0}")]
    KeyEpochNotServed(String),
    /// The agency's evaluation quota is spent.
    #[error("{0}")]
    QuotaExceeded(String),

    // --- Limits.
    /// The caller's rate for checks or registrations (counted in tokens) is spent.
    #[error(
        "too many {what}: this agency's {what} rate limit is reached; retry in {retry_after_secs} \
         s"
    )]
    RateExceeded {
        what: &'static str,
        retry_after_secs: u64,
    },
    /// One request holds more tokens than the rate limit lets through at once.
    #[error(
        "{tokens} tokens in one request: more than this agency's {what} rate limit lets through \
         at once ({burst}); split it"
    )]
    LargerThanRate {
        what: &'static str,
        tokens: usize,
        burst: u64,
    },

    /// The agency already holds as many alert streams as allowed.
    #[error(
        "this agency already has {max} alert streams open: close one (or wait for a dropped \
         one to time out) before opening another"
    )]
    TooManyStreams { max: usize },

    // --- The broker itself.
    /// The subscriber's place in its alert queue is not in this queue: the broker was
    /// restored from a backup (a new incarnation) or its store replaced.
    #[error(
        "your alert queue was restarted (the broker was restored from a backup?): {detail}; \
         subscribe again with after = 0 and incarnation = {incarnation} to receive everything \
         it holds (agencyd does this by itself)"
    )]
    QueueRestarted { detail: String, incarnation: u64 },
    /// A stand-alone token service that cannot tell whether the caller is suspended.
    #[error("the token service {0}; it evaluates nothing until it has, retry later")]
    RegistryStale(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A task the call handed work to did not finish (a bug or a panic in it).
    #[error("{0} failed")]
    TaskFailed(&'static str),
    #[error("shutting down")]
    ShuttingDown,
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

pub fn invalid(msg: impl Into<String>) -> BrokerError {
    BrokerError::Invalid(msg.into())
}
