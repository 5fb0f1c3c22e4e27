//! One secret's visit by the sweep: read only what could be due, check every
//! guard a step applies (the user is bound, the secret manages the
//! `AWSPREVIOUS` key in that version, `AWSCURRENT` holds the secret's own key,
//! the labels have not moved), then make at most one transition.

use std::time::Duration;

use tracing::{info, warn};

use super::policy::{Transition, after_delivery, transition};
use crate::aws::Clients;
use crate::aws::account::iam_for_user;
use crate::aws::events;
use crate::aws::iam::UserIam;
use crate::aws::secrets::{self, SecretVersions};
use crate::config::Config;
use crate::error::RotationError;
use crate::key_proof::{Proof, StoredKey};
use crate::model::current_since::{CURRENT_SINCE_TAG, CurrentSince, RollbackStage};
use crate::model::lifecycle::{Lifecycle, Retired, Subject};
use crate::model::secret::{AWSCURRENT, AWSPREVIOUS, Secret};
use crate::model::secret_value::SecretValue;
use crate::model::user::IamUser;
use crate::retire;

/// What the sweep did with one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisitOutcome {
    Nothing,
    Deactivated { key: String, in_use: bool },
    Deleted(String),
    KeptInUse(String),
    Skipped,
    Unfinished,
}

/// One secret's visit.
pub struct Visit<'a> {
    pub clients: &'a Clients,
    pub config: &'a Config,
    /// The secret as the listing saw it.
    pub secret: Secret,
    pub current: &'a SecretValue,
    pub now: i64,
    /// The shortest age at which any transition can be due.
    pub earliest: Duration,
}

/// The `AWSPREVIOUS` key a transition may be due for, and where it stands.
struct Due<'a> {
    user_iam: UserIam<'a>,
    key: String,
    active: bool,
    /// When the `AWSPREVIOUS` version was stored: `AWSCURRENT` left it, or
    /// moved back past it, no earlier than that.
    previous_created: Option<i64>,
}

