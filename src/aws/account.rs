//! Where the user lives: the secret's own account, or, when the secret names a
//! `RoleArn`, another account reached through `sts:AssumeRole`.
//!
//! The role is assumed at most once per invocation (each step reads the value once
//! and asks once), for the shortest session STS allows, under a session name that
//! tells CloudTrail readers which function and which secret acted.

use super::Clients;
use super::error::AwsError;
use super::iam::Iam;
use super::sts::{RoleSession, iam_as};
use crate::model::secret_value::SecretValue;

/// STS's shortest session: the rotation needs a few seconds of it.
const SESSION_SECONDS: i32 = 900;

/// IAM for the value's user: the clients' own, or a session of the value's
/// `RoleArn` (with its `ExternalId`). `secret_id` is the secret's ARN (or its
/// name, before `keyrot enroll` has created it): the session is named after it.
/// The one failure is `AssumeRole`'s, whose context is the role.
pub async fn iam_for_user(
    clients: &Clients,
    secret_id: &str,
    value: &SecretValue,
) -> Result<Iam, AwsError> {
    let Some(role_arn) = value.role_arn() else {
        return Ok(clients.iam());
    };
    iam_as(
        clients,
        &session(secret_id, role_arn).with_external_id(value.external_id()),
    )
    .await
}

/// A session of `role_arn` acting for the secret: `iam-key-rotation@<secret
/// name>`, so CloudTrail in the user's account shows which secret acted.
pub fn session<'a>(secret_id: &str, role_arn: &'a str) -> RoleSession<'a> {
    RoleSession::new(
        role_arn,
        &format!("iam-key-rotation@{}", crate::arn::name_of(secret_id)),
        SESSION_SECONDS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_identify_the_function_and_secret_within_sts_rules() {
        let role = "arn:aws:iam::222222222222:role/r";
        assert_eq!(
            session("iam-keys/app", role).name,
            "iam-key-rotation@iam-keys-app"
        );
        let long = session(&"x".repeat(200), role).name;
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("iam-key-rotation@x"));
    }
}
