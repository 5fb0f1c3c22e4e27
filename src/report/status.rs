//! `keyrot status`: one row per rotated secret, with the state an operator acts
//! on and the command that fixes it (judged in `state.rs`).
//!
//! Calls per secret, at fleet scale: one `ListAccessKeys` (the listing and the
//! values come 100 and 20 to a call, the users and last uses once for the
//! account: `account_reads.rs`); a rotation under way, or a move of
//! `AWSCURRENT` that the user's current-since record does not account for,
//! costs one `ListSecretVersionIds` more.

use std::collections::HashMap;

use aws_sdk_iam::primitives::DateTime;
use futures::{StreamExt, stream};
use serde::Serialize;

use super::ReportError;
use super::account_reads::{ACCOUNT_READS_FROM, AccountReads};
use super::delivery::DeliveryStatus;
use super::reader::iam_to_read_user;
use super::rotation_log::{RotationLog, last_failure, log_command, log_group_of};
use super::settings::{CONCURRENCY, StatusOptions};
use super::state::{
    Facts, SecretState, invalid_value_fix, unbound_fix, unreadable_fix, user_elsewhere,
};
use crate::aws::Clients;
use crate::aws::listing::{self, ValueRead};
use crate::aws::logs;
use crate::clock::{age_days, now, rfc3339};
use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;
use crate::model::user::{AccessKey, IamUser, MAX_KEYS_PER_USER};

/// One secret's row (the JSON schema of `keyrot status --output json`).
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    /// With `--org` or `--accounts`; null otherwise (one shape whatever the flags).
    pub account: Option<String>,
    /// The account's name, for tables.
    #[serde(skip)]
    pub account_name: Option<String>,
    pub secret_name: String,
    pub secret_arn: String,
    /// Null when the value names none (`invalid-value`).
    pub user: Option<String>,
    pub rotation_enabled: bool,
    pub schedule: String,
    pub last_rotated: Option<String>,
    pub next_rotation: Option<String>,
    pub current_key_id: Option<String>,
    pub current_key_age_days: Option<f64>,
    pub current_key_last_used: Option<String>,
    pub state: SecretState,
    pub fix: Option<String>,
    /// Its delivery targets (SPEC 14), null without any.
    pub delivery: Option<DeliveryStatus>,
}

/// What a status run found besides its rows.
#[derive(Debug, Default)]
pub struct StatusSummary {
    pub secrets: usize,
    /// What could not be read beyond the rows (none today: every secret's
    /// failure is its row's `unreadable` state); the caller reports them.
    pub unreadable: Vec<String>,
}

/// Visits every secret under the prefix (rotated by `--function-arn`, if
/// given), a page of secrets at a time, and hands each row to `emit` in
/// listing order. Every secret gets a row: one whose value is not this tool's,
/// or that could not be read, says so in its state.
pub async fn status(
    clients: &Clients,
    options: &StatusOptions,
    mut emit: impl FnMut(StatusRow),
) -> Result<StatusSummary, ReportError> {
    let mut summary = StatusSummary::default();
    let now = now();
    let mut account: Option<AccountReads> = None;
    let mut pages = listing::SecretPages::new(clients, Some(&options.prefix));
    while let Some(page) = pages.next().await? {
        let page: Vec<Secret> = page
            .into_iter()
            .filter(|s| {
                options
                    .function_arn
                    .as_deref()
                    .is_none_or(|function| s.is_rotated_by(function))
            })
            .collect();
        let values = listing::read_current_values(clients, &page).await?;
        if account.is_none() && summary.secrets == 0 && page.len() >= ACCOUNT_READS_FROM {
            account = Some(AccountReads::fetch(clients).await);
        }
        let account = account.as_ref();
        let mut rows = stream::iter(page.iter().map(|secret| {
            let read = values.get(&secret.arn);
            async move { row_of(clients, secret, read, options, account, now).await }
        }))
        .buffered(CONCURRENCY);
        while let Some(row) = rows.next().await {
            summary.secrets += 1;
            emit(row);
        }
    }
    Ok(summary)
}

