//! testSecret: prove the pending key authenticates as the secret's user, waiting
//! out IAM's propagation delay; or, on a version with no new key yet, Secrets
//! Manager's configuration test, which changes nothing.

use std::time::{Duration, Instant};

use tracing::info;

use super::{Outcome, StepContext};
use crate::error::RotationError;
use crate::key_check::{Verdict, authenticate, is_user_arn};
use crate::preconditions::VersionState;
use crate::secret::{SecretValue, Sensitive};
use crate::secrets::{AWSCURRENT, AWSPENDING};

pub async fn test_secret(cx: &StepContext<'_>) -> Result<Outcome, RotationError> {
    if cx.state == VersionState::Current {
        info!("version is already AWSCURRENT; nothing to test");
        return Ok(Outcome::AlreadyCurrent);
    }
    match cx.versions().value(Some(cx.token), AWSPENDING).await? {
        Some(pending) if pending.access_key_id().is_some() => test_pending_key(cx, &pending).await,
        _ => test_configuration(cx).await,
    }
}

async fn test_pending_key(
    cx: &StepContext<'_>,
    pending: &SecretValue,
) -> Result<Outcome, RotationError> {
    let user = pending.user_name();
    let key = KeyUnderTest::from_value(cx, pending, AWSPENDING)?;
    let arn = wait_until_authenticated(cx, user, &key).await?;
    key.check_identity(cx, pending, &arn)?;
    info!(user, access_key_id = key.id, caller_arn = %arn, "pending key authenticates as the user");
    Ok(Outcome::Done)
}

/// The configuration test: the secret is readable and valid, the user exists and
/// is bound, and the `AWSCURRENT` key, if any, authenticates as the user.
async fn test_configuration(cx: &StepContext<'_>) -> Result<Outcome, RotationError> {
    let current = cx.versions().required_value(AWSCURRENT).await?;
    let user_name = current.user_name();
    let account = cx.user_account(&current).await?;
    let user = account.keys(&cx.secret.arn, user_name).get_user().await?;
    user.check_binding(&cx.secret, cx.config.require_user_tag)?;
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

struct KeyUnderTest<'v> {
    id: &'v str,
    secret: Sensitive,
}

impl<'v> KeyUnderTest<'v> {
    fn from_value(
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
    fn check_identity(
        &self,
        cx: &StepContext<'_>,
        value: &SecretValue,
        arn: &str,
    ) -> Result<(), RotationError> {
        if is_user_arn(arn, cx.user_account_id(value), value.user_name()) {
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

/// Time kept free before the invocation's deadline, to report the failure.
const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// Calls `GetCallerIdentity` with the key until AWS accepts it, backing off, and
/// gives up at `PROPAGATION_TIMEOUT_SECONDS` or just before the invocation's
/// deadline, whichever comes first.
async fn wait_until_authenticated(
    cx: &StepContext<'_>,
    user: &str,
    key: &KeyUnderTest<'_>,
) -> Result<String, RotationError> {
    let start = Instant::now();
    let mut give_up_at = start + cx.config.propagation_timeout;
    if let Some(deadline) = cx.deadline {
        give_up_at = give_up_at.min(deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(start));
    }
    let mut backoff = Backoff::default();
    for attempt in 1.. {
        let code =
            match authenticate(&cx.clients.sts, key.id, &key.secret, &cx.secret.arn, user).await? {
                Verdict::Authenticated { arn } => {
                    cx.propagation_wait.store(
                        start.elapsed().as_millis() as u64,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    info!(
                        user,
                        access_key_id = key.id,
                        attempt,
                        waited_ms = start.elapsed().as_millis() as u64,
                        "key authenticated"
                    );
                    return Ok(arn);
                }
                Verdict::Rejected { code } => code,
            };
        let now = Instant::now();
        if now >= give_up_at {
            return Err(RotationError::KeyNotPropagated {
                secret: cx.secret.arn.clone(),
                user: user.to_string(),
                key: key.id.to_string(),
                waited: Duration::from_millis(start.elapsed().as_millis() as u64),
            });
        }
        let pause = backoff.next_delay(fastrand::f64()).min(give_up_at - now);
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

/// Exponential back-off with jitter: short first waits, because most keys work
/// within seconds, and a low cap (0.6 s), so that the wait ends soon after the key
/// does. `GetCallerIdentity` needs no permission and is cheap to repeat.
#[derive(Debug, Clone)]
struct Backoff {
    next: Duration,
}

const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_millis(600);

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_DELAY }
    }
}

impl Backoff {
    /// The next pause: between half and all of the current interval (`unit` in
    /// [0, 1) picks where), then the interval doubles up to the cap.
    fn next_delay(&mut self, unit: f64) -> Duration {
        let interval = self.next;
        self.next = (interval * 2).min(MAX_DELAY);
        interval / 2 + interval.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_short_grows_and_is_capped() {
        let mut backoff = Backoff::default();
        let lows: Vec<u128> = (0..6)
            .map(|_| backoff.next_delay(0.0).as_millis())
            .collect();
        assert_eq!(lows, vec![125, 250, 300, 300, 300, 300]);
        let mut backoff = Backoff::default();
        let highs: Vec<u128> = (0..5)
            .map(|_| backoff.next_delay(0.999_999).as_millis())
            .collect();
        assert_eq!(highs, vec![249, 499, 599, 599, 599]);
    }
}
