//! `keyrot enroll`'s checks of the rotation function, before anything is
//! written: it exists where the secret will be (its ARN's region and the
//! caller's account), Secrets Manager may invoke it for this secret (its
//! resource policy), and its environment says which users and secrets the
//! stack lets it manage (`MANAGED_USER_PATH`, `SECRET_NAME_PREFIX`, which the
//! template sets from `ManagedUserPath` and `SecretNamePrefix`).

use serde_json::Value;

use super::OpsError;
use crate::aws::Clients;
use crate::aws::lambda::{self, FunctionConfig};
use crate::aws::sts;

/// The stack's settings the rotation function carries in its environment.
pub const MANAGED_USER_PATH: &str = "MANAGED_USER_PATH";
pub const SECRET_NAME_PREFIX: &str = "SECRET_NAME_PREFIX";

/// The rotation function, checked, with what its stack lets it manage.
#[derive(Debug, Clone)]
pub struct RotationFunction {
    /// Its ARN as Lambda gives it (a name on the command line becomes an ARN).
    pub arn: String,
    /// `None` when the function's environment does not say.
    pub managed_user_path: Option<String>,
    pub secret_name_prefix: Option<String>,
    /// What could not be checked, for the operator.
    pub notes: Vec<String>,
}

/// Looks the function up and checks it can rotate secrets of this account and
/// region; the prefix and path checks are the caller's, once it knows the
/// secret's name and the user.
pub async fn check_function(clients: &Clients, given: &str) -> Result<RotationFunction, OpsError> {
    let region = clients.region().unwrap_or_default();
    let caller = sts::caller(clients).await?;
    if given.starts_with("arn:") {
        check_place(given, &region, &caller.account)?;
    }
    let Some(config) = lambda::configuration(clients, given).await? else {
        return Err(OpsError::Usage(format!(
            "there is no Lambda function {given} in account {} and region {region} (or your credentials may not read it): pass the stack's RotationFunctionArn output (aws cloudformation describe-stacks --stack-name <stack> --query \"Stacks[0].Outputs[?OutputKey=='RotationFunctionArn'].OutputValue\" --output text), and --region if the stack is in another region; nothing was changed",
            caller.account
        )));
    };
    check_place(&config.arn, &region, &caller.account)?;
    Ok(rotation_function(config))
}

/// A function ARN must be in the account and region the secret will be in.
fn check_place(function_arn: &str, region: &str, account: &str) -> Result<(), OpsError> {
    let parts: Vec<&str> = function_arn.split(':').collect();
    let (function_region, function_account) = (
        parts.get(3).copied().unwrap_or_default(),
        parts.get(4).copied().unwrap_or_default(),
    );
    if function_region == region && function_account == account {
        return Ok(());
    }
    Err(OpsError::Usage(format!(
        "function {function_arn} is in account {function_account}, region {function_region}, but the secret would be in account {account}, region {region}: Secrets Manager invokes a rotation function of the secret's own account and region. Use the rotation function of a stack in this account and region, or run keyrot with --region {function_region} (and credentials of account {function_account}); nothing was changed"
    )))
}

fn rotation_function(config: FunctionConfig) -> RotationFunction {
    let setting = |name: &str| {
        config
            .environment
            .get(name)
            .map(|value| value.trim().to_string())
    };
    let mut notes = Vec::new();
    if let Some(error) = &config.environment_error {
        notes.push(format!(
            "the environment of {} could not be read ({error}), so the user's path and the secret's name were not checked against the stack's",
            config.arn
        ));
    } else if setting(MANAGED_USER_PATH).is_none() {
        notes.push(format!(
            "{} does not say which users it may manage (no {MANAGED_USER_PATH}: a stack older than this keyrot, or deployed by hand), so the user's path was not checked",
            config.arn
        ));
    }
    RotationFunction {
        managed_user_path: setting(MANAGED_USER_PATH).filter(|path| !path.is_empty()),
        secret_name_prefix: setting(SECRET_NAME_PREFIX).filter(|prefix| !prefix.is_empty()),
        arn: config.arn,
        notes,
    }
}

/// Checks that Secrets Manager may invoke the function for the secret
/// `secret_arn` (the ARN the secret has, or would have with any suffix).
pub async fn check_invocable(
    clients: &Clients,
    function: &RotationFunction,
    secret_arn: &str,
    account: &str,
) -> Result<(), OpsError> {
    let policy = lambda::policy(clients, &function.arn).await?;
    match lets_secrets_manager_invoke(policy.as_deref(), secret_arn, account) {
        Ok(()) => Ok(()),
        Err(why) => Err(OpsError::Refused(format!(
            "function {} is not a rotation function Secrets Manager may invoke for {secret_arn}: {why}. Pass the stack's RotationFunctionArn output (its resource policy lets Secrets Manager invoke it for secrets under SecretNamePrefix); nothing was changed",
            function.arn
        ))),
    }
}

const SECRETS_MANAGER: &str = "secretsmanager.amazonaws.com";

