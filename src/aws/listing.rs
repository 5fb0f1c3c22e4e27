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
                    insert_value(
                        &mut values,
                        &secret.arn,
                        current_value_text(clients, &secret.arn).await?,
                    );
                }
                continue;
            }
            Err(error) => return Err(AwsError::from_sdk("BatchGetSecretValue", "", &error)),
        };
        for entry in output.secret_values() {
            let Some(arn) = entry.arn() else { continue };
            let stored = if entry.version_stages().iter().any(|s| s == AWSCURRENT) {
                entry.secret_string().map(|text| StoredText {
                    text: text.to_string(),
                    created: entry.created_date().map(DateTime::secs),
                })
            } else {
                current_value_text(clients, arn).await?
            };
            insert_value(&mut values, arn, stored);
        }
    }
    Ok(values)
}

/// A version's text as read, and when the version was created.
struct StoredText {
    text: String,
    created: Option<i64>,
}

/// Keeps a value that parses as a secret of this tool's kind.
fn insert_value(values: &mut HashMap<String, SecretValue>, arn: &str, stored: Option<StoredText>) {
    let Some(stored) = stored else { return };
    if let Ok(value) = SecretValue::parse(&Sensitive::new(stored.text)) {
        values.insert(arn.to_string(), value.stored_at(stored.created));
    }
}

async fn current_value_text(clients: &Clients, arn: &str) -> Result<Option<StoredText>, AwsError> {
    match clients
        .secrets
        .get_secret_value()
        .secret_id(arn)
        .version_stage(AWSCURRENT)
        .send()
        .await
    {
        Ok(output) => Ok(output.secret_string().map(|text| StoredText {
            text: text.to_string(),
            created: output.created_date().map(DateTime::secs),
        })),
        Err(error) if error.as_service_error().is_some() => Ok(None),
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
