//! The AWS layer: the clients, and every call the jobs make, each module per
//! service (`iam`, `secrets`, `sts`, `events`), with the secret listing and the
//! credential report that the sweep and `keyrot` share. Calls return the
//! neutral [`crate::aws_error::AwsError`] or the rotation's error; nothing here
//! knows which job called it.

pub mod account;
pub mod credential_report;
pub mod events;
pub mod iam;
pub mod listing;
pub mod metrics;
pub mod retry;
pub mod secrets;
pub mod sts;

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
}

impl Clients {
    /// Builds the clients from the SDK's shared configuration (region, credentials,
    /// `AWS_ENDPOINT_URL`, retry mode). Nothing here touches the network.
    pub fn new(sdk_config: &aws_config::SdkConfig) -> Self {
        let calls = CallCounter::default();
        Self {
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(sdk_config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(sdk_config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(sdk_config)
                    .interceptor(calls.clone())
                    .build(),
            ),
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
        }
    }
}

impl Clients {
    /// How many AWS calls (attempts, retries included) the clients have made.
    pub(crate) fn calls_made(&self) -> u64 {
        self.calls.count()
    }
}
