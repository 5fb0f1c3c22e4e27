//! What `keyrot audit` reports: every key as a row, and the findings a
//! compliance job fails on, each worded for the state it found (SPEC 9, 12).

use aws_sdk_iam::primitives::DateTime;
use serde::Serialize;

use super::managers::SecretSummary;
use super::settings::AuditOptions;
use crate::model::user::{AccessKey, EXEMPT_TAG, IamUser};

/// One access key (the `keys` of `keyrot audit --output json`).
#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    /// With `--org` or `--accounts`; null otherwise (one shape whatever the flags).
    pub account: Option<String>,
    /// The account's name, for tables.
    #[serde(skip)]
    pub account_name: Option<String>,
    pub user: String,
    pub access_key_id: String,
    pub status: KeyStatus,
    pub age_days: Option<f64>,
    pub last_used: Option<String>,
    pub managed_by: Option<String>,
}

/// An access key's status, as IAM names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn of(key: &AccessKey) -> Self {
        if key.active {
            Self::Active
        } else {
            Self::Inactive
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }
}

impl std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// A secret under the prefix whose value could not be read: the keys it
    /// holds cannot be judged managed (SPEC 9).
    UnreadableSecret,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnmanagedOldKey => "unmanaged-old-key",
            Self::ManagedKeyNotRotating => "managed-key-not-rotating",
            Self::TwoActiveKeys => "two-active-keys",
            Self::AccountUnreachable => "account-unreachable",
            Self::UnreadableSecret => "unreadable-secret",
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

impl Finding {
    /// An Active key older than the limit that no secret manages.
    pub(super) fn unmanaged_old_key(user: &str, key: &str, age_days: f64, limit: f64) -> Self {
        Self::about_key(
            FindingKind::UnmanagedOldKey,
            user,
            key,
            format!(
                "Active for {age_days:.1} days (limit {limit}) and no secret manages it: enroll the user (keyrot enroll {user} --function-arn <ARN>) or delete the key once unused"
            ),
        )
    }

    /// An Active key older than the limit that the secret its user is bound to
    /// holds, but that the function has not taken charge of yet (put there by
    /// hand, or by an earlier rotator): the user is enrolled, and the secret's
    /// next rotation proves the key and adopts it (SPEC 9).
    pub(super) fn held_old_key(
        user: &str,
        key: &str,
        age_days: f64,
        limit: f64,
        secret: &str,
    ) -> Self {
        Self::about_key(
            FindingKind::UnmanagedOldKey,
            user,
            key,
            format!(
                "Active for {age_days:.1} days (limit {limit}); secret {secret}, which user {user} is bound to, holds it, but the rotation function has not taken charge of it yet (its description tag does not name the secret): the secret's next rotation proves the key and adopts it, then replaces it: aws secretsmanager rotate-secret --secret-id {secret}"
            ),
        )
    }

    /// A managed key whose secret no longer rotates it, and why.
    pub(super) fn not_rotating(user: &str, key: &str, secret: &str, why: &str) -> Self {
        Self::about_key(
            FindingKind::ManagedKeyNotRotating,
            user,
            key,
            format!("managed by secret {secret}, but {why}: see `keyrot status` for the fix"),
        )
    }

    /// A secret under the prefix whose value could not be read, and why.
    pub(super) fn unreadable_secret(secret: &str, why: &str) -> Self {
        Self {
            kind: FindingKind::UnreadableSecret,
            account: None,
            user: None,
            access_key_id: None,
            detail: format!(
                "secret {secret} could not be read ({why}), so the keys it holds are judged unmanaged: allow the reader secretsmanager:GetSecretValue on it (and kms:Decrypt on its key), or delete it if it is not one of this stack's"
            ),
            exempt: false,
        }
    }

    fn about_key(kind: FindingKind, user: &str, key: &str, detail: String) -> Self {
        Self {
            kind,
            account: None,
            user: Some(user.to_string()),
            access_key_id: Some(key.to_string()),
            detail,
            exempt: false,
        }
    }
}

/// Marks the user's findings exempt when the user carries the exemption tag,
/// with its reason (SPEC 12): still listed, never counted.
pub(super) fn apply_exemption(user: &IamUser, findings: &mut [Finding]) {
    let Some(reason) = user.exemption() else {
        return;
    };
    for finding in findings {
        finding.exempt = true;
        finding.detail = format!(
            "exempt ({EXEMPT_TAG}: {}): {}",
            printable(reason),
            finding.detail
        );
    }
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
pub(super) fn two_active_keys(
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
                        "grace period: keys {ids} are the AWSCURRENT and AWSPREVIOUS keys of secret {}, {hours:.1} h after AWSCURRENT moved (a finding after {max} h); the previous one is retired when the grace ends (by the sweep, where the stack runs one: OLD_KEY_ACTION grace or delivery targets) or, at the latest, by the next rotation",
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
