//! testSecret: prove the pending key authenticates as the secret's user, waiting
//! out IAM's propagation delay; or, on a version with no new key yet, Secrets
//! Manager's configuration test, which changes nothing.

use tracing::info;

use super::{Outcome, StepContext, StepReport};
use crate::error::RotationError;
use crate::key_proof::Proof;
use crate::model::secret::{AWSCURRENT, AWSPENDING};
use crate::rotate::preconditions::VersionState;

pub async fn test_secret(cx: &StepContext<'_>) -> Result<StepReport, RotationError> {
    if cx.state == VersionState::Current {
        info!("version is already AWSCURRENT; nothing to test");
        return Ok(Outcome::AlreadyCurrent.into());
    }
    match cx.versions().value(Some(cx.token), AWSPENDING).await? {
        Some(pending) if pending.access_key_id().is_some() => {
            let waited = cx.prove_key_works(&pending, AWSPENDING).await?;
            Ok(StepReport::done_after_waiting(waited))
        }
        _ => test_configuration(cx).await.map(StepReport::from),
    }
}

/// The configuration test: the secret is readable and valid, the user exists and
/// is bound, and the `AWSCURRENT` key, if any, authenticates as the user.
async fn test_configuration(cx: &StepContext<'_>) -> Result<Outcome, RotationError> {
    let current = cx.versions().required_value(AWSCURRENT).await?;
    let user_name = current.user_name();
    let user = cx.get_user(&cx.user_iam(&current).await?, &current).await?;
    cx.check_binding(&user)?;
    if current.access_key_id().is_some() {
        let key = cx.stored_key(&current, AWSCURRENT)?;
        match key.prove(cx.clients).await? {
            Proof::User => {}
            Proof::OtherIdentity { arn } => {
                return Err(cx.identity_mismatch(&current, key.id, arn));
            }
            Proof::Rejected { code } => {
                return Err(RotationError::KeyRejected {
                    secret: cx.secret.arn.clone(),
                    user: user_name.to_string(),
                    key: key.id.to_string(),
                    code,
                });
            }
        }
    }
    info!(user = user_name, "rotation configuration is valid");
    Ok(Outcome::ConfigurationTested)
}
