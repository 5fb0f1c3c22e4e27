//! Where the user lives: the function's own account, or, when the secret names a
//! `RoleArn`, another account reached through `sts:AssumeRole`.
//!
//! The role is assumed at most once per invocation (each step reads the value once
//! and asks once), for the shortest session STS allows, under a session name that
//! tells CloudTrail readers which function and which secret acted.

use aws_sdk_iam::config::Credentials;
use aws_sdk_sts::error::ProvideErrorMetadata;

use crate::aws::Clients;
use crate::error::RotationError;
use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;
use crate::model::user::is_name_char;

/// STS's shortest session: the rotation needs a few seconds of it.
const SESSION_SECONDS: i32 = 900;
/// STS's longest session name.
const MAX_SESSION_NAME_LEN: usize = 64;

/// The IAM client for the value's user: the function's own, or one with the
/// credentials of the assumed `RoleArn`. `secret_id` is the secret's ARN (or
/// its name, before `keyrot enroll` has created it): the session name and any
/// error name it.
pub async fn iam_client_for_user(
    clients: &Clients,
    secret_id: &str,
    value: &SecretValue,
) -> Result<aws_sdk_iam::Client, RotationError> {
    let Some(role_arn) = value.role_arn() else {
        return Ok(clients.iam.clone());
    };
    assume(clients, secret_id, role_arn, value.external_id()).await
}

/// How a run across accounts reads users of other accounts: through the
/// read-only role `role_name` of the user's account (deploy/member-account.yaml's
/// audit role), and only in `accounts`, the accounts the run reads, in the
/// secret's partition (a secret's value, and so its `RoleArn`, is anyone's who
/// may write the secret: it must not send the reader to an account of the
/// writer's choosing).
#[derive(Debug, Clone, Default)]
pub struct Reader {
    pub role_name: String,
    pub accounts: Vec<String>,
}

/// The IAM client that reads (never writes) the value's user. With a
/// [`Reader`], a user of another account is read through its read-only role
/// rather than through the secret's `RoleArn`, which may create keys and trusts
/// the rotation function only; a user of the secret's own account is read
/// with `clients`. Without one, as [`iam_client_for_user`].
pub async fn iam_client_to_read_user(
    clients: &Clients,
    secret: &Secret,
    value: &SecretValue,
    reader: Option<&Reader>,
) -> Result<aws_sdk_iam::Client, RotationError> {
    let (Some(role_arn), Some(reader)) = (value.role_arn(), reader) else {
        return iam_client_for_user(clients, &secret.arn, value).await;
    };
    match reader_target(&secret.arn, role_arn, reader) {
        ReaderTarget::OwnAccount => Ok(clients.iam.clone()),
        ReaderTarget::Role(reader_arn) => assume(clients, &secret.arn, &reader_arn, None).await,
        ReaderTarget::Refused(message) => Err(RotationError::AssumeRoleFailed {
            secret: secret.arn.clone(),
            role: role_arn.to_string(),
            code: "AccountNotRead".into(),
            message,
        }),
    }
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
    let account = crate::arn::account_of(role_arn).unwrap_or_default();
    let partition = partition_of(secret_arn);
    if partition_of(role_arn) != partition {
        return ReaderTarget::Refused(format!(
            "the RoleArn is in partition {}, the secret in {partition}: its user is not read; fix the secret's RoleArn",
            partition_of(role_arn)
        ));
    }
    if Some(account) == crate::arn::account_of(secret_arn) {
        return ReaderTarget::OwnAccount;
    }
    if !reader.accounts.iter().any(|read| read == account) {
        return ReaderTarget::Refused(format!(
            "the RoleArn's account {account} is not one of the accounts this run reads (the organization's, or --accounts; a member account's secrets are read for users of that account only), so its user is not read: add the account, or fix the secret's RoleArn"
        ));
    }
    ReaderTarget::Role(format!(
        "arn:{partition}:iam::{account}:role/{}",
        reader.role_name
    ))
}

/// The partition of an ARN (`aws`, `aws-us-gov`, ...).
fn partition_of(arn: &str) -> &str {
    arn.split(':').nth(1).unwrap_or_default()
}

async fn assume(
    clients: &Clients,
    secret_id: &str,
    role_arn: &str,
    external_id: Option<&str>,
) -> Result<aws_sdk_iam::Client, RotationError> {
    let output = clients
        .sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name(crate::arn::name_of(secret_id)))
        .duration_seconds(SESSION_SECONDS)
        .set_external_id(external_id.map(str::to_string))
        .send()
        .await
        .map_err(|error| RotationError::AssumeRoleFailed {
            secret: secret_id.to_string(),
            role: role_arn.to_string(),
            code: error.code().unwrap_or("NetworkError").to_string(),
            message: error.message().unwrap_or("no answer from STS").to_string(),
        })?;
    let Some(credentials) = output.credentials() else {
        return Err(RotationError::AssumeRoleFailed {
            secret: secret_id.to_string(),
            role: role_arn.to_string(),
            code: "InvalidResponse".into(),
            message: "the response holds no credentials".into(),
        });
    };
    let credentials = Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_string()),
        std::time::SystemTime::try_from(*credentials.expiration()).ok(),
        "iam-key-rotation-assumed-role",
    );
    let config = clients
        .iam
        .config()
        .to_builder()
        .credentials_provider(credentials)
        .build();
    Ok(aws_sdk_iam::Client::from_conf(config))
}

/// `iam-key-rotation@<secret name>`, in the characters and length STS accepts.
fn session_name(secret_name: &str) -> String {
    let name: String = format!("iam-key-rotation@{secret_name}")
        .chars()
        .map(|c| if is_name_char(c) { c } else { '-' })
        .take(MAX_SESSION_NAME_LEN)
        .collect();
    name
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn session_names_identify_the_function_and_secret_within_sts_rules() {
        assert_eq!(
            session_name("iam-keys/app"),
            "iam-key-rotation@iam-keys-app"
        );
        let long = session_name(&"x".repeat(200));
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("iam-key-rotation@x"));
    }
}
