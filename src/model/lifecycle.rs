//! The lifecycle events (SPEC 10, 13, 14), as values that can be written (the
//! `detail-type` and `detail` the function puts on EventBridge) and read back
//! (by a consumer of the events, such as the delivery job). The detail holds
//! ids and names only, never a secret. Putting them is `aws::events`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;

/// The `source` of every event the function puts.
pub const SOURCE: &str = "iam-key-rotation";

/// What every event names: the secret, the user and the rotation it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl Subject {
    /// The events of `version` of the secret, whose value names the user.
    pub fn new(secret: &Secret, value: &SecretValue, version: &str) -> Self {
        Self {
            secret_arn: secret.arn.clone(),
            secret_name: secret.name.clone(),
            user: Some(value.user_name().to_string()),
            account: secret.user_account(value).map(str::to_string),
            version_id: version.to_string(),
        }
    }

    /// What a failed step knows: the secret as the error names it (its ARN,
    /// or the id the step was invoked with), and perhaps the user.
    pub fn of_failure(secret_id: &str, user: Option<&str>, token: &str) -> Self {
        Self {
            secret_arn: secret_id.to_string(),
            secret_name: crate::arn::name_of(secret_id).to_string(),
            user: user.map(str::to_string),
            account: crate::arn::account_of(secret_id).map(str::to_string),
            version_id: token.to_string(),
        }
    }
}

/// How a key was retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// The lifecycle events: each one's `detail-type`, and the fields of its
/// `detail` besides the subject's, as they are written and read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "detail-type", content = "detail")]
pub enum Lifecycle {
    /// finishSecret moved `AWSCURRENT` to a new key.
    #[serde(rename = "Access Key Rotated")]
    Rotated {
        #[serde(rename = "newAccessKeyId")]
        new_key: String,
        #[serde(rename = "oldAccessKeyId")]
        old_key: Option<String>,
    },
    /// A key was deactivated or deleted, by finishSecret or the sweep.
    #[serde(rename = "Access Key Retired")]
    Retired {
        #[serde(rename = "accessKeyId")]
        key: String,
        #[serde(rename = "action")]
        how: Retired,
    },
    /// A rotation step failed (its `errorType` says why).
    #[serde(rename = "Rotation Step Failed", rename_all = "camelCase")]
    StepFailed { step: String, error_type: String },
    /// `keyrot rollback` moved `AWSCURRENT` back to the previous key.
    #[serde(rename = "Access Key Rolled Back")]
    RolledBack {
        #[serde(rename = "restoredAccessKeyId")]
        restored: String,
        #[serde(rename = "rolledBackAccessKeyId")]
        rolled_back: String,
    },
    /// The delivery function wrote the current key to a target and saw it
    /// there (SPEC 14).
    #[serde(rename = "Access Key Delivered")]
    Delivered {
        /// The target's label.
        target: String,
        /// `github`, `github-environment`, `github-org`, `ssm` or
        /// `secretsmanager`.
        kind: String,
        #[serde(rename = "newAccessKeyId")]
        new_key: String,
    },
    /// A target could not be written or verified; `kind` is null for a spec
    /// that names no kind.
    #[serde(rename = "Access Key Delivery Failed")]
    DeliveryFailed {
        target: String,
        kind: Option<String>,
        error: String,
    },
}

impl Lifecycle {
    pub fn rotated(new_key: &str, old_key: Option<&str>) -> Self {
        Self::Rotated {
            new_key: new_key.to_string(),
            old_key: old_key.map(str::to_string),
        }
    }

