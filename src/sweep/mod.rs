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

use crate::arn::is_user_arn;
use crate::arn::same_function;
use crate::aws::Clients;
use crate::aws::account::{iam_client_for_user, user_account_id};
use crate::aws::events::{self, Lifecycle, Retired, Subject};
use crate::aws::iam::UserIam;
use crate::aws::listing::{SecretPages, current_values};
use crate::aws::secrets::{self, AWSCURRENT, AWSPENDING, AWSPREVIOUS, Secret, SecretVersions};
use crate::aws::sts::{Verdict, authenticate};
use crate::aws_error::AwsError;
use crate::config::Config;
mod policy;

use policy::{Transition, earliest_transition, transition};

use crate::deadline::{Deadline, STEP_MARGIN, SWEEP_START_MARGIN};
use crate::error::RotationError;
use crate::iam_names::CURRENT_SINCE_TAG;
use crate::key_tags::IamUser;
use crate::retire;
use crate::secret_value::SecretValue;

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

/// What the sweep did with one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VisitOutcome {
    Nothing,
    Deactivated { key: String, in_use: bool },
    Deleted(String),
    KeptInUse(String),
    Skipped,
    Unfinished,
}

/// Runs one sweep over every secret `function_arn` rotates.
pub async fn sweep(
    clients: &Clients,
    config: &Config,
    function_arn: &str,
    deadline: Deadline,
) -> Result<SweepReport, RotationError> {
    let mut report = SweepReport::default();
    let Some(earliest) = earliest_transition(&config.retirement, config.old_key_action) else {
        info!(
            old_key_action = config.old_key_action.as_str(),
            "nothing to sweep: previous keys are retired by finishSecret and the next rotation (set OLD_KEY_ACTION=grace or DELETE_AFTER_HOURS to retire them in the sweep)"
        );
        return Ok(report);
    };
    let secrets = rotated_by(clients, function_arn, &config.secret_name_prefix).await?;
    report.secrets = secrets.len();
    let mut candidates: Vec<Secret> = secrets.into_iter().filter(has_previous_key).collect();
    // Start at a random point, so that sweeps cut short by the deadline do not
    // always leave the same secrets for later.
    if !candidates.is_empty() {
        candidates.sort_by(|a, b| a.arn.cmp(&b.arn));
        let start = fastrand::usize(..candidates.len());
        candidates.rotate_left(start);
    }
    let values = current_values(&clients.secrets, &candidates)
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
                    earliest,
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
    let mut pages = SecretPages::new(&clients.secrets, Some(prefix).filter(|p| !p.is_empty()));
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
    let current = secret.versions_with(AWSCURRENT);
    let previous_elsewhere = secret
        .versions_with(AWSPREVIOUS)
        .iter()
        .any(|version| !current.contains(version));
    secret.rotation_enabled && previous_elsewhere && secret.pending_version().is_none()
}

fn sweep_failed(error: AwsError) -> RotationError {
    RotationError::SweepFailed {
        operation: error.operation,
        code: error.code,
        message: error.message,
    }
}

/// One secret's visit.
struct Visit<'a> {
    clients: &'a Clients,
    config: &'a Config,
    /// The secret as the listing saw it.
    secret: Secret,
    current: &'a SecretValue,
    now: i64,
    earliest: Duration,
}

