//! Proving that an access key authenticates, and as whom.
//!
//! `sts:GetCallerIdentity` needs no permission, so a successful call signed with
//! the key shows the key is valid; the ARN it returns shows whose it is.

use aws_sdk_sts::Client;
use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::error::ProvideErrorMetadata;

use crate::error::{RotationError, aws_call_failed};
use crate::sensitive::Sensitive;

/// What AWS said of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key works and belongs to this ARN.
    Authenticated { arn: String },
    /// AWS does not (yet) accept the key: what it answers while a new key
    /// propagates, and for an Inactive or deleted key.
    Rejected { code: String },
}

/// The error codes STS answers for a key it does not accept.
fn is_rejection(code: &str) -> bool {
    matches!(
        code,
        "InvalidClientTokenId" | "SignatureDoesNotMatch" | "UnrecognizedClientException"
    )
}

/// Calls `GetCallerIdentity` signed with the key. The client is derived from the
/// function's own STS client so it keeps the region, endpoint and retry settings,
/// with only the credentials replaced.
pub async fn authenticate(
    sts: &Client,
    key_id: &str,
    secret_access_key: &Sensitive,
    secret_arn: &str,
    user: &str,
) -> Result<Verdict, RotationError> {
    let credentials = Credentials::new(
        key_id,
        secret_access_key.expose(),
        None,
        None,
        "iam-key-rotation-key-under-test",
    );
    let config = sts
        .config()
        .to_builder()
        .credentials_provider(credentials)
        .build();
    let result = Client::from_conf(config).get_caller_identity().send().await;
    match result {
        Ok(output) => Ok(Verdict::Authenticated {
            arn: output.arn().unwrap_or_default().to_string(),
        }),
        Err(error) => match error.code() {
            Some(code) if is_rejection(code) => Ok(Verdict::Rejected {
                code: code.to_string(),
            }),
            _ => Err(aws_call_failed(
                "GetCallerIdentity",
                secret_arn,
                Some(user),
                &error,
            )),
        },
    }
}