    pub fn retired(key: &str, how: Retired) -> Self {
        Self::Retired {
            key: key.to_string(),
            how,
        }
    }

    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::Rotated { .. } => "Access Key Rotated",
            Self::Retired { .. } => "Access Key Retired",
            Self::StepFailed { .. } => "Rotation Step Failed",
            Self::RolledBack { .. } => "Access Key Rolled Back",
            Self::Delivered { .. } => "Access Key Delivered",
            Self::DeliveryFailed { .. } => "Access Key Delivery Failed",
        }
    }

    /// The event's `detail`: the subject's fields and the event's own.
    pub fn detail(&self, subject: &Subject) -> Value {
        let mut detail = serde_json::to_value(subject).unwrap_or_else(|_| json!({}));
        let own = serde_json::to_value(self)
            .map(|mut tagged| tagged["detail"].take())
            .unwrap_or_default();
        if let (Some(detail), Value::Object(own)) = (detail.as_object_mut(), own) {
            detail.extend(own);
        }
        detail
    }

    /// Reads an event back from its `detail-type` and `detail`; `None` for
    /// another kind of event or a detail without the fields its type names.
    pub fn read(detail_type: &str, detail: &Value) -> Option<(Subject, Self)> {
        let subject = Subject::deserialize(detail).ok()?;
        let event =
            Self::deserialize(json!({"detail-type": detail_type, "detail": detail})).ok()?;
        Some((subject, event))
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
        let rotated = Lifecycle::rotated("AKIANEW", None);
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
        let retired = Lifecycle::retired("AKIAOLD", Retired::Deleted).detail(&subject());
        assert_eq!(retired["action"], "deleted");
        assert_eq!(retired["accessKeyId"], "AKIAOLD");
        let failed = Lifecycle::StepFailed {
            step: "testSecret".into(),
            error_type: "KeyNotPropagated".into(),
        };
        assert_eq!(failed.detail_type(), "Rotation Step Failed");
        assert_eq!(failed.detail(&subject())["errorType"], "KeyNotPropagated");
        let rolled_back = Lifecycle::RolledBack {
            restored: "AKIAOLD".into(),
            rolled_back: "AKIANEW".into(),
        }
        .detail(&subject());
        assert_eq!(rolled_back["restoredAccessKeyId"], "AKIAOLD");
        assert_eq!(rolled_back["rolledBackAccessKeyId"], "AKIANEW");
        let delivered = Lifecycle::Delivered {
            target: "ci".into(),
            kind: "github-environment".into(),
            new_key: "AKIANEW".into(),
        };
        assert_eq!(delivered.detail_type(), "Access Key Delivered");
        let detail = delivered.detail(&subject());
        assert_eq!(
            (
                &detail["target"],
                &detail["kind"],
                &detail["newAccessKeyId"]
            ),
            (
                &json!("ci"),
                &json!("github-environment"),
                &json!("AKIANEW")
            )
        );
        let failed = Lifecycle::DeliveryFailed {
            target: "ops".into(),
            kind: Some("ssm".into()),
            error: "PutParameter failed".into(),
        }
        .detail(&subject());
        assert_eq!(failed["error"], "PutParameter failed");
        assert_eq!(failed["kind"], "ssm");
    }

    #[test]
    fn every_event_reads_back_as_it_was_written() {
        for event in [
            Lifecycle::rotated("AKIANEW", Some("AKIAOLD")),
            Lifecycle::rotated("AKIANEW", None),
            Lifecycle::retired("AKIAOLD", Retired::Deactivated),
            Lifecycle::StepFailed {
                step: "createSecret".into(),
                error_type: "UserNotBound".into(),
            },
            Lifecycle::RolledBack {
                restored: "AKIAOLD".into(),
                rolled_back: "AKIANEW".into(),
            },
            Lifecycle::Delivered {
                target: "ci".into(),
                kind: "github".into(),
                new_key: "AKIANEW".into(),
            },
            Lifecycle::DeliveryFailed {
                target: "ci".into(),
                kind: None,
                error: "invalid target spec: unknown target kind".into(),
            },
        ] {
            let detail = event.detail(&subject());
            assert_eq!(
                Lifecycle::read(event.detail_type(), &detail),
                Some((subject(), event))
            );
        }
        assert_eq!(Lifecycle::read("Something Else", &json!({})), None);
        assert_eq!(
            Lifecycle::read("Access Key Rotated", &subject().to_json()),
            None,
            "a detail without its event's fields"
        );
    }

    impl Subject {
        fn to_json(&self) -> Value {
            serde_json::to_value(self).unwrap()
        }
    }
}