/// The secret's row, whatever could be read of it.
async fn row_of(
    clients: &Clients,
    secret: &Secret,
    read: Option<&ValueRead>,
    options: &StatusOptions,
    account: Option<&AccountReads>,
    now: DateTime,
) -> StatusRow {
    let value = match read {
        Some(ValueRead::Value(value)) => value,
        Some(ValueRead::Invalid(reason)) => {
            return bare_row(
                secret,
                None,
                SecretState::InvalidValue,
                invalid_value_fix(secret, reason),
            );
        }
        Some(ValueRead::Unreadable(error)) => {
            return bare_row(
                secret,
                None,
                SecretState::Unreadable,
                unreadable_fix(error.operation, &error.code, &error.message),
            );
        }
        None => {
            return bare_row(
                secret,
                None,
                SecretState::Unreadable,
                "Secrets Manager gave no answer for its value: run keyrot status again".into(),
            );
        }
    };
    // What was read for the whole account is the caller's own account's.
    let account = account.filter(|_| value.role_arn().is_none());
    match build_row(clients, secret, value, options, account, now).await {
        Ok(row) => row,
        Err(ReportError::Aws(error)) => bare_row(
            secret,
            Some(value.user_name()),
            SecretState::Unreadable,
            unreadable_fix(error.operation, &error.code, &error.message),
        ),
        Err(ReportError::Refused(why)) => bare_row(
            secret,
            Some(value.user_name()),
            SecretState::Unreadable,
            why,
        ),
    }
}

/// A row with what the listing says of the secret, and a state that needs no
/// more.
fn bare_row(secret: &Secret, user: Option<&str>, state: SecretState, fix: String) -> StatusRow {
    StatusRow {
        account: None,
        account_name: None,
        secret_name: secret.name.clone(),
        secret_arn: secret.arn.clone(),
        user: user.map(str::to_string),
        rotation_enabled: secret.rotation_enabled,
        schedule: secret.schedule(),
        last_rotated: secret.last_rotated.as_ref().map(rfc3339),
        next_rotation: secret.next_rotation().as_ref().map(rfc3339),
        current_key_id: None,
        current_key_age_days: None,
        current_key_last_used: None,
        state,
        fix: Some(fix),
        delivery: DeliveryStatus::of(secret),
    }
}

/// A key of the user that leaves the next rotation no room: IAM allows two
/// keys, createSecret deletes only this secret's previous key (SPEC 11, T2),
/// so two keys that are the current one or no key of this secret's block it.
/// Judged from the description tags and the version labels the listing gave
/// (no call more): a key described as the `AWSPREVIOUS` version's counts as
/// the secret's, as createSecret would find when it reads that version.
fn blocking_key<'k>(
    user: &IamUser,
    keys: &'k [AccessKey],
    secret: &Secret,
    current_key: Option<&str>,
) -> Option<&'k str> {
    if secret.pending_version().is_some() {
        return None;
    }
    let previous = secret.previous_version();
    let staying: Vec<&AccessKey> = keys
        .iter()
        .filter(|key| {
            Some(key.id.as_str()) == current_key
                || !previous.is_some_and(|version| user.describes_in(&key.id, &secret.arn, version))
        })
        .collect();
    if staying.len() < MAX_KEYS_PER_USER {
        return None;
    }
    staying
        .iter()
        .find(|key| Some(key.id.as_str()) != current_key)
        .map(|key| key.id.as_str())
}

/// What the rotation function's log says of the rotation under way since
/// `since` (one `FilterLogEvents`, for a secret with a pending version only).
async fn read_rotation_log(
    clients: &Clients,
    secret: &Secret,
    since: Option<DateTime>,
    now: &DateTime,
) -> Option<RotationLog> {
    let log_group = log_group_of(secret.rotation_lambda_arn.as_deref()?)?;
    // A minute before the version was made, for clocks that disagree.
    let since_ms = since.unwrap_or(*now).secs() * 1000 - 60_000;
    let command = log_command(&log_group, &secret.arn, since_ms);
    Some(
        match logs::lines_naming(clients, &log_group, &secret.arn, since_ms).await {
            Ok(lines) => RotationLog {
                command,
                failure: last_failure(&lines),
                unread: None,
            },
            Err(error) => RotationLog {
                command,
                failure: None,
                unread: Some(format!("{}: {}", error.code, error.message)),
            },
        },
    )
}

/// Rolled back by keyrot (its record names the current version), or by hand
/// (AWSCURRENT older than AWSPREVIOUS).
fn is_rolled_back(
    user: Option<&IamUser>,
    current: Option<&str>,
    previous: Option<&str>,
    created: &HashMap<String, DateTime>,
) -> bool {
    let (Some(current), Some(previous)) = (current, previous) else {
        return false;
    };
    user.and_then(IamUser::rollback_record)
        .is_some_and(|(version, _)| version == current)
        || created
            .get(current)
            .zip(created.get(previous))
            .is_some_and(|(current, previous)| {
                (current.secs(), current.subsec_nanos())
                    < (previous.secs(), previous.subsec_nanos())
            })
}

