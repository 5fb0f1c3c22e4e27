//! createSecret: make a new access key and store it as the `AWSPENDING` version.
//!
//! Room is made first (only keys this secret manages, never `AWSCURRENT`'s), the
//! creation marker is written before `CreateAccessKey` so that a crash right after
//! it leaves a key the retry recognises as its own orphan, and the value is
//! stored last. docs/design.md has the call-by-call crash table.

use tracing::{info, warn};

use super::{Outcome, StepContext, StepReport};
use crate::error::RotationError;
use crate::iam_keys::{CreationMarker, RoomPlan, key_description};
use crate::iam_names::CREATING_TAG;
use crate::preconditions::VersionState;
use crate::secrets_manager::{AWSCURRENT, AWSPENDING};

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
    let current_key = current.access_key_id();
    let keys = cx.user_iam(&current).await?;
    let user = keys.get_user().await?;
    cx.check_binding(&user, &current)?;
    let description = key_description(&cx.secret.arn, cx.token)?;

    let plan = RoomPlan::new(
        &user,
        &keys.list_keys().await?,
        current_key,
        &cx.secret.arn,
        cx.token,
    );
    let mut old_key_in_use = false;
    for key_id in plan.delete.iter().filter(|id| user.has_description(id)) {
        old_key_in_use |=
            super::warn_if_still_used(&keys, key_id, current.created(), "deleted").await;
    }
    for key_id in &plan.delete {
        info!(user = user_name, access_key_id = %key_id, "deleting a key this secret manages that is not AWSCURRENT");
        keys.delete_key(key_id).await?;
    }
    // Descriptions of this secret's keys that no longer stay, including those of
    // keys a crashed attempt deleted before it could untag them.
    let stale_descriptions: Vec<String> = user
        .managed_key_ids(&cx.secret.arn)
        .into_iter()
        .filter(|id| !plan.keep.contains(id))
        .collect();
    keys.untag(&stale_descriptions).await?;
    for key_id in &plan.unmanaged {
        warn!(user = user_name, access_key_id = %key_id, "leaving a key this secret does not manage untouched");
    }
    if !plan.leaves_room() {
        return Err(RotationError::UnmanagedKeyBlocks {
            secret: cx.secret.arn.clone(),
            user: user_name.to_string(),
            keys: plan.unmanaged.clone(),
        });
    }

    let marker = CreationMarker {
        token: cx.token.to_string(),
        keys_before: plan.keep.clone(),
    }
    .to_tag_value();
    // An AWSCURRENT key put in the secret by hand is adopted: tagged as this
    // secret's, so that the next rotation may delete it once it is AWSPREVIOUS.
    let adopted_description = key_description(&cx.secret.arn, "adopted")?;
    let mut tags = vec![(CREATING_TAG, marker.as_str())];
    let unmanaged_current_key = current_key
        .filter(|id| plan.keep.iter().any(|k| k == id))
        .filter(|id| !user.is_managed_by(id, &cx.secret.arn));
    if let Some(current_key) = unmanaged_current_key {
        info!(
            user = user_name,
            access_key_id = current_key,
            "adopting the AWSCURRENT key"
        );
        tags.push((current_key, adopted_description.as_str()));
    }
    keys.tag(&tags).await?;

    let new_key = keys.create_key().await?;
    info!(user = user_name, access_key_id = %new_key.id, "created access key");
    keys.tag(&[
        (new_key.id.as_str(), description.as_str()),
        (CREATING_TAG, ""),
    ])
    .await?;

    let pending = current.with_key(&new_key.id, &new_key.secret);
    versions
        .put_pending(cx.token, &pending, cx.rotation_token, user_name)
        .await?;
    info!(user = user_name, access_key_id = %new_key.id, "stored the new key as AWSPENDING");
    Ok(StepReport {
        old_key_in_use,
        ..Outcome::Done.into()
    })
}
