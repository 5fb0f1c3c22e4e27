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

use aws_sdk_iam::primitives::DateTime;
use futures::{StreamExt, stream};

use super::ReportError;
use super::findings::{AuditReport, Finding, KeyRow, KeyStatus, apply_exemption, two_active_keys};
use super::managers::{SecretSummary, Secrets, read_secrets};
use super::settings::{AuditOptions, CONCURRENCY};
use crate::aws::Clients;
use crate::aws::credential_report::{CredentialReport, Fetched};
use crate::clock::{age_days, now, rfc3339};
use crate::model::user::{AccessKey, IamUser};

/// Audits the account, handing every key to `emit` as it is read (so memory does
/// not grow with the keys), and returns the findings.
pub async fn audit(
    clients: &Clients,
    options: &AuditOptions,
    mut emit: impl FnMut(KeyRow),
    progress: impl Fn(u64),
) -> Result<AuditReport, ReportError> {
    let now = now();
    let secrets = read_secrets(clients, options, &now).await?;
    let report = match CredentialReport::fetch(&clients.iam(), options.report_wait).await? {
        Fetched::Ready(report) => report,
        Fetched::NotReady { state } => {
            return Err(ReportError::report_not_ready(options.report_wait, &state));
        }
    };
    let mut audit = AuditReport::default();
    audit.findings.extend(
        secrets
            .unreadable
            .iter()
            .map(|(name, why)| Finding::unreadable_secret(name, why)),
    );
    // Users with their tags, up to 1,000 a call: the tags name each key's
    // secret, so no user costs a GetUser (SPEC 12: at most 1.2 calls per user).
    let mut pages = clients.iam().users(&options.path);
    while let Some(users) = pages.next().await? {
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

type UserAudit = (Vec<KeyRow>, Vec<Finding>);

/// The finding an Active key is, if any. No key escapes the age limit (SPEC 9):
/// its age comes from IAM, which no record can change, so a key older than the
/// limit is a finding whoever manages it; a managed key is also one when its
/// secret no longer rotates it (disabled, stuck, or scheduled less often than
/// the limit), however young.
fn key_finding(
    user: &str,
    key: &str,
    manager: Option<&SecretSummary>,
    holder: Option<&SecretSummary>,
    age: Option<f64>,
    limit: f64,
) -> Option<Finding> {
    let old = age.filter(|age| *age > limit);
    match (manager, old) {
        (None, Some(age)) => Some(match holder {
            Some(secret) => Finding::held_old_key(user, key, age, limit, &secret.name),
            None => Finding::unmanaged_old_key(user, key, age, limit),
        }),
        (None, None) => None,
        (Some(manager), old) => {
            let why = match (&manager.not_rotating, old) {
                (Some(why), Some(age)) => {
                    format!("{why}, and the key is {age:.1} days old (limit {limit})")
                }
                (Some(why), None) => why.clone(),
                (None, Some(age)) => format!(
                    "the key is {age:.1} days old (limit {limit}): its rotations do not replace it"
                ),
                (None, None) => return None,
            };
            Some(Finding::not_rotating(user, key, &manager.name, &why))
        }
    }
}

async fn read_user(
    clients: &Clients,
    user: &IamUser,
    report: &CredentialReport,
    secrets: &Secrets,
    options: &AuditOptions,
    now: &DateTime,
) -> Result<UserAudit, ReportError> {
    let name = user.name.as_str();
    let keys = clients.iam().read_keys(name).await?;
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
        if key.active {
            let holder = manager
                .is_none()
                .then(|| secrets.bound_holder(user, &key.id))
                .flatten();
            findings.extend(key_finding(
                name,
                &key.id,
                manager,
                holder,
                age,
                options.max_age_days,
            ));
        }
        rows.push(KeyRow {
            account: None,
            account_name: None,
            user: name.to_string(),
            access_key_id: key.id.clone(),
            status: KeyStatus::of(key),
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
    apply_exemption(user, &mut findings);
    Ok((rows, findings))
}

/// A key's last use: from the credential report, or from IAM directly for a key
/// newer than the report.
async fn last_use(
    clients: &Clients,
    report: &CredentialReport,
    user: &str,
    key: &AccessKey,
) -> Result<Option<DateTime>, ReportError> {
    if let Some(created) = &key.created
        && let Some(last_used) = report.last_used(user, created)
    {
        return Ok(last_used);
    }
    Ok(clients.iam().read_last_used(&key.id).await?)
}
