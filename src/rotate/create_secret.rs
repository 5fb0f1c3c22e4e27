//! createSecret: make a new access key and store it as the `AWSPENDING` version.
//!
//! Room is made first (only keys this secret manages, never `AWSCURRENT`'s), the
//! creation marker is written before `CreateAccessKey` so that a crash right after
//! it leaves a key the retry recognises as its own orphan, the value is stored,
//! and the marker goes last. docs/design.md has the call-by-call crash table.

use tracing::{info, warn};

use super::{Outcome, StepContext, StepReport};
use crate::aws::iam::{CreateKeyFailed, UserIam};
use crate::clock::unix_now;
use crate::error::RotationError;
use crate::key_proof::{Proof, StoredKey};
use crate::model::creation_marker::{CREATING_TAG, CreationMarker};
use crate::model::description::key_description;
use crate::model::lifecycle::Retired;
use crate::model::secret::{AWSCURRENT, AWSPENDING};
use crate::model::secret_value::SecretValue;
use crate::model::user::{AccessKey, IamUser};
use crate::retire;
use crate::rotate::preconditions::VersionState;
use crate::rotate::room::{RoomFor, RoomPlan};

pub async fn create_secret(cx: &StepContext<'_>) -> Result<StepReport, RotationError> {
    if cx.state == VersionState::Current {
        info!("version is already AWSCURRENT; nothing to create");
        return Ok(Outcome::AlreadyCurrent.into());
    }
    let versions = cx.versions();
    if let Some(pending) = versions.value(Some(cx.token), AWSPENDING).await? {
        info!(
            access_key_id = pending.access_key_id(),
            "pending version already has a value; nothing to create"
        );
        return Ok(Outcome::AlreadyDone.into());
    }

    let current = versions.required_value(AWSCURRENT).await?;
    let user_name = current.user_name();
    let user_iam = cx.user_iam(&current).await?;
    let user = cx.get_user(&user_iam, &current).await?;
    cx.check_binding(&user)?;
    let description = key_description(&cx.secret.arn, cx.token)
        .map_err(|too_long| cx.invalid_value(cx.token, too_long.to_string()))?;
    let previous = cx.previous_value().await?;
    let listed = user_iam.list_keys().await?;
    let adopted = adoptable(cx, &user, &listed, &current).await?;
    let plan = plan_room(cx, &user, &listed, &current, previous.as_ref(), adopted);
    // Refused before anything is written: a refusal changes nothing.
    if !plan.leaves_room() {
        return Err(RotationError::UnmanagedKeyBlocks {
            secret: cx.secret.arn.clone(),
            user: user_name.to_string(),
            keys: plan.unmanaged.clone(),
        });
    }
    refuse_while_undelivered(cx, &user, &listed, &plan, &current, previous.as_ref())?;
    if let Some(orphan) = &plan.orphan
        && let Some(stored) = versions.value(Some(cx.token), AWSPENDING).await?
    {
        // Another invocation of this step (one by hand overlapping Secrets
        // Manager's) made that key and has stored it meanwhile: deleting it
        // would leave AWSPENDING naming a deleted key, which no retry mends.
        info!(
            access_key_id = stored.access_key_id(),
            orphan = %orphan,
            "another invocation of this step stored its key meanwhile; nothing to create"
        );
        return Ok(Outcome::AlreadyDone.into());
    }
    let old_key_in_use = make_room(&user_iam, &plan, current.created()).await?;
    let marker = mark_creation(cx, &user_iam, &plan, adopted.map(|key| (user_name, key))).await?;

    let new_key = match user_iam.create_key().await {
        Ok(key) => key,
        Err(failed) => return Err(after_failed_create(&user_iam, &marker, failed).await),
    };
    info!(user = user_name, access_key_id = %new_key.id, "created access key");
    // The marker now names the key, so that from here on a retry takes that
    // key, and no other, for its orphan.
    let named = marker.naming(&new_key.id).to_tag_value();
    user_iam
        .tag(&[
            (new_key.id.as_str(), description.as_str()),
            (CREATING_TAG, named.as_str()),
        ])
        .await?;

    let pending = current.with_key(&new_key.id, &new_key.secret);
    versions
        .put_pending(cx.token, &pending, cx.rotation_token, user_name)
        .await?;
    info!(user = user_name, access_key_id = %new_key.id, "stored the new key as AWSPENDING");
    // The marker stays, naming the new key: a retry finds the value (row 1) and
    // never reads it again, and finishSecret empties it in the call that
    // records the move.
    Ok(StepReport {
        old_key_in_use,
        ..Outcome::Done.into()
    })
}

