//! IAM calls on one user's access keys and tags. Which keys a secret manages, and
//! why, is decided in `key_tags.rs`; this module only makes the calls.

use std::time::Duration;

use aws_sdk_iam::Client;
use aws_sdk_iam::config::retry::RetryConfig;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{StatusType, Tag};

use crate::aws_error::AwsError;
use crate::backoff::Backoff;
use crate::error::{RotationError, aws_call_failed, is_throttling};
use crate::model::user::{AccessKey, IamUser};
use crate::sensitive::Sensitive;

/// Attempts at `CreateAccessKey` while IAM throttles it, and the pauses between
/// them: as patient as the SDK is with every other call (see `retry.rs`); the
/// invocation's deadline bounds it too.
const CREATE_KEY_ATTEMPTS: u32 = 12;
const CREATE_KEY_FIRST_PAUSE: Duration = Duration::from_millis(200);
const CREATE_KEY_MAX_PAUSE: Duration = Duration::from_secs(5);
/// IAM answers `ConcurrentModification` when two writes to one user's tags
/// cross (a rotation and an operator, say); the SDK does not retry it, and a
/// second try a moment later succeeds.
const CONCURRENT_ATTEMPTS: u32 = 5;
const CONCURRENT_FIRST_PAUSE: Duration = Duration::from_millis(100);
const CONCURRENT_MAX_PAUSE: Duration = Duration::from_secs(1);

fn is_concurrent(code: Option<&str>) -> bool {
    code == Some("ConcurrentModification")
}

/// Whether the key a delete or deactivate named was still in IAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existed {
    Yes,
    No,
}

/// A `CreateAccessKey` that failed; `definite` when AWS answered with a client
/// error, so no key was made.
pub struct CreateKeyFailed {
    pub error: RotationError,
    pub definite: bool,
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

/// A user and its tags (`GetUser` returns them); `None` if there is no such
/// user. The one reader of users, for the steps, the sweep and `keyrot`.
pub async fn read_user(client: &Client, user: &str) -> Result<Option<IamUser>, AwsError> {
    let output = match client.get_user().user_name(user).send().await {
        Ok(output) => output,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(AwsError::from_sdk("GetUser", user, &error)),
    };
    Ok(output.user().map(|found| IamUser {
        name: found.user_name().to_string(),
        tags: found
            .tags()
            .iter()
            .map(|tag| (tag.key().to_string(), tag.value().to_string()))
            .collect(),
    }))
}

/// The user's access keys.
pub async fn read_keys(client: &Client, user: &str) -> Result<Vec<AccessKey>, AwsError> {
    let output = client
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .map_err(|error| AwsError::from_sdk("ListAccessKeys", user, &error))?;
    Ok(access_keys(&output))
}

/// A user's tags and keys; `None` if there is no such user.
pub async fn read_user_and_keys(
    client: &Client,
    user: &str,
) -> Result<Option<(IamUser, Vec<AccessKey>)>, AwsError> {
    let Some(found) = read_user(client, user).await? else {
        return Ok(None);
    };
    Ok(Some((found, read_keys(client, user).await?)))
}

/// When a key was last used, asked of IAM directly.
pub async fn read_last_used(
    client: &Client,
    key_id: &str,
) -> Result<Option<aws_sdk_iam::primitives::DateTime>, AwsError> {
    let output = client
        .get_access_key_last_used()
        .access_key_id(key_id)
        .send()
        .await
        .map_err(|error| AwsError::from_sdk("GetAccessKeyLastUsed", key_id, &error))?;
    Ok(output
        .access_key_last_used()
        .and_then(|used| used.last_used_date().copied()))
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
        read_user(&self.client, self.user)
            .await
            .map_err(|error| self.named(error))?
            .ok_or_else(|| RotationError::UserNotFound {
                secret: self.secret_arn.to_string(),
                user: self.user.to_string(),
            })
    }

    pub async fn list_keys(&self) -> Result<Vec<AccessKey>, RotationError> {
        read_keys(&self.client, self.user)
            .await
            .map_err(|error| self.named(error))
    }

