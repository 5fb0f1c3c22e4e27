//! Reading the account in as few calls as the APIs allow: secrets a page of 100
//! at a time (`ListSecrets` carries rotation settings and version labels), their
//! current values 20 at a time (`BatchGetSecretValue`), and every user's keys'
//! last use from one credential report.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_iam::primitives::DateTime;
use aws_sdk_iam::types::ReportStateType;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretListEntry};

use super::FleetError;
use super::time::parse_report_time;
use crate::backoff::Backoff;
use crate::iam_keys::access_keys;
use crate::key_tags::{AccessKey, IamUser};
use crate::preconditions::same_function;
use crate::secret_value::SecretValue;
use crate::secrets_manager::{AWSCURRENT, AWSPENDING, SecretInfo};
use crate::sensitive::Sensitive;

/// `BatchGetSecretValue`'s largest batch.
pub const VALUE_BATCH: usize = 20;

/// One secret as `ListSecrets` describes it.
#[derive(Debug, Clone)]
pub struct SecretEntry {
    pub arn: String,
    pub name: String,
    pub rotation_enabled: bool,
    pub rotation_lambda_arn: Option<String>,
    pub every_days: Option<i64>,
    pub schedule_expression: Option<String>,
    pub created: Option<DateTime>,
    pub last_rotated: Option<DateTime>,
    pub next_rotation: Option<DateTime>,
    /// Version id to its staging labels.
    pub versions: HashMap<String, Vec<String>>,
}

impl SecretEntry {
    pub fn from_list_entry(entry: &SecretListEntry) -> Option<Self> {
        let rules = entry.rotation_rules();
        Some(Self {
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
        })
    }

    /// What the rotation's own checks need of the secret.
    pub fn info(&self) -> SecretInfo {
        SecretInfo {
            arn: self.arn.clone(),
            name: self.name.clone(),
            rotation_enabled: self.rotation_enabled,
            rotation_lambda_arn: self.rotation_lambda_arn.clone(),
            versions: self.versions.clone(),
        }
    }

