//! Delivery in the reports (SPEC 14): `keyrot status`'s DELIVERY column
//! (`delivered 2/3`) and `undelivered` state with the failing target and its
//! last error, and `keyrot deliver list`. All of it comes from the secret's
//! reserved tags, which the listing already returns: no call of its own.
//!
//! The last error is the delivery function's record of its latest failure
//! (`iam-key-rotation:delivery-error`, `model/delivery_error.rs`): cheap (no
//! call, no permission on the function's logs) and trustworthy (a reserved tag
//! only the function writes); it is shown only for a target still undelivered,
//! cut to what a tag holds, with the log for the whole message.

use serde::Serialize;

use super::ReportError;
use crate::aws::Clients;
use crate::aws::listing::SecretPages;
use crate::aws::secrets;
use crate::clock::rfc3339;
use crate::model::secret::Secret;

/// A secret's delivery, as `keyrot status` shows it (`delivery` in its JSON;
/// null for a secret without targets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryStatus {
    /// Targets holding the current version.
    pub delivered: usize,
    pub targets: usize,
    /// The labels of those that do not.
    pub undelivered: Vec<String>,
    /// The last failure of one of them: `<label>: <error> (since <time>)`.
    pub last_error: Option<String>,
}

impl DeliveryStatus {
    pub fn of(secret: &Secret) -> Option<Self> {
        let delivery = &secret.delivery;
        if !delivery.has_targets() {
            return None;
        }
        let version = secret.current_version();
        let undelivered: Vec<String> = delivery
            .undelivered(version)
            .into_iter()
            .map(str::to_string)
            .collect();
        let last_error = delivery
            .last_error
            .as_ref()
            .filter(|error| {
                undelivered
                    .iter()
                    .any(|label| label.replace(' ', "_") == error.label)
            })
            .map(|error| {
                let since = aws_smithy_types::DateTime::from_secs(error.at);
                format!(
                    "{}: {} (since {})",
                    error.label,
                    error.message,
                    rfc3339(&since)
                )
            });
        Some(Self {
            delivered: delivery.delivered_count(version),
            targets: delivery.targets.len(),
            undelivered,
            last_error,
        })
    }

    /// `delivered 2/3`.
    pub fn summary(&self) -> String {
        format!("delivered {}/{}", self.delivered, self.targets)
    }

    /// The `undelivered` state's fix, if a target misses the current version.
    pub(super) fn fix(&self, secret: &Secret) -> Option<String> {
        let (first, others) = self.undelivered.split_first()?;
        let which = match others.len() {
            0 => format!("target {first}"),
            n => format!("targets {first} and {n} more ({})", others.join(", ")),
        };
        let why = match &self.last_error {
            Some(error) => format!("last error {error}"),
            None => "the delivery function has not delivered it yet (it runs after each rotation and on its DeliverySchedule)".to_string(),
        };
        Some(format!(
            "{which} does not hold the current version: {why}. The previous key stays Active meanwhile (at most GRACE_MAX_HOURS). Fix the target (the delivery function's log has each error in full), then deliver now: aws lambda invoke --function-name <DeliveryFunctionArn> --cli-binary-format raw-in-base64-out --payload '{{\"Action\": \"deliver\", \"SecretId\": \"{}\"}}' /dev/stdout",
            secret.arn
        ))
    }
}

/// One target of `keyrot deliver list` (its JSON).
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    pub secret_name: String,
    pub secret_arn: String,
    pub label: String,
    /// The tag's value as written.
    pub spec: String,
    /// `github`, `github-environment`, `github-org`, `ssm`, `secretsmanager`;
    /// null for an invalid one.
    pub kind: Option<&'static str>,
    /// Why the target is invalid (it fails on every run), if it is.
    pub invalid: Option<String>,
    /// Whether it holds the current version.
    pub delivered: bool,
}

/// The targets of one secret, or of every secret under `prefix`.
pub async fn list_targets(
    clients: &Clients,
    secret_id: Option<&str>,
    prefix: &str,
) -> Result<Vec<TargetRow>, ReportError> {
    let secrets = match secret_id {
        Some(secret_id) => match secrets::find(clients, secret_id).await? {
            Some(secret) => vec![secret],
            None => {
                return Err(ReportError::Refused(format!(
                    "there is no secret {secret_id} in this account and region (or your credentials may not describe it): check the name or ARN, --region and --profile"
                )));
            }
        },
        None => {
            let mut pages = SecretPages::new(clients, Some(prefix).filter(|p| !p.is_empty()));
            let mut found = Vec::new();
            while let Some(page) = pages.next().await? {
                found.extend(page.into_iter().filter(|s| s.delivery.has_targets()));
            }
            found
        }
    };
    Ok(secrets.iter().flat_map(rows_of).collect())
}

fn rows_of(secret: &Secret) -> Vec<TargetRow> {
    let version = secret.current_version();
    let undelivered = secret.delivery.undelivered(version);
    secret
        .delivery
        .targets
        .iter()
        .map(|tag| TargetRow {
            secret_name: secret.name.clone(),
            secret_arn: secret.arn.clone(),
            label: tag.label.clone(),
            spec: tag.spec.clone(),
            kind: tag
                .target
                .as_ref()
                .ok()
                .map(|(_, target)| target.kind().as_str()),
            invalid: tag.target.as_ref().err().map(ToString::to_string),
            delivered: !undelivered.contains(&tag.label.as_str()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::delivery::SecretDelivery;

    fn secret(tags: &[(&str, &str)]) -> Secret {
        Secret {
            arn: "arn:aws:secretsmanager:us-east-1:111122223333:secret:iam-keys/app-AbCdEf".into(),
            name: "iam-keys/app".into(),
            versions: [("v2".to_string(), vec!["AWSCURRENT".to_string()])]
                .into_iter()
                .collect(),
            delivery: SecretDelivery::from_tags(tags.iter().copied()),
            ..Secret::default()
        }
    }

    #[test]
    fn the_status_counts_targets_and_names_the_failing_one_with_its_last_error() {
        assert_eq!(DeliveryStatus::of(&secret(&[])), None);
        let failing = secret(&[
            ("iam-key-rotation:deliver:ci", "github:acme/app"),
            ("iam-key-rotation:deliver:ops", "ssm:us-east-1:/app"),
            ("iam-key-rotation:delivered", "v2 1700000000 ci"),
            (
                "iam-key-rotation:delivery-error",
                "ops 1700000000 AccessDenied on PutParameter",
            ),
        ]);
        let status = DeliveryStatus::of(&failing).unwrap();
        assert_eq!(status.summary(), "delivered 1/2");
        assert_eq!(status.undelivered, ["ops"]);
        assert_eq!(
            status.last_error.as_deref(),
            Some("ops: AccessDenied on PutParameter (since 2023-11-14T22:13:20Z)")
        );
        let fix = status.fix(&failing).unwrap();
        assert!(
            fix.starts_with("target ops does not hold the current version: last error ops:"),
            "{fix}"
        );
        assert!(fix.contains(&failing.arn), "{fix}");

        let done = secret(&[
            ("iam-key-rotation:deliver:ci", "github:acme/app"),
            ("iam-key-rotation:delivered", "v2 1700000000 ci"),
            (
                "iam-key-rotation:delivery-error",
                "ci 1690000000 an old failure",
            ),
        ]);
        let status = DeliveryStatus::of(&done).unwrap();
        assert_eq!(status.summary(), "delivered 1/1");
        assert_eq!(
            status.last_error, None,
            "a repaired target's error is history"
        );
        assert_eq!(status.fix(&done), None);
    }
}
