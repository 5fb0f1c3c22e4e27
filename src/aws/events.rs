//! Lifecycle events on EventBridge, so that consumers can reload or restart when
//! a key changes instead of polling the secret.
//!
//! Events are a courtesy to consumers, never a condition of rotation: a failure to
//! put one is logged and the step goes on. They are sent at least once: a step
//! retried after a crash may send its event again, so consumers must treat them
//! as "something changed, re-read the secret". The detail holds ids and names
//! only, never a secret.

use std::time::Duration;

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};

/// The `source` of every event the function puts.
pub const SOURCE: &str = "iam-key-rotation";
/// Attempts for one `PutEvents`: a lost event costs a consumer a late reload, so
/// it is not worth holding a step for.
pub const PUT_ATTEMPTS: u32 = 3;
/// The longest a `PutEvents`, retries included, may hold up a step.
pub const PUT_TIMEOUT: Duration = Duration::from_secs(3);

/// What every event names: the secret, the user and the rotation it belongs to.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub secret_arn: String,
    pub secret_name: String,
    /// `None` when the step failed before it read the secret's user.
    pub user: Option<String>,
    /// The account of the user's keys (the `RoleArn`'s, else the secret's).
    pub account: Option<String>,
    /// The rotation's version: the new `AWSCURRENT` version, or the token of a
    /// failed step.
    pub version_id: String,
}

/// How a key was retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    Deactivated,
    Deleted,
}

impl Retired {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deactivated => "deactivated",
            Self::Deleted => "deleted",
        }
    }
}

/// The lifecycle events.
#[derive(Debug, Clone)]
pub enum Lifecycle<'a> {
    /// finishSecret moved `AWSCURRENT` to a new key.
    Rotated {
        new_key: &'a str,
        old_key: Option<&'a str>,
    },
    /// A key was deactivated or deleted, by finishSecret or the sweep.
    Retired { key: &'a str, how: Retired },
    /// A rotation step failed (its `errorType` says why).
    StepFailed {
        step: &'static str,
        error_type: &'static str,
    },
    /// `keyrot rollback` moved `AWSCURRENT` back to the previous key.
    RolledBack {
        restored: &'a str,
        rolled_back: &'a str,
    },
}

impl Lifecycle<'_> {
    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::Rotated { .. } => "Access Key Rotated",
            Self::Retired { .. } => "Access Key Retired",
            Self::StepFailed { .. } => "Rotation Step Failed",
            Self::RolledBack { .. } => "Access Key Rolled Back",
        }
    }

    /// The event's `detail`: the subject's fields and the event's own.
    pub fn detail(&self, subject: &Subject) -> Value {
        let mut detail = serde_json::to_value(subject).unwrap_or_else(|_| json!({}));
        let own = match self {
            Self::Rotated { new_key, old_key } => {
                json!({"newAccessKeyId": new_key, "oldAccessKeyId": old_key})
            }
            Self::Retired { key, how } => json!({"accessKeyId": key, "action": how.as_str()}),
            Self::StepFailed { step, error_type } => json!({"step": step, "errorType": error_type}),
            Self::RolledBack {
                restored,
                rolled_back,
            } => json!({"restoredAccessKeyId": restored, "rolledBackAccessKeyId": rolled_back}),
        };
        if let (Some(detail), Value::Object(own)) = (detail.as_object_mut(), own) {
            detail.extend(own);
        }
        detail
    }
}

/// Puts the events (one `PutEvents` for all of them, at most ten) on `bus`.
/// Never fails: a failure is a WARN in the log.
pub async fn publish(
    client: &aws_sdk_eventbridge::Client,
    bus: &str,
    subject: &Subject,
    events: &[Lifecycle<'_>],
) {
    if events.is_empty() {
        return;
    }
    let resources = subject
        .secret_arn
        .starts_with("arn:")
        .then(|| vec![subject.secret_arn.clone()]);
    let entries = events
        .iter()
        .map(|event| {
            PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(SOURCE)
                .detail_type(event.detail_type())
                .detail(event.detail(subject).to_string())
                .set_resources(resources.clone())
                .build()
        })
        .collect();
    let detail_types: Vec<&str> = events.iter().map(Lifecycle::detail_type).collect();
    let put = client.put_events().set_entries(Some(entries)).send();
    let failure = match tokio::time::timeout(PUT_TIMEOUT, put).await {
        Ok(Ok(output)) if output.failed_entry_count() == 0 => None,
        Ok(Ok(output)) => Some(
            output
                .entries()
                .iter()
                .find_map(|entry| entry.error_code().map(str::to_string))
                .unwrap_or_else(|| "FailedEntry".to_string()),
        ),
        Ok(Err(error)) => Some(error.code().unwrap_or("NetworkError").to_string()),
        Err(_) => Some("Timeout".to_string()),
    };
    match failure {
        None => info!(?detail_types, bus, "put the lifecycle events"),
        Some(code) => warn!(
            ?detail_types,
            bus,
            code,
            secret = %subject.secret_arn,
            "could not put the lifecycle events (consumers relying on them will not hear of this change): the function's role needs events:PutEvents on the bus EVENT_BUS_NAME names"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-keys/app-AbCdEf"
                .into(),
            secret_name: "iam-keys/app".into(),
            user: Some("app".into()),
            account: Some("123456789012".into()),
            version_id: "v2".into(),
        }
    }

    #[test]
    fn details_carry_the_documented_fields_and_nothing_else() {
        let rotated = Lifecycle::Rotated {
            new_key: "AKIANEW",
            old_key: None,
        };
        let detail = rotated.detail(&subject());
        let mut fields: Vec<_> = detail.as_object().unwrap().keys().cloned().collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "account",
                "newAccessKeyId",
                "oldAccessKeyId",
                "secretArn",
                "secretName",
                "user",
                "versionId"
            ]
        );
        assert_eq!(detail["oldAccessKeyId"], Value::Null);
        let retired = Lifecycle::Retired {
            key: "AKIAOLD",
            how: Retired::Deleted,
        }
        .detail(&subject());
        assert_eq!(retired["action"], "deleted");
        assert_eq!(retired["accessKeyId"], "AKIAOLD");
        let failed = Lifecycle::StepFailed {
            step: "testSecret",
            error_type: "KeyNotPropagated",
        };
        assert_eq!(failed.detail_type(), "Rotation Step Failed");
        assert_eq!(failed.detail(&subject())["errorType"], "KeyNotPropagated");
    }
}
