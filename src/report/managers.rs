//! The secrets that may manage keys, as the audit reads them: each one's
//! current value, its other versions, and why it no longer rotates, if it
//! does not; and which of them manages a key, by the rule of SPEC 11 (T2).

use std::collections::HashMap;

use aws_sdk_iam::primitives::DateTime;

use super::ReportError;
use super::settings::AuditOptions;
use crate::aws::Clients;
use crate::aws::listing::{self, ValueRead};
use crate::aws::secrets::SecretVersions;
use crate::clock::age_days;
use crate::model::binding::Binding;
use crate::model::description::described_secret;
use crate::model::secret::{AWSPENDING, AWSPREVIOUS, Secret};
use crate::model::secret_value::SecretValue;
use crate::model::user::IamUser;

/// What the audit needs to know of one secret.
#[derive(Debug)]
pub(super) struct SecretSummary {
    pub name: String,
    /// Why it no longer rotates, if it does not.
    pub not_rotating: Option<String>,
    /// The value of `AWSCURRENT`: its user and key.
    pub current: SecretValue,
    /// Whether a version other than `AWSCURRENT` is `AWSPREVIOUS` or `AWSPENDING`.
    /// (stage, version id) of each.
    other_versions: Vec<(&'static str, String)>,
    /// The version `AWSCURRENT` is on.
    pub current_version: String,
}

/// The secrets that may manage keys, by ARN.
#[derive(Debug, Default)]
pub(super) struct Secrets {
    by_arn: HashMap<String, SecretSummary>,
    /// Secrets under the prefix whose value could not be read: (name, why).
    pub unreadable: Vec<(String, String)>,
}

impl Secrets {
    /// The secret that manages a key (SPEC 11, T2): the one its description
    /// names, if that secret's user is the key's user, in this account, the
    /// user is bound to it, and one of its versions holds the key. The description alone proves nothing
    /// (anyone who may tag the user can write it), and neither does a version
    /// alone (anyone who may write the secret can name any key in it).
    pub(super) async fn manager_of(
        &self,
        clients: &Clients,
        user: &IamUser,
        key_id: &str,
    ) -> Result<Option<&SecretSummary>, ReportError> {
        let Some((arn, secret)) = user
            .tags
            .get(key_id)
            .and_then(|description| described_secret(description))
            .and_then(|arn| self.by_arn.get_key_value(arn))
        else {
            return Ok(None);
        };
        let current = &secret.current;
        let same_account = crate::arn::account_of(arn)
            == current
                .role_arn()
                .map_or(crate::arn::account_of(arn), crate::arn::account_of);
        // The user must be bound to that secret (a reserved tag): otherwise
        // anyone who may create a secret and tag the user could claim any key.
        if !current.user_name().eq_ignore_ascii_case(&user.name)
            || !same_account
            || user.binding() != Binding::To(arn)
        {
            return Ok(None);
        }
        let mut held: Vec<(String, String)> = current
            .access_key_id()
            .map(|key| (key.to_string(), secret.current_version.clone()))
            .into_iter()
            .collect();
        if !held.iter().any(|(k, _)| k == key_id) {
            let versions = SecretVersions::new(clients, arn);
            for (stage, version) in &secret.other_versions {
                if let Some(value) =
                    versions
                        .value(Some(version), stage)
                        .await
                        .map_err(|error| {
                            error.worded(|invalid| ReportError::Refused(invalid.to_string()))
                        })?
                    && let Some(key) = value.key_of_same_user(current)
                {
                    held.push((key.to_string(), version.clone()));
                }
            }
        }
        let held: Vec<(&str, &str)> = held
            .iter()
            .map(|(key, version)| (key.as_str(), version.as_str()))
            .collect();
        Ok(user.is_managed(key_id, arn, &held).then_some(secret))
    }
}

impl Secrets {
    /// The secret `user` is bound to, if its current value names the user and
    /// holds `key_id`: the key is the secret's to adopt, though not managed
    /// yet (SPEC 9). A value alone proves nothing; this only words a finding.
    pub(super) fn bound_holder(&self, user: &IamUser, key_id: &str) -> Option<&SecretSummary> {
        let Binding::To(arn) = user.binding() else {
            return None;
        };
        self.by_arn.get(arn).filter(|secret| {
            secret.current.user_name().eq_ignore_ascii_case(&user.name)
                && secret.current.access_key_id() == Some(key_id)
        })
    }
}

/// Every secret whose current value names a user, summarised.
pub(super) async fn read_secrets(
    clients: &Clients,
    options: &AuditOptions,
    now: &DateTime,
) -> Result<Secrets, ReportError> {
    let mut secrets = Secrets::default();
    let prefix = Some(options.prefix.as_str()).filter(|prefix| !prefix.is_empty());
    let mut pages = listing::SecretPages::new(clients, prefix);
    while let Some(page) = pages.next().await? {
        let values = listing::read_current_values(clients, &page).await?;
        for entry in &page {
            let value = match values.get(&entry.arn) {
                Some(ValueRead::Value(value)) => value,
                Some(ValueRead::Unreadable(error)) => {
                    secrets.unreadable.push((
                        entry.name.clone(),
                        format!("{} {}: {}", error.operation, error.code, error.message),
                    ));
                    continue;
                }
                // Not a value of this tool's: it names no user, so manages no key.
                Some(ValueRead::Invalid(_)) | None => continue,
            };
            let not_rotating = why_not_rotating(clients, entry, options, now).await?;
            let other_versions = [
                (AWSPREVIOUS, entry.previous_version()),
                (AWSPENDING, entry.pending_version()),
            ]
            .into_iter()
            .filter_map(|(stage, version)| Some((stage, version?.to_string())))
            .collect();
            secrets.by_arn.insert(
                entry.arn.clone(),
                SecretSummary {
                    name: entry.name.clone(),
                    not_rotating,
                    current: value.clone(),
                    other_versions,
                    current_version: entry.current_version().to_string(),
                },
            );
        }
    }
    Ok(secrets)
}

/// A schedule that lets the key grow older than the limit between rotations
/// (a 1000-day schedule is a rotation stopped in all but name).
fn scheduled_past_the_limit(entry: &Secret, limit: f64) -> Option<String> {
    let days = entry.every_days?;
    (days as f64 > limit).then(|| {
        format!(
            "its rotation is scheduled every {days} days, less often than the limit of {limit} days"
        )
    })
}

async fn why_not_rotating(
    clients: &Clients,
    entry: &Secret,
    options: &AuditOptions,
    now: &DateTime,
) -> Result<Option<String>, ReportError> {
    if !entry.rotation_enabled {
        return Ok(Some("its rotation is disabled".to_string()));
    }
    if let Some(version) = entry.pending_version() {
        let since = listing::version_created(clients, entry, version).await?;
        // Clocks differ a little: a version "from the future" is a new one.
        let minutes = since
            .map(|s| (age_days(&s, now) * 1440.0).max(0.0))
            .unwrap_or(0.0);
        if minutes >= options.stuck_after.as_secs_f64() / 60.0 {
            return Ok(Some(format!(
                "its rotation has been stuck for {minutes:.0} min"
            )));
        }
    }
    Ok(scheduled_past_the_limit(entry, options.max_age_days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_longer_than_the_limit_is_a_rotation_stopped_in_all_but_name() {
        let every = |days| Secret {
            rotation_enabled: true,
            every_days: Some(days),
            ..Secret::default()
        };
        assert_eq!(scheduled_past_the_limit(&every(30), 90.0), None);
        assert_eq!(scheduled_past_the_limit(&every(90), 90.0), None);
        assert_eq!(
            scheduled_past_the_limit(&every(1000), 90.0).as_deref(),
            Some("its rotation is scheduled every 1000 days, less often than the limit of 90 days")
        );
        assert_eq!(scheduled_past_the_limit(&Secret::default(), 90.0), None);
    }
}
