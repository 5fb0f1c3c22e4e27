//! IAM access key operations on one user, and the bookkeeping that tells which keys
//! a secret manages.
//!
//! The bookkeeping lives in the user's tags, where the IAM console keeps key
//! descriptions:
//! - `<AccessKeyId>` = `iam-key-rotation <secret ARN> <version id>`: the key was made
//!   (or adopted) by this function for that secret. Only such keys are ever deleted.
//! - `iam-key-rotation:creating` = `<version id> <key ids that existed>`: written just
//!   before `CreateAccessKey` and cleared in the call that tags the new key. If the
//!   function dies in between, the retry finds the marker and knows that an untagged
//!   key missing from the list is the one it made, not somebody else's.

use std::collections::HashMap;

use std::time::Duration;

use aws_sdk_iam::Client;
use aws_sdk_iam::config::retry::RetryConfig;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::operation::get_user::GetUserError;
use aws_sdk_iam::types::{StatusType, Tag};

use crate::backoff::Backoff;
use crate::error::{RotationError, aws_call_failed, is_throttling};
use crate::iam_names::{BINDING_TAG, CREATING_TAG, DESCRIPTION_PREFIX};
use crate::secrets_manager::SecretInfo;
use crate::sensitive::Sensitive;

/// Attempts at `CreateAccessKey` while IAM throttles it, and the pauses between
/// them: as patient as the SDK is with every other call (see `retry.rs`); the
/// invocation's deadline bounds it too.
const CREATE_KEY_ATTEMPTS: u32 = 12;
const CREATE_KEY_FIRST_PAUSE: Duration = Duration::from_millis(200);
const CREATE_KEY_MAX_PAUSE: Duration = Duration::from_secs(5);
/// IAM's limit on a tag value.
const MAX_TAG_VALUE_LEN: usize = 256;

/// An IAM user as `GetUser` returns it, tags included.
#[derive(Debug, Clone)]
pub struct IamUser {
    pub name: String,
    pub tags: HashMap<String, String>,
}

/// A marker left by a `createSecret` that was about to create a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationMarker {
    pub token: String,
    pub keys_before: Vec<String>,
}

impl CreationMarker {
    pub fn to_tag_value(&self) -> String {
        std::iter::once(self.token.as_str())
            .chain(self.keys_before.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split_whitespace();
        let token = parts.next()?.to_string();
        Some(Self {
            token,
            keys_before: parts.map(str::to_string).collect(),
        })
    }
}

impl IamUser {
    /// The user must name this secret in its binding tag: by ARN, or by name when
    /// the user lives in the secret's own account. A name is the same in every
    /// account and region, so a user in another account (`by_arn_only`) must carry
    /// the full ARN.
    pub fn check_binding(
        &self,
        secret: &SecretInfo,
        by_arn_only: bool,
    ) -> Result<(), RotationError> {
        let detail = match self.tags.get(BINDING_TAG) {
            Some(value) if *value == secret.arn => return Ok(()),
            Some(value) if *value == secret.name && !by_arn_only => return Ok(()),
            Some(value) if *value == secret.name => format!(
                "its tag {BINDING_TAG} names the secret by name, but a user in another account must be bound by the secret's full ARN (a name is the same in every account and region)"
            ),
            Some(value) => format!("its tag {BINDING_TAG} names another secret ({value})"),
            None => format!("it has no tag {BINDING_TAG}"),
        };
        Err(RotationError::UserNotBound {
            secret: secret.arn.clone(),
            user: self.name.clone(),
            detail,
        })
    }

    /// Whether the key's description tag says this secret made or adopted it.
    pub fn is_managed_by(&self, key_id: &str, secret_arn: &str) -> bool {
        self.tags
            .get(key_id)
            .is_some_and(|description| description_names(description, secret_arn))
    }

