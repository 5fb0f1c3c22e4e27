//! What a failed AWS call means to the person who reads it, in a line or two:
//! what happened and what to do. Every call of the AWS layer fails with the
//! neutral [`AwsError`]; each job turns it into its own error with what it
//! knows (the rotation's names the secret and user for the function's log,
//! keyrot's speaks to the operator at a terminal).
//!
//! AWS's own code and message are kept for service errors (they never carry
//! secret material) with the remedy added; failures before any answer (no
//! region, no credentials, an endpoint that cannot be reached) are recognised
//! in the SDK's error chain and said in words, the way the AWS CLI says them.
//! The whole chain is logged at DEBUG (`keyrot -v`, `RUST_LOG=debug`). The
//! lists of error codes that mean throttling, a denial, or credentials AWS
//! does not accept live here, once.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

/// A failed AWS call, in words: the operation, what it was about, AWS's code,
/// and a message that says what to do. Never carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed{}: {code}: {message}", for_context(context, about))]
pub struct AwsError {
    pub operation: &'static str,
    /// What the call was about (a user, a secret, a role, a key id), or empty.
    pub context: String,
    /// The secret (and IAM user) the call acted for, when the caller said
    /// (boxed: most errors name none, and every `Result` carries the size).
    pub about: Option<Box<About>>,
    pub code: String,
    pub message: String,
}

/// The secret a call acted for, and the IAM user, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    pub secret: String,
    pub user: Option<String>,
}

fn for_context(context: &str, about: &Option<Box<About>>) -> String {
    match about.as_deref() {
        Some(About { secret, user }) => format!(
            " for secret {secret}{}",
            user.as_ref()
                .map(|user| format!(" (IAM user {user})"))
                .unwrap_or_default()
        ),
        None if context.is_empty() => String::new(),
        None => format!(" for {context}"),
    }
}

impl AwsError {
    pub fn from_sdk<E, R>(operation: &'static str, context: &str, error: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let (code, message) = code_and_message(operation, error, Advice::Give);
        Self::new(operation, context, &code, message)
    }

    /// As [`Self::from_sdk`], but with AWS's own message for an answer from
    /// AWS, without the advice: for a call each caller advises on in its own
    /// words (`AssumeRole`: the rotation for its log, keyrot for an operator
    /// with their own credentials, a report for the member role to deploy).
    pub fn from_sdk_unadvised<E, R>(
        operation: &'static str,
        context: &str,
        error: &SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let (code, message) = code_and_message(operation, error, Advice::Leave);
        Self::new(operation, context, &code, message)
    }

    /// A failure the AWS layer found in an answer (one without the part it
    /// needed, say), rather than one AWS reported.
    pub fn new(operation: &'static str, context: &str, code: &str, message: String) -> Self {
        Self {
            operation,
            context: context.to_string(),
            about: None,
            code: code.to_string(),
            message,
        }
    }

    /// The same error, naming the secret (and user) the call acted for.
    pub fn about(self, secret: &str, user: Option<&str>) -> Self {
        Self {
            about: Some(Box::new(About {
                secret: secret.to_string(),
                user: user.map(str::to_string),
            })),
            ..self
        }
    }
}

/// The codes AWS answers for a call the caller may not make.
const ACCESS_DENIED: [&str; 3] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
];
/// The codes AWS answers for a call refused for its rate, before doing anything.
const THROTTLING: [&str; 4] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];
/// The codes AWS answers for credentials it does not accept: a key that is
/// wrong, Inactive, deleted, or (for a few seconds) too new.
const CREDENTIALS_REJECTED: [&str; 4] = [
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
];
/// The codes AWS answers for session credentials past their expiry.
const EXPIRED: [&str; 4] = [
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "TokenRefreshRequired",
];

pub fn is_access_denied(code: &str) -> bool {
    ACCESS_DENIED.contains(&code)
}

/// Whether AWS refused the call for its rate, before doing anything.
pub fn is_throttling(code: Option<&str>) -> bool {
    code.is_some_and(|code| THROTTLING.contains(&code))
}

