//! Proving that a version's key authenticates as the secret's user, waiting out
//! IAM's propagation delay: testSecret does it for the pending key, and
//! finishSecret does it again before it moves `AWSCURRENT`, because the steps may
//! be invoked by hand without testSecret.

use std::time::{Duration, Instant};

use tracing::info;

use super::StepContext;
use crate::arn::is_user_arn;
use crate::aws::sts::{Verdict, authenticate};
use crate::backoff::Backoff;
use crate::deadline::PROOF_MARGIN;
use crate::error::RotationError;
use crate::model::secret_value::SecretValue;
use crate::sensitive::Sensitive;

/// Most new keys work within seconds: start short, and cap the pause low so that
/// the wait ends soon after the key does. `GetCallerIdentity` needs no permission
/// and is cheap to repeat.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_millis(600);

/// The key id and secret of one version's value.
pub(super) struct KeyUnderTest<'v> {
    pub id: &'v str,
    pub secret: Sensitive,
}

impl<'v> KeyUnderTest<'v> {
    pub fn from_value(
        cx: &StepContext<'_>,
        value: &'v SecretValue,
        version: &str,
    ) -> Result<Self, RotationError> {
        match (value.access_key_id(), value.secret_access_key()) {
            (Some(id), Some(secret)) => Ok(Self { id, secret }),
            _ => Err(cx.invalid_value(version, "it has no AccessKeyId and SecretAccessKey")),
        }
    }

    /// The key must authenticate as the value's user, in the user's account.
    pub fn check_identity(
        &self,
        cx: &StepContext<'_>,
        value: &SecretValue,
        arn: &str,
    ) -> Result<(), RotationError> {
        let account = cx.secret.user_account(value);
        if is_user_arn(arn, account, value.user_name()) {
            return Ok(());
        }
        Err(RotationError::KeyIdentityMismatch {
            secret: cx.secret.arn.clone(),
            user: value.user_name().to_string(),
            key: self.id.to_string(),
            actual: arn.to_string(),
        })
    }
}

/// Waits until the key of `value` (the version labelled `version`) authenticates,
/// then checks it is the user's. Returns how long it waited.
pub(super) async fn prove_key_works(
    cx: &StepContext<'_>,
    value: &SecretValue,
    version: &str,
) -> Result<Duration, RotationError> {
    let user = value.user_name();
    let key = KeyUnderTest::from_value(cx, value, version)?;
    let (arn, waited) = wait_until_authenticated(cx, user, &key).await?;
    key.check_identity(cx, value, &arn)?;
    info!(user, access_key_id = key.id, caller_arn = %arn, "key authenticates as the user");
    Ok(waited)
}

/// Calls `GetCallerIdentity` with the key until AWS accepts it, backing off, and
/// gives up at `PROPAGATION_TIMEOUT_SECONDS` or just before the invocation's
/// deadline, whichever comes first. Returns the caller ARN and the time waited.
async fn wait_until_authenticated(
    cx: &StepContext<'_>,
    user: &str,
    key: &KeyUnderTest<'_>,
) -> Result<(String, Duration), RotationError> {
    let start = Instant::now();
    let mut give_up_at = start + cx.config.propagation_timeout;
    if let Some(probe_until) = cx.deadline.less(PROOF_MARGIN) {
        give_up_at = give_up_at.min(probe_until.max(start));
    }
    let mut backoff = Backoff::new(FIRST_PAUSE, MAX_PAUSE);
    for attempt in 1.. {
        let code =
            match authenticate(&cx.clients.sts, key.id, &key.secret, &cx.secret.arn, user).await? {
                Verdict::Authenticated { arn } => {
                    let waited = whole_millis(start.elapsed());
                    info!(
                        user,
                        access_key_id = key.id,
                        attempt,
                        waited_ms = waited.as_millis() as u64,
                        "key authenticated"
                    );
                    return Ok((arn, waited));
                }
                Verdict::Rejected { code } => code,
            };
        let now = Instant::now();
        if now >= give_up_at {
            return Err(RotationError::KeyNotPropagated {
                secret: cx.secret.arn.clone(),
                user: user.to_string(),
                key: key.id.to_string(),
                waited: whole_millis(start.elapsed()),
            });
        }
        let pause = backoff.next_pause().min(give_up_at - now);
        info!(
            user,
            access_key_id = key.id,
            attempt,
            code,
            retry_in_ms = pause.as_millis() as u64,
            "key not accepted yet; IAM is propagating it"
        );
        tokio::time::sleep(pause).await;
    }
    unreachable!("the retry loop only ends by returning")
}

fn whole_millis(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis() as u64)
}