    /// The key ids whose description tag names this secret (keys may be gone).
    pub fn managed_key_ids(&self, secret_arn: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .tags
            .iter()
            .filter(|(_, description)| description_names(description, secret_arn))
            .map(|(key_id, _)| key_id.clone())
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn has_description(&self, key_id: &str) -> bool {
        self.tags.contains_key(key_id)
    }

    pub fn creation_marker(&self) -> Option<CreationMarker> {
        self.tags
            .get(CREATING_TAG)
            .and_then(|value| CreationMarker::parse(value))
    }
}

/// The description tag value for a key this secret manages. The version id is left
/// out when the ARN is too long for both to fit in a tag.
pub fn key_description(secret_arn: &str, token: &str) -> Result<String, RotationError> {
    let full = format!("{DESCRIPTION_PREFIX} {secret_arn} {token}");
    let short = format!("{DESCRIPTION_PREFIX} {secret_arn}");
    [full, short]
        .into_iter()
        .find(|value| value.len() <= MAX_TAG_VALUE_LEN)
        .ok_or_else(|| {
            RotationError::invalid_value(
                secret_arn,
                token,
                format!(
                    "the secret's ARN is too long to record in an IAM key description ({MAX_TAG_VALUE_LEN} characters); use a shorter secret name"
                ),
            )
        })
}

/// The ARN of the secret a key description names, if it is one of ours.
pub fn described_secret(description: &str) -> Option<&str> {
    description
        .strip_prefix(DESCRIPTION_PREFIX)?
        .strip_prefix(' ')?
        .split(' ')
        .next()
        .filter(|arn| !arn.is_empty())
}

fn description_names(description: &str, secret_arn: &str) -> bool {
    description
        .strip_prefix(DESCRIPTION_PREFIX)
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(|rest| rest.strip_prefix(secret_arn))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// One access key of the user, as `ListAccessKeys` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub active: bool,
    pub created: Option<aws_sdk_iam::primitives::DateTime>,
}

/// The user's keys from a `ListAccessKeys` answer.
pub fn access_keys(
    output: &aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput,
) -> Vec<AccessKey> {
    output
        .access_key_metadata()
        .iter()
        .filter_map(|key| {
            Some(AccessKey {
                id: key.access_key_id()?.to_string(),
                active: key.status() == Some(&StatusType::Active),
                created: key.create_date().copied(),
            })
        })
        .collect()
}

/// When and where a key was last used, as IAM records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUse {
    /// Seconds since the epoch.
    pub at: i64,
    pub service: String,
    pub region: String,
}

/// A key just created; the secret half is only ever stored in the secret.
pub struct NewKey {
    pub id: String,
    pub secret: Sensitive,
}

/// What `createSecret` must do to make room for a new key: IAM allows two keys
/// per user, and only keys this secret manages may ever be deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoomPlan {
    /// Keys this secret manages that are not `AWSCURRENT`, and orphans of an
    /// interrupted creation for this version: safe to delete.
    pub delete: Vec<String>,
    /// Keys that stay: the `AWSCURRENT` key and keys this secret does not manage.
    pub keep: Vec<String>,
    /// Keys that stay and this secret does not manage.
    pub unmanaged: Vec<String>,
}

/// IAM's limit on access keys per user.
pub const MAX_KEYS_PER_USER: usize = 2;

impl RoomPlan {
    pub fn new(
        user: &IamUser,
        keys: &[AccessKey],
        current_key: Option<&str>,
        secret_arn: &str,
        token: &str,
    ) -> Self {
        let marker = user
            .creation_marker()
            .filter(|marker| marker.token == token);
        let mut plan = Self::default();
        for key in keys {
            let id = key.id.clone();
            let is_current = current_key == Some(key.id.as_str());
            let is_orphan_of_this_version = marker.as_ref().is_some_and(|marker| {
                !user.has_description(&key.id) && !marker.keys_before.contains(&key.id)
            });
            if is_current {
                plan.keep.push(id);
            } else if user.is_managed_by(&key.id, secret_arn) || is_orphan_of_this_version {
                plan.delete.push(id);
            } else {
                plan.keep.push(id.clone());
                plan.unmanaged.push(id);
            }
        }
        plan
    }

