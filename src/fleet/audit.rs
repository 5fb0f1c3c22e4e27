//! `keyrot audit`: every access key of every IAM user (under a path), its age,
//! status, last use and the secret that manages it, and the findings a
//! compliance job fails on.
//!
//! Calls: the secrets are read a page of 100 and 20 values at a time, last uses
//! come from one credential report, the users and their tags 1,000 at a time
//! (`GetAccountAuthorizationDetails`), and each user costs one `ListAccessKeys`
//! (the report cannot tell a user with only Inactive keys from one without
//! keys: it shows `N/A` for both). A key whose
//! description names a secret that does not hold it as `AWSCURRENT` costs one
//! read of that secret's other versions, to prove the claim (SPEC 11, T2).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_iam::primitives::DateTime;
use aws_sdk_iam::types::EntityType;
use futures::{StreamExt, stream};
use serde::Serialize;

use super::{CONCURRENCY, FleetError};
use crate::aws::Clients;
use crate::aws::credential_report::{CredentialReport, Fetched};
use crate::aws::iam;
use crate::aws::listing;
use crate::aws::secrets::SecretVersions;
use crate::clock::{age_days, now, rfc3339};
use crate::model::binding::Binding;
use crate::model::description::described_secret;
use crate::model::secret::{AWSPENDING, AWSPREVIOUS, Secret};
use crate::model::secret_value::SecretValue;
use crate::model::user::{AccessKey, EXEMPT_TAG, IamUser};

#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// An Active key older than this (exact age, in days) that no secret manages
    /// is a finding.
    pub max_age_days: f64,
    /// Only users under this IAM path.
    pub path: String,
    /// A pending version older than this is a stuck rotation.
    pub stuck_after: Duration,
    /// How long to wait for IAM to generate the credential report.
    pub report_wait: Duration,
    /// Two Active keys of one secret (its `AWSCURRENT` and `AWSPREVIOUS`) are a
    /// grace period, not a finding, until this long after `AWSCURRENT` moved
    /// (the function's `GRACE_MAX_HOURS`).
    pub grace_max: Duration,
}

/// One access key (the `keys` of `keyrot audit --output json`).
#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    /// With `--org` or `--accounts` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The account's name, for tables.
    #[serde(skip)]
    pub account_name: Option<String>,
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
    /// With `--org` or `--accounts` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub kind: FindingKind,
    /// None for a finding about a whole account.
    pub user: Option<String>,
    pub access_key_id: Option<String>,
    pub detail: String,
    /// Listed, but not counted (SPEC 12): a grace period, or a user exempted by
    /// the reserved tag. Only present when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exempt: bool,
}

/// What an audit finding is about; in JSON and tables as `unmanaged-old-key`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// An Active key older than the limit that no secret manages.
    UnmanagedOldKey,
    /// A managed key whose secret's rotation is disabled or stuck.
    ManagedKeyNotRotating,
    TwoActiveKeys,
    /// An account of `--org` or `--accounts` that could not be read.
    AccountUnreachable,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnmanagedOldKey => "unmanaged-old-key",
            Self::ManagedKeyNotRotating => "managed-key-not-rotating",
            Self::TwoActiveKeys => "two-active-keys",
            Self::AccountUnreachable => "account-unreachable",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AuditReport {
    /// The findings that count toward the exit code and the metrics.
    pub fn counted(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|finding| !finding.exempt)
    }
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
    /// The value of `AWSCURRENT`: its user and key.
    current: SecretValue,
    /// Whether a version other than `AWSCURRENT` is `AWSPREVIOUS` or `AWSPENDING`.
    /// (stage, version id) of each.
    other_versions: Vec<(&'static str, String)>,
    /// The version `AWSCURRENT` is on.
    current_version: String,
}

/// The secrets that may manage keys, by ARN.
#[derive(Debug, Default)]
struct Secrets {
    by_arn: HashMap<String, SecretSummary>,
}

