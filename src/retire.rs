//! Retiring a secret's previous key: one way for finishSecret and the sweep.
//!
//! The caller has already shown that the secret manages the key (SPEC 11, T2).
//! Deleting goes key first, description second: the description is half of the
//! proof of ownership, so a crash between the two calls must leave it behind
//! (a later retry or the sweep then finishes the delete, and the next
//! createSecret tidies a description whose key is gone). Untagging first would
//! leave a key that no one could prove was this secret's, and so could never
//! retire.

use tracing::info;

use crate::error::RotationError;
use crate::iam_keys::{Existed, UserIam};
use crate::lifecycle::Retired;

/// Makes the key Inactive; `None` when it was already gone (no one is told it
/// was deactivated by us).
pub async fn deactivate(
    keys: &UserIam<'_>,
    key_id: &str,
) -> Result<Option<Retired>, RotationError> {
    match keys.deactivate_key(key_id).await? {
        Existed::Yes => Ok(Some(Retired::Deactivated)),
        Existed::No => {
            info!(access_key_id = key_id, "the previous key is already gone");
            Ok(None)
        }
    }
}

/// Deletes the key, then its description. A key already gone whose description
/// is still there was deleted by an attempt that crashed before untagging: it
/// is reported again (lifecycle events are at least once).
pub async fn delete(keys: &UserIam<'_>, key_id: &str) -> Result<Option<Retired>, RotationError> {
    keys.delete_key(key_id).await?;
    keys.untag(&[key_id.to_string()]).await?;
    Ok(Some(Retired::Deleted))
}
