//! `keyrot status`: one row per rotated secret, with the state an operator acts
//! on and the command that fixes it (judged in `state.rs`).

use aws_sdk_iam::primitives::DateTime;
use futures::{StreamExt, stream};
use serde::Serialize;

use super::ReportError;
use super::delivery::DeliveryStatus;
use super::reader::iam_to_read_user;
use super::settings::{CONCURRENCY, StatusOptions};
use super::state::{Facts, SecretState, unbound_fix, user_elsewhere};
use crate::aws::Clients;
use crate::aws::listing;
use crate::clock::{age_days, now, rfc3339};
use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;

/// One secret's row (the JSON schema of `keyrot status --output json`).
#[derive(Debug, Clone, Serialize)]
pub struct StatusRow {
    /// With `--org` or `--accounts` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The account's name, for tables.
    #[serde(skip)]
    pub account_name: Option<String>,
    pub secret_name: String,
    pub secret_arn: String,
    pub user: String,
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
    /// Secrets whose user could not be read, with why: the caller reports them
    /// and exits with an access error.
    pub unreadable: Vec<String>,
}

/// Visits every secret under the prefix whose value names a user, a page of
/// secrets at a time, and hands each row to `emit` in listing order.
pub async fn status(
    clients: &Clients,
    options: &StatusOptions,
    mut emit: impl FnMut(StatusRow),
) -> Result<StatusSummary, ReportError> {
    let mut summary = StatusSummary::default();
    let now = now();
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
        let values = listing::current_values(clients, &page).await?;
        let mut rows = stream::iter(page.iter().filter_map(|secret| {
            let value = values.get(&secret.arn)?;
            Some(async move {
                let row = build_row(clients, secret, value, options, now).await;
                (&secret.name, row)
            })
        }))
        .buffered(CONCURRENCY);
        while let Some((name, row)) = rows.next().await {
            summary.secrets += 1;
            match row {
                Ok(row) => emit(row),
                Err(error) => summary.unreadable.push(format!("{name}: {error}")),
            }
        }
    }
    Ok(summary)
}

async fn build_row(
    clients: &Clients,
    secret: &Secret,
    value: &SecretValue,
    options: &StatusOptions,
    now: DateTime,
) -> Result<StatusRow, ReportError> {
    let user_name = value.user_name();
    let iam = iam_to_read_user(clients, secret, value, options.reader.as_ref()).await?;
    let user = iam.read_user_and_keys(user_name).await?;
    let current_version = Some(secret.current_version()).filter(|v| !v.is_empty());
    let previous_version = secret.previous_version();
    // One ListSecretVersionIds answers both: when the pending version was made,
    // and whether AWSCURRENT is older than AWSPREVIOUS (rolled back).
    let created = if secret.pending_version().is_some() || previous_version.is_some() {
        listing::versions_created(clients, secret).await?
    } else {
        Default::default()
    };
    let pending_since = secret
        .pending_version()
        .and_then(|version| created.get(version).copied());
    // Rolled back by keyrot (its record names the current version), or by
    // hand (AWSCURRENT older than AWSPREVIOUS).
    let rolled_back = match (current_version, previous_version) {
        (Some(current), Some(previous)) => {
            user.as_ref()
                .and_then(|(u, _)| u.rollback_record())
                .is_some_and(|(version, _)| version == current)
                || created.get(current).zip(created.get(previous)).is_some_and(
                    |(current, previous)| {
                        (current.secs(), current.subsec_nanos())
                            < (previous.secs(), previous.subsec_nanos())
                    },
                )
        }
        _ => false,
    };
    let current_key = value.access_key_id();
    let key = user
        .as_ref()
        .and_then(|(_, keys)| keys.iter().find(|k| Some(k.id.as_str()) == current_key));
    let last_used = match key {
        Some(key) => iam.read_last_used(&key.id).await?,
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
        user: user_name.to_string(),
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
