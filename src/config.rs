//! Configuration read once from the environment at start-up.
//!
//! Parsing happens before the first event so that a typo in a variable fails the
//! function at initialisation, where Lambda reports it plainly, instead of half-way
//! through a rotation.

use std::time::Duration;

use crate::model::lifecycle::Retired;

/// A configuration variable with a value the function does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid value {value:?} for environment variable {variable}: accepted values are {accepted}"
)]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub accepted: &'static str,
}

impl ConfigError {
    pub fn new(variable: &'static str, value: &str, accepted: &'static str) -> Self {
        Self {
            variable,
            value: value.chars().take(64).collect(),
            accepted,
        }
    }
}

/// What `finishSecret` does with the key that `AWSCURRENT` pointed to before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldKeyAction {
    /// Make the old key Inactive now; the next rotation deletes it when it needs room.
    Deactivate,
    /// Delete the old key (and its description tag) now.
    Delete,
    /// Leave the old key Active until the next rotation deletes it.
    Keep,
    /// Leave the old key Active; the hourly sweep deactivates it once
    /// `GRACE_HOURS` have passed and no consumer uses it any more.
    Grace,
}

impl OldKeyAction {
    const ACCEPTED: &'static str = "deactivate, delete, keep, grace";

    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "deactivate" => Some(Self::Deactivate),
            "delete" => Some(Self::Delete),
            "keep" => Some(Self::Keep),
            "grace" => Some(Self::Grace),
            _ => None,
        }
    }

    /// How finishSecret itself retires the previous key, if it does.
    pub fn retires_at_finish(self) -> Option<Retired> {
        match self {
            Self::Deactivate => Some(Retired::Deactivated),
            Self::Delete => Some(Retired::Deleted),
            Self::Keep | Self::Grace => None,
        }
    }

    /// The spelling used in the configuration and in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deactivate => "deactivate",
            Self::Delete => "delete",
            Self::Keep => "keep",
            Self::Grace => "grace",
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
    /// The sweep's rules for retiring previous keys (`OLD_KEY_ACTION=grace` and
    /// `DELETE_AFTER_HOURS`).
    pub retirement: Retirement,
    /// The EventBridge bus that receives the lifecycle events.
    pub event_bus: String,
    /// The sweep lists only secrets whose name starts with this (the template's
    /// `SecretNamePrefix`, the only secrets its role may read); empty: all.
    pub secret_name_prefix: String,
    /// For a secret with delivery targets (SPEC 14), in grace mode: the sweep
    /// deactivates the previous key as soon as IAM shows the new key used
    /// since the delivery and the old one not, instead of waiting
    /// `GRACE_HOURS` (`RETIRE_WHEN_SWITCHED`).
    pub retire_when_switched: bool,
    /// How often the sweep runs (`SWEEP_INTERVAL_MINUTES`, the template's
    /// schedule): `RETIRE_WHEN_SWITCHED` waits at least this long after a
    /// delivery, so that IAM's record of the keys' use can catch up.
    pub sweep_interval: Duration,
}

/// When the sweep retires an `AWSPREVIOUS` key, counted from the moment the
/// `AWSCURRENT` version that replaced it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retirement {
    /// After this, an unused previous key is deactivated (grace mode only).
    pub grace: Duration,
    /// After this, a previous key is deactivated even if a consumer still uses it.
    pub grace_max: Duration,
    /// After this, an Inactive previous key is deleted; `None`: the next rotation
    /// deletes it when it needs room.
    pub delete_after: Option<Duration>,
}

impl Default for Retirement {
    fn default() -> Self {
        Self {
            grace: hours(24.0),
            grace_max: hours(168.0),
            delete_after: None,
        }
    }
}

fn hours(hours: f64) -> Duration {
    Duration::from_secs_f64(hours * 3600.0)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            old_key_action: OldKeyAction::Deactivate,
            propagation_timeout: Duration::from_secs(60),
            require_user_tag: true,
            retirement: Retirement::default(),
            event_bus: DEFAULT_EVENT_BUS.to_string(),
            secret_name_prefix: String::new(),
            retire_when_switched: false,
            sweep_interval: Duration::from_secs(3600),
        }
    }
}

