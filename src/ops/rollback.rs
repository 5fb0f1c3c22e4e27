//! `keyrot rollback SECRET`: undo the last rotation while its previous key
//! still exists (SPEC 13).
//!
//! The order is the rotation's own, backwards: the previous key is made to
//! work first (reactivated if it is Inactive, then proven to authenticate as the
//! user, waiting out IAM's propagation as testSecret does), and only then does
//! `AWSCURRENT` move back to it, so `AWSCURRENT` always holds a working key. The
//! key rolled back from stays Active as the new `AWSPREVIOUS`, to be retired by
//! the usual rules; the moment of the move is recorded where the sweep's grace
//! clock reads it. Every write is idempotent: a rerun after a crash finds the
//! secret already rolled back (its `AWSCURRENT` version older than its
//! `AWSPREVIOUS`) and finishes what is left.

use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::info;

use super::OpsError;
use crate::aws::Clients;
use crate::aws::account::iam_for_user;
use crate::aws::events;
use crate::aws::iam::UserIam;
use crate::aws::secrets::{self, SecretVersions, ValueError};
use crate::key_proof::{Proof, StoredKey};
use crate::model::current_since::{CURRENT_SINCE_TAG, CurrentSince, RollbackStage};
use crate::model::delivered::DELIVERED_TAG;
use crate::model::lifecycle::{Lifecycle, Subject};
use crate::model::secret::{AWSCURRENT, AWSPREVIOUS, Secret};
use crate::model::secret_value::SecretValue;
use crate::model::user::{AccessKey, IamUser};

#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// The secret's name or ARN.
    pub secret: String,
    pub dry_run: bool,
    /// Reactivate a previous key that this function did not deactivate.
    pub force: bool,
    /// Where the `Access Key Rolled Back` event goes.
    pub event_bus: String,
    /// Longest wait for the previous key to authenticate (as testSecret's).
    pub propagation_timeout: Duration,
}

/// What `keyrot rollback` did (its JSON).
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    pub secret_arn: String,
    pub secret_name: String,
    pub user: String,
    pub changed: bool,
    pub restored_access_key_id: String,
    pub rolled_back_access_key_id: Option<String>,
    pub actions: Vec<String>,
}

/// The two versions a rollback swaps, read and checked.
struct Plan {
    info: Secret,
    current_version: String,
    previous_version: String,
    current: SecretValue,
    previous: SecretValue,
}

pub async fn rollback(
    clients: &Clients,
    options: &RollbackOptions,
) -> Result<RollbackReport, OpsError> {
    let plan = read(clients, &options.secret).await?;
    let user_name = plan.current.user_name();
    let user_iam = iam_for_user(clients, &plan.info.arn, &plan.current)
        .await
        .map_err(OpsError::assume_role_failed)?
        .user(&plan.info.arn, user_name);
    let user = user_iam
        .get_user()
        .await?
        .ok_or_else(|| OpsError::user_not_found(&plan.info.name, user_name))?;
    user.check_binding(&plan.info.arn).map_err(|why| {
        plan.refused(&format!(
            "the user is not bound to this secret: {}. To do: {}",
            why.detail, why.fix
        ))
    })?;

    let rolled_back_by_keyrot = user
        .rollback_record()
        .is_some_and(|(version, _)| version == plan.current_version);
    if rolled_back_by_keyrot || plan.previous.created() > plan.current.created() {
        // Already rolled back (a rerun after a crash, or a rollback by hand):
        // finish what is left, and never roll a rollback back.
        return finish_earlier_rollback(clients, options, &plan, &user_iam, &user).await;
    }
    let (restored, key) = plan.restorable(&user, &user_iam).await?;
    let deactivated_at = user.deactivated_by_rotation_at(restored);
    if !key.active && deactivated_at.is_none() && !options.force {
        return Err(plan.refused(&format!(
            "the AWSPREVIOUS key {restored} is Inactive, and not by this function (it records every key it deactivates, and has no record of this one): someone deactivated it by hand, an incident responder containing a leak perhaps. Check CloudTrail (UpdateAccessKey of {restored}) first; to reactivate it anyway, run keyrot rollback {} --force",
            plan.info.name
        )));
    }
    let report = plan.report(restored, &key, deactivated_at);
    if options.dry_run {
        return Ok(report);
    }
    roll_back(clients, options, &plan, &user_iam, &key, report).await
}

