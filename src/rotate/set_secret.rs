//! setSecret: IAM made the key in createSecret, so there is nothing to set; confirm
//! the pending key exists, belongs to the user and is Active, so that a broken
//! state is reported here rather than after a wait in testSecret.

use tracing::info;

use super::{Outcome, StepContext};
use crate::error::RotationError;
use crate::rotate::preconditions::VersionState;

pub async fn set_secret(cx: &StepContext<'_>) -> Result<Outcome, RotationError> {
    if cx.state == VersionState::Current {
        info!("version is already AWSCURRENT; nothing to set");
        return Ok(Outcome::AlreadyCurrent);
    }
    let pending = cx.pending_value().await?;
    let user_name = pending.user_name();
    let key_id = pending
        .access_key_id()
        .ok_or_else(|| cx.invalid_value(cx.token, "the pending version has no AccessKeyId"))?;
    // ListAccessKeys lists only this user's keys: finding the key proves ownership.
    let keys = cx.user_iam(&pending).await?.list_keys().await?;
    let problem = match keys.iter().find(|key| key.id == key_id) {
        Some(key) if key.active => None,
        Some(_) => Some("is Inactive"),
        None => Some("does not exist"),
    };
    if let Some(problem) = problem {
        return Err(RotationError::PendingKeyUnusable {
            secret: cx.secret.arn.clone(),
            user: user_name.to_string(),
            key: key_id.to_string(),
            problem,
        });
    }
    info!(
        user = user_name,
        access_key_id = key_id,
        "pending key exists and is Active"
    );
    Ok(Outcome::Done)
}