/// EventBridge's own bus in every account.
const DEFAULT_EVENT_BUS: &str = "default";
/// Longest grace or deletion delay accepted: ten years, far beyond any rotation
/// interval, and small enough that no date arithmetic overflows.
const MAX_HOURS: f64 = 87_600.0;
/// What [`parse_hours`] accepts, in the words of an error.
pub const HOURS_ACCEPTED: &str = "a number of hours from 0 to 87600 (decimals allowed)";

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
        let hours_of = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
            get(name)
                .map(|value| {
                    parse_hours(&value)
                        .ok_or_else(|| ConfigError::new(name, &value, HOURS_ACCEPTED))
                })
                .transpose()
        };
        let grace = hours_of("GRACE_HOURS")?.unwrap_or(defaults.retirement.grace);
        let grace_max = hours_of("GRACE_MAX_HOURS")?.unwrap_or(defaults.retirement.grace_max);
        if grace_max < grace {
            return Err(ConfigError::new(
                "GRACE_MAX_HOURS",
                &get("GRACE_MAX_HOURS").unwrap_or_default(),
                "a number of hours no smaller than GRACE_HOURS (default 24)",
            ));
        }
        let delete_after = hours_of("DELETE_AFTER_HOURS")?;
        // Both clocks start when AWSCURRENT moved: a deletion due no later
        // than the deactivation would follow it at the very next sweep, with
        // no time to see a consumer break and reactivate. 0 asks for exactly
        // that, on purpose; any other value must leave the key Inactive a while.
        if old_key_action == OldKeyAction::Grace
            && delete_after.is_some_and(|after| !after.is_zero() && after <= grace)
        {
            return Err(ConfigError::new(
                "DELETE_AFTER_HOURS",
                &get("DELETE_AFTER_HOURS").unwrap_or_default(),
                "a number of hours larger than GRACE_HOURS (both count from the rotation, so the key stays Inactive for the difference), or 0 to delete at the first sweep after the deactivation",
            ));
        }
        let event_bus = match get("EVENT_BUS_NAME") {
            None => defaults.event_bus,
            Some(value) if is_event_bus_name(&value) => value.trim().to_string(),
            Some(value) => {
                return Err(ConfigError::new(
                    "EVENT_BUS_NAME",
                    &value,
                    "an EventBridge bus name or ARN (letters, digits, . _ - / : up to 1600 characters)",
                ));
            }
        };
        Ok(Self {
            old_key_action,
            propagation_timeout,
            require_user_tag,
            retirement: Retirement {
                grace,
                grace_max,
                delete_after,
            },
            event_bus,
            secret_name_prefix: get("SECRET_NAME_PREFIX")
                .map(|prefix| prefix.trim().to_string())
                .unwrap_or_default(),
            retire_when_switched: match get("RETIRE_WHEN_SWITCHED") {
                None => defaults.retire_when_switched,
                Some(value) => parse_bool(&value).ok_or_else(|| {
                    ConfigError::new("RETIRE_WHEN_SWITCHED", &value, "true, false")
                })?,
            },
            sweep_interval: match get("SWEEP_INTERVAL_MINUTES") {
                None => defaults.sweep_interval,
                Some(value) => parse_minutes(&value).ok_or_else(|| {
                    ConfigError::new(
                        "SWEEP_INTERVAL_MINUTES",
                        &value,
                        "a number of minutes from 0 to 1440 (decimals allowed)",
                    )
                })?,
            },
        })
    }
}

/// A number of hours (`GRACE_HOURS`, `GRACE_MAX_HOURS`, `DELETE_AFTER_HOURS`,
/// and the audit's `--grace-max-hours`, which is the function's
/// `GRACE_MAX_HOURS`): one parser for every reader of them.
pub fn parse_hours(value: &str) -> Option<Duration> {
    let hours: f64 = value.trim().parse().ok()?;
    (hours.is_finite() && (0.0..=MAX_HOURS).contains(&hours)).then(|| self::hours(hours))
}

/// What `PutEvents` accepts as `EventBusName`: a name or an ARN.
fn is_event_bus_name(value: &str) -> bool {
    let value = value.trim();
    !value.is_empty()
        && value.len() <= 1600
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:".contains(c))
}

