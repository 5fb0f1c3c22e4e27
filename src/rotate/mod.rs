//! The four rotation steps. Each one reads the state it needs, decides, and acts in
//! an order chosen so that dying after any AWS call leaves a state the same step
//! (or the whole rotation, with the same token) converges from. docs/design.md
//! walks through that order, call by call, in one table per step.

mod create_secret;
mod finish_secret;
pub mod preconditions;
mod room;
mod set_secret;
mod test_secret;

use std::time::{Duration, Instant};

use crate::aws::Clients;
use crate::aws::account::iam_for_user;
use crate::aws::events;
use crate::aws::iam::UserIam;
use crate::aws::secrets::SecretVersions;
use crate::config::Config;
use crate::deadline::{Deadline, PROOF_MARGIN};
use crate::error::RotationError;
use crate::event::Step;
use crate::key_proof::{Proof, StoredKey};
use crate::model::lifecycle::{Lifecycle, Subject};
use crate::model::secret::{AWSPENDING, AWSPREVIOUS, Secret};
use crate::model::secret_value::SecretValue;
use crate::model::user::IamUser;
use crate::rotate::preconditions::VersionState;
use crate::sensitive::Sensitive;

/// Everything a step needs, gathered once per invocation.
pub struct StepContext<'a> {
    pub clients: &'a Clients,
    pub config: &'a Config,
    pub secret: Secret,
    pub token: &'a str,
    pub rotation_token: Option<&'a Sensitive>,
    pub state: VersionState,
    /// When Lambda will stop the invocation; waits never run past it.
    pub deadline: Deadline,
}

/// What a step did and how long it waited for a new key to propagate: the
/// response, the log line and the metrics are all made from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    pub outcome: Outcome,
    pub propagation_wait: Duration,
    /// A key about to be retired or deleted was used after the secret moved on:
    /// some consumer still reads an old copy of the secret.
    pub old_key_in_use: bool,
}

impl From<Outcome> for StepReport {
    fn from(outcome: Outcome) -> Self {
        Self {
            outcome,
            propagation_wait: Duration::ZERO,
            old_key_in_use: false,
        }
    }
}

impl StepReport {
    fn done_after_waiting(propagation_wait: Duration) -> Self {
        Self {
            outcome: Outcome::Done,
            propagation_wait,
            old_key_in_use: false,
        }
    }
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
pub async fn run(step: Step, cx: &StepContext<'_>) -> Result<StepReport, RotationError> {
    match step {
        Step::Create => create_secret::create_secret(cx).await,
        Step::Set => set_secret::set_secret(cx).await.map(StepReport::from),
        Step::Test => test_secret::test_secret(cx).await,
        Step::Finish => finish_secret::finish_secret(cx).await,
    }
}

impl StepContext<'_> {
    fn versions(&self) -> SecretVersions<'_> {
        SecretVersions::new(self.clients, &self.secret.arn)
    }

    /// IAM calls on the value's user, in its account (assuming its `RoleArn`, if any).
    async fn user_iam<'v>(&'v self, value: &'v SecretValue) -> Result<UserIam<'v>, RotationError> {
        let iam = iam_for_user(self.clients, &self.secret.arn, value)
            .await
            .map_err(|error| RotationError::assume_role_failed(&self.secret.arn, error))?;
        Ok(iam.user(&self.secret.arn, value.user_name()))
    }

    /// The user the value names, which must exist.
    async fn get_user(
        &self,
        user_iam: &UserIam<'_>,
        value: &SecretValue,
    ) -> Result<IamUser, RotationError> {
        user_iam
            .get_user()
            .await?
            .ok_or_else(|| RotationError::user_not_found(&self.secret.arn, value.user_name()))
    }

    /// The user must be bound to this secret by its full ARN (unless
    /// `REQUIRE_USER_TAG=false`).
    fn check_binding(&self, user: &IamUser) -> Result<(), RotationError> {
        if !self.config.require_user_tag {
            return Ok(());
        }
        user.check_binding(&self.secret.arn)
            .map_err(|why| RotationError::not_bound(&self.secret.arn, &user.name, why))
    }

    /// The `AWSPREVIOUS` version's id and value, if there is one other than
    /// `AWSCURRENT`'s.
    async fn previous_value(&self) -> Result<Option<(String, SecretValue)>, RotationError> {
        let Some(previous) = self.secret.previous_version() else {
            return Ok(None);
        };
        let value = self.versions().value(Some(previous), AWSPREVIOUS).await?;
        Ok(value.map(|value| (previous.to_string(), value)))
    }

    /// The id of the version `AWSCURRENT` was on when the step started.
    fn current_version(&self) -> &str {
        self.secret.current_version()
    }

    /// What the lifecycle events of this step name.
    fn subject(&self, value: &SecretValue) -> Subject {
        Subject::new(&self.secret, value, self.token)
    }

    /// Puts a lifecycle event; never fails the step.
    async fn publish(&self, subject: &Subject, events: &[Lifecycle]) {
        events::publish(self.clients, &self.config.event_bus, subject, events).await;
    }

    fn invalid_value(&self, version: &str, reason: impl Into<String>) -> RotationError {
        RotationError::invalid_value(&self.secret.arn, version, reason)
    }

    /// Waits until the key of `value` (the version labelled `version`)
    /// authenticates as its user, up to `PROPAGATION_TIMEOUT_SECONDS` and never
    /// past the invocation's deadline: testSecret does it for the pending key,
    /// and finishSecret again before it moves `AWSCURRENT`, because the steps
    /// may be invoked by hand without testSecret. Returns how long it waited.
    async fn prove_key_works(
        &self,
        value: &SecretValue,
        version: &str,
    ) -> Result<Duration, RotationError> {
        let key = self.stored_key(value, version)?;
        let start = Instant::now();
        let mut give_up_at = start + self.config.propagation_timeout;
        if let Some(probe_until) = self.deadline.less(PROOF_MARGIN) {
            give_up_at = give_up_at.min(probe_until.max(start));
        }
        match key.prove_waiting(self.clients, give_up_at).await? {
            (Proof::User, waited) => Ok(waited),
            (Proof::OtherIdentity { arn }, _) => Err(self.identity_mismatch(value, key.id, arn)),
            (Proof::Rejected { .. }, waited) => Err(RotationError::KeyNotPropagated {
                secret: self.secret.arn.clone(),
                user: value.user_name().to_string(),
                key: key.id.to_string(),
                waited,
            }),
        }
    }

    /// The pair a version's value holds, which it must.
    fn stored_key<'v>(
        &'v self,
        value: &'v SecretValue,
        version: &str,
    ) -> Result<StoredKey<'v>, RotationError> {
        StoredKey::of(&self.secret, value)
            .ok_or_else(|| self.invalid_value(version, "it has no AccessKeyId and SecretAccessKey"))
    }

    fn identity_mismatch(&self, value: &SecretValue, key: &str, actual: String) -> RotationError {
        RotationError::KeyIdentityMismatch {
            secret: self.secret.arn.clone(),
            user: value.user_name().to_string(),
            key: key.to_string(),
            actual,
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
}
