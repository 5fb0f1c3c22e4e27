//! Why a delivery run could not do its job at all, worded for the delivery
//! function's log (its `errorType` and message). A target that fails is not
//! one of these: it is a `Failed` entry of the response, an event and a metric,
//! and the run goes on.

use crate::aws::error::{AwsError, is_access_denied, is_throttling};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    #[error(
        "invalid delivery event: {reason}. Expected {{\"Action\": \"deliver\"}} (every secret under SECRET_NAME_PREFIX with delivery targets) or {{\"Action\": \"deliver\", \"SecretId\": \"<secret ARN>\"}}"
    )]
    InvalidEvent { reason: String },

    #[error(
        "secret {secret} was not found: check the SecretId and that the delivery function's role may describe it (secrets under SecretNamePrefix)"
    )]
    SecretNotFound { secret: String },

    #[error(
        "secret {secret} is not under SECRET_NAME_PREFIX {prefix:?}: the delivery function delivers only the secrets its stack rotates; nothing was changed"
    )]
    OutsidePrefix { secret: String, prefix: String },

    #[error(
        "the delivery run ran out of time before the function's deadline ({detail}): nothing is lost, the next run (every DeliverySchedule) takes it up; raise the delivery function's timeout if it persists"
    )]
    DeadlineReached { detail: &'static str },

    #[error("the delivery run could not read the secrets: {0}")]
    Aws(AwsError),
}

impl From<AwsError> for DeliverError {
    fn from(error: AwsError) -> Self {
        Self::Aws(error)
    }
}

impl DeliverError {
    /// The `errorType` reported to Lambda.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidEvent { .. } => "InvalidEvent",
            Self::SecretNotFound { .. } => "SecretNotFound",
            Self::OutsidePrefix { .. } => "SecretOutsidePrefix",
            Self::DeadlineReached { .. } => "DeadlineReached",
            Self::Aws(error) if is_access_denied(&error.code) => "AccessDenied",
            Self::Aws(error) if is_throttling(Some(&error.code)) => "Throttled",
            Self::Aws(_) => "AwsError",
        }
    }
}

impl From<DeliverError> for lambda_runtime::Diagnostic {
    fn from(error: DeliverError) -> Self {
        Self {
            error_type: error.kind().to_string(),
            error_message: error.to_string(),
        }
    }
}