/// Minutes, from 0 to a day (decimals allowed).
fn parse_minutes(value: &str) -> Option<Duration> {
    let minutes: f64 = value.trim().parse().ok()?;
    (minutes.is_finite() && (0.0..=1440.0).contains(&minutes))
        .then(|| Duration::from_secs_f64(minutes * 60.0))
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
        let retirement = Config::default().retirement;
        assert_eq!(retirement.grace, Duration::from_secs(24 * 3600));
        assert_eq!(retirement.grace_max, Duration::from_secs(168 * 3600));
        assert_eq!(retirement.delete_after, None);
        assert_eq!(Config::default().event_bus, "default");
    }

    #[test]
    fn every_variable_is_read() {
        let parsed = config(&[
            ("OLD_KEY_ACTION", "Delete"),
            ("PROPAGATION_TIMEOUT_SECONDS", "15"),
            ("REQUIRE_USER_TAG", "false"),
            ("GRACE_HOURS", "0"),
            ("GRACE_MAX_HOURS", "1.5"),
            ("DELETE_AFTER_HOURS", "48"),
            ("EVENT_BUS_NAME", "key-events"),
            ("RETIRE_WHEN_SWITCHED", "TRUE"),
            ("SWEEP_INTERVAL_MINUTES", "0.5"),
        ])
        .unwrap();
        assert!(parsed.retire_when_switched);
        assert_eq!(parsed.sweep_interval, Duration::from_secs(30));
        assert_eq!(
            parsed.retirement,
            Retirement {
                grace: Duration::ZERO,
                grace_max: Duration::from_secs(5400),
                delete_after: Some(Duration::from_secs(48 * 3600)),
            }
        );
        assert_eq!(parsed.event_bus, "key-events");
        assert_eq!(parsed.old_key_action, OldKeyAction::Delete);
        assert_eq!(parsed.propagation_timeout, Duration::from_secs(15));
        assert!(!parsed.require_user_tag);
        assert_eq!(
            config(&[("OLD_KEY_ACTION", "keep")])
                .unwrap()
                .old_key_action,
            OldKeyAction::Keep
        );
        assert_eq!(
            config(&[("OLD_KEY_ACTION", "grace")])
                .unwrap()
                .old_key_action,
            OldKeyAction::Grace
        );
    }

    #[test]
    fn in_grace_mode_a_deletion_comes_after_the_deactivation_or_at_the_next_sweep() {
        let grace = |delete_after: &str| {
            config(&[
                ("OLD_KEY_ACTION", "grace"),
                ("GRACE_HOURS", "24"),
                ("DELETE_AFTER_HOURS", delete_after),
            ])
        };
        for refused in ["24", "12", "0.5"] {
            let error = grace(refused).unwrap_err().to_string();
            assert!(
                error.contains("DELETE_AFTER_HOURS") && error.contains("larger than GRACE_HOURS"),
                "{error}"
            );
        }
        for accepted in ["0", "24.5", "48"] {
            grace(accepted).unwrap();
        }
        // Outside grace mode the deactivation is at the rotation: any value.
        config(&[
            ("OLD_KEY_ACTION", "deactivate"),
            ("DELETE_AFTER_HOURS", "1"),
        ])
        .unwrap();
    }

    #[test]
    fn config_errors_truncate_the_offending_value() {
        let error = ConfigError::new("OLD_KEY_ACTION", &"x".repeat(1000), "a");
        assert!(error.to_string().len() < 200);
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_accepted_values() {
        let cases = [
            (
                "OLD_KEY_ACTION",
                "remove",
                "deactivate, delete, keep, grace",
            ),
            ("GRACE_HOURS", "-1", "0 to 87600"),
            ("GRACE_HOURS", "NaN", "0 to 87600"),
            ("DELETE_AFTER_HOURS", "soon", "0 to 87600"),
            ("GRACE_MAX_HOURS", "2", "no smaller than GRACE_HOURS"),
            ("EVENT_BUS_NAME", "bus with spaces", "bus name or ARN"),
            ("PROPAGATION_TIMEOUT_SECONDS", "0", "1 to 900"),
            ("PROPAGATION_TIMEOUT_SECONDS", "ten", "1 to 900"),
            ("PROPAGATION_TIMEOUT_SECONDS", "901", "1 to 900"),
            ("REQUIRE_USER_TAG", "yes", "true, false"),
            ("RETIRE_WHEN_SWITCHED", "1", "true, false"),
            ("SWEEP_INTERVAL_MINUTES", "-5", "0 to 1440"),
        ];
        for (name, value, accepted) in cases {
            let message = config(&[(name, value)]).unwrap_err().to_string();
            assert!(message.contains(name), "{message}");
            assert!(message.contains(accepted), "{message}");
            assert!(message.contains(value), "{message}");
        }
    }
}
