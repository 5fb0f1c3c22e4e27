//! The reports, behind `keyrot status`, `keyrot audit` and the daily audit
//! function: the state of every rotated secret, every access key with the
//! secret that manages it, across one account or an organization's, and the
//! daily counts an alarm needs. They only read.
//!
//! They share the rotation's own rules rather than restating them (`model/`:
//! the binding, key descriptions, the secret value's parsing), and the
//! settings and defaults both front ends start from (`settings.rs`).

mod account_reads;
mod accounts;
mod audit;
mod daily;
mod delivery;
mod findings;
mod management;
mod managers;
mod reader;
mod rotation_log;
mod scope;
pub mod settings;
mod state;
mod status;

pub use accounts::{AccountOptions, AccountRow, AccountState, Member, parse_account_ids};
pub use daily::{AuditRequest, DailyAudit, DailyCounts};
pub use delivery::{DeliveryStatus, TargetRow, list_targets};
pub use findings::{AuditReport, Finding, FindingKind, KeyRow, KeyStatus};
pub use management::management_account_warning;
pub use reader::Reader;
pub use scope::{Scope, ScopeAudit, ScopeStatus, audit_scope, status_scope};
pub use settings::{AuditOptions, StatusOptions};
pub use state::SecretState;
pub use status::{StatusRow, StatusSummary};

use crate::aws::error::AwsError;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The report cannot be made as asked (an account id that is none, a
    /// credential report IAM has not finished): the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// An AWS call failed (access denied, throttled past every retry, ...),
    /// said in words by the AWS layer.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl ReportError {
    /// IAM had not finished the credential report within `wait`.
    pub(crate) fn report_not_ready(wait: std::time::Duration, state: &str) -> Self {
        Self::Refused(format!(
            "IAM had not finished the credential report after {} s (GenerateCredentialReport still says {state}): run the audit again in a minute",
            wait.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_report_not_ready_says_to_run_again() {
        let message = ReportError::report_not_ready(std::time::Duration::from_secs(300), "STARTED")
            .to_string();
        assert!(message.contains("after 300 s"), "{message}");
        assert!(message.contains("STARTED"), "{message}");
        assert!(
            message.contains("run the audit again in a minute"),
            "{message}"
        );
    }
}
