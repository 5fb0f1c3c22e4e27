//! Configuration read once from the environment at start-up.
//!
//! Parsing happens before the first event so that a typo in a variable fails the
//! function at initialisation, where Lambda reports it plainly, instead of half-way
//! through a rotation.

use std::time::Duration;

use crate::error::ConfigError;

/// What `finishSecret` does with the key that `AWSCURRENT` pointed to before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldKeyAction {
    /// Make the old key Inactive now; the next rotation deletes it when it needs room.
    Deactivate,
    /// Delete the old key (and its description tag) now.
    Delete,
    /// Leave the old key Active until the next rotation deletes it.
    Keep,
}

impl OldKeyAction {
    const ACCEPTED: &'static str = "deactivate, delete, keep";

    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "deactivate" => Some(Self::Deactivate),
            "delete" => Some(Self::Delete),
            "keep" => Some(Self::Keep),
            _ => None,
        }
    }

    /// The spelling used in the configuration and in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deactivate => "deactivate",
            Self::Delete => "delete",
            Self::Keep => "keep",
        }
    }
}

/// The function's settings. Everything else (region, credentials, endpoints) is the
/// SDK's own configuration, read by `aws-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub old_key_action: OldKeyAction,
    pub propagation_timeout: Duration,
    pub require_user_tag: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            old_key_action: OldKeyAction::Deactivate,
            propagation_timeout: Duration::from_secs(60),
            require_user_tag: true,
        }
    }
}

/// Longest propagation wait we accept: Lambda's own 15-minute ceiling.
const MAX_PROPAGATION_TIMEOUT_SECONDS: u64 = 900;

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so that tests need not touch the
    /// process environment. An unset or empty variable takes its default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());

        let old_key_action = match get("OLD_KEY_ACTION") {
            None => defaults.old_key_action,
            Some(value) => OldKeyAction::parse(&value).ok_or_else(|| {
                ConfigError::new("OLD_KEY_ACTION", &value, OldKeyAction::ACCEPTED)
            })?,
        };
        let propagation_timeout = match get("PROPAGATION_TIMEOUT_SECONDS") {
            None => defaults.propagation_timeout,
            Some(value) => parse_seconds(&value).ok_or_else(|| {
                ConfigError::new(
                    "PROPAGATION_TIMEOUT_SECONDS",
                    &value,
                    "a whole number of seconds from 1 to 900",
                )
            })?,
        };
        let require_user_tag = match get("REQUIRE_USER_TAG") {
            None => defaults.require_user_tag,
            Some(value) => parse_bool(&value)
                .ok_or_else(|| ConfigError::new("REQUIRE_USER_TAG", &value, "true, false"))?,
        };
        Ok(Self {
            old_key_action,
            propagation_timeout,
            require_user_tag,
        })
    }
}

fn parse_seconds(value: &str) -> Option<Duration> {
    let seconds: u64 = value.trim().parse().ok()?;
    (1..=MAX_PROPAGATION_TIMEOUT_SECONDS)
        .contains(&seconds)
        .then(|| Duration::from_secs(seconds))
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn unset_variables_take_the_documented_defaults() {
        assert_eq!(config(&[]).unwrap(), Config::default());
        assert_eq!(Config::default().old_key_action, OldKeyAction::Deactivate);
        assert_eq!(
            Config::default().propagation_timeout,
            Duration::from_secs(60)
        );
        assert!(Config::default().require_user_tag);
    }

    #[test]
    fn every_variable_is_read() {
        let parsed = config(&[
            ("OLD_KEY_ACTION", "Delete"),
            ("PROPAGATION_TIMEOUT_SECONDS", "15"),
            ("REQUIRE_USER_TAG", "false"),
        ])
        .unwrap();
        assert_eq!(parsed.old_key_action, OldKeyAction::Delete);
        assert_eq!(parsed.propagation_timeout, Duration::from_secs(15));
        assert!(!parsed.require_user_tag);
        assert_eq!(
            config(&[("OLD_KEY_ACTION", "keep")])
                .unwrap()
                .old_key_action,
            OldKeyAction::Keep
        );
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_accepted_values() {
        let cases = [
            ("OLD_KEY_ACTION", "remove", "deactivate, delete, keep"),
            ("PROPAGATION_TIMEOUT_SECONDS", "0", "1 to 900"),
            ("PROPAGATION_TIMEOUT_SECONDS", "ten", "1 to 900"),
            ("PROPAGATION_TIMEOUT_SECONDS", "901", "1 to 900"),
            ("REQUIRE_USER_TAG", "yes", "true, false"),
        ];
        for (name, value, accepted) in cases {
            let message = config(&[(name, value)]).unwrap_err().to_string();
            assert!(message.contains(name), "{message}");
            assert!(message.contains(accepted), "{message}");
            assert!(message.contains(value), "{message}");
        }
    }
}
