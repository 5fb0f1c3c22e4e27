//! One secret's delivery, in the order that makes a crash at any call
//! harmless:
//!
//! 1. the targets that do not hold the current version, from the reserved tags
//!    read with the secret (an invalid one fails at once, with no call);
//! 2. `GetSecretValue` of that version, by id and stage;
//! 3. each target written and verified, one after the other (a crash leaves
//!    a target written and not recorded: the next run writes it again); before
//!    each write, `AWSCURRENT` is asked again when the last sight of it is more
//!    than a second old, so a rolled-back version is not written on;
//! 4. `PutEvents`: `Access Key Delivered` and `Access Key Delivery Failed`
//!    (before the record, so a crash repeats events rather than losing them);
//! 5. `DescribeSecret` again: the record of the targets written is kept only
//!    while `AWSCURRENT` is still on the version; if it moved during the run
//!    (a rollback), the targets written are taken out of whatever record says
//!    they hold another version, so it never claims a key they no longer hold;
//! 6. `TagResource` `iam-key-rotation:delivered` (and the last failure), or
//!    `UntagResource` of a failure now repaired.
//!
//! The record only ever claims less than the targets hold (a lost record means
//! a target is written again), never more, so the sweep and createSecret may
//! trust it.

use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::proof;
use super::target::{self, Payload};
use super::{DeliveredTarget, FailedTarget, Run};
use crate::aws::events;
use crate::aws::secrets::{self, SecretVersions, ValueError};
use crate::clock::unix_now;
use crate::deadline::{PROOF_MARGIN, TARGET_WRITE_MARGIN};
use crate::model::delivered::{DELIVERED_TAG, DeliveredRecord};
use crate::model::delivery_error::{DELIVERY_ERROR_TAG, DeliveryError};
use crate::model::delivery_target::{DeliveryTag, Label, Target};
use crate::model::lifecycle::{Lifecycle, Subject};
use crate::model::secret::{AWSCURRENT, Secret};
use crate::model::secret_value::SecretValue;

/// How old the last sight of the version as `AWSCURRENT` may be when a
/// target's write starts (see [`still_current`]).
const RECHECK_AFTER: Duration = Duration::from_secs(1);
/// EventBridge takes at most ten entries per `PutEvents`.
const EVENTS_PER_CALL: usize = 10;

/// What one secret's delivery did.
#[derive(Debug, Default)]
pub(super) struct SecretResult {
    pub delivered: Vec<DeliveredTarget>,
    pub failed: Vec<FailedTarget>,
    /// Its current version still misses a target.
    pub undelivered: bool,
}

impl SecretResult {
    /// A secret the run had no time for: every target that does not hold the
    /// current version is left to the next run.
    pub fn unfinished(secret: &Secret) -> Self {
        let failed: Vec<FailedTarget> = secret
            .delivery
            .undelivered(secret.current_version())
            .into_iter()
            .map(|label| FailedTarget {
                secret: secret.arn.clone(),
                target: label.to_string(),
                error: "not finished before the run's deadline: the next run delivers it".into(),
            })
            .collect();
        Self {
            undelivered: !failed.is_empty(),
            delivered: Vec::new(),
            failed,
        }
    }
}

/// A target's outcome, before it is reported.
struct Done {
    label: Label,
    kind: &'static str,
}

struct Failed {
    label: String,
    kind: Option<&'static str>,
    error: String,
}