/// Which keys go to make room. The previous key may go only while AWSCURRENT
/// holds a key this secret manages (described in its version, or about to be
/// adopted): whoever can write the value could otherwise put a made-up key
/// (or none, or an older key of the secret's) in AWSCURRENT, pushing the
/// working key to AWSPREVIOUS, and have it deleted here (SPEC 11, T3).
fn plan_room(
    cx: &StepContext<'_>,
    user: &IamUser,
    listed: &[AccessKey],
    current: &SecretValue,
    previous: Option<&(String, SecretValue)>,
    adopted: Option<&str>,
) -> RoomPlan {
    let user_name = current.user_name();
    let current_key = current.access_key_id();
    let current_managed = current_key
        .is_some_and(|key| user.describes_in(key, &cx.secret.arn, cx.current_version()))
        || adopted.is_some();
    let previous_key = previous.and_then(|(version, previous)| {
        Some((previous.key_of_same_user(current)?, version.as_str()))
    });
    if let Some((previous_key, _)) = previous_key.filter(|_| !current_managed) {
        warn!(
            user = user_name,
            access_key_id = previous_key,
            "keeping the AWSPREVIOUS key: AWSCURRENT holds no key this secret manages, so the previous one may be the key consumers still use; delete it by hand once none does"
        );
    }
    let plan = RoomPlan::new(
        user,
        listed,
        RoomFor {
            secret_arn: &cx.secret.arn,
            token: cx.token,
            current_key,
            previous_key: previous_key.filter(|_| current_managed),
        },
    );
    for key_id in &plan.unmanaged {
        warn!(user = user_name, access_key_id = %key_id, "leaving a key this secret does not manage untouched");
    }
    plan
}

/// While the current version has not reached every delivery target, the
/// consumers of the missing ones still use the previous key: an Active one is
/// not deleted to make room (SPEC 14). The rotation fails `Undelivered`,
/// changing nothing, until `GRACE_MAX_HOURS` after `AWSCURRENT` moved (as the
/// user's record says; without one, the sweep starts that clock). A rotation
/// that deletes no Active previous key goes ahead.
fn refuse_while_undelivered(
    cx: &StepContext<'_>,
    user: &IamUser,
    listed: &[AccessKey],
    plan: &RoomPlan,
    current: &SecretValue,
    previous: Option<&(String, SecretValue)>,
) -> Result<(), RotationError> {
    let undelivered = cx.secret.delivery.undelivered(cx.current_version());
    let Some(previous_key) = previous.and_then(|(_, value)| value.key_of_same_user(current)) else {
        return Ok(());
    };
    let deletes_active = plan.delete.iter().any(|id| id == previous_key)
        && listed
            .iter()
            .any(|key| key.id == previous_key && key.active);
    if undelivered.is_empty() || !deletes_active {
        return Ok(());
    }
    let moved_at = user
        .current_since()
        .and_then(|record| record.at_if_about(cx.current_version()));
    let grace_max = cx.config.retirement.grace_max.as_secs() as i64;
    if moved_at.is_some_and(|at| unix_now() - at >= grace_max) {
        warn!(
            user = current.user_name(),
            access_key_id = previous_key,
            undelivered = ?undelivered,
            "deleting the previous key although some delivery targets do not hold the current version: GRACE_MAX_HOURS have passed since AWSCURRENT moved"
        );
        return Ok(());
    }
    Err(RotationError::Undelivered {
        secret: cx.secret.arn.clone(),
        user: current.user_name().to_string(),
        key: previous_key.to_string(),
        targets: undelivered.into_iter().map(str::to_string).collect(),
    })
}

/// Makes the room the plan names: warns first of a key about to go that a
/// consumer used after `since` (when `AWSCURRENT`'s version was stored),
/// deletes, then untags the descriptions that no longer stay. Says whether it
/// warned.
async fn make_room(
    user_iam: &UserIam<'_>,
    plan: &RoomPlan,
    since: Option<i64>,
) -> Result<bool, RotationError> {
    let mut old_key_in_use = false;
    for key_id in &plan.ask_before_deleting {
        old_key_in_use |=
            retire::warn_if_still_used(user_iam, key_id, since, Retired::Deleted).await;
    }
    for key_id in &plan.delete {
        info!(user = user_iam.user_name(), access_key_id = %key_id, "deleting a key this secret manages that is not AWSCURRENT");
        user_iam.delete_key(key_id).await?;
    }
    user_iam.untag(&plan.untag).await?;
    Ok(old_key_in_use)
}