/// Makes the previous key work, moves `AWSCURRENT` back to it, and records
/// and announces the move.
async fn roll_back(
    clients: &Clients,
    options: &RollbackOptions,
    plan: &Plan,
    user_iam: &UserIam<'_>,
    key: &AccessKey,
    mut report: RollbackReport,
) -> Result<RollbackReport, OpsError> {
    let restored = key.id.as_str();
    if !key.active {
        user_iam.activate_key(restored).await?;
        info!(access_key_id = restored, "reactivated the previous key");
    }
    if let Err(refusal) = plan.prove(clients, options.propagation_timeout).await {
        if !key.active {
            // Put it back as it was: the rollback changes nothing when it refuses.
            user_iam.deactivate_key(restored).await?;
        }
        return Err(refusal);
    }
    // The proof may have waited: nothing may have started or moved since.
    let now = secrets::find(clients, &plan.info.arn)
        .await?
        .ok_or_else(|| OpsError::secret_not_found(&plan.info.name))?;
    if !now.labels_unchanged_since(&plan.info) {
        return Err(OpsError::Refused(format!(
            "cannot roll back secret {}: its versions changed while the previous key was being proven (a rotation or an operator at work); run keyrot status and try again. Key {restored} was left Active",
            plan.info.name
        )));
    }
    // Recorded first: the move is then never without a record, and a rerun
    // after a crash knows what it was doing.
    record(user_iam, &plan.previous_version, RollbackStage::Started).await?;
    forget_deliveries(clients, &plan.info).await?;
    SecretVersions::new(clients, &plan.info.arn)
        .move_stage(
            AWSCURRENT,
            Some(&plan.previous_version),
            Some(&plan.current_version),
        )
        .await?;
    if !keep_restored_key_active(user_iam, restored, &mut report).await? {
        // Deleted meanwhile (a sweep that listed it Inactive and past
        // DELETE_AFTER_HOURS): AWSCURRENT goes back to the key it left,
        // which still works.
        SecretVersions::new(clients, &plan.info.arn)
            .move_stage(
                AWSCURRENT,
                Some(&plan.current_version),
                Some(&plan.previous_version),
            )
            .await?;
        return Err(plan.refused(&format!(
            "the previous key {restored} was deleted while the rollback ran (a sweep retiring it): AWSCURRENT was moved back to the key it had; rotate again instead"
        )));
    }
    let rolled_back = plan.current.access_key_id();
    publish(clients, options, plan, restored, rolled_back).await;
    record(user_iam, &plan.previous_version, RollbackStage::Done).await?;
    report.changed = true;
    Ok(report)
}

/// The secret and its two versions; refuses, reading only, what cannot be
/// rolled back.
async fn read(clients: &Clients, secret: &str) -> Result<Plan, OpsError> {
    let info = secrets::find(clients, secret)
        .await?
        .ok_or_else(|| OpsError::secret_not_found(secret))?;
    let refused = |why: String| {
        OpsError::Refused(format!(
            "cannot roll back secret {}: {why}; nothing was changed",
            info.name
        ))
    };
    if let Some(pending) = info.pending_version() {
        return Err(refused(format!(
            "a rotation is under way (version {pending} carries AWSPENDING): wait for it to finish, or cancel it (aws secretsmanager cancel-rotate-secret --secret-id {}) and roll back then",
            info.name
        )));
    }
    let current_version = Some(info.current_version())
        .filter(|version| !version.is_empty())
        .map(str::to_string);
    let previous_version = info.previous_version().map(str::to_string);
    let (Some(current_version), Some(previous_version)) = (current_version, previous_version)
    else {
        return Err(refused(
            "it has no AWSPREVIOUS version (it was never rotated); rotate again instead".into(),
        ));
    };
    let versions = SecretVersions::new(clients, &info.arn);
    let unusable = |error: ValueError| error.worded(OpsError::unusable_value);
    let current = versions
        .required_value(AWSCURRENT)
        .await
        .map_err(unusable)?;
    let previous = versions
        .required_value(AWSPREVIOUS)
        .await
        .map_err(unusable)?;
    Ok(Plan {
        info,
        current_version,
        previous_version,
        current,
        previous,
    })
}

impl Plan {
    /// A refusal, saying why and that nothing was changed.
    fn refused(&self, why: &str) -> OpsError {
        OpsError::Refused(format!(
            "cannot roll back secret {} (user {}): {why}; nothing was changed",
            self.info.name,
            self.current.user_name()
        ))
    }

