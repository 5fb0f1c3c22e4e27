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

use super::FleetError;
use crate::arn::is_user_arn;
use crate::aws::Clients;
use crate::aws::account::iam_client_for_user;
use crate::aws::events;
use crate::aws::iam::UserIam;
use crate::aws::secrets::{self, SecretVersions};
use crate::aws::sts::{Verdict, authenticate};
use crate::backoff::Backoff;
use crate::model::current_since::{CURRENT_SINCE_TAG, CurrentSince, RollbackStage};
use crate::model::lifecycle::{Lifecycle, Subject};
use crate::model::secret::{AWSCURRENT, AWSPREVIOUS, Secret};
use crate::model::secret_value::SecretValue;

#[derive(Debug, Clone)]
pub struct RollbackOptions {
    /// The secret's name or ARN.
    pub secret: String,
    pub dry_run: bool,
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
) -> Result<RollbackReport, FleetError> {
    let plan = read(clients, &options.secret).await?;
    let user_name = plan.current.user_name().to_string();
    let refused = |why: String| {
        FleetError::Refused(format!(
            "cannot roll back secret {} (user {user_name}): {why}; nothing was changed",
            plan.info.name
        ))
    };
    let iam = iam_client_for_user(clients, &plan.info.arn, &plan.current).await?;
    let user_iam = UserIam::new(iam, &plan.info.arn, &user_name);
    let user = user_iam.get_user().await?;
    user.check_binding(&plan.info.arn).map_err(|why| {
        refused(crate::error::RotationError::not_bound(&plan.info.arn, &user.name, why).to_string())
    })?;

    let recorded = user.rollback_record();
    let rolled_back_by_keyrot =
        recorded.is_some_and(|(version, _)| version == plan.current_version);
    if rolled_back_by_keyrot || plan.previous.created() > plan.current.created() {
        // Already rolled back (a rerun after a crash, or a rollback by hand):
        // finish what is left, and never roll a rollback back.
        return finish_earlier_rollback(clients, options, &plan, &user_iam, &user).await;
    }

    let Some(restored) = plan.previous.key_of_same_user(&plan.current) else {
        return Err(refused(
            "the AWSPREVIOUS version holds no key of this user; rotate again instead".into(),
        ));
    };
    let listed = user_iam.list_keys().await?;
    let Some(key) = listed.iter().find(|key| key.id == restored) else {
        return Err(refused(format!(
            "the AWSPREVIOUS key {restored} was deleted (OLD_KEY_ACTION=delete, or a later rotation or sweep deleted it), so there is nothing to go back to; rotate again instead"
        )));
    };
    if !user.is_managed(
        restored,
        &plan.info.arn,
        &[(restored, plan.previous_version.as_str())],
    ) {
        return Err(refused(format!(
            "the AWSPREVIOUS key {restored} is not one this secret manages in that version (no description of this function's names it there), so nothing proves it is this secret's to hand back; rotate again instead"
        )));
    }
    let rolled_back = plan.current.access_key_id().map(str::to_string);
    let mut report = RollbackReport {
        secret_arn: plan.info.arn.clone(),
        secret_name: plan.info.name.clone(),
        user: user_name.clone(),
        changed: false,
        restored_access_key_id: restored.to_string(),
        rolled_back_access_key_id: rolled_back.clone(),
        actions: Vec::new(),
    };
    if !key.active {
        report.actions.push(format!(
            "reactivate key {restored} (Inactive since the rotation retired it; if someone deactivated it on purpose, a leaked key say, stop and rotate again instead)"
        ));
    }
    report.actions.extend([
        format!("prove key {restored} authenticates as {user_name}"),
        format!(
            "move AWSCURRENT back to version {} (key {restored}); version {} (key {}) becomes AWSPREVIOUS and stays Active",
            plan.previous_version,
            plan.current_version,
            rolled_back.as_deref().unwrap_or("none")
        ),
        "put an Access Key Rolled Back event".to_string(),
    ]);
    if options.dry_run {
        return Ok(report);
    }

    if !key.active {
        user_iam.activate_key(restored).await?;
        info!(access_key_id = restored, "reactivated the previous key");
    }
    if let Err(why) = prove(clients, &plan, restored, options.propagation_timeout).await {
        if !key.active {
            // Put it back as it was: the rollback changes nothing when it refuses.
            user_iam.deactivate_key(restored).await?;
        }
        return Err(refused(why));
    }
    // The proof may have waited: nothing may have started or moved since.
    let now = secrets::describe(&clients.secrets, &plan.info.arn).await?;
    if !now.labels_unchanged_since(&plan.info) {
        return Err(FleetError::Refused(format!(
            "cannot roll back secret {}: its versions changed while the previous key was being proven (a rotation or an operator at work); run keyrot status and try again. Key {restored} was left Active",
            plan.info.name
        )));
    }
    // Recorded first: the move is then never without a record, and a rerun
    // after a crash knows what it was doing.
    record(&user_iam, &plan.previous_version, RollbackStage::Started).await?;
    SecretVersions::new(&clients.secrets, &plan.info.arn)
        .move_stage(
            AWSCURRENT,
            Some(&plan.previous_version),
            Some(&plan.current_version),
        )
        .await?;
    publish(clients, options, &plan, restored, rolled_back.as_deref()).await;
    record(&user_iam, &plan.previous_version, RollbackStage::Done).await?;
    report.changed = true;
    Ok(report)
}