/// Whether AWS does not accept the credentials the call was signed with.
pub fn is_credentials_rejected(code: &str) -> bool {
    CREDENTIALS_REJECTED.contains(&code)
}

/// Whether an answer from AWS gets what to do added to its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Advice {
    Give,
    Leave,
}

/// AWS's error code and message for a failed call of `operation`, with what
/// to do about it (unless `advice` says to leave it), cut at 500 characters.
/// Neither ever carries secret material: AWS's messages do not, and failures
/// before an answer are said in our own words.
fn code_and_message<E, R>(
    operation: &'static str,
    error: &SdkError<E, R>,
    advice: Advice,
) -> (String, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let chain = display_chain(error);
    tracing::debug!(operation, error = %chain, "AWS call failed (the SDK's error chain)");
    let (code, message) = match error {
        SdkError::ServiceError(_) => {
            let code = error.code().unwrap_or("UnknownError");
            let message = error.message().unwrap_or("no message");
            match advice {
                Advice::Give => (code.to_string(), service_failure(operation, code, message)),
                Advice::Leave => (code.to_string(), message.to_string()),
            }
        }
        SdkError::TimeoutError(_) => (
            "Timeout".to_string(),
            format!(
                "AWS did not answer {operation} in time: check the network (or a proxy), then run again"
            ),
        ),
        _ => local_failure(operation, &chain),
    };
    (code, message.chars().take(500).collect())
}

/// An answer from AWS: its message, and what to do about it.
fn service_failure(operation: &str, code: &str, message: &str) -> String {
    let message = message.trim_end_matches('.');
    match code {
        code if is_access_denied(code) => {
            let (action, grant) = permission(operation);
            format!(
                "{message}. The caller needs {action} on that resource: {grant}; the functions run with their stack roles, keyrot with your own credentials"
            )
        }
        code if EXPIRED.contains(&code) => {
            format!(
                "{message}. The session credentials have expired: get new ones (aws sso login --profile <name>, or a new AWS_SESSION_TOKEN)"
            )
        }
        code if is_credentials_rejected(code) => format!(
            "{message}. AWS does not accept these credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the profile (aws sts get-caller-identity shows whose they are)"
        ),
        code if is_throttling(Some(code)) => format!(
            "{message}. AWS kept throttling {operation} through every retry: run again in a minute; if it lasts, other jobs in the account share the limit"
        ),
        _ => message.to_string(),
    }
}

/// Which template statement grants each call, by service: the operations, the
/// action's prefix, and where the grant is. The statement names (`Sid`s) and
/// parameters named here are checked against template.yaml by a test.
const GRANTS: &[(&[&str], &str, &str)] = &[
    (
        &[
            "GetUser",
            "ListAccessKeys",
            "CreateAccessKey",
            "UpdateAccessKey",
            "DeleteAccessKey",
            "GetAccessKeyLastUsed",
        ],
        "iam",
        "the template grants it to the rotation function for users under ManagedUserPath (statement RotateKeysOfManagedUsers), and read-only to the audit (ReadEveryUsersKeys)",
    ),
    (
        &["TagUser", "UntagUser"],
        "iam",
        "the template grants it for users under ManagedUserPath, and only for key descriptions and the creation marker (statement TagManagedUsersWithKeyRecordsOnly)",
    ),
    (
        &[
            "GetAccountAuthorizationDetails",
            "GenerateCredentialReport",
            "GetCredentialReport",
        ],
        "iam",
        "the template grants it to the audit (statement ReadEveryUsersKeys), and deploy/member-account.yaml to the member audit role",
    ),
    (
        &["ListAccounts"],
        "organizations",
        "call from the organization's management account or a delegated administrator; the template grants it to the audit with AuditScope organization",
    ),
    (
        &[
            "DescribeSecret",
            "GetSecretValue",
            "PutSecretValue",
            "UpdateSecretVersionStage",
            "ListSecretVersionIds",
        ],
        "secretsmanager",
        "the template grants it for secrets named SecretNamePrefix* (statements ReadManagedSecrets and ReadRotatedSecrets; writes only while the function is the secret's rotation function: RotateOnlySecretsThisFunctionRotates), and a customer managed key needs KmsKeyArn; a delivery copy needs the secret under DeliverySecretPrefix (statement WriteSecretCopies) or the account's delivery role",
    ),
    (
        &["ListSecrets", "BatchGetSecretValue"],
        "secretsmanager",
        "the template grants it on * (statements SweepListsSecrets and ListSecrets); the values still need GetSecretValue on each secret",
    ),
    (
        &["CreateSecret", "RotateSecret"],
        "secretsmanager",
        "keyrot enroll needs it on the secret it creates",
    ),
    (
        &["TagResource", "UntagResource"],
        "secretsmanager",
        "the template grants the delivery function its two records only (statement RecordDeliveries); keyrot enroll and keyrot deliver need it on the secret, with your own credentials",
    ),
    (
        &["PutParameter", "GetParameter"],
        "ssm",
        "the template grants it to the delivery function under DeliveryParameterPath in this account (statement WriteDeliveredParameters), and deploy/member-account.yaml to the delivery role in another",
    ),
    (
        &["GetFunctionConfiguration", "GetPolicy"],
        "lambda",
        "keyrot enroll reads the rotation function's configuration and resource policy before it writes anything",
    ),
    (
        &["FilterLogEvents"],
        "logs",
        "keyrot status reads the rotation function's log group for a rotation under way (read-only)",
    ),
    (
        &["PutEvents"],
        "events",
        "the template grants it on the EventBusName bus only (statement PutLifecycleEvents)",
    ),
    (
        &["AssumeRole"],
        "sts",
        "the template grants it on the roles in AssumableRoleArns (statement AssumeCrossAccountRoles), and the role's trust policy must name the caller",
    ),
];