    /// The key to restore: the `AWSPREVIOUS` key, which must be the user's,
    /// still exist, and be one this secret manages in that version.
    async fn restorable(
        &self,
        user: &IamUser,
        user_iam: &UserIam<'_>,
    ) -> Result<(&str, AccessKey), OpsError> {
        let Some(restored) = self.previous.key_of_same_user(&self.current) else {
            return Err(self.refused(
                "the AWSPREVIOUS version holds no key of this user; rotate again instead",
            ));
        };
        let listed = user_iam.list_keys().await?;
        let Some(key) = listed.into_iter().find(|key| key.id == restored) else {
            return Err(self.refused(&format!(
                "the AWSPREVIOUS key {restored} was deleted (OLD_KEY_ACTION=delete, or a later rotation or sweep deleted it), so there is nothing to go back to; rotate again instead"
            )));
        };
        if !user.is_managed(
            restored,
            &self.info.arn,
            &[(restored, self.previous_version.as_str())],
        ) {
            return Err(self.refused(&format!(
                "the AWSPREVIOUS key {restored} is not one this secret manages in that version (no description of this function's names it there), so nothing proves it is this secret's to hand back; rotate again instead"
            )));
        }
        Ok((restored, key))
    }

    /// What the rollback will do, before it does it.
    fn report(
        &self,
        restored: &str,
        key: &AccessKey,
        deactivated_at: Option<i64>,
    ) -> RollbackReport {
        let user_name = self.current.user_name();
        let rolled_back = self.current.access_key_id();
        let mut actions = Vec::new();
        if !key.active {
            actions.push(match deactivated_at {
                Some(at) => format!(
                    "reactivate key {restored} (Inactive since {}, when the rotation retired it)",
                    crate::clock::rfc3339(&aws_smithy_types::DateTime::from_secs(at))
                ),
                None => format!(
                    "reactivate key {restored} (--force: Inactive, and not by this function; if someone deactivated it on purpose, a leaked key say, stop and rotate again instead)"
                ),
            });
        }
        actions.extend([
            format!("prove key {restored} authenticates as {user_name}"),
            format!(
                "move AWSCURRENT back to version {} (key {restored}); version {} (key {}) becomes AWSPREVIOUS and stays Active",
                self.previous_version,
                self.current_version,
                rolled_back.unwrap_or("none")
            ),
            "put an Access Key Rolled Back event".to_string(),
        ]);
        if self.info.delivery.has_targets() {
            actions.insert(actions.len() - 2, FORGET_DELIVERIES.to_string());
        }
        RollbackReport {
            secret_arn: self.info.arn.clone(),
            secret_name: self.info.name.clone(),
            user: user_name.to_string(),
            changed: false,
            restored_access_key_id: restored.to_string(),
            rolled_back_access_key_id: rolled_back.map(str::to_string),
            actions,
        }
    }

    /// Waits until the previous key authenticates as the user, as testSecret
    /// does; refuses, saying why, if it does not (or if AWS would not say).
    async fn prove(&self, clients: &Clients, timeout: Duration) -> Result<(), OpsError> {
        let key_id = self.previous.access_key_id().unwrap_or_default();
        let Some(key) = StoredKey::of(&self.info, &self.previous) else {
            return Err(self.refused(&format!(
                "the AWSPREVIOUS version holds no SecretAccessKey for key {key_id}; rotate again instead"
            )));
        };
        let user = self.previous.user_name();
        let give_up_at = Instant::now() + timeout;
        let why = match key.prove_waiting(clients, give_up_at).await {
            Ok((Proof::User, _)) => return Ok(()),
            Ok((Proof::OtherIdentity { arn }, _)) => format!(
                "the previous key {key_id} authenticates as {arn}, not as IAM user {user}; rotate again instead"
            ),
            Ok((Proof::Rejected { code }, _)) => format!(
                "the previous key {key_id} does not authenticate (AWS answers {code} after {} s); rotate again instead",
                timeout.as_secs()
            ),
            Err(error) => error.to_string(),
        };
        Err(self.refused(&why))
    }
}

/// Records when `AWSCURRENT` moved back, where the sweep's grace clock starts,
/// and how far the rollback got.
async fn record(
    user_iam: &UserIam<'_>,
    version: &str,
    stage: RollbackStage,
) -> Result<(), OpsError> {
    let since = CurrentSince::rolled_back(version, crate::clock::unix_now(), stage).to_tag_value();
    user_iam.tag(&[(CURRENT_SINCE_TAG, since.as_str())]).await?;
    Ok(())
}

