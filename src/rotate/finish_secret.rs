//! finishSecret: prove the new key works, move `AWSCURRENT` to the new version,
//! clear `AWSPENDING`, and retire the previous key per `OLD_KEY_ACTION`.
//!
//! The new key is proven again here (one `GetCallerIdentity` when it already
//! works) because the steps may be invoked by hand without testSecret, and moving
//! `AWSCURRENT` to a key AWS still rejects would cut off every consumer. The label
//! moves next and the old key is retired last, so the old key works until
//! `AWSCURRENT` points at the tested new one. A retry after the move finds the
//! version already `AWSCURRENT`, does not prove it again, reads the old key from
//! `AWSPREVIOUS`, and finishes the clean-up and the retirement (each of which is
//! idempotent).

use std::time::Duration;

use tracing::{info, warn};

use super::{Outcome, StepContext, StepReport};
use crate::aws::iam::UserIam;
use crate::config::OldKeyAction;
use crate::error::RotationError;
use crate::key_proof::{Proof, StoredKey};
use crate::model::creation_marker::CREATING_TAG;
use crate::model::current_since::{CURRENT_SINCE_TAG, CurrentSince};
use crate::model::lifecycle::{Lifecycle, Retired};
use crate::model::secret::{AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::model::secret_value::SecretValue;
use crate::model::user::IamUser;
use crate::retire;
use crate::rotate::preconditions::VersionState;

pub async fn finish_secret(cx: &StepContext<'_>) -> Result<StepReport, RotationError> {
    let versions = cx.versions();
    let (new_value, old_stage) = match cx.state {
        VersionState::Pending => (cx.pending_value().await?, AWSCURRENT),
        VersionState::Current => (
            versions
                .value(Some(cx.token), AWSCURRENT)
                .await?
                .ok_or_else(|| cx.invalid_value(cx.token, "it does not exist"))?,
            AWSPREVIOUS,
        ),
    };
    let user_name = new_value.user_name();
    let new_key = new_value
        .access_key_id()
        .ok_or_else(|| cx.invalid_value(cx.token, "the new version has no AccessKeyId"))?;
    let old_value = versions.value(None, old_stage).await?;
    let user_iam = cx.user_iam(&new_value).await?;
    let user = cx.get_user(&user_iam, &new_value).await?;
    cx.check_binding(&user)?;
    if cx.state == VersionState::Current
        && rolled_back_to(cx.token, &user, &new_value, old_value.as_ref())
    {
        // SPEC 11, T8: whoever may invoke the function must not undo a
        // rollback by retiring the key it rolled back from (or rewrite the
        // record of when AWSCURRENT moved back).
        info!(
            user = user_name,
            access_key_id = new_key,
            "AWSCURRENT was rolled back to this version: nothing to finish and nothing retired (the key rolled back from is AWSPREVIOUS, retired by the sweep's usual rules)"
        );
        return Ok(Outcome::AlreadyCurrent.into());
    }

    let mut propagation_wait = Duration::ZERO;
    if cx.state == VersionState::Pending {
        propagation_wait = cx.prove_key_works(&new_value, AWSPENDING).await?;
        let previous_version = cx.secret.versions_with(AWSCURRENT).first().copied();
        versions
            .move_stage(AWSCURRENT, Some(cx.token), previous_version)
            .await?;
        info!(
            user = user_name,
            access_key_id = new_key,
            previous_version,
            "moved AWSCURRENT to the new version"
        );
    }
    for version in cx.secret.versions_with(AWSPENDING) {
        versions.move_stage(AWSPENDING, None, Some(version)).await?;
        info!(version, "removed AWSPENDING");
    }
    record_the_move(cx, &user_iam, &user).await;

    let old_key = old_value
        .as_ref()
        .and_then(|old| old.key_of_same_user(&new_value))
        .filter(|old_key| *old_key != new_key);
    // One PutEvents for both events, after the retirement; a retry tells
    // consumers again (at least once).
    let mut events = vec![Lifecycle::rotated(new_key, old_key)];
    let mut old_key_in_use = false;
    match old_key {
        Some(old_key) => {
            let retired;
            (retired, old_key_in_use) =
                retire_if_managed(cx, &user_iam, &user, &new_value, old_key).await?;
            events.extend(retired.map(|how| Lifecycle::retired(old_key, how)));
        }
        None => info!(user = user_name, "no previous key to retire"),
    }
    cx.publish(&cx.subject(&new_value), &events).await;
    let outcome = match cx.state {
        VersionState::Current => Outcome::AlreadyCurrent,
        VersionState::Pending => Outcome::Done,
    };
    Ok(StepReport {
        outcome,
        propagation_wait,
        old_key_in_use,
    })
}

/// Whether `AWSCURRENT` is on `version` because a rollback moved it back
/// there: `keyrot rollback` recorded it on the user, or the `AWSPREVIOUS`
/// version is the younger one (a rollback by hand).
fn rolled_back_to(
    version: &str,
    user: &IamUser,
    current: &SecretValue,
    previous: Option<&SecretValue>,
) -> bool {
    let recorded = user
        .rollback_record()
        .is_some_and(|(rolled_back_to, _)| rolled_back_to == version);
    let younger_previous = previous
        .and_then(SecretValue::created)
        .zip(current.created())
        .is_some_and(|(previous, current)| previous > current);
    recorded || younger_previous
}

/// In one TagUser: where the sweep's grace clock starts (SPEC 11, T6), and
/// createSecret's marker, which names this version's key and is emptied now
/// that the key is AWSCURRENT. Best effort: a sweep that finds no record
/// starts the clock itself, later, never earlier, and a marker left behind
/// names only this version's key.
async fn record_the_move(cx: &StepContext<'_>, user_iam: &UserIam<'_>, user: &IamUser) {
    let since = CurrentSince::moved(cx.token, crate::clock::unix_now()).to_tag_value();
    let mut tags = Vec::new();
    if user
        .current_since()
        .is_none_or(|record| record.version != cx.token)
    {
        tags.push((CURRENT_SINCE_TAG, since.as_str()));
    }
    if user
        .creation_marker()
        .is_some_and(|marker| marker.token == cx.token)
    {
        tags.push((CREATING_TAG, ""));
    }
    if !tags.is_empty()
        && let Err(error) = user_iam.tag(&tags).await
    {
        warn!(error = %error, "could not record when AWSCURRENT moved; the sweep will start the grace at its next visit");
    }
}

/// Retires the previous key if this secret manages it (in the version that
/// held it: AWSCURRENT's before the move, AWSPREVIOUS's after it), first
/// warning if a consumer still uses it. Says how it retired it, if it did
/// now, and whether it warned.
async fn retire_if_managed(
    cx: &StepContext<'_>,
    user_iam: &UserIam<'_>,
    user: &IamUser,
    new_value: &SecretValue,
    old_key: &str,
) -> Result<(Option<Retired>, bool), RotationError> {
    let old_version = match cx.state {
        VersionState::Pending => cx.current_version(),
        VersionState::Current => cx.secret.previous_version().unwrap_or_default(),
    };
    if !user.is_managed(old_key, &cx.secret.arn, &[(old_key, old_version)]) {
        warn!(
            user = new_value.user_name(),
            access_key_id = old_key,
            "left the previous key untouched: this secret does not manage it (no description of this function's names it; it was put in the secret by hand and never proven); delete it by hand once no consumer uses it"
        );
        return Ok((None, false));
    }
    if waits_for_delivery(cx, old_key) {
        return Ok((None, false));
    }
    let Some(how) = cx.config.old_key_action.retires_at_finish() else {
        return Ok((retire(cx, user_iam, old_key).await?, false));
    };
    if cx.state == VersionState::Current && !current_key_is_the_secrets(cx, user, new_value).await?
    {
        warn!(
            user = new_value.user_name(),
            access_key_id = old_key,
            "left the previous key untouched: the current version's key is not one this rotation made and proved (its pair does not authenticate as the user, or it is described for another version), so the previous one may be the key consumers still use"
        );
        return Ok((None, false));
    }
    let in_use = retire::warn_if_still_used(user_iam, old_key, new_value.created(), how).await;
    let retired = retire(cx, user_iam, old_key).await?;
    if retired == Some(Retired::Deactivated) && moved_away(cx).await? {
        retire::reactivate(user_iam, old_key).await?;
        warn!(
            access_key_id = old_key,
            "AWSCURRENT moved away from this version while the previous key was being deactivated (a rollback): made the key Active again"
        );
        return Ok((None, in_use));
    }
    Ok((retired, in_use))
}

/// A finishSecret for a version already `AWSCURRENT` (a retry after the move,
/// or an invocation by hand) retires the previous key only if the current key
/// is this rotation's: described for exactly this version, and its pair
/// authenticates as the user (SPEC 11, T3 and T8). Whoever may write the
/// value could otherwise stage any pair, or an older one, as `AWSCURRENT`
/// and have the fresh key retired. The first invocation proved it already.
async fn current_key_is_the_secrets(
    cx: &StepContext<'_>,
    user: &IamUser,
    current: &SecretValue,
) -> Result<bool, RotationError> {
    let Some(key_id) = current.access_key_id() else {
        return Ok(false);
    };
    if !user.describes_exactly_in(key_id, &cx.secret.arn, cx.token) {
        return Ok(false);
    }
    let Some(key) = StoredKey::of(&cx.secret, current) else {
        return Ok(false);
    };
    Ok(key.prove(cx.clients).await? == Proof::User)
}

/// Right after a deactivation (SPEC 11, T9): whether `AWSCURRENT` has left
/// this version since the step read the secret, as a rollback racing a
/// finishSecret invoked by hand would have it. Then the deactivated key is
/// the restored one.
async fn moved_away(cx: &StepContext<'_>) -> Result<bool, RotationError> {
    let now = crate::aws::secrets::find(cx.clients, &cx.secret.arn)
        .await
        .map_err(RotationError::from)?;
    Ok(now.is_some_and(|now| now.current_version() != cx.token))
}

/// A secret with delivery targets keeps its previous key Active, whatever
/// `OLD_KEY_ACTION` says (SPEC 14): consumers that cannot read Secrets Manager
/// hold that key until the delivery function has written the new one to them,
/// and the sweep retires it once every target holds the new version.
fn waits_for_delivery(cx: &StepContext<'_>, old_key: &str) -> bool {
    let targets = cx.secret.delivery.targets.len();
    if targets == 0 {
        return false;
    }
    info!(
        access_key_id = old_key,
        targets,
        old_key_action = cx.config.old_key_action.as_str(),
        "the previous key stays Active until every delivery target holds the new version; the sweep retires it then"
    );
    true
}

/// Retires the previous key per `OLD_KEY_ACTION`; says how, if it did now.
async fn retire(
    cx: &StepContext<'_>,
    user_iam: &UserIam<'_>,
    old_key: &str,
) -> Result<Option<Retired>, RotationError> {
    let action = cx.config.old_key_action;
    let retired = match action {
        OldKeyAction::Deactivate => retire::deactivate(user_iam, old_key).await?,
        OldKeyAction::Delete => retire::delete(user_iam, old_key).await?,
        OldKeyAction::Keep => {
            warn!(
                access_key_id = old_key,
                "OLD_KEY_ACTION=keep: the previous key stays Active until the next rotation"
            );
            None
        }
        OldKeyAction::Grace => {
            info!(
                access_key_id = old_key,
                "OLD_KEY_ACTION=grace: the previous key stays Active; the sweep deactivates it once GRACE_HOURS have passed and no consumer uses it"
            );
            None
        }
    };
    if retired.is_some() {
        info!(
            access_key_id = old_key,
            action = action.as_str(),
            "retired the previous key"
        );
    }
    Ok(retired)
}
