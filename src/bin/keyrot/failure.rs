//! How keyrot fails: its exit codes, the contract CI jobs act on (SPEC 9), and
//! the one error type every command returns.

use std::process::ExitCode;

use iam_key_rotation::SetupError;
use iam_key_rotation::ops::OpsError;
use iam_key_rotation::report::ReportError;

/// Exit codes (the contract CI jobs act on).
pub const FINDINGS: u8 = 1;
pub const FAILURE: u8 = 2;

/// Why a command could not do its job: the AWS set-up, the library's writes
/// or reads, or a run that read nothing.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The run read nothing to judge (no user, no account, no secret): a typo
    /// in a flag must not pass for an all-clear.
    #[error("{0}")]
    ReadNothing(String),
}

impl Failure {
    /// A refusal is exit 1, like a finding; everything else is exit 2.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Ops(OpsError::Refused(_)) => FINDINGS,
            _ => FAILURE,
        })
    }
}