impl Visit<'_> {
    pub async fn run(&self) -> VisitOutcome {
        match self.visit().await {
            Ok(visit) => visit,
            Err(error) => {
                warn!(
                    secret = %self.secret.arn,
                    error_type = error.kind(),
                    error = %error,
                    "skipped this secret; the next sweep tries again"
                );
                VisitOutcome::Skipped
            }
        }
    }

    async fn visit(&self) -> Result<VisitOutcome, RotationError> {
        let Some(rotated_at) = self.current.created() else {
            return Err(RotationError::invalid_value(
                &self.secret.arn,
                AWSCURRENT,
                "Secrets Manager gave no creation date for it",
            ));
        };
        let age = self.age_since(rotated_at);
        if age < self.earliest {
            return Ok(VisitOutcome::Nothing);
        }
        let Some(due) = self.due_previous_key(age).await? else {
            return Ok(VisitOutcome::Nothing);
        };
        let Some(user) = self.guarded(&due).await? else {
            return Ok(VisitOutcome::Nothing);
        };
        let Some(since) = self.grace_since(&due, &user).await? else {
            return Ok(VisitOutcome::Nothing);
        };
        let plan = self.transition_since(due.active, since);
        if plan == Transition::Nothing {
            return Ok(VisitOutcome::Nothing);
        }
        if !self.labels_unchanged().await? {
            return Ok(VisitOutcome::Skipped);
        }
        self.act(due, plan, since).await
    }

    fn age_since(&self, at: i64) -> Duration {
        Duration::from_secs(self.now.saturating_sub(at).max(0) as u64)
    }

    /// Whether anything may be due `age` after the current version was made
    /// (a lower bound of the time since `AWSCURRENT` moved): the sweep's first
    /// look, before it reads the user's record of the move.
    fn transition(&self, active: bool, age: Duration) -> Transition {
        self.transition_moved(active, age, None)
    }

    /// The transition due now that `AWSCURRENT` moved at `moved_at`.
    fn transition_since(&self, active: bool, moved_at: i64) -> Transition {
        self.transition_moved(active, self.age_since(moved_at), Some(moved_at))
    }

    fn transition_moved(&self, active: bool, age: Duration, moved_at: Option<i64>) -> Transition {
        if self.secret.delivery.has_targets() {
            return self.transition_after_delivery(active, age, moved_at);
        }
        transition(
            active,
            age,
            &self.config.retirement,
            self.config.old_key_action,
        )
    }

    /// A secret with delivery targets (SPEC 14): its previous key waits for
    /// every target to hold the current version, whatever the mode.
    fn transition_after_delivery(
        &self,
        active: bool,
        age: Duration,
        moved_at: Option<i64>,
    ) -> Transition {
        let delivered = self
            .delivered_at_since(moved_at)
            .map(|confirmed| self.age_since(confirmed));
        after_delivery(
            active,
            age,
            delivered,
            &self.config.retirement,
            self.config.old_key_action,
            self.config
                .retire_when_switched
                .then_some(self.config.sweep_interval),
        )
    }

    /// When every delivery target was confirmed holding the current version.
    fn delivered_at(&self) -> Option<i64> {
        self.secret
            .delivery
            .delivered_at(self.secret.current_version())
    }

    /// [`Self::delivered_at`], if it is no older than `AWSCURRENT`'s last move:
    /// a record of the same version from before a rollback by hand (its
    /// targets since written with the newer key, by a run that never recorded
    /// it) says nothing of what they hold now.
    fn delivered_at_since(&self, moved_at: Option<i64>) -> Option<i64> {
        self.delivered_at()
            .filter(|confirmed| moved_at.is_none_or(|moved| *confirmed >= moved))
    }

    /// The `AWSPREVIOUS` key, if a transition may be due for it `age` after
    /// `AWSCURRENT`'s version was created (a lower bound of the time since it
    /// moved). The plan depends only on a key's status and that age, so when
    /// no key besides the current one could be due (the usual hour: the old
    /// key already Inactive and no DELETE_AFTER_HOURS), the previous value
    /// need not be read.
    async fn due_previous_key(&self, age: Duration) -> Result<Option<Due<'_>>, RotationError> {
        let user_iam = iam_for_user(self.clients, &self.secret.arn, self.current)
            .await
            .map_err(|error| RotationError::assume_role_failed(&self.secret.arn, error))?
            .user(&self.secret.arn, self.current.user_name());
        let current_key = self.current.access_key_id();
        let listed = user_iam.list_keys().await?;
        if listed
            .iter()
            .filter(|key| Some(key.id.as_str()) != current_key)
            .all(|key| self.transition(key.active, age) == Transition::Nothing)
        {
            return Ok(None);
        }
        let Some((previous_key, previous_created)) = self.previous_key(current_key).await? else {
            return Ok(None);
        };
        let Some(key) = listed.iter().find(|key| key.id == previous_key) else {
            return Ok(None);
        };
        if self.transition(key.active, age) == Transition::Nothing {
            return Ok(None);
        }
        Ok(Some(Due {
            active: key.active,
            user_iam,
            key: previous_key,
            previous_created,
        }))
    }

    /// The user, once every guard holds: bound to the secret, the secret
    /// manages the `AWSPREVIOUS` key in that version (this function recorded
    /// it as the secret's: SPEC 11, T2 and T6), and `AWSCURRENT` holds a key
    /// the secret manages (whoever may write the value could have pushed the
    /// working key to `AWSPREVIOUS` with a made-up one, or an older key of the
    /// secret's: T3).
    async fn guarded(&self, due: &Due<'_>) -> Result<Option<IamUser>, RotationError> {
        let user = due.user_iam.get_user().await?.ok_or_else(|| {
            RotationError::user_not_found(&self.secret.arn, self.current.user_name())
        })?;
        if self.config.require_user_tag {
            user.check_binding(&self.secret.arn)
                .map_err(|why| RotationError::not_bound(&self.secret.arn, &user.name, why))?;
        }
        let previous_version = self.secret.previous_version().unwrap_or_default();
        if !user.is_managed(
            &due.key,
            &self.secret.arn,
            &[(due.key.as_str(), previous_version)],
        ) {
            warn!(
                secret = %self.secret.arn,
                access_key_id = %due.key,
                "left the AWSPREVIOUS key untouched: this secret does not manage it (no description of this function's names it; it was put in the secret by hand and never proven); delete it by hand once no consumer uses it"
            );
            return Ok(None);
        }
        if !self.current_key_is_the_secrets(&user).await? {
            warn!(
                secret = %self.secret.arn,
                access_key_id = %due.key,
                "left the AWSPREVIOUS key untouched: AWSCURRENT holds no key this secret manages, so the previous one may be the key consumers still use"
            );
            return Ok(None);
        }
        Ok(Some(user))
    }

    /// When `AWSCURRENT` last moved (SPEC 11, T6), which finishSecret and
    /// `keyrot rollback` record. A move without a record (a stage moved by
    /// hand, or a rotation by an earlier version) is seen now: the clock
    /// starts at this sweep, later than the move, never earlier (`None`).
    async fn grace_since(
        &self,
        due: &Due<'_>,
        user: &IamUser,
    ) -> Result<Option<i64>, RotationError> {
        let current_version = self.secret.current_version();
        // A record older than the AWSPREVIOUS version is stale (T6): a later
        // move's record write failed, and AWSCURRENT has moved since.
        if let Some(since) = user
            .current_since()
            .and_then(|record| record.at_if_about(current_version))
            .filter(|at| due.previous_created.is_none_or(|previous| *at >= previous))
        {
            return Ok(Some(since));
        }
        info!(
            secret = %self.secret.arn,
            version = current_version,
            "AWSCURRENT moved without a record of when (by hand, or before this version of the function): the grace starts now"
        );
        // A move back to an older version is a rollback by hand: recorded as
        // one, so that keyrot status and keyrot rollback see it as such.
        let by_hand_rollback = self
            .current
            .created()
            .zip(due.previous_created)
            .is_some_and(|(current, previous)| current < previous);
        let since = match by_hand_rollback {
            true => CurrentSince::rolled_back(current_version, self.now, RollbackStage::Done),
            false => CurrentSince::moved(current_version, self.now),
        }
        .to_tag_value();
        due.user_iam
            .tag(&[(CURRENT_SINCE_TAG, since.as_str())])
            .await?;
        Ok(None)
    }

    /// Makes the one transition the plan names.
    async fn act(
        &self,
        due: Due<'_>,
        plan: Transition,
        since: i64,
    ) -> Result<VisitOutcome, RotationError> {
        let Due {
            user_iam,
            key,
            active,
            ..
        } = due;
        // A key delivered to every target is in use if used after the delivery.
        let since = self.delivered_at_since(Some(since)).unwrap_or(since);
        match plan {
            Transition::Nothing => Ok(VisitOutcome::Nothing),
            Transition::DeactivateIfSwitched => {
                self.deactivate_if_switched(&user_iam, key, since).await
            }
            Transition::DeactivateUnlessUsed { may_keep } => {
                let used =
                    retire::warn_if_still_used(&user_iam, &key, Some(since), Retired::Deactivated)
                        .await;
                if used && may_keep {
                    info!(
                        secret = %self.secret.arn,
                        access_key_id = %key,
                        "kept the previous key Active: a consumer still uses it (it is deactivated anyway after GRACE_MAX_HOURS)"
                    );
                    return Ok(VisitOutcome::KeptInUse(key));
                }
                let Some(how) = retire::deactivate(&user_iam, &key).await? else {
                    return Ok(VisitOutcome::Nothing);
                };
                if self.undone_if_moved(&user_iam, &key).await? {
                    return Ok(VisitOutcome::Skipped);
                }
                self.retired(&key, how).await;
                Ok(VisitOutcome::Deactivated { key, in_use: used })
            }
            Transition::Delete => {
                if !active && self.reactivated_since(&user_iam, &key).await? {
                    return Ok(VisitOutcome::Skipped);
                }
                if active {
                    retire::warn_if_still_used(&user_iam, &key, Some(since), Retired::Deleted)
                        .await;
                }
                if let Some(how) = retire::delete(&user_iam, &key).await? {
                    self.retired(&key, how).await;
                }
                Ok(VisitOutcome::Deleted(key))
            }
        }
    }

    /// `RETIRE_WHEN_SWITCHED`: deactivates the previous key once IAM shows the
    /// current key used after the delivery (`since`) and the previous one not.
    async fn deactivate_if_switched(
        &self,
        user_iam: &UserIam<'_>,
        key: String,
        since: i64,
    ) -> Result<VisitOutcome, RotationError> {
        let Some(current_key) = self.current.access_key_id() else {
            return Ok(VisitOutcome::Nothing);
        };
        let used_after = |last_use: Option<crate::aws::iam::LastUse>| {
            last_use.is_some_and(|used| used.at > since)
        };
        if !used_after(user_iam.last_use(current_key).await)
            || used_after(user_iam.last_use(&key).await)
        {
            return Ok(VisitOutcome::Nothing);
        }
        let Some(how) = retire::deactivate(user_iam, &key).await? else {
            return Ok(VisitOutcome::Nothing);
        };
        if self.undone_if_moved(user_iam, &key).await? {
            return Ok(VisitOutcome::Skipped);
        }
        info!(
            secret = %self.secret.arn,
            access_key_id = %key,
            "RETIRE_WHEN_SWITCHED: the consumers use the delivered key and no longer the previous one"
        );
        self.retired(&key, how).await;
        Ok(VisitOutcome::Deactivated { key, in_use: false })
    }

    /// Just before an Inactive key is deleted, its status once more (SPEC 11,
    /// T9): a rollback reactivates the previous key before it moves
    /// `AWSCURRENT` back to it, and a deletion cannot be undone.
    async fn reactivated_since(
        &self,
        user_iam: &UserIam<'_>,
        key: &str,
    ) -> Result<bool, RotationError> {
        let now_active = user_iam
            .list_keys()
            .await?
            .iter()
            .any(|listed| listed.id == key && listed.active);
        if now_active {
            info!(secret = %self.secret.arn, access_key_id = %key, "the previous key was made Active again since it was listed (a rollback?): not deleted; the next sweep looks afresh");
        }
        Ok(now_active)
    }

    /// Right after a deactivation, the labels once more (SPEC 11, T9): a
    /// rollback that moved `AWSCURRENT` back to this key between the last
    /// look and the write would otherwise leave the secret's current key
    /// Inactive. Then the key is made Active again, as it was a moment ago,
    /// and the next sweep looks afresh. (`keyrot rollback` checks the key's
    /// status after its move, so whichever of the two writes comes second
    /// sees the other.)
    async fn undone_if_moved(
        &self,
        user_iam: &UserIam<'_>,
        key: &str,
    ) -> Result<bool, RotationError> {
        if self.labels_unchanged().await? {
            return Ok(false);
        }
        retire::reactivate(user_iam, key).await?;
        warn!(
            secret = %self.secret.arn,
            access_key_id = %key,
            "the secret's labels moved while its previous key was being deactivated (a rollback, or a rotation): made the key Active again; the next sweep looks afresh"
        );
        Ok(true)
    }

    /// The key the `AWSPREVIOUS` version holds, if it is the same user's (in the
    /// same account) and not the current key, and when that version was stored.
    async fn previous_key(
        &self,
        current_key: Option<&str>,
    ) -> Result<Option<(String, Option<i64>)>, RotationError> {
        let versions = SecretVersions::new(self.clients, &self.secret.arn);
        let Some(previous) = versions.value(None, AWSPREVIOUS).await? else {
            return Ok(None);
        };
        Ok(previous
            .key_of_same_user(self.current)
            .filter(|key| Some(*key) != current_key)
            .map(|key| (key.to_string(), previous.created())))
    }

    /// Whether the `AWSCURRENT` key is this secret's: its stored pair
    /// authenticates as the user (possession: a description alone is a tag
    /// whoever may tag the user can write), and its description names exactly
    /// the current version (SPEC 11, T8: whoever may write the value and kept
    /// an older pair of the secret's can stage it as current again, which
    /// would have the sweep retire the fresh key).
    async fn current_key_is_the_secrets(&self, user: &IamUser) -> Result<bool, RotationError> {
        let Some(key_id) = self.current.access_key_id() else {
            return Ok(false);
        };
        // Described for exactly the current version (or in the short form,
        // which names none): an earlier release's "adopted" names any version,
        // and so would let an old pair staged again pass.
        let arn = &self.secret.arn;
        if !user.describes_exactly_in(key_id, arn, self.secret.current_version())
            && !user.describes_without_version(key_id, arn)
        {
            return Ok(false);
        }
        let Some(key) = StoredKey::of(&self.secret, self.current) else {
            return Ok(false);
        };
        Ok(key.prove(self.clients).await? == Proof::User)
    }

    /// Just before a write: the secret is still rotated by this function, its
    /// labels are where the listing saw them, and no rotation has started.
    /// Anything else means a rotation or an operator is at work: leave it to
    /// the next sweep.
    async fn labels_unchanged(&self) -> Result<bool, RotationError> {
        let now = RotationError::secret_found(
            secrets::find(self.clients, &self.secret.arn).await,
            &self.secret.arn,
        )?;
        let listed = &self.secret;
        let unchanged = now.rotation_enabled
            && listed
                .rotation_lambda_arn
                .as_deref()
                .is_some_and(|function| now.is_rotated_by(function))
            && now.labels_unchanged_since(listed)
            && now.delivery.delivered_at(now.current_version())
                == listed.delivery.delivered_at(listed.current_version());
        if !unchanged {
            info!(secret = %self.secret.arn, "the secret changed during the sweep; the next sweep looks again");
        }
        Ok(unchanged)
    }

    async fn retired(&self, key: &str, how: Retired) {
        let subject = Subject::new(&self.secret, self.current, self.secret.current_version());
        info!(secret = %self.secret.arn, access_key_id = key, action = how.as_str(), "retired the previous key");
        events::publish(
            self.clients,
            &self.config.event_bus,
            &subject,
            &[Lifecycle::retired(key, how)],
        )
        .await;
    }
}
