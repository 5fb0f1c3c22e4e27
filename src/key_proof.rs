//! Proving that a version's stored pair authenticates as the secret's user:
//! one `GetCallerIdentity` signed with it, or, for a key IAM may still be
//! propagating, the same again with back-off until it works or the wait is
//! over. Shared by the steps (testSecret, finishSecret, the adoption of a
//! key, the configuration test), the sweep (is `AWSCURRENT`'s key the
//! secret's?) and `keyrot rollback` (does the previous key still work?).
//!
//! Whoever may write the value can name any key of the user, but cannot sign
//! with it without its secret: a key that authenticates as the user is in the
//! hands of whoever stored it (SPEC 11, T3).

use std::time::{Duration, Instant};

use tracing::info;

use crate::arn::is_user_arn;
use crate::aws::Clients;
use crate::aws::error::AwsError;
use crate::aws::sts::{Verdict, authenticate};
use crate::backoff::Backoff;
use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;
use crate::sensitive::Sensitive;

/// Most new keys work within seconds: start short, and cap the pause low so that
/// the wait ends soon after the key does. `GetCallerIdentity` needs no permission
/// and is cheap to repeat.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_millis(600);

/// What AWS says of a stored pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// It authenticates as the value's user, in the user's account.
    User,
    /// It authenticates, as someone else.
    OtherIdentity { arn: String },
    /// AWS does not (or not yet) accept it.
    Rejected { code: String },
}

/// A version's stored pair, and whose it must be.
pub struct StoredKey<'v> {
    pub id: &'v str,
    secret: Sensitive,
    secret_arn: &'v str,
    user: &'v str,
    /// The account the key must authenticate in (the `RoleArn`'s, else the
    /// secret's).
    account: Option<&'v str>,
}

impl<'v> StoredKey<'v> {
    /// The pair `value` (a version of `secret`) holds; `None` unless it holds
    /// both an `AccessKeyId` and a `SecretAccessKey`.
    pub fn of(secret: &'v Secret, value: &'v SecretValue) -> Option<Self> {
        Some(Self {
            id: value.access_key_id()?,
            secret: value.secret_access_key()?,
            secret_arn: &secret.arn,
            user: value.user_name(),
            account: secret.user_account(value),
        })
    }

    /// One `GetCallerIdentity` signed with the pair.
    pub async fn prove(&self, clients: &Clients) -> Result<Proof, AwsError> {
        let verdict =
            authenticate(clients, self.id, &self.secret, self.secret_arn, self.user).await?;
        Ok(match verdict {
            Verdict::Authenticated { arn } if is_user_arn(&arn, self.account, self.user) => {
                info!(user = self.user, access_key_id = self.id, caller_arn = %arn, "key authenticates as the user");
                Proof::User
            }
            Verdict::Authenticated { arn } => Proof::OtherIdentity { arn },
            Verdict::Rejected { code } => Proof::Rejected { code },
        })
    }

    /// Proves the pair again and again, backing off, while AWS rejects it (as
    /// it does a new key for a few seconds), until it is accepted or
    /// `give_up_at` passes; then says what AWS last said, and how long the
    /// wait took.
    pub async fn prove_waiting(
        &self,
        clients: &Clients,
        give_up_at: Instant,
    ) -> Result<(Proof, Duration), AwsError> {
        let start = Instant::now();
        let mut backoff = Backoff::new(FIRST_PAUSE, MAX_PAUSE);
        for attempt in 1.. {
            let proof = self.prove(clients).await?;
            let Proof::Rejected { code } = &proof else {
                let waited = whole_millis(start.elapsed());
                info!(
                    user = self.user,
                    access_key_id = self.id,
                    attempt,
                    waited_ms = waited.as_millis() as u64,
                    "key authenticated"
                );
                return Ok((proof, waited));
            };
            let now = Instant::now();
            if now >= give_up_at {
                return Ok((proof, whole_millis(start.elapsed())));
            }
            let pause = backoff.next_pause().min(give_up_at - now);
            info!(
                user = self.user,
                access_key_id = self.id,
                attempt,
                code,
                retry_in_ms = pause.as_millis() as u64,
                "key not accepted yet; IAM is propagating it"
            );
            tokio::time::sleep(pause).await;
        }
        unreachable!("the retry loop only ends by returning")
    }
}

fn whole_millis(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis() as u64)
}
