//! The daily audit the stack schedules: `keyrot audit` and `keyrot status` in a
//! Lambda function, reduced to the counts an alarm needs.

use std::time::Duration;

use serde::Serialize;
use tracing::warn;

use super::{AuditOptions, FleetError, StatusOptions, audit, status};
use crate::aws::Clients;
use crate::error::ConfigError;

/// What the audit function checks, from its environment.
#[derive(Debug, Clone)]
pub struct DailyAudit {
    pub audit: AuditOptions,
    pub status: StatusOptions,
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
        Ok(Self {
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
            },
        })
    }

    /// Runs both reports, logging every finding and every secret that needs a fix.
    pub async fn run(&self, clients: &Clients) -> Result<DailyCounts, FleetError> {
        let mut counts = DailyCounts::default();
        let report = audit(clients, &self.audit, |_| counts.keys += 1, |_| {}).await?;
        for finding in &report.findings {
            warn!(
                kind = finding.kind,
                user = %finding.user,
                access_key_id = finding.access_key_id.as_deref(),
                detail = %finding.detail,
                "audit finding"
            );
            if finding.kind == "unmanaged-old-key" {
                counts.unmanaged_old_keys += 1;
            }
        }
        let summary = status(clients, &self.status, |row| {
            counts.secrets += 1;
            match row.state {
                "stuck" => counts.stuck_rotations += 1,
                "overdue" => counts.overdue_rotations += 1,
                "broken" => counts.broken_secrets += 1,
                _ => {}
            }
            if row.state != "ok" {
                warn!(
                    secret = %row.secret_name,
                    user = %row.user,
                    state = row.state,
                    fix = row.fix.as_deref(),
                    "secret needs attention"
                );
            }
        })
        .await?;
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