/// Writes the creation marker (SPEC 11, T4), and the adopted key's (user
/// name, key id) description in the version that holds it, like every key this secret
/// manages, in one `TagUser` just before `CreateAccessKey`.
async fn mark_creation(
    cx: &StepContext<'_>,
    user_iam: &UserIam<'_>,
    plan: &RoomPlan,
    adopted: Option<(&str, &str)>,
) -> Result<CreationMarker, RotationError> {
    let now = unix_now();
    let marker = CreationMarker::new(
        cx.token,
        now,
        cx.deadline
            .remaining_less(std::time::Duration::ZERO)
            .map(|left| now + left.as_secs() as i64 + 1),
        plan.keep.clone(),
    );
    let marker_value = marker.to_tag_value();
    let current_version = cx.current_version();
    let adopted_description = key_description(&cx.secret.arn, current_version)
        .map_err(|too_long| cx.invalid_value(current_version, too_long.to_string()))?;
    let mut tags = vec![(CREATING_TAG, marker_value.as_str())];
    if let Some((user_name, current_key)) = adopted {
        info!(
            user = user_name,
            access_key_id = current_key,
            "adopting the AWSCURRENT key: its stored secret authenticates as the user"
        );
        tags.push((current_key, adopted_description.as_str()));
    }
    user_iam.tag(&tags).await?;
    Ok(marker)
}

/// The `AWSCURRENT` key to adopt, if any: one this secret does not manage yet
/// in this version (the secret was filled by hand before its first rotation, or
/// a described key was moved into it), whose stored pair proves possession by
/// authenticating as the user (SPEC 11, T3). Whoever can
/// write the secret value can name any key of the user, but cannot sign with it
/// without its secret; a key that fails the proof stays unmanaged, so it is
/// never deactivated or deleted.
async fn adoptable<'v>(
    cx: &StepContext<'_>,
    user: &IamUser,
    listed: &[AccessKey],
    current: &'v SecretValue,
) -> Result<Option<&'v str>, RotationError> {
    let Some(key_id) = current.access_key_id() else {
        return Ok(None);
    };
    if !listed.iter().any(|k| k.id == key_id)
        || user.describes_in(key_id, &cx.secret.arn, cx.current_version())
    {
        return Ok(None);
    }
    let refused = |why: &str| {
        warn!(
            user = current.user_name(),
            access_key_id = key_id,
            why,
            "not adopting the AWSCURRENT key: the secret names it without proof of possession, so this secret does not manage it and this function never deactivates or deletes it (delete it by hand once no consumer uses it)"
        );
        Ok(None)
    };
    let Some(key) = StoredKey::of(&cx.secret, current) else {
        return refused("the secret holds no SecretAccessKey for it");
    };
    match key.prove(cx.clients).await? {
        Proof::User => Ok(Some(key_id)),
        Proof::OtherIdentity { .. } => refused("it authenticates as another identity"),
        Proof::Rejected { .. } => {
            refused("its stored SecretAccessKey does not authenticate (wrong, Inactive or deleted)")
        }
    }
}

/// After a failed `CreateAccessKey`, leaves the marker saying exactly what the
/// retry must take for this attempt's key (SPEC 11, T4). AWS refused it
/// outright (a 4xx): nothing was made, the marker goes, so a key made by hand
/// before the retry is never taken for an orphan. A timeout or a 5xx may have
/// made a key: the user's keys say whether; one new key is named in the marker,
/// none clears it. Only when that look fails too does the marker stay as it
/// was, for the retry's time-bounded rule.
async fn after_failed_create(
    user_iam: &UserIam<'_>,
    marker: &CreationMarker,
    failed: CreateKeyFailed,
) -> RotationError {
    let settled = if failed.definite {
        user_iam.untag(&[CREATING_TAG.to_string()]).await
    } else {
        match user_iam.list_keys().await {
            Ok(listed) => {
                let new: Vec<&AccessKey> = listed
                    .iter()
                    .filter(|key| !marker.keys_before.contains(&key.id))
                    .collect();
                match new.as_slice() {
                    [] => user_iam.untag(&[CREATING_TAG.to_string()]).await,
                    [made] => {
                        let named = marker.naming(&made.id).to_tag_value();
                        user_iam.tag(&[(CREATING_TAG, named.as_str())]).await
                    }
                    _ => Ok(()),
                }
            }
            Err(error) => Err(error),
        }
    };
    if let Err(error) = settled {
        warn!(error = %error, "could not settle the creation marker after CreateAccessKey failed; the retry relies on its time bound");
    }
    failed.error.into()
}
