//! SSM Parameter Store: the delivery's SecureString parameters (SPEC 14), in
//! one region, with the clients' own credentials or a session of another
//! account's delivery role. A write overwrites; a check reads the parameter's
//! version without decryption, so verifying a delivery never reads the key
//! back (and the roles hold no `kms:Decrypt` for it).

use aws_sdk_ssm::types::ParameterType;

use super::error::AwsError;
use super::{Clients, Session};
use crate::sensitive::Sensitive;

pub struct Ssm {
    client: aws_sdk_ssm::Client,
}

impl Ssm {
    pub fn new(clients: &Clients, region: &str, session: Option<&Session>) -> Self {
        let config = clients.config_in(region, session);
        Self {
            client: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(&config)
                    .interceptor(clients.calls.clone())
                    .build(),
            ),
        }
    }

    /// Writes `value` as the SecureString parameter `name` (with the account's
    /// default key, `alias/aws/ssm`), overwriting it; returns the version SSM
    /// gave the write.
    pub async fn put_secure(&self, name: &str, value: &Sensitive) -> Result<i64, AwsError> {
        let output = self
            .client
            .put_parameter()
            .name(name)
            .value(value.expose())
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk("PutParameter", name, &error))?;
        Ok(output.version())
    }

    /// The parameter's current version, read without decryption; `None` when
    /// there is no such parameter.
    pub async fn version(&self, name: &str) -> Result<Option<i64>, AwsError> {
        let answer = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(false)
            .send()
            .await;
        match answer {
            Ok(output) => Ok(output.parameter().map(|parameter| parameter.version())),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(error) => Err(AwsError::from_sdk("GetParameter", name, &error)),
        }
    }
}
