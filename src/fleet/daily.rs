//! The daily audit the stack schedules: `keyrot audit` and `keyrot status` in a
//! Lambda function, reduced to the counts an alarm needs.

use std::time::Duration;

use serde::Serialize;
use tracing::warn;

use super::{
    AccountOptions, AccountState, AuditOptions, DEFAULT_MEMBER_ROLE, FindingKind, FleetError,
    SecretState, StatusOptions, audit, audit_accounts, parse_account_ids, status, status_accounts,
};
use crate::aws::Clients;
use crate::error::ConfigError;

/// What the audit function checks, from its environment.
#[derive(Debug, Clone)]
pub struct DailyAudit {
    pub audit: AuditOptions,
    pub status: StatusOptions,
    /// `AUDIT_SCOPE=organization`: every account of the organization, as
    /// `keyrot audit --org` reads them; `None` for the function's own account.
    pub organization: Option<AccountOptions>,
}

/// The counts the function publishes as metrics (and returns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DailyCounts {
    pub unmanaged_old_keys: u64,
    pub stuck_rotations: u64,
    pub overdue_rotations: u64,
    pub broken_secrets: u64,
    pub keys: u64,
    pub secrets: u64,
    /// Users and secrets that could not be read (named in the log).
    pub unreadable: u64,
    /// Accounts whose member role could not be assumed or read (organization
    /// scope only; always 0 for one account).
    pub unreachable_accounts: u64,
}

impl DailyAudit {
    /// `AUDIT_USER_PATH` (default `/`), `MAX_KEY_AGE_DAYS` (90),
    /// `SECRET_NAME_PREFIX` (`iam-keys/`), `STUCK_AFTER_MINUTES` (15) and
    /// `ROTATION_FUNCTION_ARN` (optional: only secrets it rotates).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let max_age_days = match get("MAX_KEY_AGE_DAYS") {
            None => 90.0,
            Some(value) => value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|days| days.is_finite() && *days >= 0.0)
                .ok_or_else(|| {
                    ConfigError::new("MAX_KEY_AGE_DAYS", &value, "a number of days, 0 or more")
                })?,
        };
        let stuck_after_minutes = match get("STUCK_AFTER_MINUTES") {
            None => 15,
            Some(value) => value.trim().parse::<u64>().map_err(|_| {
                ConfigError::new("STUCK_AFTER_MINUTES", &value, "a whole number of minutes")
            })?,
        };
        let stuck_after = Duration::from_secs(stuck_after_minutes * 60);
        let organization = match get("AUDIT_SCOPE").as_deref().map(str::trim) {
            None | Some("account") => None,
            Some("organization") => Some(AccountOptions {
                org: true,
                accounts: Vec::new(),
                exclude: match get("EXCLUDE_ACCOUNTS") {
                    None => Vec::new(),
                    Some(value) => parse_account_ids(&value).map_err(|_| {
                        ConfigError::new(
                            "EXCLUDE_ACCOUNTS",
                            &value,
                            "comma-separated 12-digit account ids",
                        )
                    })?,
                },
                member_role_name: get("MEMBER_ROLE_NAME")
                    .unwrap_or_else(|| DEFAULT_MEMBER_ROLE.to_string()),
                concurrency: super::CONCURRENCY,
            }),
            Some(other) => {
                return Err(ConfigError::new(
                    "AUDIT_SCOPE",
                    other,
                    "account or organization",
                ));
            }
        };
        let reader_role_name = organization
            .as_ref()
            .map(|accounts| accounts.member_role_name.clone());
        Ok(Self {
            organization,
            audit: AuditOptions {
                max_age_days,
                path: get("AUDIT_USER_PATH").unwrap_or_else(|| "/".into()),
                stuck_after,
                // Most of the template's 900 s timeout: IAM takes seconds to
                // minutes for a large account's report.
                report_wait: Duration::from_secs(600),
                grace_max: match get("GRACE_MAX_HOURS") {
                    None => Duration::from_secs(168 * 3600),
                    Some(value) => value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|hours| hours.is_finite() && *hours >= 0.0)
                        .map(|hours| Duration::from_secs_f64(hours * 3600.0))
                        .ok_or_else(|| {
                            ConfigError::new(
                                "GRACE_MAX_HOURS",
                                &value,
                                "a number of hours, 0 or more",
                            )
                        })?,
                },
            },
            status: StatusOptions {
                prefix: get("SECRET_NAME_PREFIX").unwrap_or_else(|| "iam-keys/".into()),
                function_arn: get("ROTATION_FUNCTION_ARN"),
                stuck_after,
                reader_role_name,
            },
        })
    }

    /// Runs both reports, logging every finding and every secret that needs a fix.
    pub async fn run(&self, clients: &Clients) -> Result<DailyCounts, FleetError> {
        let mut counts = DailyCounts::default();
        let mut keys = 0;
        let mut secrets = Vec::new();
        let (report, summary, accounts) = match &self.organization {
            None => {
                let report = audit(clients, &self.audit, |_| keys += 1, |_| {}).await?;
                let summary = status(clients, &self.status, |row| secrets.push(row)).await?;
                (report, summary, Vec::new())
            }
            Some(organization) => {
                let audited =
                    audit_accounts(clients, organization, &self.audit, |_| keys += 1, |_, _| {})
                        .await?;
                let statuses =
                    status_accounts(clients, organization, &self.status, |row| secrets.push(row))
                        .await?;
                (audited.report, statuses.summary, audited.accounts)
            }
        };
        counts.keys = keys;
        for finding in &report.findings {
            warn!(
                account = finding.account.as_deref(),
                kind = finding.kind.as_str(),
                user = finding.user.as_deref(),
                access_key_id = finding.access_key_id.as_deref(),
                exempt = finding.exempt,
                detail = %finding.detail,
                "audit finding"
            );
        }
        counts.unmanaged_old_keys = report
            .counted()
            .filter(|finding| finding.kind == FindingKind::UnmanagedOldKey)
            .count() as u64;
        counts.unreachable_accounts = accounts
            .iter()
            .filter(|account| account.state == AccountState::Unreachable)
            .count() as u64;
        for row in &secrets {
            counts.secrets += 1;
            match row.state {
                SecretState::Stuck => counts.stuck_rotations += 1,
                SecretState::Overdue => counts.overdue_rotations += 1,
                SecretState::Broken => counts.broken_secrets += 1,
                _ => {}
            }
            if row.state != SecretState::Ok {
                warn!(
                    account = row.account.as_deref(),
                    secret = %row.secret_name,
                    user = %row.user,
                    state = row.state.as_str(),
                    fix = row.fix.as_deref(),
                    "secret needs attention"
                );
            }
        }
        for unreadable in report.unreadable.iter().chain(&summary.unreadable) {
            warn!(%unreadable, "could not be read");
        }
        counts.unreadable = (report.unreadable.len() + summary.unreadable.len()) as u64;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_have_defaults_and_bad_values_are_named() {
        let daily = DailyAudit::from_lookup(|_| None).unwrap();
        assert_eq!(daily.audit.max_age_days, 90.0);
        assert_eq!(daily.status.prefix, "iam-keys/");
        assert_eq!(daily.audit.stuck_after, Duration::from_secs(900));
        let error =
            DailyAudit::from_lookup(|name| (name == "MAX_KEY_AGE_DAYS").then(|| "soon".into()))
                .unwrap_err();
        assert!(error.to_string().contains("MAX_KEY_AGE_DAYS"));
    }
}
