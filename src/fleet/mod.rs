//! The operator's view of a whole account, behind the `keyrot` CLI and the daily
//! audit: enrolling a user (binding tag, secret, rotation), the state of every
//! rotated secret, and every access key with the secret that manages it.
//!
//! It shares the rotation's own rules rather than restating them: the binding tag
//! check, the key description tags, the secret value's parsing and which function
//! rotates a secret.

mod audit;
mod daily;
mod enroll;
mod organization;
mod rollback;
mod status;

pub use crate::aws::account::Reader;
pub use crate::model::secret::Schedule;
pub use audit::{AuditOptions, AuditReport, Finding, FindingKind, KeyRow, audit};
pub use daily::{DailyAudit, DailyCounts};
pub use enroll::{EnrollOptions, EnrollReport, enroll};
pub use organization::{
    AccountOptions, AccountRow, AccountState, AccountsAudit, AccountsStatus, DEFAULT_MEMBER_ROLE,
    Member, audit_accounts, caller, members, parse_account_ids, status_accounts,
};
pub use rollback::{RollbackOptions, RollbackReport, rollback};
pub use status::{SecretState, StatusOptions, StatusRow, StatusSummary, status};

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

use crate::aws_error::AwsError;

/// How many users or secrets are examined at once: enough to hide the latency of
/// each call, few enough to stay well inside IAM's account-wide rate (the SDK's
/// adaptive retries absorb the throttling that remains).
pub const CONCURRENCY: usize = 8;

/// Why a fleet command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The operator asked for something the tool refuses to do; nothing changed.
    #[error("{0}")]
    Refused(String),
    /// The command line names something that cannot be (an invalid user name, say).
    #[error("{0}")]
    Usage(String),
    /// What the rotation's own code refused or failed at (assuming a role, say).
    #[error(transparent)]
    Rotation(#[from] crate::error::RotationError),
    /// An AWS call failed (access denied, throttled past every retry, ...).
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl FleetError {
    pub(crate) fn aws<E, R>(operation: &'static str, context: &str, error: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self::Aws(AwsError::from_sdk(operation, context, error))
    }
}
