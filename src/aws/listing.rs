//! Reading every secret in as few calls as the APIs allow: a page of 100 at a
//! time (`ListSecrets` carries rotation settings and version labels), and their
//! current values 20 at a time (`BatchGetSecretValue`). Shared by the sweep,
//! `keyrot status` and `keyrot audit`.

use std::collections::HashMap;

use aws_sdk_iam::primitives::DateTime;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretListEntry};

use super::Clients;
use super::error::AwsError;
use crate::model::secret::{AWSCURRENT, Secret};
use crate::model::secret_value::SecretValue;
use crate::sensitive::Sensitive;

/// `BatchGetSecretValue`'s largest batch.
pub const VALUE_BATCH: usize = 20;

/// The secret as `ListSecrets` describes it.
fn from_list_entry(entry: &SecretListEntry) -> Option<Secret> {
    let rules = entry.rotation_rules();
    Some(Secret {
        arn: entry.arn()?.to_string(),
        name: entry.name()?.to_string(),
        rotation_enabled: entry.rotation_enabled().unwrap_or(false),
        rotation_lambda_arn: entry.rotation_lambda_arn().map(str::to_string),
        every_days: rules.and_then(|r| r.automatically_after_days()),
        schedule_expression: rules
            .and_then(|r| r.schedule_expression())
            .map(str::to_string),
        created: entry.created_date().copied(),
        last_rotated: entry.last_rotated_date().copied(),
        next_rotation: entry.next_rotation_date().copied(),
        versions: entry
            .secret_versions_to_stages()
            .cloned()
            .unwrap_or_default(),
        delivery: super::secrets::delivery_of(entry.tags()),
    })
}

/// Every secret (under `prefix`, if given), a page at a time, in the order
/// Secrets Manager lists them.
pub struct SecretPages {
    pages: aws_smithy_async::future::pagination_stream::PaginationStream<
        Result<
            aws_sdk_secretsmanager::operation::list_secrets::ListSecretsOutput,
            aws_sdk_secretsmanager::error::SdkError<
                aws_sdk_secretsmanager::operation::list_secrets::ListSecretsError,
                aws_sdk_secretsmanager::config::http::HttpResponse,
            >,
        >,
    >,
    prefix: Option<String>,
}

impl SecretPages {
    pub fn new(clients: &Clients, prefix: Option<&str>) -> Self {
        let filter = prefix.map(|prefix| {
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(prefix)
                .build()
        });
        let pages = clients
            .secrets
            .list_secrets()
            .set_filters(filter.map(|f| vec![f]))
            .into_paginator()
            .send();
        Self {
            pages,
            prefix: prefix.map(str::to_string),
        }
    }

    /// The next page, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<Secret>>, AwsError> {
        let Some(page) = self.pages.next().await else {
            return Ok(None);
        };
        let page = page.map_err(|error| AwsError::from_sdk("ListSecrets", "", &error))?;
        Ok(Some(
            page.secret_list()
                .iter()
                .filter_map(from_list_entry)
                // The name filter matches the prefix of any word: keep true prefixes.
                .filter(|entry| {
                    self.prefix
                        .as_deref()
                        .is_none_or(|prefix| entry.name.starts_with(prefix))
                })
                .collect(),
        ))
    }
}

/// What reading a secret's `AWSCURRENT` value gave.
#[derive(Debug, Clone)]
pub enum ValueRead {
    /// A value of this tool's: a JSON object naming a `UserName`.
    Value(SecretValue),
    /// A value, or none, that is not one of this tool's, and why (never
    /// quoting it).
    Invalid(String),
    /// The value could not be read (a resource or KMS key policy, say).
    Unreadable(AwsError),
}

/// The `AWSCURRENT` values of the secrets, 20 to a call, each with the time its
/// version was created. Secrets whose value is not a JSON object with a
/// `UserName` (another kind of secret), and secrets the caller may not read, are
/// left out: they are not this tool's business. An answer that is not labelled
/// `AWSCURRENT` (emulators answer their default version, which may be stale) is
/// asked again by stage.
pub async fn current_values(
    clients: &Clients,
    secrets: &[Secret],
) -> Result<HashMap<String, SecretValue>, AwsError> {
    Ok(read_current_values(clients, secrets)
        .await?
        .into_iter()
        .filter_map(|(arn, read)| match read {
            ValueRead::Value(value) => Some((arn, value)),
            ValueRead::Invalid(_) | ValueRead::Unreadable(_) => None,
        })
        .collect())
}

