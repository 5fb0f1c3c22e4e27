//! `keyrot audit`: every access key of every IAM user (under a path), its age,
//! status, last use and the secret that manages it, and the findings a
//! compliance job fails on.
//!
//! Calls: the secrets are read a page of 100 and 20 values at a time, last uses
//! come from one credential report, and each user with keys costs two calls
//! (`GetUser`, which brings the tags that name each key's secret, and
//! `ListAccessKeys`, for the key ids the report lacks). Users the report shows
//! without keys cost nothing.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_iam::primitives::DateTime;
use futures::{StreamExt, stream};
use serde::Serialize;

use super::inventory::{self, CredentialReport, SecretEntry};
use super::time::{age_days, now, rfc3339};
use super::{CONCURRENCY, FleetError};
use crate::Clients;
use crate::iam_keys::AccessKey;
use crate::iam_keys::{IamUser, described_secret};

#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// An Active key older than this (exact age, in days) that no secret manages
    /// is a finding.
    pub max_age_days: f64,
    /// Only users under this IAM path.
    pub path: String,
    /// A pending version older than this is a stuck rotation.
    pub stuck_after: Duration,
}

/// One access key (the `keys` of `keyrot audit --output json`).
#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    pub user: String,
    pub access_key_id: String,
    pub status: &'static str,
    pub age_days: Option<f64>,
    pub last_used: Option<String>,
    pub managed_by: Option<String>,
}

/// Something a compliance job fails on.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub user: String,
    pub access_key_id: Option<String>,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct AuditReport {
    pub users: usize,
    pub keys: usize,
    pub findings: Vec<Finding>,
    /// Users that could not be read, with why.
    pub unreadable: Vec<String>,
}

/// What the audit needs to know of one secret.
#[derive(Debug)]
struct SecretSummary {
    name: String,
    /// Why it no longer rotates, if it does not.
    not_rotating: Option<String>,
}

/// The secrets that manage keys: by ARN, and by the key id their current value holds.
#[derive(Debug, Default)]
struct Secrets {
    by_arn: HashMap<String, SecretSummary>,
    by_current_key: HashMap<String, String>,
}

impl Secrets {
    /// The secret that manages a key: the one the key's description tag names, or
    /// the one whose current value holds it.
    fn manager_of(&self, user: &IamUser, key_id: &str) -> Option<&SecretSummary> {
        user.tags
            .get(key_id)
            .and_then(|description| described_secret(description))
            .and_then(|arn| self.by_arn.get(arn))
            .or_else(|| {
                let arn = self.by_current_key.get(key_id)?;
                self.by_arn.get(arn)
            })
    }
}

/// Audits the account, handing every key to `emit` as it is read (so memory does
/// not grow with the keys), and returns the findings.
pub async fn audit(
    clients: &Clients,
    options: &AuditOptions,
    mut emit: impl FnMut(KeyRow),
    progress: impl Fn(u64),
) -> Result<AuditReport, FleetError> {
    let now = now();
    let secrets = read_secrets(clients, options, &now).await?;
    let report = CredentialReport::fetch(&clients.iam).await?;
    let mut audit = AuditReport::default();
    let mut pages = clients
        .iam
        .list_users()
        .path_prefix(&options.path)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| FleetError::aws("ListUsers", &options.path, &error))?;
        let names: Vec<&str> = page.users().iter().map(|u| u.user_name()).collect();
        progress(names.len() as u64);
        audit.users += names.len();
        let mut users = stream::iter(
            names
                .into_iter()
                .filter(|name| !report.has_no_keys(name))
                .map(|name| {
                    let (report, secrets, now) = (&report, &secrets, &now);
                    async move {
                        let audited = read_user(clients, name, report, secrets, options, now).await;
                        (name, audited)
                    }
                }),
        )
        .buffered(CONCURRENCY);
        while let Some((name, result)) = users.next().await {
            match result {
                Ok((rows, findings)) => {
                    audit.keys += rows.len();
                    rows.into_iter().for_each(&mut emit);
                    audit.findings.extend(findings);
                }
                Err(error) => audit.unreadable.push(format!("{name}: {error}")),
            }
        }
    }
    Ok(audit)
}

/// Every secret whose current value names a user, summarised.
async fn read_secrets(
    clients: &Clients,
    options: &AuditOptions,
    now: &DateTime,
) -> Result<Secrets, FleetError> {
    let mut secrets = Secrets::default();
    let mut pages = inventory::SecretPages::new(&clients.secrets, None);
    while let Some(page) = pages.next().await? {
        let values = inventory::current_values(&clients.secrets, &page).await?;
        for entry in &page {
            let Some(value) = values.get(&entry.arn) else {
                continue;
            };
            if let Some(key_id) = value.access_key_id() {
                secrets
                    .by_current_key
                    .insert(key_id.to_string(), entry.arn.clone());
            }
            let not_rotating = why_not_rotating(clients, entry, options, now).await?;
            secrets.by_arn.insert(
                entry.arn.clone(),
                SecretSummary {
                    name: entry.name.clone(),
                    not_rotating,
                },
            );
        }
    }
    Ok(secrets)
}

