//! The AWS layer: the clients, and every call the jobs make, each module per
//! service (`iam`, `secrets`, `sts`, `events`), with the secret listing and the
//! credential report that the sweep and `keyrot` share. Calls return the
//! neutral [`crate::aws_error::AwsError`] or the rotation's error; nothing here
//! knows which job called it.

pub mod account;
pub mod credential_report;
pub mod events;
pub mod http;
pub mod iam;
pub mod listing;
pub mod metrics;
pub mod retry;
pub mod secrets;
pub mod sts;

use aws_config::SdkConfig;
use aws_sdk_iam::config::retry::RetryPartition;
use aws_sdk_iam::config::{Credentials, SharedCredentialsProvider};
use metrics::CallCounter;

/// The AWS clients, built once per process and shared by every invocation.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sts: aws_sdk_sts::Client,
    /// Puts the lifecycle events: few attempts, because an event is never worth
    /// holding a step for.
    pub events: aws_sdk_eventbridge::Client,
    /// Counts the calls of all four, for the `AwsCalls` metric.
    calls: CallCounter,
    /// Kept to build the clients of another account (`keyrot --org`).
    sdk_config: SdkConfig,
}

impl Clients {
    /// Builds the clients from the SDK's shared configuration (region, credentials,
    /// `AWS_ENDPOINT_URL`, retry mode). Nothing here touches the network.
    pub fn new(sdk_config: &SdkConfig) -> Self {
        Self::build(sdk_config, None)
    }

    /// The same clients acting in another account with `credentials` (from
    /// `sts:AssumeRole` into its role). IAM throttles per account, so their
    /// adaptive retries keep a rate of their own: a throttled account does not
    /// slow the others.
    pub fn in_account(&self, account: &str, credentials: Credentials) -> Self {
        let config = self
            .sdk_config
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build();
        Self::build(&config, Some(account))
    }

    /// An Organizations client, for listing the organization's accounts; made
    /// when asked, since only `keyrot --org` and the organization audit need one.
    pub fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&self.sdk_config)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    fn build(sdk_config: &SdkConfig, account: Option<&str>) -> Self {
        let calls = CallCounter::default();
        let partition = |service: &str| {
            account.map(|account| RetryPartition::new(format!("{service}-{account}")))
        };
        let mut iam = aws_sdk_iam::config::Builder::from(sdk_config).interceptor(calls.clone());
        iam.set_retry_partition(partition("iam"));
        let mut secrets =
            aws_sdk_secretsmanager::config::Builder::from(sdk_config).interceptor(calls.clone());
        secrets.set_retry_partition(partition("secretsmanager"));
        let mut sts = aws_sdk_sts::config::Builder::from(sdk_config).interceptor(calls.clone());
        sts.set_retry_partition(partition("sts"));
        Self {
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            events: aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(sdk_config)
                    .retry_config(
                        aws_config::retry::RetryConfig::standard()
                            .with_max_attempts(events::PUT_ATTEMPTS),
                    )
                    .interceptor(calls.clone())
                    .build(),
            ),
            calls,
            sdk_config: sdk_config.clone(),
        }
    }

    /// How many AWS calls (attempts, retries included) the clients have made.
    pub(crate) fn calls_made(&self) -> u64 {
        self.calls.count()
    }
}