/// Whether a Lambda resource policy lets Secrets Manager invoke the function
/// for `secret_arn` from `account`: an Allow statement for the service
/// principal and `lambda:InvokeFunction` whose `AWS:SourceArn` and
/// `AWS:SourceAccount` conditions, if any, admit the secret. Conditions on
/// other keys cannot be judged here and are taken as met (AWS has the last
/// word, when it rotates).
pub fn lets_secrets_manager_invoke(
    policy: Option<&str>,
    secret_arn: &str,
    account: &str,
) -> Result<(), String> {
    let Some(policy) = policy else {
        return Err("it has no resource policy".into());
    };
    let policy: Value =
        serde_json::from_str(policy).map_err(|_| "its resource policy is not JSON".to_string())?;
    let statements = match &policy["Statement"] {
        Value::Array(statements) => statements.clone(),
        statement @ Value::Object(_) => vec![statement.clone()],
        _ => Vec::new(),
    };
    let for_secrets_manager: Vec<&Value> = statements
        .iter()
        .filter(|statement| {
            statement["Effect"] == "Allow"
                && strings(&statement["Principal"]["Service"]).contains(&SECRETS_MANAGER)
                && strings(&statement["Action"])
                    .iter()
                    .any(|action| ["lambda:InvokeFunction", "lambda:*", "*"].contains(action))
        })
        .collect();
    if for_secrets_manager.is_empty() {
        return Err(format!(
            "its resource policy does not let {SECRETS_MANAGER} invoke it"
        ));
    }
    if for_secrets_manager
        .iter()
        .any(|statement| admits(&statement["Condition"], secret_arn, account))
    {
        return Ok(());
    }
    Err(format!(
        "its resource policy lets {SECRETS_MANAGER} invoke it only for other secrets or accounts (its AWS:SourceArn and AWS:SourceAccount conditions: a secret name under the stack's SecretNamePrefix is needed)"
    ))
}

/// Whether a statement's `AWS:SourceArn` and `AWS:SourceAccount` conditions
/// admit the secret (key names are case-insensitive in IAM).
fn admits(condition: &Value, secret_arn: &str, account: &str) -> bool {
    let Value::Object(operators) = condition else {
        return true;
    };
    operators.iter().all(|(operator, keys)| {
        let Value::Object(keys) = keys else {
            return true;
        };
        keys.iter().all(|(key, values)| {
            let values = strings(values);
            match key.to_ascii_lowercase().as_str() {
                "aws:sourcearn" => values.iter().any(|pattern| {
                    if operator.contains("Like") {
                        glob_matches(pattern, secret_arn)
                    } else {
                        *pattern == secret_arn
                    }
                }),
                "aws:sourceaccount" => values.contains(&account),
                _ => true,
            }
        })
    })
}

fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(text) => vec![text.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// IAM's `*` and `?` wildcards.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(star) = star {
            p = star + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy CloudFormation makes of the template's `AWS::Lambda::Permission`.
    const TEMPLATES: &str = r#"{"Version":"2012-10-17","Id":"default","Statement":[{"Sid":"s","Effect":"Allow","Principal":{"Service":"secretsmanager.amazonaws.com"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:111122223333:function:f","Condition":{"StringEquals":{"AWS:SourceAccount":"111122223333"},"ArnLike":{"AWS:SourceArn":"arn:aws:secretsmanager:us-east-1:111122223333:secret:iam-keys/*"}}}]}"#;

    #[test]
    fn the_templates_permission_admits_secrets_under_the_prefix_only() {
        let under = "arn:aws:secretsmanager:us-east-1:111122223333:secret:iam-keys/app-AbCdEf";
        assert_eq!(
            lets_secrets_manager_invoke(Some(TEMPLATES), under, "111122223333"),
            Ok(())
        );
        let outside = "arn:aws:secretsmanager:us-east-1:111122223333:secret:other/app-AbCdEf";
        assert!(lets_secrets_manager_invoke(Some(TEMPLATES), outside, "111122223333").is_err());
        assert!(lets_secrets_manager_invoke(Some(TEMPLATES), under, "444455556666").is_err());
    }

    #[test]
    fn a_function_secrets_manager_may_not_invoke_is_no_rotation_function() {
        let under = "arn:aws:secretsmanager:us-east-1:1:secret:iam-keys/app-AbCdEf";
        assert!(lets_secrets_manager_invoke(None, under, "1").is_err());
        let events_only = TEMPLATES.replace("secretsmanager.amazonaws.com", "events.amazonaws.com");
        let error = lets_secrets_manager_invoke(Some(&events_only), under, "1").unwrap_err();
        assert!(
            error.contains("does not let secretsmanager.amazonaws.com"),
            "{error}"
        );
        let unconditioned = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["secretsmanager.amazonaws.com"]},"Action":["lambda:InvokeFunction"]}}"#;
        assert_eq!(
            lets_secrets_manager_invoke(Some(unconditioned), under, "1"),
            Ok(())
        );
    }

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(glob_matches("a*c", "abbbc"));
        assert!(glob_matches("a?c", "abc"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("a*d", "abc"));
    }
}