pub(super) async fn deliver(run: &Run<'_>, secret: &Secret) -> SecretResult {
    let version = secret.current_version();
    if version.is_empty() {
        info!(secret = %secret.arn, "no version is AWSCURRENT: nothing to deliver");
        return SecretResult::default();
    }
    let pending: Vec<&DeliveryTag> = secret
        .delivery
        .targets
        .iter()
        .filter(|tag| {
            secret
                .delivery
                .undelivered(version)
                .contains(&tag.label.as_str())
        })
        .collect();
    if pending.is_empty() {
        clear_repaired_failure(run, secret).await;
        return SecretResult::default();
    }
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let mut valid = Vec::new();
    for tag in &pending {
        match &tag.target {
            Ok((label, target)) => valid.push((label, target)),
            Err(invalid) => failed.push(Failed {
                label: tag.label.clone(),
                kind: None,
                error: invalid.to_string(),
            }),
        }
    }
    let mut confirmed_current = Instant::now();
    let value = match current_value(run, secret, version).await {
        Ok(value) => value,
        Err(error) => {
            for (label, target) in &valid {
                failed.push(Failed {
                    label: label.to_string(),
                    kind: Some(target.kind().as_str()),
                    error: error.clone(),
                });
            }
            None
        }
    };
    let mut payload = value.as_ref().and_then(|value| payload(value, version));
    if let (Some(value), Some(_)) = (&value, &payload)
        && let Err(refused) = proof::vouch(run, secret, value).await
    {
        warn!(secret = %secret.arn, version, error = %refused, "the current key is not delivered");
        for (label, target) in valid.drain(..) {
            failed.push(Failed {
                label: label.to_string(),
                kind: Some(target.kind().as_str()),
                error: refused.clone(),
            });
        }
        payload = None;
    }
    match &payload {
        Some(payload) => {
            for (label, target) in valid {
                if let Err(moved) =
                    still_current(run, secret, version, &mut confirmed_current).await
                {
                    failed.push(Failed {
                        label: label.to_string(),
                        kind: Some(target.kind().as_str()),
                        error: moved,
                    });
                    continue;
                }
                match write_one(run, secret, label, target, payload).await {
                    Ok(()) => done.push(Done {
                        label: label.clone(),
                        kind: target.kind().as_str(),
                    }),
                    Err(error) => failed.push(Failed {
                        label: label.to_string(),
                        kind: Some(target.kind().as_str()),
                        error,
                    }),
                }
            }
        }
        None if value.is_some() && failed.is_empty() => {
            info!(secret = %secret.arn, "the current version holds no key yet (its first rotation makes one): nothing to deliver");
        }
        None => {}
    }
    failed.sort_by(|a, b| a.label.cmp(&b.label));
    publish(run, secret, version, value.as_ref(), &done, &failed).await;
    record(run, secret, version, &done, &failed).await;
    result_of(secret, version, &done, failed)
}

/// What the run reports of one secret: the targets it delivered, and those it
/// could not, with why.
fn result_of(secret: &Secret, version: &str, done: &[Done], failed: Vec<Failed>) -> SecretResult {
    SecretResult {
        undelivered: !failed.is_empty(),
        delivered: done
            .iter()
            .map(|done| DeliveredTarget {
                secret: secret.arn.clone(),
                target: done.label.to_string(),
                version: version.to_string(),
            })
            .collect(),
        failed: failed
            .into_iter()
            .map(|failed| FailedTarget {
                secret: secret.arn.clone(),
                target: failed.label,
                error: failed.error,
            })
            .collect(),
    }
}

/// The value of the current version, read by its id and stage; an error is
/// what each target's failure says.
async fn current_value(
    run: &Run<'_>,
    secret: &Secret,
    version: &str,
) -> Result<Option<SecretValue>, String> {
    match SecretVersions::new(run.clients, &secret.arn)
        .value(Some(version), AWSCURRENT)
        .await
    {
        Ok(Some(value)) => Ok(Some(value)),
        Ok(None) => Err(format!(
            "version {version} stopped being AWSCURRENT during the run: the next run delivers the version that is"
        )),
        Err(ValueError::Invalid(invalid)) => Err(format!(
            "{invalid}: nothing of it was delivered (fix the value, or let a rotation replace it)"
        )),
        Err(ValueError::Aws(error)) => Err(format!("could not read the current value: {error}")),
    }
}

