//! What the reports start from: their options, and the defaults of `keyrot
//! status` and `keyrot audit`'s flags and of the daily audit function's
//! environment, in one place, so the CLI and the function judge an account
//! alike.

use std::time::Duration;

use super::reader::Reader;
use crate::config::{HOURS_ACCEPTED, Retirement, parse_hours};

/// An Active key older than this many days is a finding (AWS's own
/// `access-keys-rotated` rule and Security Hub's IAM.3 default to 90 too).
pub const MAX_KEY_AGE_DAYS: f64 = 90.0;
/// A rotation pending longer than this many minutes is stuck (SPEC 9).
pub const STUCK_AFTER_MINUTES: u64 = 15;
/// Only users under this IAM path: every user.
pub const USER_PATH: &str = "/";
/// The secrets read: those under the template's `SecretNamePrefix`.
pub const SECRET_NAME_PREFIX: &str = crate::model::secret::DEFAULT_NAME_PREFIX;
/// How many users or secrets are examined at once: enough to hide the latency of
/// each call, few enough to stay well inside IAM's account-wide rate (the SDK's
/// retries absorb the throttling that remains).
pub const CONCURRENCY: usize = 8;
/// How many accounts are read at once across an organization.
pub const ACCOUNT_CONCURRENCY: u16 = 8;
/// The member role's default name, as the member template creates it.
pub const MEMBER_ROLE: &str = "iam-key-rotation-audit";
/// How long `keyrot audit` waits for IAM's credential report: an operator at
/// a terminal would rather run again than wait longer.
pub const REPORT_WAIT_AT_A_TERMINAL: Duration = Duration::from_secs(300);
/// How long the daily audit function waits for it: most of the template's 900 s
/// timeout, since IAM takes seconds to minutes for a large account's report.
pub const REPORT_WAIT_IN_THE_FUNCTION: Duration = Duration::from_secs(600);

/// The function's own default `GRACE_MAX_HOURS`, in hours.
pub fn grace_max_hours() -> f64 {
    Retirement::default().grace_max.as_secs_f64() / 3600.0
}

/// `--grace-max-hours` (and the audit function's `GRACE_MAX_HOURS`), read as
/// the rotation function reads its own.
pub fn parse_grace_max_hours(value: &str) -> Result<Duration, String> {
    parse_hours(value).ok_or_else(|| format!("{value:?} is not {HOURS_ACCEPTED}"))
}

/// `--path`: an IAM path prefix as IAM takes it (`/`, or `/rotated/`: it
/// begins and ends with `/`, up to 512 printable ASCII characters), or why not
/// with the fix. A path without its slashes would match no user and make an
/// all-clear of an account that was never read.
pub fn parse_user_path(value: &str) -> Result<String, String> {
    let trimmed = value.trim_matches('/');
    let fixed = if trimmed.is_empty() {
        "/".to_string()
    } else {
        format!("/{trimmed}/")
    };
    if !(value.starts_with('/') && value.ends_with('/')) {
        return Err(format!(
            "{value:?} is not an IAM path: a path begins and ends with / (try --path {fixed})"
        ));
    }
    if value.len() > 512 || !value.chars().all(|c| ('!'..='~').contains(&c)) {
        return Err(format!(
            "{value:?} is not an IAM path: up to 512 printable ASCII characters without spaces, such as /rotated/"
        ));
    }
    Ok(value.to_string())
}

/// `--prefix`: the start of a secret name (Secrets Manager's names are ASCII
/// letters, digits and `/_+=.@-`), or why not with the fix. Empty means every
/// secret.
pub fn parse_secret_prefix(value: &str) -> Result<String, String> {
    if value.contains('*') {
        return Err(format!(
            "{value:?}: --prefix is the start of a name, not a pattern: drop the * (try --prefix {})",
            value.replace('*', "")
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    if value.len() > 512 || !value.chars().all(allowed) {
        return Err(format!(
            "{value:?} cannot start a secret name: names are ASCII letters, digits and /_+=.@- (such as iam-keys/)"
        ));
    }
    Ok(value.to_string())
}

/// What `keyrot audit` (and the daily audit) judge keys by.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// An Active key older than this (exact age, in days) that no secret manages
    /// is a finding.
    pub max_age_days: f64,
    /// Only users under this IAM path.
    pub path: String,
    /// Only secrets whose name starts with this manage keys, and only their
    /// values are read (SPEC 9): the audit never fetches an unrelated secret.
    /// Empty: every secret of the account.
    pub prefix: String,
    /// A pending version older than this is a stuck rotation.
    pub stuck_after: Duration,
    /// How long to wait for IAM to generate the credential report.
    pub report_wait: Duration,
    /// Two Active keys of one secret (its `AWSCURRENT` and `AWSPREVIOUS`) are a
    /// grace period, not a finding, until this long after `AWSCURRENT` moved
    /// (the function's `GRACE_MAX_HOURS`).
    pub grace_max: Duration,
}

/// Which secrets `keyrot status` (and the daily audit) read, and how.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Only secrets whose name starts with this.
    pub prefix: String,
    /// Only secrets rotated by this function (any qualifier).
    pub function_arn: Option<String>,
    /// A pending version older than this is a stuck rotation.
    pub stuck_after: Duration,
    /// Read users of other accounts through their read-only member role instead
    /// of the secret's `RoleArn`, which trusts the rotation function only: set
    /// across an organization, where every account has that role (its
    /// `accounts` are filled in by the run across accounts).
    pub reader: Option<Reader>,
    /// Read the rotation function's log for the last failed step of a rotation
    /// under way (one `FilterLogEvents` per pending secret): for an operator at
    /// a terminal. The daily audit counts states and needs no log, so its role
    /// is not given `logs:FilterLogEvents`.
    pub read_rotation_log: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_without_its_slashes_is_refused_with_the_fix() {
        assert_eq!(parse_user_path("/"), Ok("/".into()));
        assert_eq!(parse_user_path("/rotated/"), Ok("/rotated/".into()));
        assert_eq!(parse_user_path("/a/b/"), Ok("/a/b/".into()));
        for (typo, fix) in [
            ("rotated", "--path /rotated/"),
            ("/rotated", "--path /rotated/"),
            ("rotated/", "--path /rotated/"),
        ] {
            let error = parse_user_path(typo).unwrap_err();
            assert!(error.contains(fix), "{error}");
        }
        assert!(parse_user_path("/with space/").is_err());
    }

    #[test]
    fn a_prefix_is_a_name_start_not_a_pattern() {
        assert_eq!(parse_secret_prefix("iam-keys/"), Ok("iam-keys/".into()));
        assert_eq!(parse_secret_prefix(""), Ok(String::new()));
        let error = parse_secret_prefix("iam-keys/*").unwrap_err();
        assert!(error.contains("--prefix iam-keys/"), "{error}");
        assert!(parse_secret_prefix("iam keys").is_err());
    }

    #[test]
    fn grace_max_hours_is_read_as_the_rotation_function_reads_it() {
        assert_eq!(grace_max_hours(), 168.0);
        assert_eq!(parse_grace_max_hours("1.5"), Ok(Duration::from_secs(5400)));
        for bad in ["-1", "NaN", "soon", "87601"] {
            let error = parse_grace_max_hours(bad).unwrap_err();
            assert!(error.contains("0 to 87600"), "{error}");
        }
    }
}