impl Visit<'_> {
    async fn run(&self) -> VisitOutcome {
        match self.visit().await {
            Ok(visit) => visit,
            Err(error) => {
                warn!(
                    secret = %self.secret.arn,
                    error_type = error.kind(),
                    error = %error,
                    "skipped this secret; the next sweep tries again"
                );
                VisitOutcome::Skipped
            }
        }
    }

    async fn visit(&self) -> Result<VisitOutcome, RotationError> {
        let Some(rotated_at) = self.current.created() else {
            return Err(RotationError::invalid_value(
                &self.secret.arn,
                AWSCURRENT,
                "Secrets Manager gave no creation date for it",
            ));
        };
        let age = Duration::from_secs(self.now.saturating_sub(rotated_at).max(0) as u64);
        if age < self.earliest {
            return Ok(VisitOutcome::Nothing);
        }
        let user_name = self.current.user_name();
        let iam = iam_client_for_user(self.clients, &self.secret.arn, self.current).await?;
        let user_iam = UserIam::new(iam, &self.secret.arn, user_name);
        let current_key = self.current.access_key_id();
        let listed = user_iam.list_keys().await?;
        // The plan depends only on a key's status and the version's age, so when
        // no key besides the current one could be due (the usual hour: the old
        // key already Inactive and no DELETE_AFTER_HOURS), the previous value
        // need not be read.
        let rules = &self.config.retirement;
        let action = self.config.old_key_action;
        if listed
            .iter()
            .filter(|key| Some(key.id.as_str()) != current_key)
            .all(|key| transition(key.active, age, rules, action) == Transition::Nothing)
        {
            return Ok(VisitOutcome::Nothing);
        }
        let Some(previous_key) = self.previous_key(current_key).await? else {
            return Ok(VisitOutcome::Nothing);
        };
        let Some(key) = listed.iter().find(|key| key.id == previous_key) else {
            return Ok(VisitOutcome::Nothing);
        };
        let plan = transition(key.active, age, rules, action);
        if plan == Transition::Nothing {
            return Ok(VisitOutcome::Nothing);
        }
        let user = user_iam.get_user().await?;
        if self.config.require_user_tag {
            user.check_binding(&self.secret.arn)?;
        }
        // AWSPREVIOUS holds the key; the secret manages it only if this
        // function also recorded it as the secret's, in that version (SPEC 11,
        // T2 and T6).
        let previous_version = self.previous_version().unwrap_or_default();
        if !user.is_managed(
            &previous_key,
            &self.secret.arn,
            &[(previous_key.as_str(), previous_version)],
        ) {
            warn!(
                secret = %self.secret.arn,
                access_key_id = %previous_key,
                "left the AWSPREVIOUS key untouched: this secret does not manage it (no description of this function's names it; it was put in the secret by hand and never proven); delete it by hand once no consumer uses it"
            );
            return Ok(VisitOutcome::Nothing);
        }
        // Nor while AWSCURRENT holds no key this secret manages: whoever may
        // write the value could have pushed the working key to AWSPREVIOUS with a
        // made-up one, or an older key of the secret's (SPEC 11, T3).
        if !self.current_key_is_the_secrets(&user).await? {
            warn!(
                secret = %self.secret.arn,
                access_key_id = %previous_key,
                "left the AWSPREVIOUS key untouched: AWSCURRENT holds no key this secret manages, so the previous one may be the key consumers still use"
            );
            return Ok(VisitOutcome::Nothing);
        }
        // The grace counts from when AWSCURRENT last moved (SPEC 11, T6), which
        // finishSecret and `keyrot rollback` record. A move without a record (a
        // stage moved by hand, or a rotation by an earlier version) is seen now:
        // the clock starts at this sweep, later than the move, never earlier.
        let current_version = self.current_version();
        let Some(since) = user
            .current_since()
            .filter(|(version, _)| *version == current_version)
            .map(|(_, at)| at)
        else {
            info!(
                secret = %self.secret.arn,
                version = current_version,
                "AWSCURRENT moved without a record of when (by hand, or before this version of the function): the grace starts now"
            );
            let since = format!("{current_version} {}", self.now);
            user_iam.tag(&[(CURRENT_SINCE_TAG, since.as_str())]).await?;
            return Ok(VisitOutcome::Nothing);
        };
        let age = Duration::from_secs(self.now.saturating_sub(since).max(0) as u64);
        let plan = self::transition(key.active, age, rules, action);
        if plan == Transition::Nothing {
            return Ok(VisitOutcome::Nothing);
        }
        if !self.labels_unchanged().await? {
            return Ok(VisitOutcome::Skipped);
        }
        match plan {
            Transition::Nothing => Ok(VisitOutcome::Nothing),
            Transition::DeactivateUnlessUsed { may_keep } => {
                let used = crate::retire::warn_if_still_used(
                    &user_iam,
                    &previous_key,
                    Some(since),
                    Retired::Deactivated,
                )
                .await;
                if used && may_keep {
                    info!(
                        secret = %self.secret.arn,
                        access_key_id = %previous_key,
                        "kept the previous key Active: a consumer still uses it (it is deactivated anyway after GRACE_MAX_HOURS)"
                    );
                    return Ok(VisitOutcome::KeptInUse(previous_key));
                }
                let Some(how) = retire::deactivate(&user_iam, &previous_key).await? else {
                    return Ok(VisitOutcome::Nothing);
                };
                self.retired(&previous_key, how).await;
                Ok(VisitOutcome::Deactivated {
                    key: previous_key,
                    in_use: used,
                })
            }
            Transition::Delete => {
                if let Some(how) = retire::delete(&user_iam, &previous_key).await? {
                    self.retired(&previous_key, how).await;
                }
                Ok(VisitOutcome::Deleted(previous_key))
            }
        }
    }

    /// The key the `AWSPREVIOUS` version holds, if it is the same user's (in the
    /// same account) and not the current key.
    async fn previous_key(
        &self,
        current_key: Option<&str>,
    ) -> Result<Option<String>, RotationError> {
        let versions = SecretVersions::new(&self.clients.secrets, &self.secret.arn);
        let Some(previous) = versions.value(None, AWSPREVIOUS).await? else {
            return Ok(None);
        };
        Ok(previous
            .key_of_same_user(self.current)
            .filter(|key| Some(*key) != current_key)
            .map(str::to_string))
    }

    /// The `AWSCURRENT` version's id, as the listing saw it.
    fn current_version(&self) -> &str {
        self.secret.current_version()
    }

    /// The `AWSPREVIOUS` version's id, as the listing saw it.
    fn previous_version(&self) -> Option<&str> {
        let current = self.secret.versions_with(AWSCURRENT);
        self.secret
            .versions_with(AWSPREVIOUS)
            .into_iter()
            .find(|version| !current.contains(version))
    }

    /// Whether the `AWSCURRENT` key is this secret's: described for that
    /// version (as every key the function stores is), or else its stored pair
    /// authenticates as the user (a key adopted by an earlier version of the
    /// function, or a very long ARN whose descriptions carry no version).
    async fn current_key_is_the_secrets(&self, user: &IamUser) -> Result<bool, RotationError> {
        let Some(key_id) = self.current.access_key_id() else {
            return Ok(false);
        };
        let current_version = self.current_version();
        if user.describes_in(key_id, &self.secret.arn, current_version)
            && user
                .tags
                .get(key_id)
                .is_some_and(|d| d.ends_with(&format!(" {current_version}")))
        {
            return Ok(true);
        }
        let Some(secret) = self.current.secret_access_key() else {
            return Ok(false);
        };
        let user_name = self.current.user_name();
        Ok(
            match authenticate(
                &self.clients.sts,
                key_id,
                &secret,
                &self.secret.arn,
                user_name,
            )
            .await?
            {
                Verdict::Authenticated { arn } => {
                    is_user_arn(&arn, user_account_id(&self.secret, self.current), user_name)
                }
                Verdict::Rejected { .. } => false,
            },
        )
    }

    /// Just before a write: the secret is still rotated by this function, its
    /// labels are where the listing saw them, and no rotation has started.
    /// Anything else means a rotation or an operator is at work: leave it to
    /// the next sweep.
    async fn labels_unchanged(&self) -> Result<bool, RotationError> {
        let now = secrets::describe(&self.clients.secrets, &self.secret.arn).await?;
        let listed = &self.secret;
        let unchanged = now.rotation_enabled
            && now.rotation_lambda_arn.as_deref().is_some_and(|arn| {
                listed
                    .rotation_lambda_arn
                    .as_deref()
                    .is_some_and(|listed| same_function(arn, listed))
            })
            && now.versions_with(AWSCURRENT) == listed.versions_with(AWSCURRENT)
            && now.versions_with(AWSPREVIOUS) == listed.versions_with(AWSPREVIOUS)
            && now
                .versions_with(AWSPENDING)
                .iter()
                .all(|version| now.has_stage(version, AWSCURRENT));
        if !unchanged {
            info!(secret = %self.secret.arn, "the secret changed during the sweep; the next sweep looks again");
        }
        Ok(unchanged)
    }

    async fn retired(&self, key: &str, how: Retired) {
        let info = &self.secret;
        let subject = Subject {
            secret_arn: info.arn.clone(),
            secret_name: info.name.clone(),
            user: Some(self.current.user_name().to_string()),
            account: user_account_id(info, self.current).map(str::to_string),
            version_id: info
                .versions_with(AWSCURRENT)
                .first()
                .map(|v| v.to_string())
                .unwrap_or_default(),
        };
        info!(secret = %info.arn, access_key_id = key, action = how.as_str(), "retired the previous key");
        events::publish(
            &self.clients.events,
            &self.config.event_bus,
            &subject,
            &[Lifecycle::Retired { key, how }],
        )
        .await;
    }
}
