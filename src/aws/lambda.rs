//! Lambda: what `keyrot enroll` checks of a rotation function before it
//! writes anything (`GetFunctionConfiguration`: that it exists, its ARN, the
//! environment that says which users and secrets the stack lets it manage;
//! `GetPolicy`: whether Secrets Manager may invoke it).

use std::collections::HashMap;

use super::Clients;
use super::error::AwsError;

/// A function as `GetFunctionConfiguration` describes it.
#[derive(Debug, Clone, Default)]
pub struct FunctionConfig {
    /// The function's ARN, as Lambda gives it (unqualified for a name).
    pub arn: String,
    /// Its environment variables, when the caller may read them.
    pub environment: HashMap<String, String>,
    /// Why the environment could not be read (a KMS key the caller may not
    /// use), if it could not.
    pub environment_error: Option<String>,
}

/// The configuration of `function` (a name or an ARN); `None` if there is no
/// such function where the clients look.
pub async fn configuration(
    clients: &Clients,
    function: &str,
) -> Result<Option<FunctionConfig>, AwsError> {
    let answer = clients
        .lambda()
        .get_function_configuration()
        .function_name(function)
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
        Err(error) => {
            return Err(AwsError::from_sdk(
                "GetFunctionConfiguration",
                function,
                &error,
            ));
        }
    };
    let environment = output.environment();
    Ok(Some(FunctionConfig {
        arn: output.function_arn().unwrap_or(function).to_string(),
        environment: environment
            .and_then(|env| env.variables())
            .cloned()
            .unwrap_or_default(),
        environment_error: environment.and_then(|env| env.error()).map(|error| {
            format!(
                "{}: {}",
                error.error_code().unwrap_or("Error"),
                error.message().unwrap_or("no message")
            )
        }),
    }))
}

/// The function's resource policy (JSON), or `None` when it has none.
pub async fn policy(clients: &Clients, function_arn: &str) -> Result<Option<String>, AwsError> {
    match clients
        .lambda()
        .get_policy()
        .function_name(function_arn)
        .send()
        .await
    {
        Ok(output) => Ok(output.policy().map(str::to_string)),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(error) => Err(AwsError::from_sdk("GetPolicy", function_arn, &error)),
    }
}
