//! How a command fails: a message for the officer and an exit code for scripts.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 1 | refused: the broker or agencyd said no (not found, not permitted, closed, quota, ...) |
//! | 2 | bad input: fix the command line or the file |
//! | 3 | agencyd unreachable: start it, or give its socket with `--socket` |
//! | 4 | the broker or token service is unreachable now (the daemon is up): try again later |

use std::process::ExitCode;

use tonic::Code;

/// Refused by the broker or the daemon.
pub(crate) const EXIT_REFUSED: u8 = 1;
/// Bad input (the same code clap uses for bad usage).
pub(crate) const EXIT_BAD_INPUT: u8 = crate::EXIT_BAD_INPUT;
/// agencyd cannot be reached.
pub(crate) const EXIT_DAEMON_UNREACHABLE: u8 = 3;
/// The broker or token service cannot be reached.
pub(crate) const EXIT_BROKER_UNREACHABLE: u8 = 4;

/// A failed command.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_BAD_INPUT,
            message: message.into(),
        }
    }

    pub(crate) fn exit(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        let code = match status.code() {
            Code::InvalidArgument | Code::OutOfRange => EXIT_BAD_INPUT,
            Code::Unavailable | Code::DeadlineExceeded => EXIT_BROKER_UNREACHABLE,
            _ => EXIT_REFUSED,
        };
        let message = match status.code() {
            Code::InvalidArgument => format!("bad input: {}", status.message()),
            Code::NotFound => format!("not found: {}", status.message()),
            Code::PermissionDenied => format!("not permitted: {}", status.message()),
            Code::FailedPrecondition => format!("not possible now: {}", status.message()),
            Code::ResourceExhausted => format!(
                "over a limit: {} (wait a little, or split the work)",
                status.message()
            ),
            Code::Unavailable => status.message().to_owned(),
            _ => format!("{:?}: {}", status.code(), status.message()),
        };
        Self { code, message }
    }
}

impl From<agency_client::control::ConnectError> for Failure {
    fn from(e: agency_client::control::ConnectError) -> Self {
        Self {
            code: EXIT_DAEMON_UNREACHABLE,
            message: e.to_string(),
        }
    }
}

impl From<agency_client::opfile::SpecError> for Failure {
    fn from(e: agency_client::opfile::SpecError) -> Self {
        Self::bad_input(e.0)
    }
}

pub(crate) type CmdResult = Result<(), Failure>;
