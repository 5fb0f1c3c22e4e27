//! testSecret: prove the pending key authenticates as the secret's user, waiting
//! out IAM's propagation delay; or, on a version with no new key yet, Secrets
//! Manager's configuration test, which changes nothing.

use tracing::info;

use super::key_proof::{KeyUnderTest, prove_key_works};
use super::{Outcome, StepContext, StepReport};
use crate::aws::sts::{Verdict, authenticate};
use crate::error::RotationError;
use crate::model::secret::{AWSCURRENT, AWSPENDING};
use crate::rotate::preconditions::VersionState;

pub async fn test_secret(cx: &StepContext<'_>) -> Result<StepReport, RotationError> {
    if cx.state == VersionState::Current {
        info!("version is already AWSCURRENT; nothing to test");
        return Ok(Outcome::AlreadyCurrent.into());
    }
    match cx.versions().value(Some(cx.token), AWSPENDING).await? {
        Some(pending) if pending.access_key_id().is_some() => {
            let waited = prove_key_works(cx, &pending, AWSPENDING).await?;
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
    let user = cx.user_iam(&current).await?.get_user().await?;
    cx.check_binding(&user)?;
    if current.access_key_id().is_some() {
        let key = KeyUnderTest::from_value(cx, &current, AWSCURRENT)?;
        match authenticate(
            &cx.clients.sts,
            key.id,
            &key.secret,
            &cx.secret.arn,
            user_name,
        )
        .await?
        {
            Verdict::Authenticated { arn } => key.check_identity(cx, &current, &arn)?,
            Verdict::Rejected { code } => {
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