/// Whether `version` is still `AWSCURRENT` before a target's write: asked of
/// Secrets Manager again when the last answer is older than
/// [`RECHECK_AFTER`] (a slow target, or GitHub's rate limit, may have held the
/// run for minutes, time enough for a rollback), so a run never writes a
/// version that a rollback or a rotation has already replaced.
async fn still_current(
    run: &Run<'_>,
    secret: &Secret,
    version: &str,
    confirmed: &mut Instant,
) -> Result<(), String> {
    if confirmed.elapsed() < RECHECK_AFTER {
        return Ok(());
    }
    let asked = Instant::now();
    match secrets::find(run.clients, &secret.arn).await {
        Ok(Some(now)) if now.current_version() == version => {
            *confirmed = asked;
            Ok(())
        }
        Ok(_) => Err(format!(
            "version {version} stopped being AWSCURRENT during the run: the next run delivers the version that is"
        )),
        Err(error) => Err(format!(
            "could not confirm that version {version} is still AWSCURRENT before writing: {error}"
        )),
    }
}

/// What the targets receive, if the value holds a key.
fn payload<'a>(value: &'a SecretValue, version: &'a str) -> Option<Payload<'a>> {
    Some(Payload {
        version,
        value,
        key_id: value.access_key_id()?,
        secret_access_key: value.secret_access_key()?,
        smtp_password: value.smtp_password(),
    })
}

/// Writes and verifies one target within the run's deadline.
async fn write_one(
    run: &Run<'_>,
    secret: &Secret,
    label: &Label,
    target: &Target,
    payload: &Payload<'_>,
) -> Result<(), String> {
    let kind = target.kind().as_str();
    if !run.may_start() {
        return Err("not started before the run's deadline: the next run delivers it".into());
    }
    let written = run
        .deadline
        .bound(
            TARGET_WRITE_MARGIN,
            target::write(run, secret, target, payload, run.stop_by()),
        )
        .await
        .unwrap_or_else(|| {
            Err("the run's deadline came before the write was verified: the next run writes it again".into())
        });
    match &written {
        Ok(()) => info!(
            secret = %secret.arn,
            target = %label,
            kind,
            version = payload.version,
            access_key_id = payload.key_id,
            "delivered and verified"
        ),
        Err(error) => warn!(
            secret = %secret.arn,
            target = %label,
            kind,
            version = payload.version,
            error = %error,
            "delivery failed: the previous key stays Active until this target holds the current version"
        ),
    }
    written
}

/// The events of the secret's targets, ten to a call.
async fn publish(
    run: &Run<'_>,
    secret: &Secret,
    version: &str,
    value: Option<&SecretValue>,
    done: &[Done],
    failed: &[Failed],
) {
    let subject = match value {
        Some(value) => Subject::new(secret, value, version),
        None => Subject::of_failure(&secret.arn, None, version),
    };
    let new_key = value
        .and_then(SecretValue::access_key_id)
        .unwrap_or_default();
    let events: Vec<Lifecycle> = done
        .iter()
        .map(|done| Lifecycle::Delivered {
            target: done.label.to_string(),
            kind: done.kind.to_string(),
            new_key: new_key.to_string(),
        })
        .chain(failed.iter().map(|failed| Lifecycle::DeliveryFailed {
            target: failed.label.clone(),
            kind: failed.kind.map(str::to_string),
            error: failed.error.clone(),
        }))
        .collect();
    for chunk in events.chunks(EVENTS_PER_CALL) {
        let put = events::publish(run.clients, &run.config.event_bus, &subject, chunk);
        if run.deadline.bound(PROOF_MARGIN, put).await.is_none() {
            warn!(secret = %secret.arn, "no time left before the deadline to put the delivery events");
            return;
        }
    }
}