/// The IAM action a call needs, and where the template grants it.
fn permission(operation: &str) -> (String, &'static str) {
    let (prefix, grant) = GRANTS
        .iter()
        .find(|(operations, _, _)| operations.contains(&operation))
        .map_or(
            ("aws", "grant it to the role or user making the call"),
            |(_, prefix, grant)| (*prefix, *grant),
        );
    (format!("{prefix}:{operation}"), grant)
}

/// An error and each of its sources, by their `Display` only (T10). The SDK's
/// `DisplayErrorContext` ends with the error's `Debug` form, which for a
/// response it could not read holds the raw HTTP body: a new
/// `SecretAccessKey`, a secret's value. A `Display` never does.
pub(crate) fn display_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut words = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !words.contains(&said) {
            words.push_str(": ");
            words.push_str(&said);
        }
        source = cause.source();
    }
    words
}

/// A failure before AWS answered: the SDK's chain, said in words.
fn local_failure(operation: &str, chain: &str) -> (String, String) {
    // Older chains ended with the error's Debug form in parentheses: the
    // words are before it.
    let words = chain.split(" (DispatchFailure(").next().unwrap_or(chain);
    let lower = words.to_lowercase();
    let (code, message) = if lower.contains("missing region") || lower.contains("no region") {
        (
            "NoRegion",
            "no AWS region is set: pass --region, set AWS_REGION, or give the profile a region (aws configure set region <region>)".to_string(),
        )
    } else if lower.contains("credentials") && lower.contains("expired") {
        (
            "ExpiredCredentials",
            "the credentials have expired: run aws sso login --profile <name> (or get a new session token), then run again".to_string(),
        )
    } else if lower.contains("credentials") {
        (
            "NoCredentials",
            "no AWS credentials were found: run aws configure, or aws sso login --profile <name> and set AWS_PROFILE=<name> (the SDK looked in the environment, the profile files and the instance metadata)".to_string(),
        )
    } else if lower.contains("connect") || lower.contains("dns error") || lower.contains("io error")
    {
        ("EndpointUnreachable", unreachable(operation, words))
    } else {
        (
            "NetworkError",
            format!("{operation} could not be sent: {words}"),
        )
    };
    (code.to_string(), message)
}

