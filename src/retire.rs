//! Retiring a secret's previous key: one way for finishSecret and the sweep (and
//! for a later createSecret, which deletes it): the in-use warning, then
//! deactivate or delete in the order below.
//!
//! The caller has already shown that the secret manages the key (SPEC 11, T2).
//! Deleting goes key first, description second: the description is half of the
//! proof of ownership, so a crash between the two calls must leave it behind
//! (a later retry or the sweep then finishes the delete, and the next
//! createSecret tidies a description whose key is gone). Untagging first would
//! leave a key that no one could prove was this secret's, and so could never
//! retire.

use tracing::info;

use crate::aws::error::AwsError;
use crate::aws::iam::{Existed, UserIam};
use crate::clock::unix_now;
use crate::model::deactivation::{DEACTIVATED_TAG, Deactivation};
use crate::model::lifecycle::Retired;

/// Makes the key Inactive, then records that the rotation did (so that
/// `keyrot rollback` can tell its deactivations from an incident
/// responder's); `None` when it was already gone (no one is told it was
/// deactivated by us). The record is best effort: without it, a rollback asks
/// for `--force`, the careful side.
pub async fn deactivate(user_iam: &UserIam<'_>, key_id: &str) -> Result<Option<Retired>, AwsError> {
    match user_iam.deactivate_key(key_id).await? {
        Existed::Yes => {
            let record = Deactivation::new(key_id, unix_now()).to_tag_value();
            if let Err(error) = user_iam.tag(&[(DEACTIVATED_TAG, record.as_str())]).await {
                tracing::warn!(access_key_id = key_id, error = %error, "could not record the deactivation: keyrot rollback will ask for --force to reactivate this key");
            }
            Ok(Some(Retired::Deactivated))
        }
        Existed::No => {
            info!(access_key_id = key_id, "the previous key is already gone");
            Ok(None)
        }
    }
}

/// Makes a key Active again that the rotation deactivated a moment ago (a
/// rollback moved `AWSCURRENT` to it meanwhile), and drops the deactivation
/// record, which now says nothing true: kept, a later deactivation by an
/// incident responder would pass for the rotation's.
pub async fn reactivate(user_iam: &UserIam<'_>, key_id: &str) -> Result<(), AwsError> {
    user_iam.activate_key(key_id).await?;
    forget_deactivation(user_iam, key_id).await;
    Ok(())
}

/// Drops the deactivation record (best effort: a record left behind only
/// spares a later rollback its `--force`).
pub async fn forget_deactivation(user_iam: &UserIam<'_>, key_id: &str) {
    if let Err(error) = user_iam.untag(&[DEACTIVATED_TAG.to_string()]).await {
        tracing::warn!(access_key_id = key_id, error = %error, "could not drop the deactivation record");
    }
}

/// Deletes the key, then its description. A key already gone whose description
/// is still there was deleted by an attempt that crashed before untagging: it
/// is reported again (lifecycle events are at least once).
pub async fn delete(user_iam: &UserIam<'_>, key_id: &str) -> Result<Option<Retired>, AwsError> {
    user_iam.delete_key(key_id).await?;
    user_iam.untag(&[key_id.to_string()]).await?;
    Ok(Some(Retired::Deleted))
}

/// Warns when a key about to be retired (`how`: deactivated or deleted) was
/// used after `since`, the moment the version that replaces it was stored:
/// some consumer has not picked up the new secret and will break when the key
/// stops working. Returns whether it warned (the `OldKeyInUse` metric); it
/// never blocks rotation.
pub async fn warn_if_still_used(
    user_iam: &UserIam<'_>,
    key_id: &str,
    since: Option<i64>,
    how: Retired,
) -> bool {
    let Some(since) = since else {
        return false;
    };
    let Some(last_use) = user_iam
        .last_use(key_id)
        .await
        .filter(|used| used.at > since)
    else {
        return false;
    };
    tracing::warn!(
        access_key_id = key_id,
        last_used_at = last_use.at,
        service = %last_use.service,
        region = %last_use.region,
        "the key about to be {} was used after the secret moved on: a consumer still uses it; point it at the secret's AWSCURRENT value",
        how.as_str()
    );
    true
}
