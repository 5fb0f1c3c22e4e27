//! A secret as Secrets Manager describes it (`DescribeSecret` or `ListSecrets`):
//! its rotation settings and which version carries which staging label. The
//! one description of a secret, for the steps, the sweep and the operator's
//! tools; the AWS layer fills it in, and nothing here calls AWS.

use std::collections::HashMap;

use aws_sdk_secretsmanager::primitives::DateTime;

use crate::arn::same_function;
use crate::model::delivery::SecretDelivery;
use crate::model::secret_value::SecretValue;

/// Where the secrets live by default: the template's `SecretNamePrefix`,
/// `keyrot enroll`'s names (`iam-keys/<user>`), and what `keyrot status` and
/// the daily audit read.
pub const DEFAULT_NAME_PREFIX: &str = "iam-keys/";

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPENDING: &str = "AWSPENDING";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// A secret's description: enough to check every precondition without another
/// call, and to report its schedule.
#[derive(Debug, Clone, Default)]
pub struct Secret {
    pub arn: String,
    pub name: String,
    pub rotation_enabled: bool,
    /// The function Secrets Manager invokes to rotate the secret, if any.
    pub rotation_lambda_arn: Option<String>,
    /// Version id to its staging labels.
    pub versions: HashMap<String, Vec<String>>,
    pub every_days: Option<i64>,
    pub schedule_expression: Option<String>,
    pub created: Option<DateTime>,
    pub last_rotated: Option<DateTime>,
    pub next_rotation: Option<DateTime>,
    /// Its delivery targets and records, from its reserved tags (SPEC 14).
    pub delivery: SecretDelivery,
}

impl Secret {
    pub fn stages_of(&self, version_id: &str) -> Option<&[String]> {
        self.versions.get(version_id).map(Vec::as_slice)
    }

    pub fn has_stage(&self, version_id: &str, stage: &str) -> bool {
        self.stages_of(version_id)
            .is_some_and(|stages| stages.iter().any(|s| s == stage))
    }

    /// The versions that carry `stage` (a label is on one version at most, but a
    /// broken secret is better reported than assumed away).
    pub fn versions_with(&self, stage: &str) -> Vec<&str> {
        let mut found: Vec<&str> = self
            .versions
            .iter()
            .filter(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(id, _)| id.as_str())
            .collect();
        found.sort_unstable();
        found
    }

    /// The version `AWSCURRENT` is on, as this description saw it ("" if none).
    pub fn current_version(&self) -> &str {
        self.versions_with(AWSCURRENT)
            .first()
            .copied()
            .unwrap_or_default()
    }

    /// The version carrying `AWSPREVIOUS` but not `AWSCURRENT`: the one the
    /// last rotation (or rollback) moved `AWSCURRENT` away from.
    pub fn previous_version(&self) -> Option<&str> {
        self.version_other_than_current(AWSPREVIOUS)
    }

    /// The version carrying `AWSPENDING` but not `AWSCURRENT`: a rotation that
    /// started and has not finished.
    pub fn pending_version(&self) -> Option<&str> {
        self.version_other_than_current(AWSPENDING)
    }

    fn version_other_than_current(&self, stage: &str) -> Option<&str> {
        let current = self.versions_with(AWSCURRENT);
        self.versions_with(stage)
            .into_iter()
            .find(|version| !current.contains(version))
    }

    /// Whether `AWSCURRENT` and `AWSPREVIOUS` are where `earlier` saw them and
    /// no rotation has started since (an `AWSPENDING` label left on the
    /// current version is none): re-checked just before a write that was
    /// decided on `earlier`, since a rotation or an operator may have moved
    /// the labels in between.
    pub fn labels_unchanged_since(&self, earlier: &Secret) -> bool {
        self.versions_with(AWSCURRENT) == earlier.versions_with(AWSCURRENT)
            && self.versions_with(AWSPREVIOUS) == earlier.versions_with(AWSPREVIOUS)
            && self.pending_version().is_none()
    }

    /// The account the secret lives in, from its ARN.
    pub fn account_id(&self) -> Option<&str> {
        crate::arn::account_of(&self.arn)
    }

    /// The account a key of the value's user must authenticate in: the
    /// `RoleArn`'s account, else the secret's own.
    pub fn user_account<'a>(&'a self, value: &'a SecretValue) -> Option<&'a str> {
        match value.role_arn() {
            Some(role_arn) => crate::arn::account_of(role_arn),
            None => self.account_id(),
        }
    }

