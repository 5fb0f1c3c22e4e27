//! The four rotation steps. Each one reads the state it needs, decides, and acts in
//! an order chosen so that dying after any AWS call leaves a state the same step
//! (or the whole rotation, with the same token) converges from. README "How a
//! rotation works" walks through that order.

mod create;
mod finish;
mod set;
mod test;

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use crate::Clients;
use crate::account::UserAccount;
use crate::config::Config;
use crate::error::RotationError;
use crate::event::Step;
use crate::iam_keys::UserKeys;
use crate::preconditions::VersionState;
use crate::secret::{SecretValue, Sensitive};
use crate::secrets::{AWSPENDING, SecretInfo, SecretVersions};

/// Everything a step needs, gathered once per invocation.
pub struct StepContext<'a> {
    pub clients: &'a Clients,
    pub config: &'a Config,
    pub secret: SecretInfo,
    pub token: &'a str,
    pub rotation_token: Option<&'a Sensitive>,
    pub state: VersionState,
    /// When Lambda will stop the invocation; waits never run past it.
    pub deadline: Option<Instant>,
    /// How long testSecret waited for the key to propagate, in milliseconds.
    pub propagation_wait: &'a AtomicU64,
}

/// What a step did, for the response and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The token's version is already `AWSCURRENT`: nothing to rotate.
    AlreadyCurrent,
    /// A previous attempt already did this step's work.
    AlreadyDone,
    /// The step did its work.
    Done,
    /// testSecret checked the rotation configuration (no new key to test).
    ConfigurationTested,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyCurrent => "AlreadyCurrent",
            Self::AlreadyDone => "AlreadyDone",
            Self::Done => "Done",
            Self::ConfigurationTested => "ConfigurationTested",
        }
    }
}

/// Runs one step.
pub async fn run(step: Step, cx: &StepContext<'_>) -> Result<Outcome, RotationError> {
    match step {
        Step::Create => create::create_secret(cx).await,
        Step::Set => set::set_secret(cx).await,
        Step::Test => test::test_secret(cx).await,
        Step::Finish => finish::finish_secret(cx).await,
    }
}

impl StepContext<'_> {
    fn versions(&self) -> SecretVersions<'_> {
        SecretVersions::new(&self.clients.secrets, &self.secret.arn)
    }

    /// The IAM client for the value's user (assuming its `RoleArn`, if any).
    async fn user_account(&self, value: &SecretValue) -> Result<UserAccount, RotationError> {
        crate::account::user_account(self.clients, &self.secret, value).await
    }

    fn invalid_value(&self, version: &str, reason: impl Into<String>) -> RotationError {
        RotationError::InvalidSecretValue {
            secret: self.secret.arn.clone(),
            version: version.to_string(),
            reason: reason.into(),
        }
    }

    /// The value of the token's pending version, which createSecret must have stored.
    async fn pending_value(&self) -> Result<SecretValue, RotationError> {
        self.versions()
            .value(Some(self.token), AWSPENDING)
            .await?
            .ok_or_else(|| RotationError::PendingValueMissing {
                secret: self.secret.arn.clone(),
                token: self.token.to_string(),
            })
    }

    /// The account the user's keys must authenticate in.
    fn user_account_id<'v>(&'v self, value: &'v SecretValue) -> Option<&'v str> {
        crate::account::expected_account(&self.secret, value)
    }
}

/// Warns when a key about to be retired was used after `since`, the moment the
/// version that replaces it was stored: some consumer has not picked up the new
/// secret and will break when the key stops working. It never blocks rotation.
async fn warn_if_still_used(keys: &UserKeys<'_>, key_id: &str, since: Option<i64>, action: &str) {
    let Some(since) = since else {
        return;
    };
    if let Some(last_use) = keys.last_use(key_id).await
        && last_use.at > since
    {
        tracing::warn!(
            access_key_id = key_id,
            last_used_at = last_use.at,
            service = %last_use.service,
            region = %last_use.region,
            "the key about to be {action} was used after the secret moved on: a consumer still uses it; point it at the secret's AWSCURRENT value"
        );
    }
}
