//! The daily audit the stack schedules: `keyrot audit` and `keyrot status` in a
//! Lambda function, reduced to the counts an alarm needs.
//!
//! An organization too large for one invocation's 15 minutes is fanned out by
//! the stack's state machine (SPEC 12: a Step Functions Map over the account
//! list), which calls the same function three ways: [`DailyAudit::accounts`]
//! once, [`DailyAudit::run_account`] per account, then [`DailyCounts::total`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::warn;

use super::ReportError;
use super::accounts::{AccountOptions, AccountState, Member, members, parse_account_ids};
use super::findings::{AuditReport, FindingKind};
use super::scope::{Scope, audit_scope, status_scope};
use super::settings::{
    ACCOUNT_CONCURRENCY, AuditOptions, MAX_KEY_AGE_DAYS, MEMBER_ROLE, REPORT_WAIT_IN_THE_FUNCTION,
    SECRET_NAME_PREFIX, STUCK_AFTER_MINUTES, StatusOptions, USER_PATH,
};
use super::state::SecretState;
use super::status::StatusRow;
use crate::aws::Clients;
use crate::aws::sts::caller;
use crate::config::{ConfigError, HOURS_ACCEPTED, Retirement, parse_hours};

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
    /// Managed keys their secret no longer replaces: rotation disabled, stuck,
    /// scheduled less often than the limit, or the key older than the limit.
    pub not_rotating_keys: u64,
    /// Users with two Active keys outside a grace period.
    pub two_active_keys: u64,
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
                not_rotating_keys: sum.not_rotating_keys + one.not_rotating_keys,
                two_active_keys: sum.two_active_keys + one.two_active_keys,
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
    /// `AUDIT_USER_PATH`, `MAX_KEY_AGE_DAYS`, `SECRET_NAME_PREFIX`,
    /// `STUCK_AFTER_MINUTES`, `GRACE_MAX_HOURS`, `ROTATION_FUNCTION_ARN`
    /// (optional: only secrets it rotates), and with `AUDIT_SCOPE=organization`
    /// `EXCLUDE_ACCOUNTS` and `MEMBER_ROLE_NAME`; each unset one takes the
    /// defaults above.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let max_age_days = match get("MAX_KEY_AGE_DAYS") {
            None => MAX_KEY_AGE_DAYS,
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
            None => STUCK_AFTER_MINUTES,
            Some(value) => value.trim().parse::<u64>().map_err(|_| {
                ConfigError::new("STUCK_AFTER_MINUTES", &value, "a whole number of minutes")
            })?,
        };
        let stuck_after = Duration::from_secs(stuck_after_minutes * 60);
        let organization = organization_from(&get)?;
        let reader = organization.as_ref().map(AccountOptions::reader);
        Ok(Self {
            organization,
            audit: AuditOptions {
                max_age_days,
                path: get("AUDIT_USER_PATH").unwrap_or_else(|| USER_PATH.into()),
                prefix: get("SECRET_NAME_PREFIX").unwrap_or_else(|| SECRET_NAME_PREFIX.into()),
                stuck_after,
                report_wait: REPORT_WAIT_IN_THE_FUNCTION,
                grace_max: match get("GRACE_MAX_HOURS") {
                    None => Retirement::default().grace_max,
                    Some(value) => parse_hours(&value).ok_or_else(|| {
                        ConfigError::new("GRACE_MAX_HOURS", &value, HOURS_ACCEPTED)
                    })?,
                },
            },
            status: StatusOptions {
                prefix: get("SECRET_NAME_PREFIX").unwrap_or_else(|| SECRET_NAME_PREFIX.into()),
                function_arn: get("ROTATION_FUNCTION_ARN"),
                stuck_after,
                reader,
                read_rotation_log: false,
            },
        })
    }

    /// The accounts the organization's audit reads (`ACTIVE`, not excluded),
    /// for the state machine to fan out over; the skipped ones are logged.
    pub async fn accounts(&self, clients: &Clients) -> Result<Vec<Member>, ReportError> {
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
    ) -> Result<DailyCounts, ReportError> {
        let organization = self.organization_scope()?;
        let account = parse_account_ids(account)
            .ok()
            .filter(|ids| ids.len() == 1)
            .ok_or_else(|| {
                ReportError::Refused(format!(
                    "{account:?} is not an account id: the state machine passes one 12-digit id per invocation"
                ))
            })?;
        if organization.exclude.contains(&account[0]) {
            return Err(ReportError::Refused(format!(
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

    fn organization_scope(&self) -> Result<&AccountOptions, ReportError> {
        self.organization.as_ref().ok_or_else(|| {
            ReportError::Refused(
                "the fan-out needs AUDIT_SCOPE=organization (the template's AuditScope)".into(),
            )
        })
    }

    /// Runs both reports, logging every finding and every secret that needs a fix.
    pub async fn run(&self, clients: &Clients) -> Result<DailyCounts, ReportError> {
        let scope = self.organization.clone().map_or(Scope::Account, Scope::of);
        let mut keys = 0;
        let mut secrets = Vec::new();
        let audited = audit_scope(clients, &scope, &self.audit, |_| keys += 1, |_, _| {}).await?;
        let statuses = status_scope(clients, &scope, &self.status, |row| secrets.push(row)).await?;
        let (report, summary) = (audited.report, statuses.summary);
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
        let mut counts = DailyCounts {
            keys,
            unmanaged_old_keys: count_of(&report, FindingKind::UnmanagedOldKey),
            not_rotating_keys: count_of(&report, FindingKind::ManagedKeyNotRotating),
            two_active_keys: count_of(&report, FindingKind::TwoActiveKeys),
            unreachable_accounts: audited
                .accounts
                .iter()
                .filter(|account| account.state == AccountState::Unreachable)
                .count() as u64,
            unreadable: (report.unreadable.len() + summary.unreadable.len()) as u64,
            ..DailyCounts::default()
        };
        for row in &secrets {
            counts.count(row);
        }
        for unreadable in report.unreadable.iter().chain(&summary.unreadable) {
            warn!(%unreadable, "could not be read");
        }
        Ok(counts)
    }
}

/// The counted (not exempt) findings of one kind.
fn count_of(report: &AuditReport, kind: FindingKind) -> u64 {
    report
        .counted()
        .filter(|finding| finding.kind == kind)
        .count() as u64
}

impl DailyCounts {
    /// Counts one secret's row, and logs it if it needs a fix.
    fn count(&mut self, row: &StatusRow) {
        self.secrets += 1;
        match row.state {
            SecretState::Stuck => self.stuck_rotations += 1,
            SecretState::Overdue => self.overdue_rotations += 1,
            SecretState::Broken => self.broken_secrets += 1,
            // A secret (or its user) that could not be read is an unread item,
            // as it was before status gave it a row of its own.
            SecretState::Unreadable => self.unreadable += 1,
            _ => {}
        }
        if row.state != SecretState::Ok {
            warn!(
                account = row.account.as_deref(),
                secret = %row.secret_name,
                user = row.user.as_deref(),
                state = row.state.as_str(),
                fix = row.fix.as_deref(),
                "secret needs attention"
            );
        }
    }
}

/// `AUDIT_SCOPE`: `account` (the function's own, the default), or
/// `organization` (every account, as `keyrot --org` reads them).
fn organization_from(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<AccountOptions>, ConfigError> {
    match get("AUDIT_SCOPE").as_deref().map(str::trim) {
        None | Some("account") => Ok(None),
        Some("organization") => Ok(Some(AccountOptions {
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
            member_role_name: get("MEMBER_ROLE_NAME").unwrap_or_else(|| MEMBER_ROLE.to_string()),
            concurrency: usize::from(ACCOUNT_CONCURRENCY),
        })),
        Some(other) => Err(ConfigError::new(
            "AUDIT_SCOPE",
            other,
            "account or organization",
        )),
    }
}

/// What the audit function was invoked to do: the scheduled event (`{}`) runs
/// the whole audit; the stack's state machine (`AuditFanOut`) calls it with an
/// `Action` for each of its three states.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditRequest {
    /// `{}`: the whole audit, whose counts are published.
    Whole,
    /// `{"Action": "list-accounts"}`: the accounts to fan out over.
    ListAccounts,
    /// `{"Action": "audit-account", "Account": ID}`: one account's counts,
    /// returned and not published.
    AuditAccount { account: String },
    /// `{"Action": "total", "Results": [...]}`: every account's counts, whose
    /// total is published once.
    Total { results: Vec<DailyCounts> },
}

impl AuditRequest {
    /// Reads the payload; an unknown `Action` or a `Results` that is not every
    /// account's counts is refused with what the function takes.
    pub fn from_payload(mut payload: Value) -> Result<Self, String> {
        let action = payload
            .get("Action")
            .and_then(Value::as_str)
            .map(str::to_string);
        match action.as_deref() {
            None => Ok(Self::Whole),
            Some("list-accounts") => Ok(Self::ListAccounts),
            Some("audit-account") => Ok(Self::AuditAccount {
                account: payload
                    .get("Account")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }),
            Some("total") => serde_json::from_value(payload["Results"].take())
                .map(|results| Self::Total { results })
                .map_err(|error| {
                    format!("\"Results\" must be the list of every account's counts: {error}")
                }),
            Some(other) => Err(format!(
                "unknown Action {other:?}: the audit takes {{}} (the whole audit), or list-accounts, audit-account and total (the state machine's)"
            )),
        }
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
    fn grace_max_hours_in_the_environment_is_read_as_the_rotation_function_reads_it() {
        let daily = DailyAudit::from_lookup(|name| (name == "GRACE_MAX_HOURS").then(|| "2".into()))
            .unwrap();
        assert_eq!(daily.audit.grace_max, Duration::from_secs(7200));
        let error =
            DailyAudit::from_lookup(|name| (name == "GRACE_MAX_HOURS").then(|| "-2".into()))
                .unwrap_err();
        assert!(error.to_string().contains("0 to 87600"), "{error}");
    }

    #[test]
    fn the_state_machines_three_calls_and_the_schedules_are_told_apart() {
        use serde_json::json;
        assert_eq!(
            AuditRequest::from_payload(json!({})),
            Ok(AuditRequest::Whole)
        );
        assert_eq!(
            AuditRequest::from_payload(json!({"Action": "list-accounts"})),
            Ok(AuditRequest::ListAccounts)
        );
        assert_eq!(
            AuditRequest::from_payload(
                json!({"Action": "audit-account", "Account": "111122223333"})
            ),
            Ok(AuditRequest::AuditAccount {
                account: "111122223333".into()
            })
        );
        assert_eq!(
            AuditRequest::from_payload(json!({"Action": "total", "Results": [{"Keys": 2}]})),
            Ok(AuditRequest::Total {
                results: vec![DailyCounts {
                    keys: 2,
                    ..DailyCounts::default()
                }]
            })
        );
        let unknown = AuditRequest::from_payload(json!({"Action": "rotate"})).unwrap_err();
        assert!(unknown.contains("unknown Action \"rotate\""), "{unknown}");
        let bad = AuditRequest::from_payload(json!({"Action": "total", "Results": 3})).unwrap_err();
        assert!(bad.contains("\"Results\" must be"), "{bad}");
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