    /// Whether a new key fits once the deletions are done.
    pub fn leaves_room(&self) -> bool {
        self.keep.len() < MAX_KEYS_PER_USER
    }
}

/// IAM calls on one user (its keys and its tags), on behalf of one secret, which
/// every error names. The client acts in the user's account.
pub struct UserIam<'a> {
    client: Client,
    secret_arn: &'a str,
    user: &'a str,
}

impl<'a> UserIam<'a> {
    pub fn new(client: Client, secret_arn: &'a str, user: &'a str) -> Self {
        Self {
            client,
            secret_arn,
            user,
        }
    }

    fn failed<E, R>(&self, operation: &'static str, error: &SdkError<E, R>) -> RotationError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        aws_call_failed(operation, self.secret_arn, Some(self.user), error)
    }

    /// `GetUser` returns the tags too, which saves a `ListUserTags` call.
    pub async fn get_user(&self) -> Result<IamUser, RotationError> {
        let output = self
            .client
            .get_user()
            .user_name(self.user)
            .send()
            .await
            .map_err(|error| match error.as_service_error() {
                Some(GetUserError::NoSuchEntityException(_)) => RotationError::UserNotFound {
                    secret: self.secret_arn.to_string(),
                    user: self.user.to_string(),
                },
                _ => self.failed("GetUser", &error),
            })?;
        let Some(user) = output.user() else {
            return Err(RotationError::UserNotFound {
                secret: self.secret_arn.to_string(),
                user: self.user.to_string(),
            });
        };
        Ok(IamUser {
            name: user.user_name().to_string(),
            tags: user
                .tags()
                .iter()
                .map(|tag| (tag.key().to_string(), tag.value().to_string()))
                .collect(),
        })
    }

    pub async fn list_keys(&self) -> Result<Vec<AccessKey>, RotationError> {
        let output = self
            .client
            .list_access_keys()
            .user_name(self.user)
            .send()
            .await
            .map_err(|error| self.failed("ListAccessKeys", &error))?;
        Ok(access_keys(&output))
    }

    /// Creates a key. `CreateAccessKey` is the one call that is not idempotent, so
    /// the SDK must not retry it blindly: after a timeout or a 5xx the key may exist
    /// already, and a second attempt would make another. Only throttling, which AWS
    /// answers before doing anything, is retried here; any other failure fails the
    /// step, and the retry of the step finds the first key through the creation
    /// marker and deletes it.
    pub async fn create_key(&self) -> Result<NewKey, RotationError> {
        let mut backoff = Backoff::new(CREATE_KEY_FIRST_PAUSE, CREATE_KEY_MAX_PAUSE);
        let mut attempts_left = CREATE_KEY_ATTEMPTS;
        let output = loop {
            attempts_left -= 1;
            let result = self
                .client
                .create_access_key()
                .user_name(self.user)
                .customize()
                .config_override(
                    aws_sdk_iam::config::Builder::default().retry_config(RetryConfig::disabled()),
                )
                .send()
                .await;
            match result {
                Ok(output) => break output,
                Err(error) if attempts_left > 0 && is_throttling(error.code()) => {
                    tokio::time::sleep(backoff.next_pause()).await;
                }
                Err(error) => return Err(self.failed("CreateAccessKey", &error)),
            }
        };
        let key = output.access_key().ok_or_else(|| RotationError::Aws {
            secret: self.secret_arn.to_string(),
            user: Some(self.user.to_string()),
            operation: "CreateAccessKey",
            code: "InvalidResponse".into(),
            message: "the response holds no access key".into(),
        })?;
        Ok(NewKey {
            id: key.access_key_id().to_string(),
            secret: Sensitive::new(key.secret_access_key()),
        })
    }

