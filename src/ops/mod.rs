//! The operator's writes, behind `keyrot`: enrolling a user (secret, binding
//! tag, rotation) and rolling a rotation back. Each refuses, changing nothing,
//! what it cannot do safely, and every error is worded for the operator at a
//! terminal, who runs it with their own credentials: [`OpsError`]. (The
//! rotation function's errors, worded for its log, are `error.rs`'s.)

pub mod deliver;
mod enroll;
mod function;
mod rollback;

pub use crate::model::secret::Schedule;
pub use enroll::{EnrollOptions, EnrollReport, enroll};
pub use rollback::{RollbackOptions, RollbackReport, rollback};

use crate::aws::error::AwsError;
use crate::aws::secrets::InvalidValue;

/// Why an operator's command could not do its job; nothing was changed unless
/// the message says what was.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The command refuses what it was asked (exit 1): the message says why
    /// and what to do.
    #[error("{0}")]
    Refused(String),
    /// The command line names something that cannot be, or is not there
    /// (exit 2).
    #[error("{0}")]
    Usage(String),
    /// What the command would work on cannot be worked with: a value that is
    /// not a secret of this tool's, a role that cannot be assumed (exit 2).
    #[error("{0}")]
    Unusable(String),
    /// An AWS call failed (access denied, throttled past every retry, ...),
    /// said in words by the AWS layer (exit 2).
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A write failed after others were made: the message says what was
    /// written, how to finish and how to undo (exit 2).
    #[error("{0}")]
    PartlyDone(String),
}

const NOTHING_CHANGED: &str = "nothing was changed";

impl OpsError {
    /// No secret of that name or ARN, where the operator's credentials look.
    pub(crate) fn secret_not_found(secret: &str) -> Self {
        Self::Usage(format!(
            "there is no secret {secret} in this account and region (or your credentials may not describe it): check the name or ARN, --region and --profile; {NOTHING_CHANGED}"
        ))
    }

    /// The IAM user a secret names does not exist where it should.
    pub(crate) fn user_not_found(secret: &str, user: &str) -> Self {
        Self::Unusable(format!(
            "IAM user {user}, which secret {secret} names, does not exist (or your credentials may not read it): fix UserName in the secret, or check --profile; {NOTHING_CHANGED}"
        ))
    }

    /// A version's value that is not a value of this tool's.
    pub(crate) fn unusable_value(invalid: InvalidValue) -> Self {
        Self::Unusable(format!(
            "{invalid}. It must be a JSON object such as {{\"UserName\": \"<iam user>\"}}: fix it (aws secretsmanager put-secret-value), or check that this is the secret you meant; {NOTHING_CHANGED}"
        ))
    }

    /// `AssumeRole` into the role a secret (or `--role-arn`) names failed.
    pub(crate) fn assume_role_failed(error: AwsError) -> Self {
        Self::Unusable(format!(
            "could not assume role {} with your credentials ({}: {}): the role's trust policy must allow your principal sts:AssumeRole (with an sts:ExternalId condition if the secret sets ExternalId), and your own policy must allow assuming it; {NOTHING_CHANGED}",
            error.context, error.code, error.message
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message speaks to an operator with their own credentials, never
    /// of the function's role or the template's parameters, and says what to
    /// do and that nothing changed.
    fn for_an_operator(error: &OpsError, says: &[&str]) {
        let message = error.to_string();
        for word in says.iter().chain(&[NOTHING_CHANGED]) {
            assert!(message.contains(word), "no {word:?} in: {message}");
        }
        for wrong in ["function's role", "template parameter", "AssumableRoleArns"] {
            assert!(!message.contains(wrong), "{wrong:?} in: {message}");
        }
    }

    #[test]
    fn a_missing_secret_says_where_keyrot_looked() {
        for_an_operator(
            &OpsError::secret_not_found("iam-keys/nope"),
            &["iam-keys/nope", "--region", "--profile"],
        );
    }

    #[test]
    fn a_missing_user_names_the_secret_and_the_field_to_fix() {
        for_an_operator(
            &OpsError::user_not_found("iam-keys/app", "app"),
            &[
                "IAM user app",
                "iam-keys/app",
                "UserName",
                "your credentials",
            ],
        );
    }

    #[test]
    fn a_role_that_cannot_be_assumed_names_the_operators_credentials() {
        let denied = AwsError::new(
            "AssumeRole",
            "arn:aws:iam::222222222222:role/target",
            "AccessDenied",
            "not authorized".into(),
        );
        for_an_operator(
            &OpsError::assume_role_failed(denied),
            &[
                "arn:aws:iam::222222222222:role/target",
                "AccessDenied",
                "your credentials",
                "trust policy",
                "sts:ExternalId",
            ],
        );
    }

    #[test]
    fn an_unusable_value_says_what_it_must_be() {
        let invalid = OpsError::unusable_value(InvalidValue {
            secret: "arn:aws:secretsmanager:us-east-1:1:secret:iam-keys/app-AbCdEf".into(),
            version: "AWSCURRENT".into(),
            reason: "field UserName is missing".into(),
        });
        for_an_operator(
            &invalid,
            &["AWSCURRENT", "UserName is missing", "put-secret-value"],
        );
    }
}
