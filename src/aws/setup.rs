//! keyrot's AWS set-up, checked before its first call, found where the AWS CLI
//! v2 finds it: `--profile` or `AWS_PROFILE` (IAM Identity Center sessions,
//! `credential_process`, assumed roles, web identity), the environment, then
//! container and instance credentials; `--region`, `AWS_REGION` or the
//! profile's region. A profile that is not there is named, a region that is
//! no region is refused with the fix, and credentials are resolved once, up
//! front, so that a missing Identity Center token or a failing
//! `credential_process` says what to run instead of failing the first call.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_config::profile::{Profile, ProfileSet};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_runtime::env_config::file::EnvConfigFiles;
use aws_types::os_shim_internal::{Env, Fs};

/// What is wrong with the AWS set-up, worded for the operator with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

/// Where a setting came from, for the message that names it.
fn region_source(flag: Option<&str>, profile: &str) -> String {
    if flag.is_some() {
        return "--region".into();
    }
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if std::env::var(name).is_ok_and(|value| !value.trim().is_empty()) {
            return name.into();
        }
    }
    format!("the region of profile {profile}")
}

/// The profile named by `--profile` or `AWS_PROFILE`, if any.
pub fn named_profile(flag: Option<&str>) -> Option<(String, &'static str)> {
    if let Some(name) = flag.filter(|name| !name.trim().is_empty()) {
        return Some((name.to_string(), "--profile"));
    }
    std::env::var("AWS_PROFILE")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .map(|name| (name, "AWS_PROFILE"))
}

/// The profile files as the SDK reads them (`AWS_CONFIG_FILE`,
/// `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/config` and `~/.aws/credentials`),
/// with `selected` as the profile in use.
async fn profiles(selected: &str) -> Result<ProfileSet, SetupError> {
    aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &EnvConfigFiles::default(),
        Some(Cow::Owned(selected.to_string())),
    )
    .await
    .map_err(|error| {
        SetupError(format!(
            "the AWS config files cannot be read: {}: fix them (aws configure list shows what the AWS CLI reads)",
            super::error::display_chain(&error)
        ))
    })
}

