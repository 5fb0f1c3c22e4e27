//! The daily audit the stack schedules: `keyrot audit` and `keyrot status` in a
//! Lambda function, reduced to the counts an alarm needs.
//!
//! An organization too large for one invocation's 15 minutes is fanned out by
//! the stack's state machine (SPEC 12: a Step Functions Map over the account
//! list), which calls the same function three ways: [`DailyAudit::accounts`]
//! once, [`DailyAudit::run_account`] per account, then [`DailyCounts::total`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{
    AccountOptions, AccountState, AuditOptions, DEFAULT_MEMBER_ROLE, FindingKind, FleetError,
    Member, SecretState, StatusOptions, audit, audit_accounts, caller, members, parse_account_ids,
    status, status_accounts,
};
use crate::aws::Clients;
use crate::aws::account::Reader;
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

/// The counts the function publishes as metrics (and returns). Read back (a
/// missing count is 0) when the state machine hands every account's to
/// [`DailyCounts::total`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
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

impl DailyCounts {
    /// The organization's counts: the sum of its accounts'.
    pub fn total<'a>(accounts: impl IntoIterator<Item = &'a DailyCounts>) -> DailyCounts {
        accounts
            .into_iter()
            .fold(DailyCounts::default(), |sum, one| DailyCounts {
                unmanaged_old_keys: sum.unmanaged_old_keys + one.unmanaged_old_keys,
                stuck_rotations: sum.stuck_rotations + one.stuck_rotations,
                overdue_rotations: sum.overdue_rotations + one.overdue_rotations,
                broken_secrets: sum.broken_secrets + one.broken_secrets,
                keys: sum.keys + one.keys,
                secrets: sum.secrets + one.secrets,
                unreadable: sum.unreadable + one.unreadable,
                unreachable_accounts: sum.unreachable_accounts + one.unreachable_accounts,
            })
    }
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
        let reader = organization.as_ref().map(|accounts| Reader {
            role_name: accounts.member_role_name.clone(),
            accounts: Vec::new(),
        });
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
                reader,
            },
        })
    }

    /// The accounts the organization's audit reads (`ACTIVE`, not excluded),
    /// for the state machine to fan out over; the skipped ones are logged.
    pub async fn accounts(&self, clients: &Clients) -> Result<Vec<Member>, FleetError> {
        let organization = self.organization_scope()?;
        let (members, skipped) = members(clients, organization).await?;
        for row in &skipped {
            tracing::info!(account = %row.account, detail = row.detail.as_deref(), "account skipped");
        }
        Ok(members)
    }

    /// One account of the organization: the same audit and status as [`Self::run`]
    /// over that account alone (through its member role, or with the function's
    /// own credentials for its own account). An account whose role cannot be
    /// assumed counts as one unreachable account, like in the whole run.
    pub async fn run_account(
        &self,
        clients: &Clients,
        account: &str,
    ) -> Result<DailyCounts, FleetError> {
        let organization = self.organization_scope()?;
        let account = parse_account_ids(account)
            .ok()
            .filter(|ids| ids.len() == 1)
            .ok_or_else(|| {
                FleetError::Usage(format!(
                    "{account:?} is not an account id: the state machine passes one 12-digit id per invocation"
                ))
            })?;
        if organization.exclude.contains(&account[0]) {
            return Err(FleetError::Usage(format!(
                "account {} is excluded (EXCLUDE_ACCOUNTS): the audit does not read it",
                account[0]
            )));
        }
        let mut one = Self {
            organization: Some(AccountOptions {
                org: false,
                accounts: account.clone(),
                exclude: Vec::new(),
                ..organization.clone()
            }),
            ..self.clone()
        };
        // In the caller's own account (where the central secrets are), users of
        // the other accounts are read as in the whole run: in the organization's
        // accounts, which this one invocation lists.
        if let Some(reader) = one.status.reader.as_mut()
            && caller(clients).await?.account == account[0]
        {
            let (readable, _) = members(clients, organization).await?;
            reader.accounts = readable.into_iter().map(|member| member.account).collect();
        }
        one.run(clients).await
    }

    fn organization_scope(&self) -> Result<&AccountOptions, FleetError> {
        self.organization.as_ref().ok_or_else(|| {
            FleetError::Usage(
                "the fan-out needs AUDIT_SCOPE=organization (the template's AuditScope)".into(),
            )
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

    #[test]
    fn the_organizations_counts_are_the_sum_of_its_accounts_and_a_missing_count_is_zero() {
        let one: DailyCounts =
            serde_json::from_value(serde_json::json!({"Keys": 3, "UnmanagedOldKeys": 1})).unwrap();
        let two: DailyCounts =
            serde_json::from_value(serde_json::json!({"UnreachableAccounts": 1})).unwrap();
        let total = DailyCounts::total([&one, &two, &one]);
        assert_eq!(total.keys, 6);
        assert_eq!(total.unmanaged_old_keys, 2);
        assert_eq!(total.unreachable_accounts, 1);
        assert_eq!(total.secrets, 0);
    }
}
