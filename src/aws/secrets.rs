//! Secrets Manager operations on one secret: its description, its versions'
//! values and labels, and (for `keyrot enroll`) its creation and rotation.
//!
//! Every read names its version explicitly (by id and stage): Secrets Manager's
//! default is `AWSCURRENT`, and asking for the stage we mean keeps us right on
//! emulators that answer the default differently.

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::types::RotationRulesType;

use super::error::AwsError;
use super::{Clients, Session};
use crate::model::delivery::SecretDelivery;
use crate::model::secret::{AWSCURRENT, AWSPENDING, Schedule, Secret};
use crate::model::secret_value::SecretValue;
use crate::sensitive::Sensitive;

/// Why a version's value could not be had: the call failed, or the value is
/// not one this function can work with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    Aws(AwsError),
    Invalid(InvalidValue),
}

/// A version's value this function cannot work with, and why (`reason`
/// never quotes it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {version} value of secret {secret} is not valid: {reason}")]
pub struct InvalidValue {
    pub secret: String,
    pub version: String,
    pub reason: String,
}

impl ValueError {
    /// A job's error: a failed call as the job takes any, an invalid value
    /// in the job's words.
    pub fn worded<E: From<AwsError>>(self, invalid: impl FnOnce(InvalidValue) -> E) -> E {
        match self {
            Self::Aws(error) => error.into(),
            Self::Invalid(value) => invalid(value),
        }
    }
}

/// Looks a secret up by ARN or name; `None` if there is no such secret (or the
/// caller may not know of it).
pub async fn find(clients: &Clients, secret_id: &str) -> Result<Option<Secret>, AwsError> {
    let answer = clients
        .secrets
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await;
    let output = match answer {
        Ok(output) => output,
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(AwsError::from_sdk("DescribeSecret", secret_id, &error)),
    };
    let arn = output.arn().unwrap_or(secret_id).to_string();
    let rules = output.rotation_rules();
    Ok(Some(Secret {
        name: output.name().unwrap_or(&arn).to_string(),
        rotation_enabled: output.rotation_enabled().unwrap_or(false),
        rotation_lambda_arn: output.rotation_lambda_arn().map(str::to_string),
        versions: output.version_ids_to_stages().cloned().unwrap_or_default(),
        every_days: rules.and_then(|r| r.automatically_after_days()),
        schedule_expression: rules
            .and_then(|r| r.schedule_expression())
            .map(str::to_string),
        created: output.created_date().copied(),
        last_rotated: output.last_rotated_date().copied(),
        next_rotation: output.next_rotation_date().copied(),
        delivery: delivery_of(output.tags()),
        arn,
    }))
}

/// A secret's delivery records, from the tags Secrets Manager returned with it.
pub(super) fn delivery_of(tags: &[aws_sdk_secretsmanager::types::Tag]) -> SecretDelivery {
    SecretDelivery::from_tags(
        tags.iter()
            .filter_map(|tag| Some((tag.key()?, tag.value()?))),
    )
}

/// The versions of one secret, addressed by its ARN; every error names it.
pub struct SecretVersions<'a> {
    clients: &'a Clients,
    arn: &'a str,
}

impl<'a> SecretVersions<'a> {
    pub fn new(clients: &'a Clients, arn: &'a str) -> Self {
        Self { clients, arn }
    }

