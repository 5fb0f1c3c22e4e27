//! The sweep (`{"Action": "sweep"}`, scheduled hourly): retires the previous key
//! of every secret this function rotates once its time has come, so that
//! `OLD_KEY_ACTION=grace` can leave the old key working for a while after
//! `finishSecret`, and `DELETE_AFTER_HOURS` can delete an Inactive one before
//! the next rotation would.
//!
//! It only ever acts on a secret's `AWSPREVIOUS` key, which the next rotation
//! would delete anyway, and only with every guard a step applies: the secret is
//! rotated by this function, its user is bound to it, the key is neither the
//! `AWSCURRENT` key nor any other than `AWSPREVIOUS`'s, and no rotation is in
//! progress. Each key makes at most one transition per sweep (Active to
//! Inactive, or Inactive to deleted), so there is always an hour to roll back.
//!
//! Reads come first and are cheap for the common case: one `ListSecrets` per
//! 100 secrets, one `BatchGetSecretValue` per 20 candidates, and nothing more
//! for a secret whose grace has not passed; then one `ListAccessKeys` per
//! candidate, and the previous value only when the user holds another key that
//! could be due. A secret it cannot read is skipped with a WARN; a sweep cut short by the
//! deadline leaves the rest to the next hour, which starts at another point of
//! the list.

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::{Value, json};
use tracing::{info, warn};

mod policy;
mod visit;

use crate::aws::Clients;
use crate::aws::error::AwsError;
use crate::aws::listing::{SecretPages, current_values};
use crate::config::Config;
use crate::deadline::{Deadline, STEP_MARGIN, SWEEP_START_MARGIN};
use crate::error::RotationError;
use crate::model::secret::Secret;
use policy::earliest_transition;
use visit::{Visit, VisitOutcome};

/// Secrets examined at once: enough to hide each call's latency, few enough to
/// stay inside IAM's account-wide rate alongside the rotations.
const CONCURRENCY: usize = 8;

/// What one sweep did: the response, the log line and the metric.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Secrets whose rotation function is this function.
    pub secrets: usize,
    pub deactivated: Vec<String>,
    pub deleted: Vec<String>,
    /// Previous keys left Active because a consumer still uses them.
    pub kept_in_use: Vec<String>,
    /// Secrets that could not be read or were refused (each one logged).
    pub skipped: usize,
    /// Secrets not reached before the deadline.
    pub unfinished: usize,
    /// Previous keys a consumer used after the rotation: those kept, and those
    /// deactivated anyway at `GRACE_MAX_HOURS` (the `OldKeyInUse` metric).
    pub old_keys_in_use: usize,
}

impl SweepReport {
    pub fn to_json(&self) -> Value {
        json!({
            "Action": crate::event::SWEEP,
            "Secrets": self.secrets,
            "Deactivated": self.deactivated,
            "Deleted": self.deleted,
            "KeptInUse": self.kept_in_use,
            "Skipped": self.skipped,
            "Unfinished": self.unfinished,
        })
    }

    fn add(&mut self, outcome: VisitOutcome) {
        match outcome {
            VisitOutcome::Nothing => {}
            VisitOutcome::Deactivated { key, in_use } => {
                self.old_keys_in_use += usize::from(in_use);
                self.deactivated.push(key);
            }
            VisitOutcome::Deleted(key) => self.deleted.push(key),
            VisitOutcome::KeptInUse(key) => {
                self.old_keys_in_use += 1;
                self.kept_in_use.push(key);
            }
            VisitOutcome::Skipped => self.skipped += 1,
            VisitOutcome::Unfinished => self.unfinished += 1,
        }
    }
}

/// Runs one sweep over every secret `function_arn` rotates.
pub async fn sweep(
    clients: &Clients,
    config: &Config,
    function_arn: &str,
    deadline: Deadline,
) -> Result<SweepReport, RotationError> {
    let mut report = SweepReport::default();
    let earliest = earliest_transition(&config.retirement, config.old_key_action);
    if earliest.is_none() {
        info!(
            old_key_action = config.old_key_action.as_str(),
            "previous keys are retired by finishSecret and the next rotation (set OLD_KEY_ACTION=grace or DELETE_AFTER_HOURS to retire them in the sweep): the sweep retires only those of secrets with delivery targets"
        );
    }
    let secrets = rotated_by(clients, function_arn, &config.secret_name_prefix).await?;
    let mut candidates: Vec<Secret> = secrets
        .into_iter()
        .filter(|secret| earliest.is_some() || secret.delivery.has_targets())
        .collect();
    report.secrets = candidates.len();
    candidates.retain(has_previous_key);
    // Start at a random point, so that sweeps cut short by the deadline do not
    // always leave the same secrets for later.
    if !candidates.is_empty() {
        candidates.sort_by(|a, b| a.arn.cmp(&b.arn));
        let start = fastrand::usize(..candidates.len());
        candidates.rotate_left(start);
    }
    let values = current_values(clients, &candidates)
        .await
        .map_err(sweep_failed)?;
    let now = crate::clock::now().secs();
    let start_before = deadline.less(SWEEP_START_MARGIN);
    let visits = stream::iter(candidates.iter())
        .map(|secret| {
            let value = values.get(&secret.arn);
            async move {
                if start_before.is_some_and(|at| Instant::now() >= at) {
                    return VisitOutcome::Unfinished;
                }
                let Some(value) = value else {
                    warn!(secret = %secret.arn, "skipped: its AWSCURRENT value could not be read or is not a JSON object with a UserName");
                    return VisitOutcome::Skipped;
                };
                let visit = Visit {
                    clients,
                    config,
                    secret: secret.clone(),
                    current: value,
                    now,
                    // A secret with delivery targets may be due at any age (SPEC 14).
                    earliest: match secret.delivery.has_targets() {
                        true => Duration::ZERO,
                        false => earliest.unwrap_or(Duration::MAX),
                    },
                };
                deadline
                    .bound(STEP_MARGIN, visit.run())
                    .await
                    .unwrap_or(VisitOutcome::Unfinished)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<VisitOutcome>>()
        .await;
    for visit in visits {
        report.add(visit);
    }
    report.deactivated.sort();
    report.deleted.sort();
    report.kept_in_use.sort();
    if report.unfinished > 0 {
        warn!(
            unfinished = report.unfinished,
            "the sweep ran out of time: the next sweep takes up the secrets not reached (raise the function timeout if this repeats)"
        );
    }
    Ok(report)
}

/// Every secret under the prefix whose rotation function is this function.
async fn rotated_by(
    clients: &Clients,
    function_arn: &str,
    prefix: &str,
) -> Result<Vec<Secret>, RotationError> {
    let mut pages = SecretPages::new(clients, Some(prefix).filter(|p| !p.is_empty()));
    let mut secrets = Vec::new();
    while let Some(page) = pages.next().await.map_err(sweep_failed)? {
        secrets.extend(
            page.into_iter()
                .filter(|secret| secret.is_rotated_by(function_arn)),
        );
    }
    Ok(secrets)
}

/// Rotation is on, a version other than `AWSCURRENT` is `AWSPREVIOUS`, and no
/// rotation is under way (its createSecret makes room itself, and its
/// finishSecret is about to move the labels the sweep relies on).
fn has_previous_key(secret: &Secret) -> bool {
    secret.rotation_enabled
        && secret.previous_version().is_some()
        && secret.pending_version().is_none()
}

fn sweep_failed(error: AwsError) -> RotationError {
    RotationError::SweepFailed {
        operation: error.operation,
        code: error.code,
        message: error.message,
    }
}