async fn why_not_rotating(
    clients: &Clients,
    entry: &SecretEntry,
    options: &AuditOptions,
    now: &DateTime,
) -> Result<Option<String>, FleetError> {
    if !entry.rotation_enabled {
        return Ok(Some("its rotation is disabled".to_string()));
    }
    let Some(version) = entry.pending_version() else {
        return Ok(None);
    };
    let since = inventory::version_created(&clients.secrets, entry, version).await?;
    // Clocks differ a little: a version "from the future" is a new one.
    let minutes = since
        .map(|s| (age_days(&s, now) * 1440.0).max(0.0))
        .unwrap_or(0.0);
    Ok((minutes >= options.stuck_after.as_secs_f64() / 60.0)
        .then(|| format!("its rotation has been stuck for {minutes:.0} min")))
}

type UserAudit = (Vec<KeyRow>, Vec<Finding>);

async fn read_user(
    clients: &Clients,
    name: &str,
    report: &CredentialReport,
    secrets: &Secrets,
    options: &AuditOptions,
    now: &DateTime,
) -> Result<UserAudit, FleetError> {
    let Some((user, keys)) = inventory::user_and_keys(&clients.iam, name).await? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut rows = Vec::with_capacity(keys.len());
    let mut findings = Vec::new();
    let mut active_managers = Vec::new();
    for key in &keys {
        let last_used = last_use(clients, report, name, key).await?;
        let manager = secrets.manager_of(&user, &key.id);
        if key.active {
            active_managers.push(manager.map(|m| m.name.as_str()));
        }
        let age = key.created.as_ref().map(|created| age_days(created, now));
        if key.active && manager.is_none() && age.is_some_and(|age| age > options.max_age_days) {
            findings.push(Finding {
                kind: "unmanaged-old-key",
                user: name.to_string(),
                access_key_id: Some(key.id.clone()),
                detail: format!(
                    "Active for {:.1} days (limit {}) and no secret manages it: enroll the user (keyrot enroll {name} --function-arn <ARN>) or delete the key once unused",
                    age.unwrap_or_default(),
                    options.max_age_days
                ),
            });
        }
        if let Some(reason) = manager.and_then(|m| m.not_rotating.as_ref().map(|r| (m, r)))
            && key.active
        {
            findings.push(Finding {
                kind: "managed-key-not-rotating",
                user: name.to_string(),
                access_key_id: Some(key.id.clone()),
                detail: format!(
                    "managed by secret {}, but {}: see `keyrot status` for the fix",
                    reason.0.name, reason.1
                ),
            });
        }
        rows.push(KeyRow {
            user: name.to_string(),
            access_key_id: key.id.clone(),
            status: if key.active { "Active" } else { "Inactive" },
            age_days: age,
            last_used: last_used.as_ref().map(rfc3339),
            managed_by: manager.map(|m| m.name.clone()),
        });
    }
    let active: Vec<&AccessKey> = keys.iter().filter(|k| k.active).collect();
    if active.len() >= 2 {
        findings.push(Finding {
            kind: "two-active-keys",
            user: name.to_string(),
            access_key_id: None,
            detail: two_active_keys_detail(&active, &active_managers),
        });
    }
    Ok((rows, findings))
}

/// What to do about two Active keys. Both managed by one secret is what
/// `OLD_KEY_ACTION=grace` leaves after every rotation until the sweep retires
/// the previous key, so the detail says so rather than send the operator to
/// deactivate a key that a consumer may still need.
fn two_active_keys_detail(active: &[&AccessKey], managers: &[Option<&str>]) -> String {
    let ids = active
        .iter()
        .map(|k| k.id.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    match managers {
        [Some(first), rest @ ..] if rest.iter().all(|m| m == &Some(*first)) => format!(
            "keys {ids} are both Active and both managed by secret {first}: with OLD_KEY_ACTION=grace the previous one is in its grace period and the hourly sweep deactivates it; otherwise deactivate the one no consumer uses"
        ),
        _ => format!("keys {ids} are both Active: deactivate the one no consumer uses"),
    }
}

/// A key's last use: from the credential report, or from IAM directly for a key
/// newer than the report.
async fn last_use(
    clients: &Clients,
    report: &CredentialReport,
    user: &str,
    key: &AccessKey,
) -> Result<Option<DateTime>, FleetError> {
    if let Some(created) = &key.created
        && let Some(last_used) = report.last_used(user, created)
    {
        return Ok(last_used);
    }
    inventory::last_used(&clients.iam, &key.id).await
}