    /// Adds or overwrites user tags in one call.
    pub async fn tag(&self, tags: &[(&str, &str)]) -> Result<(), RotationError> {
        let tags = tags
            .iter()
            .map(|(key, value)| Tag::builder().key(*key).value(*value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| RotationError::Aws {
                secret: self.secret_arn.to_string(),
                user: Some(self.user.to_string()),
                operation: "TagUser",
                code: "InvalidRequest".into(),
                message: error.to_string(),
            })?;
        self.client
            .tag_user()
            .user_name(self.user)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|error| self.failed("TagUser", &error))?;
        Ok(())
    }

    pub async fn untag(&self, keys: &[String]) -> Result<(), RotationError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.client
            .untag_user()
            .user_name(self.user)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|error| self.failed("UntagUser", &error))?;
        Ok(())
    }

    /// When the key was last used; `None` if never, or if IAM would not say (the
    /// question is only ever for a warning, so it never fails the step).
    pub async fn last_use(&self, key_id: &str) -> Option<LastUse> {
        let output = self
            .client
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .inspect_err(|error| {
                tracing::warn!(
                    access_key_id = key_id,
                    code = error.code(),
                    "could not look up when the key was last used"
                );
            })
            .ok()?;
        let last_used = output.access_key_last_used()?;
        Some(LastUse {
            at: last_used.last_used_date()?.secs(),
            service: last_used.service_name().to_string(),
            region: last_used.region().to_string(),
        })
    }

    /// Deletes a key; a key that is already gone counts as deleted, so a retry
    /// after a crash converges.
    pub async fn delete_key(&self, key_id: &str) -> Result<(), RotationError> {
        let result = self
            .client
            .delete_access_key()
            .user_name(self.user)
            .access_key_id(key_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("NoSuchEntity") => Ok(()),
            Err(error) => Err(self.failed("DeleteAccessKey", &error)),
        }
    }

    /// Makes a key Inactive; a key that is gone needs no deactivating.
    pub async fn deactivate_key(&self, key_id: &str) -> Result<(), RotationError> {
        let result = self
            .client
            .update_access_key()
            .user_name(self.user)
            .access_key_id(key_id)
            .status(StatusType::Inactive)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("NoSuchEntity") => Ok(()),
            Err(error) => Err(self.failed("UpdateAccessKey", &error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf";
    const TOKEN: &str = "tok-2";

    fn user(tags: &[(&str, &str)]) -> IamUser {
        IamUser {
            name: "app".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn keys(ids: &[&str]) -> Vec<AccessKey> {
        ids.iter()
            .map(|id| AccessKey {
                id: id.to_string(),
                active: true,
                created: None,
            })
            .collect()
    }

    fn secret(arn: &str, name: &str) -> SecretInfo {
        SecretInfo {
            arn: arn.into(),
            name: name.into(),
            rotation_enabled: true,
            rotation_lambda_arn: None,
            versions: HashMap::new(),
        }
    }

    #[test]
    fn binding_accepts_the_arn_or_the_name_and_nothing_else() {
        let app = secret(ARN, "app");
        assert!(
            user(&[(BINDING_TAG, ARN)])
                .check_binding(&app, false)
                .is_ok()
        );
        assert!(
            user(&[(BINDING_TAG, "app")])
                .check_binding(&app, false)
                .is_ok()
        );
        let other = user(&[(BINDING_TAG, "other")])
            .check_binding(&app, false)
            .unwrap_err();
        assert_eq!(other.kind(), "UserNotBound");
        assert!(other.to_string().contains("names another secret (other)"));
        let missing = user(&[]).check_binding(&app, false).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("has no tag iam-key-rotation:secret")
        );
    }

    #[test]
    fn a_user_in_another_account_is_bound_by_the_full_arn_only() {
        let app = secret(ARN, "app");
        assert!(
            user(&[(BINDING_TAG, ARN)])
                .check_binding(&app, true)
                .is_ok()
        );
        let by_name = user(&[(BINDING_TAG, "app")])
            .check_binding(&app, true)
            .unwrap_err();
        assert_eq!(by_name.kind(), "UserNotBound");
        let message = by_name.to_string();
        assert!(message.contains("full ARN"), "{message}");
        assert!(
            message.contains(&format!("Key=iam-key-rotation:secret,Value={ARN}")),
            "{message}"
        );
    }

    #[test]
    fn descriptions_name_exactly_one_secret() {
        let description = key_description(ARN, TOKEN).unwrap();
        assert!(description_names(&description, ARN));
        assert!(!description_names(&description, &ARN[..ARN.len() - 1]));
        assert!(!description_names("deploy key for app", ARN));
        let long_arn = format!("{ARN}{}", "x".repeat(150));
        let short = key_description(&long_arn, &"t".repeat(64)).unwrap();
        assert!(description_names(&short, &long_arn));
        assert!(key_description(&"x".repeat(300), TOKEN).is_err());
        assert_eq!(described_secret(&description), Some(ARN));
        assert_eq!(described_secret("deploy key for app"), None);
    }

    #[test]
    fn room_is_made_from_managed_keys_only() {
        let description = key_description(ARN, "tok-1").unwrap();
        let owner = user(&[("AKIAPREV", &description), ("AKIAHUMAN", "laptop key")]);
        let plan = RoomPlan::new(
            &owner,
            &keys(&["AKIACUR", "AKIAPREV"]),
            Some("AKIACUR"),
            ARN,
            TOKEN,
        );
        assert_eq!(plan.delete, vec!["AKIAPREV"]);
        assert!(plan.leaves_room());

        let plan = RoomPlan::new(
            &owner,
            &keys(&["AKIACUR", "AKIAHUMAN"]),
            Some("AKIACUR"),
            ARN,
            TOKEN,
        );
        assert!(plan.delete.is_empty());
        assert_eq!(plan.unmanaged, vec!["AKIAHUMAN"]);
        assert!(!plan.leaves_room());
    }

    #[test]
    fn the_current_key_is_kept_even_when_tagged() {
        let description = key_description(ARN, "tok-1").unwrap();
        let owner = user(&[("AKIACUR", &description)]);
        let plan = RoomPlan::new(&owner, &keys(&["AKIACUR"]), Some("AKIACUR"), ARN, TOKEN);
        assert!(plan.delete.is_empty());
        assert_eq!(plan.keep, vec!["AKIACUR"]);
    }

    #[test]
    fn an_untagged_key_made_after_this_versions_marker_is_an_orphan() {
        let marker = CreationMarker {
            token: TOKEN.into(),
            keys_before: vec!["AKIACUR".into()],
        };
        let owner = user(&[(CREATING_TAG, &marker.to_tag_value())]);
        let plan = RoomPlan::new(
            &owner,
            &keys(&["AKIACUR", "AKIAORPHAN"]),
            Some("AKIACUR"),
            ARN,
            TOKEN,
        );
        assert_eq!(plan.delete, vec!["AKIAORPHAN"]);

        // A marker of another version proves nothing about the key: it stays.
        let plan = RoomPlan::new(
            &owner,
            &keys(&["AKIACUR", "AKIAORPHAN"]),
            Some("AKIACUR"),
            ARN,
            "tok-3",
        );
        assert!(plan.delete.is_empty());
        assert_eq!(plan.unmanaged, vec!["AKIAORPHAN"]);
    }

    #[test]
    fn markers_round_trip_through_their_tag_value() {
        let marker = CreationMarker {
            token: TOKEN.into(),
            keys_before: vec!["AKIA1".into(), "AKIA2".into()],
        };
        assert_eq!(CreationMarker::parse(&marker.to_tag_value()), Some(marker));
        assert_eq!(CreationMarker::parse(""), None);
    }
}
