//! The delivery function's settings, read once from the environment at
//! start-up: a bad value stops the function at initialisation, where Lambda
//! reports it plainly, rather than on the first delivery.

use crate::config::ConfigError;
use crate::github::ApiRoot;

/// The role `deploy/member-account.yaml` creates in each account a target lives
/// in (`DELIVERY_ROLE_NAME`, the template's `DeliveryRoleName`).
pub const DEFAULT_DELIVERY_ROLE_NAME: &str = "iam-key-rotation-delivery";

/// What the delivery function reads besides the SDK's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// The bus of the lifecycle events (`EVENT_BUS_NAME`).
    pub event_bus: String,
    /// The scheduled run examines only secrets whose name starts with this,
    /// and a single-secret run refuses any other (`SECRET_NAME_PREFIX`).
    pub secret_name_prefix: String,
    /// The secret holding the GitHub credentials (`GITHUB_CREDENTIALS_SECRET_ARN`),
    /// if GitHub targets are used.
    pub github_credentials: Option<String>,
    /// GitHub's API root (`GITHUB_API_URL`).
    pub github_api: ApiRoot,
    /// The role assumed in another account (`DELIVERY_ROLE_NAME`).
    pub delivery_role_name: String,
    /// The rotation function's `REQUIRE_USER_TAG`: a key is delivered only for
    /// a user bound to its secret, unless this is off.
    pub require_user_tag: bool,
    /// The rotation function's `AssumableRoleArns` (`ASSUMABLE_ROLE_ARNS`,
    /// comma-separated): the only `RoleArn`s whose users' keys are delivered.
    pub assumable_role_arns: Vec<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            event_bus: "default".into(),
            secret_name_prefix: String::new(),
            github_credentials: None,
            github_api: ApiRoot::default(),
            delivery_role_name: DEFAULT_DELIVERY_ROLE_NAME.into(),
            require_user_tag: true,
            assumable_role_arns: Vec::new(),
        }
    }
}

impl DeliveryConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`; an unset or empty variable takes
    /// its default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        // The rotation function's parser of the bus and prefix, so both
        // functions accept the same values.
        let shared = crate::config::Config::from_lookup(|name| match name {
            "EVENT_BUS_NAME" | "SECRET_NAME_PREFIX" | "REQUIRE_USER_TAG" => lookup(name),
            _ => None,
        })?;
        let assumable_role_arns: Vec<String> = get("ASSUMABLE_ROLE_ARNS")
            .map(|list| {
                list.split(',')
                    .map(|arn| arn.trim().to_string())
                    .filter(|arn| !arn.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = assumable_role_arns
            .iter()
            .find(|arn| !crate::arn::is_role_arn(arn))
        {
            return Err(ConfigError::new(
                "ASSUMABLE_ROLE_ARNS",
                bad,
                "comma-separated IAM role ARNs (the template's AssumableRoleArns)",
            ));
        }
        let github_credentials = match get("GITHUB_CREDENTIALS_SECRET_ARN") {
            None => None,
            Some(arn) if is_secret_arn(&arn) => Some(arn),
            Some(arn) => {
                return Err(ConfigError::new(
                    "GITHUB_CREDENTIALS_SECRET_ARN",
                    &arn,
                    "the full ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf)",
                ));
            }
        };
        let github_api = match get(crate::github::GITHUB_API_URL) {
            None => ApiRoot::default(),
            Some(url) => ApiRoot::parse(&url).map_err(|_| {
                ConfigError::new(
                    "GITHUB_API_URL",
                    &url,
                    "https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server (http:// only for a loopback host)",
                )
            })?,
        };
        let delivery_role_name = match get("DELIVERY_ROLE_NAME") {
            None => DEFAULT_DELIVERY_ROLE_NAME.to_string(),
            Some(name) if is_role_name(&name) => name,
            Some(name) => {
                return Err(ConfigError::new(
                    "DELIVERY_ROLE_NAME",
                    &name,
                    "an IAM role name (1-64 of letters, digits and +=,.@_-)",
                ));
            }
        };
        Ok(Self {
            event_bus: shared.event_bus,
            secret_name_prefix: shared.secret_name_prefix,
            github_credentials,
            github_api,
            delivery_role_name,
            require_user_tag: shared.require_user_tag,
            assumable_role_arns,
        })
    }
}

fn is_secret_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "secretsmanager", _, _, "secret", name] if !name.is_empty())
}

fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(crate::model::user::is_name_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<DeliveryConfig, ConfigError> {
        DeliveryConfig::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn unset_variables_take_their_defaults_and_set_ones_are_read() {
        assert_eq!(config(&[]).unwrap(), DeliveryConfig::default());
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:github-AbCdEf";
        let read = config(&[
            ("GITHUB_CREDENTIALS_SECRET_ARN", arn),
            ("GITHUB_API_URL", "https://github.example.com/api/v3/"),
            ("DELIVERY_ROLE_NAME", "delivery"),
            ("SECRET_NAME_PREFIX", "iam-keys/"),
            ("EVENT_BUS_NAME", "keys"),
            ("REQUIRE_USER_TAG", "false"),
            (
                "ASSUMABLE_ROLE_ARNS",
                "arn:aws:iam::222222222222:role/a, arn:aws:iam::333333333333:role/b",
            ),
        ])
        .unwrap();
        assert!(!read.require_user_tag);
        assert_eq!(read.assumable_role_arns.len(), 2);
        assert_eq!(read.github_credentials.as_deref(), Some(arn));
        assert_eq!(
            read.github_api.as_str(),
            "https://github.example.com/api/v3"
        );
        assert_eq!(read.delivery_role_name, "delivery");
        assert_eq!(read.secret_name_prefix, "iam-keys/");
        assert_eq!(read.event_bus, "keys");
    }

    #[test]
    fn invalid_values_name_the_variable() {
        for (name, value) in [
            ("GITHUB_CREDENTIALS_SECRET_ARN", "github-credentials"),
            ("GITHUB_API_URL", "http://github.example.com"),
            ("DELIVERY_ROLE_NAME", "a role"),
            ("ASSUMABLE_ROLE_ARNS", "arn:aws:iam::1:user/x"),
            ("REQUIRE_USER_TAG", "maybe"),
            ("EVENT_BUS_NAME", "bus with spaces"),
        ] {
            let message = config(&[(name, value)]).unwrap_err().to_string();
            assert!(message.contains(name), "{message}");
        }
    }
}
