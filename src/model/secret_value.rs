//! The secret's JSON value: `UserName`, the key, the optional `RoleArn`,
//! `ExternalId` and `SmtpRegion`, and every other field carried along unchanged.

use std::fmt;

use serde_json::{Map, Value};

use crate::model::user::is_valid_user_name;
use crate::sensitive::Sensitive;

pub const USER_NAME: &str = "UserName";
pub const ACCESS_KEY_ID: &str = "AccessKeyId";
pub const SECRET_ACCESS_KEY: &str = "SecretAccessKey";
pub const ROLE_ARN: &str = "RoleArn";
pub const EXTERNAL_ID: &str = "ExternalId";
pub const SMTP_REGION: &str = "SmtpRegion";
pub const SMTP_PASSWORD: &str = "SmtpPassword";

/// One version's value: the fields this function understands, checked, plus every
/// other field, carried unchanged into the next version.
#[derive(Clone, PartialEq)]
pub struct SecretValue {
    fields: Map<String, Value>,
    /// When Secrets Manager stored this version (seconds since the epoch), if known.
    created: Option<i64>,
}

/// Why a secret string is not a valid value. The reasons never quote the value.
pub type InvalidReason = String;

impl SecretValue {
    /// Parses and checks a `SecretString`.
    pub fn parse(secret_string: &Sensitive) -> Result<Self, InvalidReason> {
        let value: Value = serde_json::from_str(secret_string.expose()).map_err(|error| {
            format!(
                "it is not JSON (syntax error at line {}, column {})",
                error.line(),
                error.column()
            )
        })?;
        let Value::Object(fields) = value else {
            return Err(format!("it is {}, not a JSON object", json_type(&value)));
        };
        let parsed = Self {
            fields,
            created: None,
        };
        parsed.check()?;
        Ok(parsed)
    }

