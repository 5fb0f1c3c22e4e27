//! Every way a rotation (a step or a sweep) can fail, as the Lambda function
//! error Secrets Manager and operators see in the function's log.
//!
//! Each variant carries what a reader needs to act: which secret, which user, which
//! key, and the message ends with what to do. The `errorType` is the variant's kind,
//! so alarms and scripts can match on it. No variant holds secret material: the
//! types here only ever receive names, ARNs, version ids and access key ids.

use std::time::Duration;

use lambda_runtime::Diagnostic;

use crate::aws::error::{AwsError, is_access_denied, is_throttling};
use crate::aws::secrets::ValueError;
use crate::model::binding::NotBound;
use crate::model::secret::Secret;

/// Why one rotation step failed.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(
        "invalid rotation event: {reason}. Expected {{\"Step\": \"createSecret|setSecret|testSecret|finishSecret\", \"SecretId\": \"<ARN or name>\", \"ClientRequestToken\": \"<version id>\"}} or {{\"Action\": \"sweep\"}}"
    )]
    InvalidEvent { reason: String },

    #[error(
        "secret {secret} was not found: check the SecretId and that the function's role may read it"
    )]
    SecretNotFound { secret: String },

    #[error(
        "rotation is not enabled on secret {secret}: enable it with `aws secretsmanager rotate-secret --secret-id {secret} --rotation-lambda-arn <this function>` before invoking the steps"
    )]
    RotationNotEnabled { secret: String },

    #[error("secret {secret} is set up to be rotated by {configured}, not by this function ({invoked}): nothing was changed. Invoke the function the secret names, or make this one its rotation function with `aws secretsmanager rotate-secret --secret-id {secret} --rotation-lambda-arn {invoked}`", configured = configured_function(.configured))]
    RotationFunctionMismatch {
        secret: String,
        configured: String,
        invoked: String,
    },

    #[error(
        "step {step} of secret {secret} ran out of time before the function's deadline ({detail}): whatever it did so far is safe, and the step's retry resumes from it; Secrets Manager retries the rotation. If it persists, raise the function timeout (FunctionTimeoutSeconds)"
    )]
    DeadlineReached {
        secret: String,
        step: &'static str,
        detail: &'static str,
    },

    #[error(
        "version {token} is not a version of secret {secret}: the ClientRequestToken must be the version id Secrets Manager staged for this rotation"
    )]
    VersionNotFound { secret: String, token: String },

    #[error(
        "version {token} of secret {secret} is neither AWSCURRENT nor AWSPENDING: it belongs to no rotation in progress; start a new one with `aws secretsmanager rotate-secret --secret-id {secret}`"
    )]
    VersionNotPending { secret: String, token: String },

    #[error(
        "the {version} value of secret {secret} is not valid: {reason}. The value must be a JSON object such as {{\"UserName\": \"<iam user>\"}}"
    )]
    InvalidSecretValue {
        secret: String,
        version: String,
        reason: String,
    },

    #[error(
        "version {token} of secret {secret} has no value: run the createSecret step for it first"
    )]
    PendingValueMissing { secret: String, token: String },

    #[error(
        "IAM user {user} named by secret {secret} does not exist (or the function's role may not read it): fix UserName in the secret or create the user"
    )]
    UserNotFound { secret: String, user: String },

    #[error(
        "IAM user {user} is not bound to secret {secret}: {detail}; nothing was changed. To do: {fix}"
    )]
    UserNotBound {
        secret: String,
        user: String,
        detail: String,
        /// What an administrator should do, command included.
        fix: String,
    },

    #[error("IAM user {user} already has two access keys and {keys} not managed by secret {secret}: delete or deactivate-and-delete the key this secret does not manage (`aws iam delete-access-key --user-name {user} --access-key-id <id>`), then rotate again", keys = describe_keys(.keys))]
    UnmanagedKeyBlocks {
        secret: String,
        user: String,
        keys: Vec<String>,
    },

    #[error(
        "the previous access key {key} of IAM user {user} (secret {secret}) is still Active and the current version has not reached the delivery {targets}: their consumers still use that key, so this rotation does not delete it to make room, and nothing was changed. Fix the target (keyrot status shows its last error; the delivery function's log has all of it) and let the delivery function deliver (it runs on its schedule, or invoke it with {{\"Action\": \"deliver\", \"SecretId\": \"{secret}\"}}), then rotate again; once GRACE_MAX_HOURS have passed since AWSCURRENT moved, the rotation goes ahead anyway", targets = describe_targets(.targets)
    )]
    Undelivered {
        secret: String,
        user: String,
        key: String,
        targets: Vec<String>,
    },

    #[error(
        "pending access key {key} of secret {secret} {problem} for IAM user {user}: cancel this rotation (`aws secretsmanager cancel-rotate-secret --secret-id {secret}`) and rotate again"
    )]
    PendingKeyUnusable {
        secret: String,
        user: String,
        key: String,
        problem: &'static str,
    },

    #[error(
        "access key {key} of IAM user {user} (secret {secret}) did not become valid within {waited:?}: IAM is slower than usual to propagate new keys; Secrets Manager will retry, or raise PROPAGATION_TIMEOUT_SECONDS and the function timeout"
    )]
    KeyNotPropagated {
        secret: String,
        user: String,
        key: String,
        waited: Duration,
    },

    #[error(
        "access key {key} of secret {secret} authenticates as {actual}, not as IAM user {user}: the secret's value does not match its user; fix UserName or the stored key"
    )]
    KeyIdentityMismatch {
        secret: String,
        user: String,
        key: String,
        actual: String,
    },

    #[error(
        "{key} of IAM user {user} (secret {secret}) is rejected by AWS ({code}): the key stored in the secret no longer works; put a working key in the secret or delete AccessKeyId and SecretAccessKey from it so the next rotation adopts the user afresh"
    )]
    KeyRejected {
        secret: String,
        user: String,
        key: String,
        code: String,
    },

    #[error(
        "the function could not assume role {role} for secret {secret} ({code}: {message}): the role's trust policy must allow sts:AssumeRole by the function's execution role (with an sts:ExternalId condition if the secret sets ExternalId), and the function's own policy must allow assuming it (template parameter AssumableRoleArns)"
    )]
    AssumeRoleFailed {
        secret: String,
        role: String,
        code: String,
        message: String,
    },

    #[error(
        "the sweep could not read the secrets it retires keys for: {operation} failed: {code}: {message}. The function's role needs secretsmanager:ListSecrets and secretsmanager:BatchGetSecretValue (the template grants both); nothing was changed"
    )]
    SweepFailed {
        operation: &'static str,
        code: String,
        message: String,
    },

    #[error("{operation} failed for secret {secret}{user}: {code}: {message}", user = for_user(.user))]
    Aws {
        secret: String,
        user: Option<String>,
        operation: &'static str,
        code: String,
        message: String,
    },
}