/// As [`current_values`], but every secret gets an answer: its value, why it
/// is not one of this tool's, or why it could not be read (`keyrot status`
/// gives every secret a row).
pub async fn read_current_values(
    clients: &Clients,
    secrets: &[Secret],
) -> Result<HashMap<String, ValueRead>, AwsError> {
    let mut values = HashMap::new();
    for batch in secrets.chunks(VALUE_BATCH) {
        let answer = clients
            .secrets
            .batch_get_secret_value()
            .set_secret_id_list(Some(batch.iter().map(|s| s.arn.clone()).collect()))
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            // One odd secret must not hide the others (an emulator fails the whole
            // batch where AWS lists the secret under Errors): read them one by one.
            Err(error) if error.as_service_error().is_some() => {
                for secret in batch {
                    let read = current_value_text(clients, &secret.arn).await?;
                    values.insert(secret.arn.clone(), parsed(read));
                }
                continue;
            }
            Err(error) => return Err(AwsError::from_sdk("BatchGetSecretValue", "", &error)),
        };
        for entry in output.secret_values() {
            let Some(arn) = entry.arn() else { continue };
            let read = if entry.version_stages().iter().any(|s| s == AWSCURRENT) {
                Ok(entry.secret_string().map(|text| StoredText {
                    text: text.to_string(),
                    created: entry.created_date().map(DateTime::secs),
                }))
            } else {
                current_value_text(clients, arn).await?
            };
            values.insert(arn.to_string(), parsed(read));
        }
        for error in output.errors() {
            let Some(id) = error.secret_id() else {
                continue;
            };
            let arn = batch
                .iter()
                .find(|secret| secret.arn == id || secret.name == id)
                .map_or(id, |secret| secret.arn.as_str());
            values.insert(
                arn.to_string(),
                ValueRead::Unreadable(AwsError::new(
                    "BatchGetSecretValue",
                    arn,
                    error.error_code().unwrap_or("UnknownError"),
                    error.message().unwrap_or("no message").to_string(),
                )),
            );
        }
        for secret in batch {
            values.entry(secret.arn.clone()).or_insert_with(|| {
                ValueRead::Invalid("Secrets Manager returned no value for it".into())
            });
        }
    }
    Ok(values)
}

/// A version's text as read, and when the version was created.
struct StoredText {
    text: String,
    created: Option<i64>,
}

/// A value as read, parsed as a secret of this tool's kind.
fn parsed(read: Result<Option<StoredText>, AwsError>) -> ValueRead {
    match read {
        Err(error) => ValueRead::Unreadable(error),
        Ok(None) => ValueRead::Invalid("it has no AWSCURRENT value (or a binary one)".into()),
        Ok(Some(stored)) => match SecretValue::parse(&Sensitive::new(stored.text)) {
            Ok(value) => ValueRead::Value(value.stored_at(stored.created)),
            Err(reason) => ValueRead::Invalid(reason),
        },
    }
}

/// The `AWSCURRENT` text: `Ok(None)` when there is none; a refusal of the
/// secret's (access denied, a KMS key) as `Err` in an `Ok`, so that the
/// caller can tell it from a failure of the whole run.
async fn current_value_text(
    clients: &Clients,
    arn: &str,
) -> Result<Result<Option<StoredText>, AwsError>, AwsError> {
    match clients
        .secrets
        .get_secret_value()
        .secret_id(arn)
        .version_stage(AWSCURRENT)
        .send()
        .await
    {
        Ok(output) => Ok(Ok(output.secret_string().map(|text| StoredText {
            text: text.to_string(),
            created: output.created_date().map(DateTime::secs),
        }))),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(Ok(None))
        }
        Err(error) if error.as_service_error().is_some() => {
            Ok(Err(AwsError::from_sdk("GetSecretValue", arn, &error)))
        }
        Err(error) => Err(AwsError::from_sdk("GetSecretValue", arn, &error)),
    }
}

/// When each version of a secret was created.
pub async fn versions_created(
    clients: &Clients,
    secret: &Secret,
) -> Result<HashMap<String, DateTime>, AwsError> {
    let output = clients
        .secrets
        .list_secret_version_ids()
        .secret_id(&secret.arn)
        .send()
        .await
        .map_err(|error| AwsError::from_sdk("ListSecretVersionIds", &secret.name, &error))?;
    Ok(output
        .versions()
        .iter()
        .filter_map(|v| Some((v.version_id()?.to_string(), *v.created_date()?)))
        .collect())
}

/// When the pending version of a secret was created.
pub async fn version_created(
    clients: &Clients,
    secret: &Secret,
    version_id: &str,
) -> Result<Option<DateTime>, AwsError> {
    Ok(versions_created(clients, secret)
        .await?
        .get(version_id)
        .copied())
}