    fn check(&self) -> Result<(), InvalidReason> {
        match self.fields.get(USER_NAME) {
            None => return Err(format!("field {USER_NAME} is missing")),
            Some(Value::String(name)) if is_valid_user_name(name) => {}
            Some(Value::String(_)) => {
                return Err(format!(
                    "field {USER_NAME} is not a valid IAM user name (1-64 characters of letters, digits and +=,.@_-)"
                ));
            }
            Some(other) => {
                return Err(format!(
                    "field {USER_NAME} is {}, not a string",
                    json_type(other)
                ));
            }
        }
        for name in [
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            ROLE_ARN,
            EXTERNAL_ID,
            SMTP_REGION,
        ] {
            match self.fields.get(name) {
                None | Some(Value::String(_)) => {}
                Some(other) => {
                    return Err(format!(
                        "field {name} is {}, not a string",
                        json_type(other)
                    ));
                }
            }
        }
        if let Some(role_arn) = self.role_arn()
            && !crate::arn::is_role_arn(role_arn)
        {
            return Err(format!(
                "field {ROLE_ARN} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            ));
        }
        if let Some(external_id) = self.external_id() {
            if self.role_arn().is_none() {
                return Err(format!("field {EXTERNAL_ID} needs {ROLE_ARN}"));
            }
            if !(2..=1224).contains(&external_id.len()) {
                return Err(format!(
                    "field {EXTERNAL_ID} must be 2 to 1224 characters long"
                ));
            }
        }
        if let Some(region) = self.smtp_region()
            && !crate::smtp::is_region_name(region)
        {
            return Err(format!(
                "field {SMTP_REGION} is not an AWS region name (such as us-east-1)"
            ));
        }
        if self.fields.contains_key(ACCESS_KEY_ID) != self.fields.contains_key(SECRET_ACCESS_KEY) {
            return Err(format!(
                "fields {ACCESS_KEY_ID} and {SECRET_ACCESS_KEY} must be present together"
            ));
        }
        Ok(())
    }

    fn string(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(Value::as_str)
    }

    /// The same value, stamped with when its version was stored.
    pub fn stored_at(self, created: Option<i64>) -> Self {
        Self { created, ..self }
    }

    /// When its version was stored (seconds since the epoch), if known.
    pub fn created(&self) -> Option<i64> {
        self.created
    }

    pub fn user_name(&self) -> &str {
        self.string(USER_NAME).unwrap_or_default()
    }

    /// The access key id, absent before the first rotation ("adoption").
    pub fn access_key_id(&self) -> Option<&str> {
        self.string(ACCESS_KEY_ID)
    }

    pub fn secret_access_key(&self) -> Option<Sensitive> {
        self.string(SECRET_ACCESS_KEY).map(Sensitive::new)
    }

    /// The role to assume when the user lives in another account.
    pub fn role_arn(&self) -> Option<&str> {
        self.string(ROLE_ARN)
    }

    pub fn external_id(&self) -> Option<&str> {
        self.string(EXTERNAL_ID)
    }

    /// The region of the SES SMTP password the secret carries, if any.
    pub fn smtp_region(&self) -> Option<&str> {
        self.string(SMTP_REGION)
    }

    /// The SES SMTP password the value carries (with `SmtpRegion`), if any.
    pub fn smtp_password(&self) -> Option<Sensitive> {
        self.string(SMTP_PASSWORD).map(Sensitive::new)
    }

    /// The key this (earlier) value holds, if it names the same user in the same
    /// account as `current`: a key of another user is never this secret's to
    /// retire. IAM user names are case-insensitive.
    pub fn key_of_same_user(&self, current: &SecretValue) -> Option<&str> {
        (self.user_name().eq_ignore_ascii_case(current.user_name())
            && self.role_arn() == current.role_arn())
        .then(|| self.access_key_id())
        .flatten()
    }

    /// The value of the next version: this one, with the new key in place and,
    /// with `SmtpRegion`, the SMTP password derived from it.
    pub fn with_key(&self, access_key_id: &str, secret_access_key: &Sensitive) -> Self {
        let mut fields = self.fields.clone();
        fields.insert(ACCESS_KEY_ID.into(), Value::String(access_key_id.into()));
        fields.insert(
            SECRET_ACCESS_KEY.into(),
            Value::String(secret_access_key.expose().into()),
        );
        if let Some(region) = self.smtp_region() {
            let password = crate::smtp::smtp_password(secret_access_key, region);
            fields.insert(
                SMTP_PASSWORD.into(),
                Value::String(password.expose().into()),
            );
        }
        Self {
            fields,
            created: None,
        }
    }

    /// The JSON to store as the `SecretString`.
    pub fn to_secret_string(&self) -> Sensitive {
        Sensitive::new(Value::Object(self.fields.clone()).to_string())
    }
}

/// Names a JSON value's type for error messages, which never quote the value.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("user_name", &self.user_name())
            .field("access_key_id", &self.access_key_id())
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SecretValue, InvalidReason> {
        SecretValue::parse(&Sensitive::new(text))
    }

    #[test]
    fn a_new_secret_needs_only_the_user_name() {
        let value = parse(r#"{"UserName": "app-deployer"}"#).unwrap();
        assert_eq!(value.user_name(), "app-deployer");
        assert_eq!(value.access_key_id(), None);
    }

    #[test]
    fn with_key_keeps_every_other_field() {
        let value = parse(r#"{"UserName": "u", "AccessKeyId": "AKIAOLD", "SecretAccessKey": "old", "Team": {"a": [1]}}"#).unwrap();
        let next = value.with_key("AKIANEW", &Sensitive::new("new"));
        let stored: Value = serde_json::from_str(next.to_secret_string().expose()).unwrap();
        assert_eq!(
            stored,
            serde_json::json!({"UserName": "u", "AccessKeyId": "AKIANEW", "SecretAccessKey": "new", "Team": {"a": [1]}})
        );
    }

    #[test]
    fn invalid_values_are_explained_without_quoting_them() {
        let cases = [
            ("not json hunter2", "not JSON"),
            ("[\"hunter2\"]", "an array"),
            ("\"hunter2\"", "a string"),
            ("{}", "UserName is missing"),
            (r#"{"UserName": 42}"#, "a number"),
            (
                r#"{"UserName": "hunter2 with spaces"}"#,
                "not a valid IAM user name",
            ),
            (
                r#"{"UserName": "u", "AccessKeyId": "AKIA"}"#,
                "present together",
            ),
            (
                r#"{"UserName": "u", "AccessKeyId": 1, "SecretAccessKey": "hunter2"}"#,
                "AccessKeyId is a number",
            ),
            (
                r#"{"UserName": "u", "RoleArn": "arn:aws:iam::12:role/hunter2"}"#,
                "not an IAM role ARN",
            ),
            (
                r#"{"UserName": "u", "ExternalId": "hunter2"}"#,
                "ExternalId needs RoleArn",
            ),
            (
                r#"{"UserName": "u", "SmtpRegion": "hunter2"}"#,
                "not an AWS region name",
            ),
        ];
        for (text, expected) in cases {
            let reason = parse(text).unwrap_err();
            assert!(reason.contains(expected), "{text}: {reason}");
            assert!(!reason.contains("hunter2"), "{reason}");
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let value =
            parse(r#"{"UserName": "u", "AccessKeyId": "AKIAX", "SecretAccessKey": "hunter2"}"#)
                .unwrap();
        let shown = format!(
            "{value:?} {:?} {}",
            value.secret_access_key(),
            value.to_secret_string()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("AKIAX"));
    }
}