/// Records what reached where, and the first failure, on the secret (only
/// while `AWSCURRENT` is still on `version`).
async fn record(run: &Run<'_>, secret: &Secret, version: &str, done: &[Done], failed: &[Failed]) {
    let now = match secrets::find(run.clients, &secret.arn).await {
        Ok(Some(now)) => now,
        Ok(None) => return,
        Err(error) => {
            warn!(secret = %secret.arn, error = %error, "could not read the secret again to record the delivery; the next run writes its targets again");
            return;
        }
    };
    if now.current_version() != version {
        record_overwritten(run, &now, version, done).await;
        return;
    }
    let at = unix_now();
    let mut tags: Vec<(&str, String)> = Vec::new();
    let mut record = now.delivery.delivered.clone();
    if !done.is_empty() {
        let targets: Vec<&Label> = now
            .delivery
            .targets
            .iter()
            .filter_map(|tag| tag.target.as_ref().ok().map(|(label, _)| label))
            .collect();
        match DeliveredRecord::confirming(
            now.delivery.delivered.as_ref(),
            targets,
            version,
            done.iter().map(|done| done.label.clone()),
            at,
        ) {
            Ok(confirmed) => {
                tags.push((DELIVERED_TAG, confirmed.to_tag_value()));
                record = Some(confirmed);
            }
            Err(error) => warn!(secret = %secret.arn, error = %error, "cannot record the delivery"),
        }
    }
    if let Some(first) = failed.first() {
        let error = DeliveryError::new(&first.label, at, &first.error);
        let same = now
            .delivery
            .last_error
            .as_ref()
            .is_some_and(|last| last.label == error.label && last.message == error.message);
        if !same {
            tags.push((DELIVERY_ERROR_TAG, error.to_tag_value()));
        }
    }
    if !tags.is_empty() {
        let pairs: Vec<(&str, &str)> = tags
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect();
        if let Err(error) = secrets::tag(run.clients, &secret.arn, &pairs).await {
            warn!(secret = %secret.arn, error = %error, "could not record the delivery; the next run writes its targets again");
            return;
        }
    }
    let holds_all = now
        .delivery
        .targets
        .iter()
        .all(|tag| match (&tag.target, &record) {
            (Ok((label, _)), Some(record)) => record.holds(version, label),
            _ => false,
        });
    if failed.is_empty() && holds_all && now.delivery.last_error.is_some() {
        untag_failure(run, secret).await;
    }
}

/// `AWSCURRENT` moved during the run (a rollback, or a rotation): the targets
/// written hold `version`, which is no longer current, so no record may go on
/// saying they hold another version (the record of the version now current,
/// say, written before this run's writes landed). The next run, which the
/// move's own event starts, writes the current version there again.
async fn record_overwritten(run: &Run<'_>, now: &Secret, version: &str, done: &[Done]) {
    info!(secret = %now.arn, version, current = now.current_version(), "AWSCURRENT moved during the delivery: the targets written are recorded as holding the version written, and the next run delivers the version now current");
    let targets: Vec<&Label> = now
        .delivery
        .targets
        .iter()
        .filter_map(|tag| tag.target.as_ref().ok().map(|(label, _)| label))
        .collect();
    let changed = DeliveredRecord::overwritten(
        now.delivery.delivered.as_ref(),
        targets,
        version,
        done.iter().map(|done| done.label.clone()),
        unix_now(),
    );
    let record = match changed {
        None => return,
        Some(Ok(record)) => record,
        Some(Err(error)) => {
            warn!(secret = %now.arn, error = %error, "cannot record the delivery");
            return;
        }
    };
    let value = record.to_tag_value();
    if let Err(error) =
        secrets::tag(run.clients, &now.arn, &[(DELIVERED_TAG, value.as_str())]).await
    {
        warn!(secret = %now.arn, error = %error, "could not correct the delivery record after AWSCURRENT moved: it may say a target written with the older version holds the current one; untag iam-key-rotation:delivered on the secret to have every target written again");
    }
}

/// A secret whose every target holds the current version keeps no failure.
async fn clear_repaired_failure(run: &Run<'_>, secret: &Secret) {
    if secret.delivery.last_error.is_some() {
        untag_failure(run, secret).await;
    }
}

async fn untag_failure(run: &Run<'_>, secret: &Secret) {
    match secrets::untag(run.clients, &secret.arn, &[DELIVERY_ERROR_TAG]).await {
        Ok(()) => {
            info!(secret = %secret.arn, "every target holds the current version: cleared the last delivery error")
        }
        Err(error) => {
            warn!(secret = %secret.arn, error = %error, "could not clear the last delivery error")
        }
    }
}