fn config_files() -> String {
    let file = |variable: &str, default: &str| {
        std::env::var(variable)
            .ok()
            .filter(|path| !path.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    format!(
        "{} or {}",
        file("AWS_CONFIG_FILE", "~/.aws/config"),
        file("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    )
}

/// How a profile gets its credentials, for the message when it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProfileKind {
    /// IAM Identity Center (`sso_session`, or the legacy `sso_start_url`).
    Sso,
    CredentialProcess,
    Other,
}

fn kind_of(profile: &Profile) -> ProfileKind {
    if profile.get("sso_session").is_some() || profile.get("sso_start_url").is_some() {
        ProfileKind::Sso
    } else if profile.get("credential_process").is_some() {
        ProfileKind::CredentialProcess
    } else {
        ProfileKind::Other
    }
}

/// Checks a named profile exists, before anything is loaded from it; returns
/// the profile in use (named, or `default`) and how it gets credentials.
async fn check_profile(flag: Option<&str>) -> Result<(String, ProfileKind), SetupError> {
    let Some((name, source)) = named_profile(flag) else {
        let set = profiles("default").await?;
        let kind = set
            .get_profile("default")
            .map_or(ProfileKind::Other, kind_of);
        return Ok(("default".into(), kind));
    };
    let set = profiles(&name).await?;
    match set.get_profile(&name) {
        Some(profile) => Ok((name, kind_of(profile))),
        None => Err(SetupError(format!(
            "the profile {name} (from {source}) is not in {}: check the name (aws configure list-profiles lists them), or create it (aws configure --profile {name}, or aws configure sso)",
            config_files()
        ))),
    }
}

/// Whether `region` is shaped like an AWS region name (`us-east-1`,
/// `us-gov-west-1`, `eu-isoe-west-1`): two letters, words, a number.
pub fn is_region_name(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return false;
    };
    first.len() == 2
        && first.chars().all(|c| c.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase()))
        && (1..=2).contains(&last.len())
        && last.chars().all(|c| c.is_ascii_digit())
}

/// The region a typo most likely meant (`us-east1`, `US_EAST_1`, `useast1`
/// all mean `us-east-1`), if one can be read from it.
pub fn region_meant(typed: &str) -> Option<String> {
    let lower = typed.trim().to_ascii_lowercase();
    let mut words: Vec<String> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect();
    // The number, split from the word it was stuck to.
    let last = words.pop()?;
    let digits_at = last.find(|c: char| c.is_ascii_digit())?;
    let (word, number) = last.split_at(digits_at);
    if !word.is_empty() {
        words.push(word.to_string());
    }
    // Two letters, stuck to the next word.
    if words.len() == 1 && words[0].len() > 2 {
        let rest = words[0].split_off(2);
        words.push(rest);
    }
    let meant = format!("{}-{number}", words.join("-"));
    is_region_name(&meant).then_some(meant)
}

/// The region in use, checked; `None` when none is set (said by the caller,
/// which knows whether an endpoint was set).
fn check_region(config: &SdkConfig, flag: Option<&str>, profile: &str) -> Result<(), SetupError> {
    let Some(region) = config.region() else {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .ok()
            .filter(|url| !url.is_empty());
        return Err(SetupError(match endpoint {
            Some(url) => format!(
                "no AWS region is set: keyrot needs one even with AWS_ENDPOINT_URL ({url}), because every request is signed for a region: set AWS_REGION (us-east-1 for most emulators) or pass --region"
            ),
            None => "no AWS region is set: pass --region, set AWS_REGION, or give the profile a region (aws configure set region <region>)".into(),
        }));
    };
    let region = region.as_ref();
    if is_region_name(region) {
        return Ok(());
    }
    let meant = region_meant(region)
        .map(|meant| format!("did you mean {meant}? "))
        .unwrap_or_default();
    Err(SetupError(format!(
        "{region:?} (from {}) is not an AWS region name: {meant}Region names look like us-east-1, eu-west-2 or ap-southeast-1 (aws account list-regions lists yours)",
        region_source(flag, profile)
    )))
}

/// Resolves the credentials once, before any call; the message says what to
/// run for the kind of profile that could not give them.
async fn check_credentials(
    provider: &SharedCredentialsProvider,
    profile: &str,
    kind: ProfileKind,
) -> Result<Credentials, SetupError> {
    let error = match provider.provide_credentials().await {
        Ok(credentials) => return Ok(credentials),
        Err(error) => error,
    };
    let cause = super::error::display_chain(&error);
    tracing::debug!(error = %cause, "loading credentials failed (the SDK's error chain)");
    let cause = cause.split(" (").next().unwrap_or(&cause).to_string();
    Err(SetupError(match (kind, &error) {
        (ProfileKind::Sso, _) => format!(
            "profile {profile} signs in through IAM Identity Center, and the SDK's token cache (~/.aws/sso/cache) holds no valid token for it (none yet, or it expired): run aws sso login --profile {profile}, then keyrot again"
        ),
        (ProfileKind::CredentialProcess, _) => format!(
            "the credential_process of profile {profile} gave no credentials ({cause}): run that command by hand to see why (it must print JSON with Version 1, AccessKeyId and SecretAccessKey)"
        ),
        (_, CredentialsError::CredentialsNotLoaded(_)) => "no AWS credentials were found: run aws configure, or aws sso login --profile <name> and set AWS_PROFILE=<name> (the SDK looked in the environment, the profile files and the instance metadata)".to_string(),
        _ => format!(
            "AWS credentials could not be loaded for profile {profile} ({cause}): check the profile (aws configure list --profile {profile}), or aws sso login --profile {profile} if it signs in through IAM Identity Center"
        ),
    }))
}

/// Checks the region, the profile and the credentials of `config` (loaded
/// with `region_flag` and `profile_flag`), and returns it with the credentials
/// already resolved, so that no client resolves them again while they last.
pub async fn checked(
    config: SdkConfig,
    region_flag: Option<&str>,
    profile_flag: Option<&str>,
) -> Result<SdkConfig, SetupError> {
    let (profile, kind) = check_profile(profile_flag).await?;
    check_region(&config, region_flag, &profile)?;
    let Some(provider) = config.credentials_provider() else {
        return Ok(config);
    };
    let credentials = check_credentials(&provider, &profile, kind).await?;
    let primed = Primed {
        first: Mutex::new(Some(credentials)),
        inner: provider,
    };
    Ok(config
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(primed))
        .build())
}

/// How long before their expiry resolved credentials are resolved again.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// The credentials resolved by the check, handed to every client until they
/// are about to expire; then the profile's own provider again. (Each client
/// has its own cache: without this, a `credential_process` would run once per
/// client.)
#[derive(Debug)]
struct Primed {
    first: Mutex<Option<Credentials>>,
    inner: SharedCredentialsProvider,
}

impl ProvideCredentials for Primed {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let mut first = self.first.lock().expect("primed credentials");
        let fresh = first.as_ref().is_some_and(|credentials| {
            credentials
                .expiry()
                .is_none_or(|expiry| SystemTime::now() + REFRESH_BEFORE_EXPIRY < expiry)
        });
        if fresh {
            return future::ProvideCredentials::ready(Ok(first.clone().expect("fresh")));
        }
        *first = None;
        future::ProvideCredentials::new(self.inner.provide_credentials())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_are_checked_by_their_shape() {
        for good in [
            "us-east-1",
            "eu-west-2",
            "ap-southeast-1",
            "us-gov-west-1",
            "cn-north-1",
            "eu-isoe-west-1",
            "il-central-1",
        ] {
            assert!(is_region_name(good), "{good}");
        }
        for bad in [
            "us-east1",
            "useast1",
            "US-EAST-1",
            "us-east-",
            "-east-1",
            "us",
            "",
            "us-east-100",
            "global",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_typo_names_the_region_it_meant() {
        assert_eq!(region_meant("us-east1").as_deref(), Some("us-east-1"));
        assert_eq!(region_meant("US_EAST_1").as_deref(), Some("us-east-1"));
        assert_eq!(region_meant("useast1").as_deref(), Some("us-east-1"));
        assert_eq!(region_meant("eu-west 2").as_deref(), Some("eu-west-2"));
        assert_eq!(region_meant("global"), None);
    }
}
