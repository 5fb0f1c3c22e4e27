//! IAM calls: on one user's access keys and tags, and the account's users a
//! page at a time. Which keys a secret manages, and why, is decided in
//! `model/`; this module only makes the calls.

use std::time::Duration;

use aws_sdk_iam::Client;
use aws_sdk_iam::config::retry::RetryConfig;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{EntityType, StatusType, Tag};

use super::error::{AwsError, is_throttling};
use super::retry;
use crate::backoff::Backoff;
use crate::model::user::{AccessKey, IamUser};
use crate::sensitive::Sensitive;

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
    pub error: AwsError,
    pub definite: bool,
}

/// IAM in one account: the clients' own, or a session of a role there.
#[derive(Debug, Clone)]
pub struct Iam(pub(in crate::aws) Client);

/// The user's keys from a `ListAccessKeys` answer.
fn access_keys(
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

impl Iam {
    /// A user and its tags (`GetUser` returns them); `None` if there is no such
    /// user. The one reader of users, for the steps, the sweep and `keyrot`.
    pub async fn read_user(&self, user: &str) -> Result<Option<IamUser>, AwsError> {
        let output = match self.0.get_user().user_name(user).send().await {
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
            path: found.path().to_string(),
            tags: tags_of(found.tags()),
        }))
    }

    /// The user's access keys.
    pub async fn read_keys(&self, user: &str) -> Result<Vec<AccessKey>, AwsError> {
        let output = self
            .0
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk("ListAccessKeys", user, &error))?;
        Ok(access_keys(&output))
    }

    /// A user's tags and keys; `None` if there is no such user.
    pub async fn read_user_and_keys(
        &self,
        user: &str,
    ) -> Result<Option<(IamUser, Vec<AccessKey>)>, AwsError> {
        let Some(found) = self.read_user(user).await? else {
            return Ok(None);
        };
        Ok(Some((found, self.read_keys(user).await?)))
    }

    /// When a key was last used, asked of IAM directly.
    pub async fn read_last_used(
        &self,
        key_id: &str,
    ) -> Result<Option<aws_sdk_iam::primitives::DateTime>, AwsError> {
        let output = self
            .0
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk("GetAccessKeyLastUsed", key_id, &error))?;
        Ok(output
            .access_key_last_used()
            .and_then(|used| used.last_used_date().copied()))
    }

    /// Every user under `path` (an IAM path prefix) with its tags, a page of up
    /// to 1,000 at a time (`GetAccountAuthorizationDetails`): the tags name
    /// each key's secret, so no user costs a `GetUser`.
    pub fn users(&self, path: &str) -> UserPages {
        UserPages {
            pages: self
                .0
                .get_account_authorization_details()
                .filter(EntityType::User)
                // IAM's default page is 100; 1,000 is its largest.
                .max_items(1000)
                .into_paginator()
                .send(),
            path: path.to_string(),
        }
    }

    /// Calls on one user on behalf of one secret, which every error names.
    pub fn user<'a>(&self, secret_arn: &'a str, user: &'a str) -> UserIam<'a> {
        UserIam {
            client: self.0.clone(),
            secret_arn,
            user,
        }
    }
}

fn tags_of(tags: &[Tag]) -> std::collections::HashMap<String, String> {
    tags.iter()
        .map(|tag| (tag.key().to_string(), tag.value().to_string()))
        .collect()
}

/// The account's users, a page at a time.
pub struct UserPages {
    pages: aws_smithy_async::future::pagination_stream::PaginationStream<
        Result<
            aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput,
            SdkError<
                aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsError,
                aws_sdk_iam::config::http::HttpResponse,
            >,
        >,
    >,
    path: String,
}

impl UserPages {
    /// The next page's users under the path, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<IamUser>>, AwsError> {
        let Some(page) = self.pages.next().await else {
            return Ok(None);
        };
        let page =
            page.map_err(|error| AwsError::from_sdk("GetAccountAuthorizationDetails", "", &error))?;
        Ok(Some(
            page.user_detail_list()
                .iter()
                .filter(|user| user.path().unwrap_or("/").starts_with(&self.path))
                .filter_map(|user| {
                    Some(IamUser {
                        name: user.user_name()?.to_string(),
                        path: user.path().unwrap_or("/").to_string(),
                        tags: tags_of(user.tags()),
                    })
                })
                .collect(),
        ))
    }
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

impl UserIam<'_> {
    fn failed<E, R>(&self, operation: &'static str, error: &SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        self.named(AwsError::from_sdk(operation, self.user, error))
    }

    /// A failed call, naming this secret and user.
    fn named(&self, error: AwsError) -> AwsError {
        error.about(self.secret_arn, Some(self.user))
    }

    fn iam(&self) -> Iam {
        Iam(self.client.clone())
    }

    /// The user the calls are on.
    pub fn user_name(&self) -> &str {
        self.user
    }

    /// The user and its tags (`GetUser` returns them, which saves a
    /// `ListUserTags` call); `None` if there is no such user.
    pub async fn get_user(&self) -> Result<Option<IamUser>, AwsError> {
        self.iam()
            .read_user(self.user)
            .await
            .map_err(|error| self.named(error))
    }

    pub async fn list_keys(&self) -> Result<Vec<AccessKey>, AwsError> {
        self.iam()
            .read_keys(self.user)
            .await
            .map_err(|error| self.named(error))
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
        // As patient as the SDK with every other call, with the same back-off
        // (`retry.rs`); the invocation's deadline bounds it too.
        let mut attempt = 0;
        let output = loop {
            attempt += 1;
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
                Err(error) if attempt < retry::MAX_ATTEMPTS && is_throttling(error.code()) => {
                    tokio::time::sleep(retry::throttled_pause(attempt, fastrand::f64())).await;
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
            error: self.named(AwsError::new(
                "CreateAccessKey",
                self.user,
                "InvalidResponse",
                "the response holds no access key".into(),
            )),
            definite: false,
        })?;
        Ok(NewKey {
            id: key.access_key_id().to_string(),
            secret: Sensitive::new(key.secret_access_key()),
        })
    }

    /// Adds or overwrites user tags in one call.
    pub async fn tag(&self, tags: &[(&str, &str)]) -> Result<(), AwsError> {
        let tags = tags
            .iter()
            .map(|(key, value)| Tag::builder().key(*key).value(*value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                self.named(AwsError::new(
                    "TagUser",
                    self.user,
                    "InvalidRequest",
                    error.to_string(),
                ))
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

    pub async fn untag(&self, keys: &[String]) -> Result<(), AwsError> {
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
    ) -> Result<(), AwsError>
    where
        Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
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
    pub async fn delete_key(&self, key_id: &str) -> Result<Existed, AwsError> {
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
    pub async fn activate_key(&self, key_id: &str) -> Result<(), AwsError> {
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
    pub async fn deactivate_key(&self, key_id: &str) -> Result<Existed, AwsError> {
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