    /// "every 30 days", the schedule expression, or "none".
    pub fn schedule(&self) -> String {
        match (&self.schedule_expression, self.every_days) {
            (Some(expression), _) => expression.clone(),
            (None, Some(days)) => format!("every {days} days"),
            (None, None) => "none".to_string(),
        }
    }

    /// When the next rotation is due: Secrets Manager's own date, or, where it
    /// gives none, the last rotation (or the creation) plus the interval.
    pub fn next_rotation(&self) -> Option<DateTime> {
        if !self.rotation_enabled {
            return None;
        }
        self.next_rotation.or_else(|| {
            let from = self.last_rotated.or(self.created)?;
            Some(crate::clock::plus_days(&from, self.every_days?))
        })
    }

    pub fn is_rotated_by(&self, function_arn: &str) -> bool {
        self.rotation_lambda_arn
            .as_deref()
            .is_some_and(|arn| same_function(arn, function_arn))
    }
}

/// When rotation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    EveryDays(i64),
    /// A Secrets Manager schedule expression, `rate(...)` or `cron(...)`.
    Expression(String),
}

impl Schedule {
    pub fn describe(&self) -> String {
        match self {
            Self::EveryDays(days) => format!("every {days} days"),
            Self::Expression(expression) => expression.clone(),
        }
    }

    /// Whether the secret already rotates on this schedule.
    pub fn matches(&self, secret: &Secret) -> bool {
        match self {
            Self::EveryDays(days) => {
                secret.every_days == Some(*days) && secret.schedule_expression.is_none()
            }
            Self::Expression(expression) => {
                secret.schedule_expression.as_deref() == Some(expression)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_versions(versions: &[(&str, &[&str])]) -> Secret {
        Secret {
            arn: "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app-AbCdEf".into(),
            name: "app".into(),
            rotation_enabled: true,
            versions: versions
                .iter()
                .map(|(id, stages)| {
                    (
                        id.to_string(),
                        stages.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect(),
            ..Secret::default()
        }
    }

    #[test]
    fn stages_and_account_are_read_from_the_description() {
        let info = with_versions(&[("v1", &[AWSCURRENT]), ("v2", &[AWSPENDING])]);
        assert!(info.has_stage("v2", AWSPENDING));
        assert!(!info.has_stage("v1", AWSPENDING));
        assert!(!info.has_stage("v3", AWSPENDING));
        assert_eq!(info.versions_with(AWSCURRENT), vec!["v1"]);
        assert_eq!(info.account_id(), Some("111122223333"));
    }

    #[test]
    fn the_previous_and_pending_versions_are_never_the_current_one() {
        let rotated = with_versions(&[("v1", &[AWSPREVIOUS]), ("v2", &[AWSCURRENT])]);
        assert_eq!(rotated.previous_version(), Some("v1"));
        assert_eq!(rotated.pending_version(), None);
        // finishSecret's move leaves AWSPENDING on the new current version.
        let finished = with_versions(&[("v1", &[AWSPREVIOUS]), ("v2", &[AWSCURRENT, AWSPENDING])]);
        assert_eq!(finished.pending_version(), None);
        let rotating = with_versions(&[("v1", &[AWSCURRENT]), ("v2", &[AWSPENDING])]);
        assert_eq!(rotating.pending_version(), Some("v2"));
        assert_eq!(rotating.previous_version(), None);
        let never = with_versions(&[("v1", &[AWSCURRENT, AWSPREVIOUS])]);
        assert_eq!(never.previous_version(), None);
    }

    #[test]
    fn labels_moved_or_a_rotation_started_since_are_a_change() {
        let listed = with_versions(&[("v1", &[AWSPREVIOUS]), ("v2", &[AWSCURRENT])]);
        assert!(listed.labels_unchanged_since(&listed));
        let finished = with_versions(&[("v1", &[AWSPREVIOUS]), ("v2", &[AWSCURRENT, AWSPENDING])]);
        assert!(finished.labels_unchanged_since(&listed));
        let rolled_back = with_versions(&[("v1", &[AWSCURRENT]), ("v2", &[AWSPREVIOUS])]);
        assert!(!rolled_back.labels_unchanged_since(&listed));
        let started = with_versions(&[
            ("v1", &[AWSPREVIOUS]),
            ("v2", &[AWSCURRENT]),
            ("v3", &[AWSPENDING]),
        ]);
        assert!(!started.labels_unchanged_since(&listed));
    }
}