fn configured_function(arn: &str) -> String {
    if arn.is_empty() {
        "no rotation function".to_string()
    } else {
        format!("function {arn}")
    }
}

fn describe_keys(keys: &[String]) -> String {
    match keys {
        [key] => format!("key {key} is"),
        _ => format!("keys {} are", keys.join(", ")),
    }
}

fn describe_targets(labels: &[String]) -> String {
    match labels {
        [label] => format!("target {label}"),
        _ => format!("targets {}", labels.join(", ")),
    }
}

fn for_user(user: &Option<String>) -> String {
    user.as_ref()
        .map(|user| format!(" (IAM user {user})"))
        .unwrap_or_default()
}

impl RotationError {
    /// A secret value (or the secret itself) the function cannot work with.
    pub(crate) fn invalid_value(secret: &str, version: &str, reason: impl Into<String>) -> Self {
        Self::InvalidSecretValue {
            secret: secret.to_string(),
            version: version.to_string(),
            reason: reason.into(),
        }
    }

    /// The user is not bound to the secret (SPEC 4): nothing was changed.
    pub(crate) fn not_bound(secret: &str, user: &str, why: NotBound) -> Self {
        Self::UserNotBound {
            secret: secret.to_string(),
            user: user.to_string(),
            detail: why.detail,
            fix: why.fix,
        }
    }

    /// The secret a step or the sweep looked up (`found`: `secrets::find`'s
    /// answer for `secret_id`), which must exist.
    pub(crate) fn secret_found(
        found: Result<Option<Secret>, AwsError>,
        secret_id: &str,
    ) -> Result<Secret, Self> {
        found
            .map_err(|error| Self::aws(error, secret_id, None))?
            .ok_or_else(|| Self::SecretNotFound {
                secret: secret_id.to_string(),
            })
    }