    /// The value of version `version_id` if it carries `stage` and has a value;
    /// `None` when Secrets Manager has the label but no value yet.
    pub async fn value(
        &self,
        version_id: Option<&str>,
        stage: &str,
    ) -> Result<Option<SecretValue>, ValueError> {
        let result = self
            .clients
            .secrets
            .get_secret_value()
            .secret_id(self.arn)
            .set_version_id(version_id.map(str::to_string))
            .version_stage(stage)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                return match error.as_service_error() {
                    Some(GetSecretValueError::ResourceNotFoundException(_)) => Ok(None),
                    _ => Err(ValueError::Aws(self.failed(AwsError::from_sdk(
                        "GetSecretValue",
                        self.arn,
                        &error,
                    )))),
                };
            }
        };
        let label = version_id.unwrap_or(stage);
        let Some(text) = output.secret_string() else {
            return Err(self.invalid(
                label,
                "it has no SecretString (binary secrets are not supported)",
            ));
        };
        let created = output.created_date().map(|date| date.secs());
        SecretValue::parse(&Sensitive::new(text))
            .map(|value| Some(value.stored_at(created)))
            .map_err(|reason| self.invalid(label, &reason))
    }

    /// The value of `stage`, which must exist.
    pub async fn required_value(&self, stage: &str) -> Result<SecretValue, ValueError> {
        self.value(None, stage)
            .await?
            .ok_or_else(|| self.invalid(stage, "it does not exist"))
    }

    fn invalid(&self, version: &str, reason: &str) -> ValueError {
        ValueError::Invalid(InvalidValue {
            secret: self.arn.to_string(),
            version: version.to_string(),
            reason: reason.to_string(),
        })
    }

    fn failed(&self, error: AwsError) -> AwsError {
        error.about(self.arn, None)
    }

    /// Stores `value` as the `AWSPENDING` version `token`, for `user`'s key.
    pub async fn put_pending(
        &self,
        token: &str,
        value: &SecretValue,
        rotation_token: Option<&Sensitive>,
        user: &str,
    ) -> Result<(), AwsError> {
        self.clients
            .secrets
            .put_secret_value()
            .secret_id(self.arn)
            .client_request_token(token)
            .secret_string(value.to_secret_string().expose())
            .version_stages(AWSPENDING)
            .set_rotation_token(rotation_token.map(|token| token.expose().to_string()))
            .send()
            .await
            .map_err(|error| {
                AwsError::from_sdk("PutSecretValue", self.arn, &error).about(self.arn, Some(user))
            })?;
        Ok(())
    }

    /// Moves (`to` set) or removes (`to` unset) a staging label.
    pub async fn move_stage(
        &self,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), AwsError> {
        self.clients
            .secrets
            .update_secret_version_stage()
            .secret_id(self.arn)
            .version_stage(stage)
            .set_move_to_version_id(to.map(str::to_string))
            .set_remove_from_version_id(from.map(str::to_string))
            .send()
            .await
            .map_err(|error| {
                self.failed(AwsError::from_sdk(
                    "UpdateSecretVersionStage",
                    self.arn,
                    &error,
                ))
            })?;
        Ok(())
    }
}

/// Creates secret `name` holding `value`; returns its ARN.
pub async fn create(
    clients: &Clients,
    name: &str,
    description: &str,
    value: &SecretValue,
) -> Result<String, AwsError> {
    let output = clients
        .secrets
        .create_secret()
        .name(name)
        .description(description)
        .secret_string(value.to_secret_string().expose())
        .send()
        .await
        .map_err(|error| AwsError::from_sdk("CreateSecret", name, &error))?;
    Ok(output.arn().unwrap_or(name).to_string())
}

/// Makes `function_arn` the secret's rotation function on `schedule`, rotating
/// at once if `rotate_now`.
pub async fn attach_rotation(
    clients: &Clients,
    secret_arn: &str,
    function_arn: &str,
    schedule: &Schedule,
    rotate_now: bool,
) -> Result<(), AwsError> {
    clients
        .secrets
        .rotate_secret()
        .secret_id(secret_arn)
        .rotation_lambda_arn(function_arn)
        .rotation_rules(rotation_rules(schedule))
        .rotate_immediately(rotate_now)
        .send()
        .await
        .map_err(|error| AwsError::from_sdk("RotateSecret", secret_arn, &error))?;
    Ok(())
}

/// Adds or overwrites tags of the secret, in one call.
pub async fn tag(
    clients: &Clients,
    secret_arn: &str,
    tags: &[(&str, &str)],
) -> Result<(), AwsError> {
    let tags = tags
        .iter()
        .map(|(key, value)| {
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(*key)
                .value(*value)
                .build()
        })
        .collect();
    clients
        .secrets
        .tag_resource()
        .secret_id(secret_arn)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|error| {
            AwsError::from_sdk("TagResource", secret_arn, &error).about(secret_arn, None)
        })?;
    Ok(())
}