/// The secret and its two versions; refuses, reading only, what cannot be
/// rolled back.
async fn read(clients: &Clients, secret: &str) -> Result<Plan, FleetError> {
    let info = secrets::describe(&clients.secrets, secret).await?;
    let refused = |why: String| {
        FleetError::Refused(format!(
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
    let current_version = info
        .versions_with(AWSCURRENT)
        .first()
        .map(|v| v.to_string());
    let previous_version = info.previous_version().map(str::to_string);
    let (Some(current_version), Some(previous_version)) = (current_version, previous_version)
    else {
        return Err(refused(
            "it has no AWSPREVIOUS version (it was never rotated); rotate again instead".into(),
        ));
    };
    let versions = SecretVersions::new(&clients.secrets, &info.arn);
    let current = versions.required_value(AWSCURRENT).await?;
    let previous = versions.required_value(AWSPREVIOUS).await?;
    Ok(Plan {
        info,
        current_version,
        previous_version,
        current,
        previous,
    })
}

/// Waits until the key authenticates as the user, as testSecret does.
async fn prove(
    clients: &Clients,
    plan: &Plan,
    key_id: &str,
    timeout: Duration,
) -> Result<(), String> {
    let Some(secret) = plan.previous.secret_access_key() else {
        return Err(format!(
            "the AWSPREVIOUS version holds no SecretAccessKey for key {key_id}; rotate again instead"
        ));
    };
    let user = plan.previous.user_name();
    let account = plan.info.user_account(&plan.previous);
    let give_up_at = Instant::now() + timeout;
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_millis(600));
    loop {
        let verdict = authenticate(&clients.sts, key_id, &secret, &plan.info.arn, user)
            .await
            .map_err(|error| error.to_string())?;
        match verdict {
            Verdict::Authenticated { arn } if is_user_arn(&arn, account, user) => return Ok(()),
            Verdict::Authenticated { arn } => {
                return Err(format!(
                    "the previous key {key_id} authenticates as {arn}, not as IAM user {user}; rotate again instead"
                ));
            }
            Verdict::Rejected { code } if Instant::now() >= give_up_at => {
                return Err(format!(
                    "the previous key {key_id} does not authenticate (AWS answers {code} after {} s); rotate again instead",
                    timeout.as_secs()
                ));
            }
            Verdict::Rejected { .. } => tokio::time::sleep(backoff.next_pause()).await,
        }
    }
}

/// Records when `AWSCURRENT` moved back, where the sweep's grace clock starts,
/// and how far the rollback got.
async fn record(
    user_iam: &UserIam<'_>,
    version: &str,
    stage: RollbackStage,
) -> Result<(), FleetError> {
    let since = CurrentSince::rolled_back(version, crate::clock::unix_now(), stage).to_tag_value();
    user_iam.tag(&[(CURRENT_SINCE_TAG, since.as_str())]).await?;
    Ok(())
}

async fn publish(
    clients: &Clients,
    options: &RollbackOptions,
    plan: &Plan,
    restored: &str,
    rolled_back: Option<&str>,
) {
    let subject = Subject::new(&plan.info, &plan.current, &plan.previous_version);
    events::publish(
        &clients.events,
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
    user: &crate::model::user::IamUser,
) -> Result<RollbackReport, FleetError> {
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
    if options.dry_run {
        return Ok(report);
    }
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