    /// The IAM user a secret names does not exist (or may not be read).
    pub(crate) fn user_not_found(secret: &str, user: &str) -> Self {
        Self::UserNotFound {
            secret: secret.to_string(),
            user: user.to_string(),
        }
    }

    /// `AssumeRole` into the secret's `RoleArn` failed (`error`, whose context
    /// is the role).
    pub(crate) fn assume_role_failed(secret: &str, error: AwsError) -> Self {
        Self::AssumeRoleFailed {
            secret: secret.to_string(),
            role: error.context,
            code: error.code,
            message: error.message,
        }
    }

    /// The secret the failure is about, as the error names it (its ARN once the
    /// function has looked it up, else the id it was invoked with).
    pub fn secret(&self) -> Option<&str> {
        match self {
            Self::InvalidEvent { .. } | Self::SweepFailed { .. } => None,
            Self::SecretNotFound { secret }
            | Self::RotationNotEnabled { secret }
            | Self::RotationFunctionMismatch { secret, .. }
            | Self::DeadlineReached { secret, .. }
            | Self::VersionNotFound { secret, .. }
            | Self::VersionNotPending { secret, .. }
            | Self::InvalidSecretValue { secret, .. }
            | Self::PendingValueMissing { secret, .. }
            | Self::UserNotFound { secret, .. }
            | Self::UserNotBound { secret, .. }
            | Self::UnmanagedKeyBlocks { secret, .. }
            | Self::Undelivered { secret, .. }
            | Self::PendingKeyUnusable { secret, .. }
            | Self::KeyNotPropagated { secret, .. }
            | Self::KeyIdentityMismatch { secret, .. }
            | Self::KeyRejected { secret, .. }
            | Self::AssumeRoleFailed { secret, .. }
            | Self::Aws { secret, .. } => Some(secret),
        }
    }

    /// The IAM user the failure is about, when the error knows it.
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::UserNotFound { user, .. }
            | Self::UserNotBound { user, .. }
            | Self::UnmanagedKeyBlocks { user, .. }
            | Self::Undelivered { user, .. }
            | Self::PendingKeyUnusable { user, .. }
            | Self::KeyNotPropagated { user, .. }
            | Self::KeyIdentityMismatch { user, .. }
            | Self::KeyRejected { user, .. } => Some(user),
            Self::Aws { user, .. } => user.as_deref(),
            _ => None,
        }
    }

    /// A failed AWS call of a rotation, naming its secret and user.
    pub fn aws(error: AwsError, secret: &str, user: Option<&str>) -> Self {
        Self::Aws {
            secret: secret.to_string(),
            user: user.map(str::to_string),
            operation: error.operation,
            code: error.code,
            message: error.message,
        }
    }

    /// The `errorType` reported to Lambda: a stable name per kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidEvent { .. } => "InvalidEvent",
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::RotationNotEnabled { .. } => "RotationNotEnabled",
            Self::RotationFunctionMismatch { .. } => "RotationFunctionMismatch",
            Self::DeadlineReached { .. } => "DeadlineReached",
            Self::VersionNotFound { .. } => "VersionNotFound",
            Self::VersionNotPending { .. } => "VersionNotPending",
            Self::InvalidSecretValue { .. } => "InvalidSecretValue",
            Self::PendingValueMissing { .. } => "PendingValueMissing",
            Self::UserNotFound { .. } => "UserNotFound",
            Self::UserNotBound { .. } => "UserNotBound",
            Self::UnmanagedKeyBlocks { .. } => "UnmanagedKeyBlocks",
            Self::Undelivered { .. } => "Undelivered",
            Self::PendingKeyUnusable { .. } => "PendingKeyUnusable",
            Self::KeyNotPropagated { .. } => "KeyNotPropagated",
            Self::KeyIdentityMismatch { .. } => "KeyIdentityMismatch",
            Self::KeyRejected { .. } => "KeyRejected",
            Self::AssumeRoleFailed { .. } => "AssumeRoleFailed",
            Self::SweepFailed { .. } => "SweepFailed",
            Self::Aws { code, .. } if is_access_denied(code) => "AccessDenied",
            Self::Aws { code, .. } if is_throttling(Some(code)) => "Throttled",
            Self::Aws { .. } => "AwsError",
        }
    }
}