/// Removes tags of the secret (a key it does not carry is no error).
pub async fn untag(clients: &Clients, secret_arn: &str, keys: &[&str]) -> Result<(), AwsError> {
    clients
        .secrets
        .untag_resource()
        .secret_id(secret_arn)
        .set_tag_keys(Some(keys.iter().map(|key| key.to_string()).collect()))
        .send()
        .await
        .map_err(|error| {
            AwsError::from_sdk("UntagResource", secret_arn, &error).about(secret_arn, None)
        })?;
    Ok(())
}

/// The `AWSCURRENT` text of a secret that is not a rotated one (the GitHub
/// credentials), with its version id: the caller keeps what it built from a
/// version until the version changes.
pub async fn current_text(clients: &Clients, arn: &str) -> Result<(String, Sensitive), AwsError> {
    let output = clients
        .secrets
        .get_secret_value()
        .secret_id(arn)
        .version_stage(AWSCURRENT)
        .send()
        .await
        .map_err(|error| AwsError::from_sdk("GetSecretValue", arn, &error))?;
    let Some(text) = output.secret_string() else {
        return Err(AwsError::new(
            "GetSecretValue",
            arn,
            "NoSecretString",
            "the secret holds no SecretString (a binary secret): store the JSON document as text"
                .into(),
        ));
    };
    Ok((
        output.version_id().unwrap_or_default().to_string(),
        Sensitive::new(text),
    ))
}

/// Copies of a secret's value in other secrets (delivery targets, SPEC 14), in
/// one region, with the clients' own credentials or a session of another
/// account's delivery role.
pub struct SecretCopies {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretCopies {
    pub fn new(clients: &Clients, region: &str, session: Option<&Session>) -> Self {
        let config = clients.config_in(region, session);
        Self {
            client: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&config)
                    .interceptor(clients.calls.clone())
                    .build(),
            ),
        }
    }

    /// Writes `value` into the secret `arn` as the version `version` (the
    /// source's version id as `ClientRequestToken`, so a retry is the same
    /// version), which Secrets Manager labels `AWSCURRENT`.
    pub async fn put(&self, arn: &str, version: &str, value: &Sensitive) -> Result<(), AwsError> {
        self.client
            .put_secret_value()
            .secret_id(arn)
            .client_request_token(version)
            .secret_string(value.expose())
            .version_stages(AWSCURRENT)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk("PutSecretValue", arn, &error))?;
        Ok(())
    }

    /// Whether a rotation function rotates `arn` (`DescribeSecret`): no copy
    /// is ever written into such a secret.
    pub async fn is_rotated(&self, arn: &str) -> Result<bool, AwsError> {
        let output = self
            .client
            .describe_secret()
            .secret_id(arn)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk("DescribeSecret", arn, &error))?;
        Ok(output.rotation_enabled() == Some(true) || output.rotation_lambda_arn().is_some())
    }

    /// The version of `arn` that carries `AWSCURRENT` (`DescribeSecret`: the
    /// labels only, never the value); `None` if there is none.
    pub async fn current_version(&self, arn: &str) -> Result<Option<String>, AwsError> {
        let output = self
            .client
            .describe_secret()
            .secret_id(arn)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk("DescribeSecret", arn, &error))?;
        Ok(output
            .version_ids_to_stages()
            .into_iter()
            .flatten()
            .find(|(_, stages)| stages.iter().any(|stage| stage == AWSCURRENT))
            .map(|(version, _)| version.clone()))
    }
}

/// A schedule as Secrets Manager's rotation rules.
fn rotation_rules(schedule: &Schedule) -> RotationRulesType {
    let rules = RotationRulesType::builder();
    match schedule {
        Schedule::EveryDays(days) => rules.automatically_after_days(*days),
        Schedule::Expression(expression) => rules.schedule_expression(expression),
    }
    .build()
}