/// When the secret's versions were made, if the row needs it: the user's
/// current-since record, when it names the current version, says whether a
/// rollback put it there; otherwise one `ListSecretVersionIds` answers both
/// when the pending version was made and whether `AWSCURRENT` is older than
/// `AWSPREVIOUS` (rolled back by hand).
async fn versions_created(
    clients: &Clients,
    secret: &Secret,
    user: Option<&IamUser>,
) -> Result<HashMap<String, DateTime>, ReportError> {
    let current = secret.current_version();
    let recorded = user
        .and_then(IamUser::current_since)
        .is_some_and(|record| !current.is_empty() && record.version == current);
    if secret.pending_version().is_some() || (secret.previous_version().is_some() && !recorded) {
        Ok(listing::versions_created(clients, secret).await?)
    } else {
        Ok(HashMap::new())
    }
}

async fn build_row(
    clients: &Clients,
    secret: &Secret,
    value: &SecretValue,
    options: &StatusOptions,
    account: Option<&AccountReads>,
    now: DateTime,
) -> Result<StatusRow, ReportError> {
    let user_name = value.user_name();
    let iam = iam_to_read_user(clients, secret, value, options.reader.as_ref()).await?;
    let user = match account.and_then(|account| account.user(user_name)) {
        Some(found) => Some((found.clone(), iam.read_keys(user_name).await?)),
        None => iam.read_user_and_keys(user_name).await?,
    };
    let current_version = Some(secret.current_version()).filter(|v| !v.is_empty());
    let previous_version = secret.previous_version();
    let created = versions_created(clients, secret, user.as_ref().map(|(u, _)| u)).await?;
    let pending_since = secret
        .pending_version()
        .and_then(|version| created.get(version).copied());
    let log = match secret.pending_version() {
        Some(_) if options.read_rotation_log => {
            read_rotation_log(clients, secret, pending_since, &now).await
        }
        _ => None,
    };
    let rolled_back = is_rolled_back(
        user.as_ref().map(|(u, _)| u),
        current_version,
        previous_version,
        &created,
    );
    let current_key = value.access_key_id();
    let key = user
        .as_ref()
        .and_then(|(_, keys)| keys.iter().find(|k| Some(k.id.as_str()) == current_key));
    let last_used = match key {
        Some(key) => match account.and_then(|account| account.last_used(user_name, key)) {
            Some(reported) => reported,
            None => iam.read_last_used(&key.id).await?,
        },
        None => None,
    };

    let delivery = DeliveryStatus::of(secret);
    let facts = Facts {
        secret,
        user: user_name,
        user_exists: user.is_some(),
        unbound: user
            .as_ref()
            .and_then(|(u, _)| unbound_fix(u, secret, user_elsewhere(secret, value))),
        current_key,
        current_key_works: key.is_some_and(|k| k.active),
        blocking_key: user
            .as_ref()
            .and_then(|(u, keys)| blocking_key(u, keys, secret, current_key)),
        log: log.as_ref(),
        pending: secret.pending_version().map(|version| {
            let minutes = pending_since
                .map(|since| (age_days(&since, &now) * 1440.0).max(0.0))
                .unwrap_or(0.0);
            (version, minutes)
        }),
        overdue: secret
            .next_rotation()
            .is_some_and(|next| next.secs() < now.secs()),
        rolled_back,
        stuck_after_minutes: options.stuck_after.as_secs_f64() / 60.0,
        // A secret with no key yet has nothing to deliver (its first rotation
        // makes one, and delivers it).
        undelivered: delivery
            .as_ref()
            .filter(|_| current_key.is_some())
            .and_then(|delivery| delivery.fix(secret)),
    };
    let (state, fix) = facts.judge();
    Ok(StatusRow {
        account: None,
        account_name: None,
        secret_name: secret.name.clone(),
        secret_arn: secret.arn.clone(),
        user: Some(user_name.to_string()),
        rotation_enabled: secret.rotation_enabled,
        schedule: secret.schedule(),
        last_rotated: secret.last_rotated.as_ref().map(rfc3339),
        next_rotation: secret.next_rotation().as_ref().map(rfc3339),
        current_key_id: current_key.map(str::to_string),
        current_key_age_days: key
            .and_then(|k| k.created.as_ref())
            .map(|c| age_days(c, &now)),
        current_key_last_used: last_used.as_ref().map(rfc3339),
        state,
        fix,
        delivery,
    })
}