impl Secrets {
    /// The secret that manages a key (SPEC 11, T2): the one its description
    /// names, if that secret's user is the key's user, in this account, the
    /// user is bound to it, and one of its versions holds the key. The description alone proves nothing
    /// (anyone who may tag the user can write it), and neither does a version
    /// alone (anyone who may write the secret can name any key in it).
    async fn manager_of(
        &self,
        clients: &Clients,
        user: &IamUser,
        key_id: &str,
    ) -> Result<Option<&SecretSummary>, FleetError> {
        let Some((arn, secret)) = user
            .tags
            .get(key_id)
            .and_then(|description| described_secret(description))
            .and_then(|arn| self.by_arn.get_key_value(arn))
        else {
            return Ok(None);
        };
        let current = &secret.current;
        let same_account = crate::arn::account_of(arn)
            == current
                .role_arn()
                .map_or(crate::arn::account_of(arn), crate::arn::account_of);
        // The user must be bound to that secret (a reserved tag): otherwise
        // anyone who may create a secret and tag the user could claim any key.
        if !current.user_name().eq_ignore_ascii_case(&user.name)
            || !same_account
            || user.binding() != Binding::To(arn)
        {
            return Ok(None);
        }
        let mut held: Vec<(String, String)> = current
            .access_key_id()
            .map(|key| (key.to_string(), secret.current_version.clone()))
            .into_iter()
            .collect();
        if !held.iter().any(|(k, _)| k == key_id) {
            let versions = SecretVersions::new(&clients.secrets, arn);
            for (stage, version) in &secret.other_versions {
                if let Some(value) = versions.value(Some(version), stage).await?
                    && let Some(key) = value.key_of_same_user(current)
                {
                    held.push((key.to_string(), version.clone()));
                }
            }
        }
        let held: Vec<(&str, &str)> = held
            .iter()
            .map(|(key, version)| (key.as_str(), version.as_str()))
            .collect();
        Ok(user.is_managed(key_id, arn, &held).then_some(secret))
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
    let report = match CredentialReport::fetch(&clients.iam, options.report_wait).await? {
        Fetched::Ready(report) => report,
        Fetched::NotReady { state } => {
            return Err(FleetError::Refused(format!(
                "IAM had not finished the credential report after {} s (GenerateCredentialReport still says {state}): run the audit again in a minute",
                options.report_wait.as_secs()
            )));
        }
    };
    let mut audit = AuditReport::default();
    // Users with their tags, up to 1,000 a call: the tags name each key's
    // secret, so no user costs a GetUser (SPEC 12: at most 1.2 calls per user).
    let mut pages = clients
        .iam
        .get_account_authorization_details()
        .filter(EntityType::User)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|error| FleetError::aws("GetAccountAuthorizationDetails", "", &error))?;
        let users: Vec<IamUser> = page
            .user_detail_list()
            .iter()
            .filter(|user| user.path().unwrap_or("/").starts_with(&options.path))
            .filter_map(|user| {
                Some(IamUser {
                    name: user.user_name()?.to_string(),
                    tags: user
                        .tags()
                        .iter()
                        .map(|tag| (tag.key().to_string(), tag.value().to_string()))
                        .collect(),
                })
            })
            .collect();
        progress(users.len() as u64);
        audit.users += users.len();
        let mut audited = stream::iter(users.iter().map(|user| {
            let (report, secrets, now) = (&report, &secrets, &now);
            async move {
                let audited = read_user(clients, user, report, secrets, options, now).await;
                (&user.name, audited)
            }
        }))
        .buffered(CONCURRENCY);
        while let Some((name, result)) = audited.next().await {
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
    let mut pages = listing::SecretPages::new(&clients.secrets, None);
    while let Some(page) = pages.next().await? {
        let values = listing::current_values(&clients.secrets, &page).await?;
        for entry in &page {
            let Some(value) = values.get(&entry.arn) else {
                continue;
            };
            let not_rotating = why_not_rotating(clients, entry, options, now).await?;
            let other_versions = [
                (AWSPREVIOUS, entry.previous_version()),
                (AWSPENDING, entry.pending_version()),
            ]
            .into_iter()
            .filter_map(|(stage, version)| Some((stage, version?.to_string())))
            .collect();
            secrets.by_arn.insert(
                entry.arn.clone(),
                SecretSummary {
                    name: entry.name.clone(),
                    not_rotating,
                    current: value.clone(),
                    other_versions,
                    current_version: entry.current_version().to_string(),
                },
            );
        }
    }
    Ok(secrets)
}

async fn why_not_rotating(
    clients: &Clients,
    entry: &Secret,
    options: &AuditOptions,
    now: &DateTime,
) -> Result<Option<String>, FleetError> {
    if !entry.rotation_enabled {
        return Ok(Some("its rotation is disabled".to_string()));
    }
    let Some(version) = entry.pending_version() else {
        return Ok(None);
    };
    let since = listing::version_created(&clients.secrets, entry, version).await?;
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
    user: &IamUser,
    report: &CredentialReport,
    secrets: &Secrets,
    options: &AuditOptions,
    now: &DateTime,
) -> Result<UserAudit, FleetError> {
    let name = user.name.as_str();
    let keys = iam::read_keys(&clients.iam, name).await?;
    if keys.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut rows = Vec::with_capacity(keys.len());
    let mut findings = Vec::new();
    let mut active_managers = Vec::new();
    for key in &keys {
        let last_used = last_use(clients, report, name, key).await?;
        let manager = secrets.manager_of(clients, user, &key.id).await?;
        if key.active {
            active_managers.push(manager);
        }
        let age = key.created.as_ref().map(|created| age_days(created, now));
        if key.active && manager.is_none() && age.is_some_and(|age| age > options.max_age_days) {
            findings.push(Finding {
                kind: FindingKind::UnmanagedOldKey,
                account: None,
                user: Some(name.to_string()),
                access_key_id: Some(key.id.clone()),
                detail: format!(
                    "Active for {:.1} days (limit {}) and no secret manages it: enroll the user (keyrot enroll {name} --function-arn <ARN>) or delete the key once unused",
                    age.unwrap_or_default(),
                    options.max_age_days
                ),
                exempt: false,
            });
        }
        if let Some(reason) = manager.and_then(|m| m.not_rotating.as_ref().map(|r| (m, r)))
            && key.active
        {
            findings.push(Finding {
                kind: FindingKind::ManagedKeyNotRotating,
                account: None,
                user: Some(name.to_string()),
                access_key_id: Some(key.id.clone()),
                detail: format!(
                    "managed by secret {}, but {}: see `keyrot status` for the fix",
                    reason.0.name, reason.1
                ),
                exempt: false,
            });
        }
        rows.push(KeyRow {
            account: None,
            account_name: None,
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
        findings.push(two_active_keys(
            name,
            user,
            &active,
            &active_managers,
            options,
            now,
        ));
    }
    if let Some(reason) = user.exemption() {
        for finding in &mut findings {
            finding.exempt = true;
            finding.detail = format!(
                "exempt ({EXEMPT_TAG}: {}): {}",
                printable(reason),
                finding.detail
            );
        }
    }
    Ok((rows, findings))
}

/// A tag value as it may be printed: IAM allows Unicode separators (U+2028 and
/// U+2029 among them) in tag values; they become spaces, and the value is cut
/// at IAM's 256 characters.
fn printable(value: &str) -> String {
    value
        .chars()
        .take(256)
        .map(|c| {
            if c.is_control() || c.is_whitespace() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Two Active keys. Both managed by one secret is what `OLD_KEY_ACTION=grace`
/// (and `keep`, and a rollback) leave after every rotation: listed as exempt
/// until `--grace-max-hours` after `AWSCURRENT` moved, then a finding like any
/// other pair (SPEC 12).
fn two_active_keys(
    name: &str,
    user: &IamUser,
    active: &[&AccessKey],
    managers: &[Option<&SecretSummary>],
    options: &AuditOptions,
    now: &DateTime,
) -> Finding {
    let ids = active
        .iter()
        .map(|k| k.id.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    // Both the secret's, and one of them its AWSCURRENT key.
    let pair_of = match managers {
        [Some(first), rest @ ..]
            if rest.iter().all(|m| m.is_some_and(|m| m.name == first.name))
                && active
                    .iter()
                    .any(|key| first.current.access_key_id() == Some(key.id.as_str())) =>
        {
            Some(*first)
        }
        _ => None,
    };
    let (detail, exempt) = match pair_of {
        Some(secret) => {
            // When AWSCURRENT moved: recorded by the function, else the version's birth.
            let moved = user
                .current_since()
                .and_then(|record| record.at_if_about(&secret.current_version))
                .or(secret.current.created())
                .unwrap_or_default();
            let hours = (now.secs() - moved).max(0) as f64 / 3600.0;
            let max = options.grace_max.as_secs_f64() / 3600.0;
            if hours < max {
                (
                    format!(
                        "grace period: keys {ids} are the AWSCURRENT and AWSPREVIOUS keys of secret {}, {hours:.1} h after AWSCURRENT moved (a finding after {max} h); the sweep retires the previous one",
                        secret.name
                    ),
                    true,
                )
            } else {
                (
                    format!(
                        "keys {ids} are both Active, {hours:.1} h after secret {} moved AWSCURRENT (longer than {max} h): the previous one should have been retired; deactivate the one no consumer uses",
                        secret.name
                    ),
                    false,
                )
            }
        }
        None => (
            format!("keys {ids} are both Active: deactivate the one no consumer uses"),
            false,
        ),
    };
    Finding {
        account: None,
        kind: FindingKind::TwoActiveKeys,
        user: Some(name.to_string()),
        access_key_id: None,
        detail,
        exempt,
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
    Ok(iam::read_last_used(&clients.iam, &key.id).await?)
}