/// Which endpoint could not be reached, and whether the environment chose it.
fn unreachable(operation: &str, words: &str) -> String {
    let cause = words.rsplit(": ").next().unwrap_or(words);
    let service = service_of(operation);
    let variables = [
        format!(
            "AWS_ENDPOINT_URL_{}",
            service.to_uppercase().replace(' ', "_")
        ),
        "AWS_ENDPOINT_URL".to_string(),
    ];
    match variables
        .iter()
        .find_map(|name| Some((name, std::env::var(name).ok()?)))
    {
        Some((name, url)) => format!(
            "could not connect to {url} for {operation} ({cause}): {name} points there; start that endpoint, or unset {name} to reach AWS"
        ),
        None => format!(
            "could not connect to AWS {service} for {operation} ({cause}): check the network, a proxy (HTTPS_PROXY) and the region"
        ),
    }
}

/// The service an operation belongs to, as the SDK's endpoint variables name it.
fn service_of(operation: &str) -> &'static str {
    match operation {
        "AssumeRole" | "GetCallerIdentity" => "sts",
        "PutEvents" => "eventbridge",
        "PutParameter" | "GetParameter" => "ssm",
        "GetFunctionConfiguration" | "GetPolicy" => "lambda",
        "FilterLogEvents" => "cloudwatch logs",
        "ListAccounts" => "organizations",
        op if op.contains("Secret") => "secrets manager",
        _ => "iam",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_failures_say_what_to_do_without_the_sdks_debug_dump() {
        let (code, message) = local_failure(
            "ListSecrets",
            "dispatch failure: other: Invalid Configuration: Missing Region (DispatchFailure(DispatchFailure { source: ConnectorError { .. } }))",
        );
        assert_eq!(code, "NoRegion");
        assert!(message.contains("--region") && message.contains("AWS_REGION"));
        let (code, message) = local_failure(
            "ListSecrets",
            "dispatch failure: other: an error occurred while loading credentials: failed to load IMDS session token (DispatchFailure(...))",
        );
        assert_eq!(code, "NoCredentials");
        assert!(message.contains("aws configure") && message.contains("aws sso login"));
        let (code, message) = local_failure(
            "ListUsers",
            "dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111) (DispatchFailure(...))",
        );
        assert_eq!(code, "EndpointUnreachable");
        assert!(
            message.contains("Connection refused (os error 111)"),
            "{message}"
        );
        assert!(!message.contains("DispatchFailure"), "{message}");
    }

    /// The advice names template statements and parameters: each must exist
    /// there, or an operator is sent looking for a statement that was renamed.
    #[test]
    fn every_statement_and_parameter_an_advice_names_is_in_the_template() {
        let template = include_str!("../../template.yaml");
        let mut named = 0;
        for (_, _, grant) in GRANTS {
            for word in grant.split(|c: char| !c.is_ascii_alphanumeric()) {
                let camel = word.len() > 3
                    && word.starts_with(|c: char| c.is_ascii_uppercase())
                    && word.chars().skip(1).any(|c| c.is_ascii_uppercase());
                if !camel {
                    continue;
                }
                named += 1;
                let as_sid = format!("Sid: {word}\n");
                let as_parameter = format!("\n  {word}:\n");
                let as_action = format!(":{word}\n");
                assert!(
                    [as_sid, as_parameter, as_action]
                        .iter()
                        .any(|form| template.contains(form.as_str())),
                    "template.yaml has no statement, parameter or action {word}, which the advice names: {grant}"
                );
            }
        }
        assert!(named >= 15, "read {named} names from the advice");
    }

    #[test]
    fn access_denied_names_the_action_and_the_statement_that_grants_it() {
        let message = service_failure(
            "GetAccountAuthorizationDetails",
            "AccessDenied",
            "User: arn:aws:iam::1:user/me is not authorized to perform: iam:GetAccountAuthorizationDetails",
        );
        assert!(
            message.contains("iam:GetAccountAuthorizationDetails on that resource"),
            "{message}"
        );
        assert!(message.contains("ReadEveryUsersKeys"), "{message}");
        let throttled = service_failure("ListSecrets", "ThrottlingException", "Rate exceeded");
        assert!(throttled.contains("run again in a minute"), "{throttled}");
    }
}
