//! The SDK clients a test sets up and inspects AWS with: the library keeps its
//! own clients private to its AWS layer, and a test acts as an administrator
//! (or an attacker) would, with the SDK itself.

use crate::ledger::KeyLedger;

/// The SDK clients a test sets up and inspects AWS with, as an administrator
/// (the library's own clients keep theirs private).
#[derive(Debug, Clone)]
pub struct AdminClients {
    pub iam: aws_sdk_iam::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sts: aws_sdk_sts::Client,
    /// Reads delivered SSM parameters back (decrypted, as a consumer would).
    pub ssm: aws_sdk_ssm::Client,
}

impl AdminClients {
    /// From the SDK's configuration; created keys land in `ledger`.
    pub fn new(config: &aws_config::SdkConfig, ledger: &KeyLedger) -> Self {
        Self {
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(config)
                    .interceptor(ledger.clone())
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            sts: aws_sdk_sts::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
        }
    }
}