    /// A failed call, naming this secret and user.
    fn named(&self, error: AwsError) -> RotationError {
        RotationError::aws(error, self.secret_arn, Some(self.user))
    }

    /// Creates a key. `CreateAccessKey` is the one call that is not idempotent, so
    /// the SDK must not retry it blindly: after a timeout or a 5xx the key may exist
    /// already, and a second attempt would make another. Only throttling, which AWS
    /// answers before doing anything, is retried here; any other failure fails the
    /// step, and the retry of the step finds the first key through the creation
    /// marker and deletes it. The error says whether AWS answered it (a 4xx:
    /// nothing was created, so the marker must go, or a key made by hand later
    /// would look like this attempt's orphan).
    pub async fn create_key(&self) -> Result<NewKey, CreateKeyFailed> {
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
                Err(error) => {
                    let definite = error
                        .raw_response()
                        .is_some_and(|response| response.status().is_client_error());
                    return Err(CreateKeyFailed {
                        error: self.failed("CreateAccessKey", &error),
                        definite,
                    });
                }
            }
        };
        let key = output.access_key().ok_or_else(|| CreateKeyFailed {
            error: RotationError::Aws {
                secret: self.secret_arn.to_string(),
                user: Some(self.user.to_string()),
                operation: "CreateAccessKey",
                code: "InvalidResponse".into(),
                message: "the response holds no access key".into(),
            },
            definite: false,
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
        self.retrying_concurrent("TagUser", || {
            self.client
                .tag_user()
                .user_name(self.user)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await
    }

    pub async fn untag(&self, keys: &[String]) -> Result<(), RotationError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.retrying_concurrent("UntagUser", || {
            self.client
                .untag_user()
                .user_name(self.user)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
        })
        .await
    }

    /// Makes a tag write, again while IAM answers `ConcurrentModification`.
    async fn retrying_concurrent<T, E, R, Fut>(
        &self,
        operation: &'static str,
        call: impl Fn() -> Fut,
    ) -> Result<(), RotationError>
    where
        Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let mut backoff = Backoff::new(CONCURRENT_FIRST_PAUSE, CONCURRENT_MAX_PAUSE);
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(_) => return Ok(()),
                Err(error) if attempt < CONCURRENT_ATTEMPTS && is_concurrent(error.code()) => {
                    attempt += 1;
                    tokio::time::sleep(backoff.next_pause()).await;
                }
                Err(error) => return Err(self.failed(operation, &error)),
            }
        }
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

    /// Deletes a key; says whether it was still there. A key that is already gone
    /// is not an error, so a retry after a crash converges.
    pub async fn delete_key(&self, key_id: &str) -> Result<Existed, RotationError> {
        let result = self
            .client
            .delete_access_key()
            .user_name(self.user)
            .access_key_id(key_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Existed::Yes),
            Err(error) if error.code() == Some("NoSuchEntity") => Ok(Existed::No),
            Err(error) => Err(self.failed("DeleteAccessKey", &error)),
        }
    }

    /// Makes a key Active again (`keyrot rollback`).
    pub async fn activate_key(&self, key_id: &str) -> Result<(), RotationError> {
        self.client
            .update_access_key()
            .user_name(self.user)
            .access_key_id(key_id)
            .status(StatusType::Active)
            .send()
            .await
            .map_err(|error| self.failed("UpdateAccessKey", &error))?;
        Ok(())
    }

    /// Makes a key Inactive; says whether it was still there (a key that is gone
    /// needs no deactivating, and was not deactivated by us).
    pub async fn deactivate_key(&self, key_id: &str) -> Result<Existed, RotationError> {
        let result = self
            .client
            .update_access_key()
            .user_name(self.user)
            .access_key_id(key_id)
            .status(StatusType::Inactive)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Existed::Yes),
            Err(error) if error.code() == Some("NoSuchEntity") => Ok(Existed::No),
            Err(error) => Err(self.failed("UpdateAccessKey", &error)),
        }
    }
}