/// Right after the move, the restored key's status once more (SPEC 11, T9):
/// a sweep that looked before the move may have deactivated it since the
/// proof. The sweep looks at the labels after its write, and this looks at
/// the key after the move, so whichever write comes second sees the other.
/// `false` when the key is gone altogether.
async fn keep_restored_key_active(
    user_iam: &UserIam<'_>,
    restored: &str,
    report: &mut RollbackReport,
) -> Result<bool, OpsError> {
    let keys = user_iam.list_keys().await?;
    let Some(key) = keys.iter().find(|key| key.id == restored) else {
        return Ok(false);
    };
    // The rotation's deactivation of this key is undone: its record says
    // nothing true any more.
    crate::retire::forget_deactivation(user_iam, restored).await;
    if !key.active {
        user_iam.activate_key(restored).await?;
        info!(
            access_key_id = restored,
            "a sweep deactivated the restored key during the rollback: made it Active again"
        );
        report.actions.push(format!(
            "reactivate key {restored} (a sweep deactivated it while the rollback ran)"
        ));
    }
    Ok(true)
}

/// What the dry run says of [`forget_deliveries`].
const FORGET_DELIVERIES: &str = "forget the delivery record (iam-key-rotation:delivered), so the delivery function writes the restored key to every target again";

/// Drops the secret's delivery record before `AWSCURRENT` moves back. The
/// record may say a target holds the restored version while it holds the key
/// rolled back from (a delivery run that wrote it and crashed, or was cut
/// short, before recording): believed, the sweep would retire that key from
/// under the target. With no record, every target is written again, by the
/// run the `Access Key Rolled Back` event starts.
async fn forget_deliveries(clients: &Clients, secret: &Secret) -> Result<(), OpsError> {
    if secret.delivery.has_targets() || secret.delivery.delivered.is_some() {
        secrets::untag(clients, &secret.arn, &[DELIVERED_TAG]).await?;
        info!(secret = %secret.name, "forgot the delivery record: every target is written again");
    }
    Ok(())
}

/// Puts the `Access Key Rolled Back` event of the move to `restored`'s version.
async fn publish(
    clients: &Clients,
    options: &RollbackOptions,
    plan: &Plan,
    restored: &str,
    rolled_back: Option<&str>,
) {
    let subject = Subject::new(&plan.info, &plan.current, &plan.previous_version);
    events::publish(
        clients,
        &options.event_bus,
        &subject,
        &[Lifecycle::RolledBack {
            restored: restored.to_string(),
            rolled_back: rolled_back.unwrap_or_default().to_string(),
        }],
    )
    .await;
}

/// The secret is already on its previous key. A rerun after a crash finishes
/// the record of the move and the event; otherwise there is nothing to do.
async fn finish_earlier_rollback(
    clients: &Clients,
    options: &RollbackOptions,
    plan: &Plan,
    user_iam: &UserIam<'_>,
    user: &IamUser,
) -> Result<RollbackReport, OpsError> {
    // Here AWSCURRENT is the restored version and AWSPREVIOUS the one rolled back.
    let restored = plan.current.access_key_id().unwrap_or_default().to_string();
    let rolled_back = plan
        .previous
        .key_of_same_user(&plan.current)
        .map(str::to_string);
    let recorded = user.rollback_record().is_some_and(|(version, stage)| {
        version == plan.current_version && stage == RollbackStage::Done
    });
    let mut report = RollbackReport {
        secret_arn: plan.info.arn.clone(),
        secret_name: plan.info.name.clone(),
        user: plan.current.user_name().to_string(),
        changed: false,
        restored_access_key_id: restored.clone(),
        rolled_back_access_key_id: rolled_back.clone(),
        actions: Vec::new(),
    };
    if recorded {
        info!(
            secret = %plan.info.name,
            "already rolled back: AWSCURRENT holds the key the last rotation replaced; to move forward, fix the consumer and rotate again"
        );
        return Ok(report);
    }
    report.actions = vec![
        format!(
            "record that AWSCURRENT moved back to version {}",
            plan.current_version
        ),
        "put an Access Key Rolled Back event".to_string(),
    ];
    if plan.info.delivery.has_targets() {
        report.actions.insert(0, FORGET_DELIVERIES.to_string());
    }
    if options.dry_run {
        return Ok(report);
    }
    forget_deliveries(clients, &plan.info).await?;
    // The previous version's plan, seen from the other side.
    let swapped = Plan {
        info: plan.info.clone(),
        current_version: plan.previous_version.clone(),
        previous_version: plan.current_version.clone(),
        current: plan.previous.clone(),
        previous: plan.current.clone(),
    };
    publish(
        clients,
        options,
        &swapped,
        &restored,
        rolled_back.as_deref(),
    )
    .await;
    record(user_iam, &plan.current_version, RollbackStage::Done).await?;
    report.changed = true;
    Ok(report)
}
