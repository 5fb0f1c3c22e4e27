//! How a run across accounts reads the user of a secret whose value names a
//! `RoleArn` in another account: through the user's account's read-only audit
//! role, never through the `RoleArn` itself (which may create keys and trusts
//! the rotation function only), and only into the accounts the run reads, in
//! the secret's partition. A secret's value, and so its `RoleArn`, is anyone's
//! who may write the secret: it must not send the reader to an account of the
//! writer's choosing (SPEC 12).

use super::ReportError;
use crate::arn::{account_of, partition_of};
use crate::aws::Clients;
use crate::aws::account::session;
use crate::aws::error::AwsError;
use crate::aws::iam::Iam;
use crate::aws::sts::iam_as;
use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;

/// Where users of other accounts are read: through the read-only role
/// `role_name` of the user's account (deploy/member-account.yaml's audit
/// role), and only in `accounts`, the accounts the run reads.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    pub role_name: String,
    pub accounts: Vec<String>,
}

/// IAM that reads (never writes) the value's user: a user of the secret's own
/// account with `clients`; with a [`Reader`], a user of another account the
/// run reads through that account's read-only role. Never through the
/// `RoleArn` the value names (SPEC 11, T7): whoever may write the value
/// chooses it, and would have the operator's credentials assume it.
pub async fn iam_to_read_user(
    clients: &Clients,
    secret: &Secret,
    value: &SecretValue,
    reader: Option<&Reader>,
) -> Result<Iam, ReportError> {
    let Some(role_arn) = value.role_arn() else {
        return Ok(clients.iam());
    };
    let Some(reader) = reader else {
        return match reader_target(&secret.arn, role_arn, &Reader::default()) {
            ReaderTarget::OwnAccount => Ok(clients.iam()),
            _ => Err(ReportError::Refused(other_account_not_read(
                secret, role_arn,
            ))),
        };
    };
    match reader_target(&secret.arn, role_arn, reader) {
        ReaderTarget::OwnAccount => Ok(clients.iam()),
        ReaderTarget::Role(reader_arn) => iam_as(clients, &session(&secret.arn, &reader_arn))
            .await
            .map_err(|error| not_assumed(secret, error, MEMBER_ROLE_ADVICE)),
        ReaderTarget::Refused(why) => Err(ReportError::Refused(format!(
            "the user of secret {} is not read: {why}",
            secret.name
        ))),
    }
}

/// A run over one account reads no user of another: it would have to assume
/// the role the secret's value names.
fn other_account_not_read(secret: &Secret, role_arn: &str) -> String {
    let account = account_of(role_arn).unwrap_or("another account");
    format!(
        "the user of secret {} is in account {account} (its value names role {role_arn}), which this run does not read: a report assumes no role a secret's value names, since whoever may write the value chooses it; read that account through its audit role with --accounts {account} (deploy/member-account.yaml there) or --org",
        secret.name
    )
}
/// What to do when a member account's audit role cannot be assumed.
const MEMBER_ROLE_ADVICE: &str = "deploy deploy/member-account.yaml to that account (its audit role trusts the account that runs the report), or name the role (--member-role-name, or the function's MEMBER_ROLE_NAME) if it has another name";

/// `AssumeRole` failed on the way to the secret's user.
fn not_assumed(secret: &Secret, error: AwsError, advice: &str) -> ReportError {
    ReportError::Refused(format!(
        "could not assume role {} to read the user of secret {} ({}: {}): {advice}",
        error.context, secret.name, error.code, error.message
    ))
}

/// Where a [`Reader`] reads the user of a secret whose value names `role_arn`.
#[derive(Debug, PartialEq, Eq)]
enum ReaderTarget {
    /// The secret's own account: with the run's credentials there.
    OwnAccount,
    /// Through this read-only role.
    Role(String),
    /// Nowhere, and why.
    Refused(String),
}

fn reader_target(secret_arn: &str, role_arn: &str, reader: &Reader) -> ReaderTarget {
    let account = account_of(role_arn).unwrap_or_default();
    let partition = partition_of(secret_arn).unwrap_or_default();
    let role_partition = partition_of(role_arn).unwrap_or_default();
    if role_partition != partition {
        return ReaderTarget::Refused(format!(
            "the RoleArn is in partition {role_partition}, the secret in {partition}; fix the secret's RoleArn"
        ));
    }
    if Some(account) == account_of(secret_arn) {
        return ReaderTarget::OwnAccount;
    }
    if !reader.accounts.iter().any(|read| read == account) {
        return ReaderTarget::Refused(format!(
            "the RoleArn's account {account} is not one of the accounts this run reads (the organization's, or the ones named; a member account's secrets are read for users of that account only): add the account, or fix the secret's RoleArn"
        ));
    }
    ReaderTarget::Role(format!(
        "arn:{partition}:iam::{account}:role/{}",
        reader.role_name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_that_cannot_be_assumed_says_what_to_deploy_or_allow() {
        let secret = Secret {
            arn: "arn:aws:secretsmanager:us-east-1:111111111111:secret:iam-keys/app-AbCdEf".into(),
            name: "iam-keys/app".into(),
            ..Secret::default()
        };
        let denied = || {
            AwsError::new(
                "AssumeRole",
                "arn:aws:iam::222222222222:role/iam-key-rotation-audit",
                "AccessDenied",
                "not authorized".into(),
            )
        };
        for (advice, says) in [(MEMBER_ROLE_ADVICE, "deploy/member-account.yaml")] {
            let message = not_assumed(&secret, denied(), advice).to_string();
            for word in [
                "arn:aws:iam::222222222222:role/iam-key-rotation-audit",
                "iam-keys/app",
                "AccessDenied",
                says,
            ] {
                assert!(message.contains(word), "no {word:?} in {message}");
            }
            assert!(!message.contains("AssumableRoleArns"), "{message}");
        }
    }

    #[test]
    fn the_reader_goes_only_into_the_runs_accounts_of_the_secrets_partition() {
        let secret = "arn:aws:secretsmanager:us-east-1:111111111111:secret:iam-keys/app-AbCdEf";
        let reader = Reader {
            role_name: "iam-key-rotation-audit".into(),
            accounts: vec!["222222222222".into()],
        };
        let role = |account: &str, partition: &str| {
            format!("arn:{partition}:iam::{account}:role/iam-key-rotation-target")
        };
        assert_eq!(
            reader_target(secret, &role("111111111111", "aws"), &reader),
            ReaderTarget::OwnAccount
        );
        assert_eq!(
            reader_target(secret, &role("222222222222", "aws"), &reader),
            ReaderTarget::Role("arn:aws:iam::222222222222:role/iam-key-rotation-audit".into())
        );
        for refused in [
            role("333333333333", "aws"),
            role("222222222222", "aws-us-gov"),
        ] {
            assert!(
                matches!(
                    reader_target(secret, &refused, &reader),
                    ReaderTarget::Refused(_)
                ),
                "{refused}"
            );
        }
        // A member account's pass reads its own users only.
        let member = Reader {
            accounts: Vec::new(),
            ..reader
        };
        assert!(matches!(
            reader_target(secret, &role("222222222222", "aws"), &member),
            ReaderTarget::Refused(_)
        ));
    }
}