impl From<RotationError> for Diagnostic {
    fn from(error: RotationError) -> Self {
        Diagnostic {
            error_type: error.kind().to_string(),
            error_message: error.to_string(),
        }
    }
}

/// A failed call of the AWS layer, naming the secret and user it acted for
/// (or what it was about, when it named none).
impl From<AwsError> for RotationError {
    fn from(error: AwsError) -> Self {
        let (secret, user) = match error.about.map(|about| *about) {
            Some(about) => (about.secret, about.user),
            None => (error.context, None),
        };
        Self::Aws {
            secret,
            user,
            operation: error.operation,
            code: error.code,
            message: error.message,
        }
    }
}

/// A version's value that could not be read, or is not valid.
impl From<ValueError> for RotationError {
    fn from(error: ValueError) -> Self {
        error.worded(|invalid| {
            Self::invalid_value(&invalid.secret, &invalid.version, invalid.reason)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_carry_the_kind_and_a_message_that_says_what_to_do() {
        let error = RotationError::UserNotBound {
            secret: "arn:aws:secretsmanager:us-east-1:1:secret:app-AbCdEf".into(),
            user: "app".into(),
            detail: "it has no tag iam-key-rotation:secret".into(),
            fix: "an administrator binds it: `aws iam tag-user --user-name app --tags Key=iam-key-rotation:secret,Value=arn`".into(),
        };
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "UserNotBound");
        assert!(
            diagnostic
                .error_message
                .contains("aws iam tag-user --user-name app")
        );
        assert!(
            diagnostic
                .error_message
                .contains("Key=iam-key-rotation:secret")
        );
    }

    #[test]
    fn a_binding_refused_is_user_not_bound_with_the_re_tag_command() {
        let arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf";
        let user = crate::model::user::IamUser {
            name: "app".into(),
            path: "/".into(),
            tags: [(
                crate::model::binding::BINDING_TAG.to_string(),
                "app".to_string(),
            )]
            .into_iter()
            .collect(),
        };
        let why = user.check_binding(arn).unwrap_err();
        let by_name = RotationError::not_bound(arn, &user.name, why);
        assert_eq!(by_name.kind(), "UserNotBound");
        let message = by_name.to_string();
        assert!(message.contains("holds a name (app)"), "{message}");
        assert!(
            message.contains(&format!("Key=iam-key-rotation:secret,Value={arn}")),
            "{message}"
        );
    }

    #[test]
    fn aws_errors_are_classified_by_code() {
        let aws = |code: &str| RotationError::Aws {
            secret: "s".into(),
            user: Some("u".into()),
            operation: "CreateAccessKey",
            code: code.into(),
            message: "m".into(),
        };
        assert_eq!(aws("AccessDenied").kind(), "AccessDenied");
        assert_eq!(aws("ThrottlingException").kind(), "Throttled");
        assert_eq!(aws("ServiceFailure").kind(), "AwsError");
        assert_eq!(
            aws("ServiceFailure").to_string(),
            "CreateAccessKey failed for secret s (IAM user u): ServiceFailure: m"
        );
    }

    /// docs/troubleshooting.md is where an operator looks an `errorType` up:
    /// every kind `kind()` can return must have its row there.
    #[test]
    fn every_error_type_has_a_row_in_the_troubleshooting_table() {
        let source = include_str!("error.rs");
        let body = source
            .split_once("pub fn kind(&self) -> &'static str {")
            .and_then(|(_, rest)| rest.split_once("\n    }\n"))
            .map(|(body, _)| body)
            .expect("kind() in error.rs");
        let kinds: Vec<&str> = body
            .lines()
            .filter_map(|line| line.split_once("=> \"")?.1.split('"').next())
            .collect();
        assert!(kinds.len() >= 20, "read {} kinds from kind()", kinds.len());
        let rows: Vec<&str> = include_str!("../docs/troubleshooting.md")
            .lines()
            .filter_map(|line| line.strip_prefix("| ")?.split(" |").next())
            .collect();
        for kind in kinds {
            let quoted = format!("`{kind}`");
            assert!(
                rows.iter().any(|cell| cell.contains(&quoted)),
                "docs/troubleshooting.md has no row for errorType {kind}"
            );
        }
    }
}