    /// The version carrying `AWSPENDING` but not `AWSCURRENT`: a rotation that
    /// started and has not finished.
    pub fn pending_version(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, stages)| {
                stages.iter().any(|s| s == AWSPENDING) && !stages.iter().any(|s| s == AWSCURRENT)
            })
            .map(|(id, _)| id.as_str())
    }

    /// "every 30 days", the schedule expression, or "none".
    pub fn schedule(&self) -> String {
        match (&self.schedule_expression, self.every_days) {
            (Some(expression), _) => expression.clone(),
            (None, Some(days)) => format!("every {days} days"),
            (None, None) => "none".to_string(),
        }
    }

    /// When the next rotation is due: Secrets Manager's own date, or, where it
    /// gives none, the last rotation (or the creation) plus the interval.
    pub fn next_rotation(&self) -> Option<DateTime> {
        if !self.rotation_enabled {
            return None;
        }
        self.next_rotation.or_else(|| {
            let from = self.last_rotated.or(self.created)?;
            Some(super::time::plus_days(&from, self.every_days?))
        })
    }

    pub fn is_rotated_by(&self, function_arn: &str) -> bool {
        self.rotation_lambda_arn
            .as_deref()
            .is_some_and(|arn| same_function(arn, function_arn))
    }
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
    pub fn new(client: &aws_sdk_secretsmanager::Client, prefix: Option<&str>) -> Self {
        let filter = prefix.map(|prefix| {
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values(prefix)
                .build()
        });
        let pages = client
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
    pub async fn next(&mut self) -> Result<Option<Vec<SecretEntry>>, FleetError> {
        let Some(page) = self.pages.next().await else {
            return Ok(None);
        };
        let page = page.map_err(|error| FleetError::aws("ListSecrets", "", &error))?;
        Ok(Some(
            page.secret_list()
                .iter()
                .filter_map(SecretEntry::from_list_entry)
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
    client: &aws_sdk_secretsmanager::Client,
    secrets: &[SecretEntry],
) -> Result<HashMap<String, SecretValue>, FleetError> {
    let mut values = HashMap::new();
    for batch in secrets.chunks(VALUE_BATCH) {
        let answer = client
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
                        current_value_text(client, &secret.arn).await?,
                    );
                }
                continue;
            }
            Err(error) => return Err(FleetError::aws("BatchGetSecretValue", "", &error)),
        };
        for entry in output.secret_values() {
            let Some(arn) = entry.arn() else { continue };
            let stored = if entry.version_stages().iter().any(|s| s == AWSCURRENT) {
                entry.secret_string().map(|text| StoredText {
                    text: text.to_string(),
                    created: entry.created_date().map(DateTime::secs),
                })
            } else {
                current_value_text(client, arn).await?
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

async fn current_value_text(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<Option<StoredText>, FleetError> {
    match client
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
        Err(error) => Err(FleetError::aws("GetSecretValue", arn, &error)),
    }
}

/// When each version of a secret was created.
pub async fn versions_created(
    client: &aws_sdk_secretsmanager::Client,
    secret: &SecretEntry,
) -> Result<HashMap<String, DateTime>, FleetError> {
    let output = client
        .list_secret_version_ids()
        .secret_id(&secret.arn)
        .send()
        .await
        .map_err(|error| FleetError::aws("ListSecretVersionIds", &secret.name, &error))?;
    Ok(output
        .versions()
        .iter()
        .filter_map(|v| Some((v.version_id()?.to_string(), *v.created_date()?)))
        .collect())
}

/// When the pending version of a secret was created.
pub async fn version_created(
    client: &aws_sdk_secretsmanager::Client,
    secret: &SecretEntry,
    version_id: &str,
) -> Result<Option<DateTime>, FleetError> {
    Ok(versions_created(client, secret)
        .await?
        .get(version_id)
        .copied())
}

/// A user's tags (through `GetUser`, which returns them) and keys.
pub async fn user_and_keys(
    iam: &aws_sdk_iam::Client,
    user: &str,
) -> Result<Option<(IamUser, Vec<AccessKey>)>, FleetError> {
    let Some(found) = self::user(iam, user).await? else {
        return Ok(None);
    };
    Ok(Some((found, list_keys(iam, user).await?)))
}

/// A user and its tags; `None` if there is no such user.
pub async fn user(iam: &aws_sdk_iam::Client, user: &str) -> Result<Option<IamUser>, FleetError> {
    let got = iam.get_user().user_name(user).send().await;
    let output = match got {
        Ok(output) => output,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(FleetError::aws("GetUser", user, &error)),
    };
    let Some(found) = output.user() else {
        return Ok(None);
    };
    let tags = found
        .tags()
        .iter()
        .map(|tag| (tag.key().to_string(), tag.value().to_string()))
        .collect();
    Ok(Some(IamUser {
        name: found.user_name().to_string(),
        tags,
    }))
}

pub async fn list_keys(
    iam: &aws_sdk_iam::Client,
    user: &str,
) -> Result<Vec<AccessKey>, FleetError> {
    let output = iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .map_err(|error| FleetError::aws("ListAccessKeys", user, &error))?;
    Ok(access_keys(&output))
}

/// When a key was last used, asked of IAM directly.
pub async fn last_used(
    iam: &aws_sdk_iam::Client,
    key_id: &str,
) -> Result<Option<DateTime>, FleetError> {
    let output = iam
        .get_access_key_last_used()
        .access_key_id(key_id)
        .send()
        .await
        .map_err(|error| FleetError::aws("GetAccessKeyLastUsed", key_id, &error))?;
    Ok(output
        .access_key_last_used()
        .and_then(|used| used.last_used_date().copied()))
}

/// IAM's credential report: per user, each key's creation time, whether it is
/// active and when it was last used. One report answers for every user, where
/// asking per key would cost a call each. AWS regenerates it at most every four
/// hours, so a key newer than the report is asked about directly.
#[derive(Debug, Default)]
pub struct CredentialReport {
    users: HashMap<String, Vec<ReportKey>>,
}

#[derive(Debug, Clone)]
struct ReportKey {
    created: DateTime,
    last_used: Option<DateTime>,
}

impl CredentialReport {
    /// Generates (or reuses AWS's recent) report and reads it, asking again
    /// until IAM has it ready or `wait` has passed.
    pub async fn fetch(iam: &aws_sdk_iam::Client, wait: Duration) -> Result<Self, FleetError> {
        let give_up_at = std::time::Instant::now() + wait;
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
        loop {
            let state = iam
                .generate_credential_report()
                .send()
                .await
                .map_err(|error| FleetError::aws("GenerateCredentialReport", "", &error))?;
            if state.state() == Some(&ReportStateType::Complete) {
                break;
            }
            let now = std::time::Instant::now();
            if now >= give_up_at {
                return Err(FleetError::Refused(format!(
                    "IAM had not finished the credential report after {} s (GenerateCredentialReport still says {}): run the audit again in a minute",
                    wait.as_secs(),
                    state.state().map_or("nothing", |s| s.as_str())
                )));
            }
            tokio::time::sleep(backoff.next_pause().min(give_up_at - now)).await;
        }
        let output = iam
            .get_credential_report()
            .send()
            .await
            .map_err(|error| FleetError::aws("GetCredentialReport", "", &error))?;
        let text = output
            .content()
            .map(|blob| String::from_utf8_lossy(blob.as_ref()).into_owned())
            .unwrap_or_default();
        Ok(Self::parse(&text))
    }

    /// Parses the CSV. IAM allows commas in user names and in paths, and the
    /// report may not quote them, so a line is read from both ends: every
    /// column after `arn` holds a date, a boolean, a region or a service (never
    /// a comma), and a user name holds no `:`, so the user ends at the first
    /// `,arn:`.
    pub fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let Some(header) = lines.next() else {
            return Self::default();
        };
        let columns: Vec<&str> = header.split(',').collect();
        let tail_len = columns.len().saturating_sub(2);
        let column = |name: &str| {
            columns
                .iter()
                .position(|c| *c == name)
                .and_then(|i| i.checked_sub(2))
        };
        let mut users = HashMap::new();
        for line in lines {
            let fields: Vec<&str> = line.split(',').map(unquote).collect();
            if fields.len() < columns.len() {
                continue;
            }
            let (head, tail) = fields.split_at(fields.len() - tail_len);
            let head = head.join(",");
            let Some((user, _arn)) = head.split_once(",arn:") else {
                continue;
            };
            let field = |name: &str| column(name).and_then(|i| tail.get(i)).copied();
            let keys = ["access_key_1", "access_key_2"]
                .iter()
                .filter_map(|slot| {
                    let created = parse_report_time(field(&format!("{slot}_last_rotated"))?)?;
                    let last_used =
                        field(&format!("{slot}_last_used_date")).and_then(parse_report_time);
                    Some(ReportKey { created, last_used })
                })
                .collect();
            users.insert(user.to_string(), keys);
        }
        Self { users }
    }

    /// The last use of the user's key created at `created`, if the report has
    /// that key: `Some(None)` for a key never used, `None` for a key it lacks.
    pub fn last_used(&self, user: &str, created: &DateTime) -> Option<Option<DateTime>> {
        self.users
            .get(user)?
            .iter()
            .find(|key| key.created.secs() == created.secs())
            .map(|key| key.last_used)
    }
}

/// A CSV field without the quotes RFC 4180 allows around it.
fn unquote(field: &str) -> &str {
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    #[test]
    fn the_credential_report_is_read_even_with_commas_in_user_names() {
        let report = CredentialReport::parse(&format!(
            "{HEADER}\n\
             a,b=c,arn:aws:iam::1:user/a,b=c,2026-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-02-01T00:00:00+00:00,2026-03-01T00:00:00+00:00,us-east-1,iam,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
             path,user,arn:aws:iam::1:user/a,b/path,user,2026-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-02-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        ));
        let created = parse_report_time("2026-02-01T00:00:00+00:00").unwrap();
        let used = report.last_used("a,b=c", &created).unwrap().unwrap();
        assert_eq!(
            Some(used.secs()),
            parse_report_time("2026-03-01T00:00:00Z").map(|t| t.secs())
        );
        // A comma in the path as well as in the name.
        assert_eq!(report.last_used("path,user", &created), Some(None));
        assert_eq!(report.last_used("a,b=c", &DateTime::from_secs(1)), None);
    }
}
