//! The AWS layer: the clients, and every call the jobs make, one module per
//! service (`iam`, `secrets`, `sts`, `events`, `organizations`, `ssm`,
//! `lambda`, `logs`), with the secret listing, the credential report and where a user lives (`account`).
//! The SDK's clients are private to it: a job asks for what it needs and gets
//! the model's values back, or the neutral [`error::AwsError`]; nothing here
//! knows which job called it, and no job reaches past it to the SDK.

pub mod account;
pub mod calls;
pub mod credential_report;
pub mod error;
pub mod events;
pub mod http;
pub mod iam;
pub mod lambda;
pub mod listing;
pub mod logs;
pub mod organizations;
pub mod retry;
pub mod secrets;
pub mod setup;
pub mod ssm;
pub mod sts;

use aws_config::SdkConfig;
use aws_sdk_iam::config::{Credentials, Intercept, SharedCredentialsProvider};
use calls::{CallCounter, CallLog};

/// The SDK's configuration from `loader`, behind a box: its future is deep
/// (with Identity Center and `credential_process` in the credentials chain),
/// and the layout of a binary's `main` future must not nest it whole.
async fn load(loader: aws_config::ConfigLoader) -> SdkConfig {
    let load: std::pin::Pin<Box<dyn Future<Output = SdkConfig> + Send>> = Box::pin(loader.load());
    load.await
}

/// The AWS clients, built once per process and shared by every invocation.
#[derive(Debug, Clone)]
pub struct Clients {
    iam: aws_sdk_iam::Client,
    secrets: aws_sdk_secretsmanager::Client,
    sts: aws_sdk_sts::Client,
    /// Puts the lifecycle events: few attempts, because an event is never worth
    /// holding a step for.
    events: aws_sdk_eventbridge::Client,
    /// Counts the calls of all four, for the `AwsCalls` metric.
    calls: CallCounter,
    /// Kept to build the clients of another account (`keyrot --org`).
    sdk_config: SdkConfig,
}

/// A session of a role in another account (`sts::delivery_session`), for the
/// clients that act there; the credentials stay inside the AWS layer.
#[derive(Debug, Clone)]
pub struct Session(Credentials);

/// Which retry settings a process's clients take (`retry.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryProfile {
    /// The functions that rotate and deliver keys: patient retries that ride
    /// out a storm (`retry.rs`).
    Rotation,
    /// `keyrot` and the daily audit, which bound their own concurrency.
    Fleet,
}

/// Where a process finds its AWS settings, beside the SDK's usual places
/// (`AWS_REGION`, `AWS_PROFILE`, the credentials chain, `AWS_ENDPOINT_URL`).
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub retries: RetryProfile,
    /// `--region`, if given.
    pub region: Option<&'a str>,
    /// `--profile`, if given.
    pub profile: Option<&'a str>,
}

impl Clients {
    /// Builds the clients from the SDK's shared configuration (region, credentials,
    /// `AWS_ENDPOINT_URL`, retry mode). Nothing here touches the network.
    pub fn new(sdk_config: &SdkConfig) -> Self {
        Self::build(sdk_config, None)
    }

    /// The one way a front end loads the SDK's configuration: the process's
    /// one HTTPS client (`http.rs`), the retry settings its profile takes
    /// unless the operator chose their own, and any region and profile given.
    pub async fn load(settings: Settings<'_>) -> Self {
        let mut loader = aws_config::from_env().http_client(http::shared_https_client());
        if let Some(region) = settings.region {
            loader = loader.region(aws_config::Region::new(region.to_string()));
        }
        if let Some(profile) = settings.profile {
            loader = loader.profile_name(profile);
        }
        let lookup = |name: &str| std::env::var(name).ok();
        let retries = match settings.retries {
            RetryProfile::Rotation => retry::sdk_retry_config(lookup),
            RetryProfile::Fleet => retry::cli_retry_config(lookup),
        };
        if let Some(retry) = retries {
            loader = loader.retry_config(retry);
        }
        Self::new(&load(loader).await)
    }

    /// As [`Self::load`], for an operator at a terminal (`keyrot`): the
    /// profile, the region and the credentials are checked before any call
    /// (`setup.rs`), and the credentials resolved once.
    pub async fn load_checked(settings: Settings<'_>) -> Result<Self, setup::SetupError> {
        let mut loader = aws_config::from_env().http_client(http::shared_https_client());
        if let Some(region) = settings.region {
            loader = loader.region(aws_config::Region::new(region.to_string()));
        }
        if let Some(profile) = settings.profile {
            loader = loader.profile_name(profile);
        }
        let lookup = |name: &str| std::env::var(name).ok();
        if let Some(retry) = retry::cli_retry_config(lookup) {
            loader = loader.retry_config(retry);
        }
        let config = setup::checked(load(loader).await, settings.region, settings.profile).await?;
        Ok(Self::new(&config))
    }

    /// The same clients, with `interceptor` watching every IAM call (and the
    /// calls of the IAM clients derived from it for another account's role):
    /// how the tests see the keys IAM hands out.
    pub fn with_iam_interceptor(self, interceptor: impl Intercept + 'static) -> Self {
        let iam = self
            .iam
            .config()
            .to_builder()
            .interceptor(interceptor)
            .build();
        Self {
            iam: aws_sdk_iam::Client::from_conf(iam),
            ..self
        }
    }

    /// The same clients acting in another account with `credentials` (from
    /// `sts:AssumeRole` into its role). IAM throttles per account, so their
    /// retries keep a retry quota of their own: a throttled account does not
    /// hold back the others.
    fn in_account(&self, account: &str, credentials: Credentials) -> Self {
        let config = self
            .sdk_config
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build();
        Self::build(&config, Some(account))
    }

    /// IAM in the clients' own account.
    pub fn iam(&self) -> iam::Iam {
        iam::Iam(self.iam.clone())
    }

    /// An Organizations client, for listing the organization's accounts; made
    /// when asked, since only `keyrot --org` and the organization audit need one.
    fn organizations(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(&self.sdk_config)
                .interceptor(self.calls.clone())
                .interceptor(CallLog)
                .build(),
        )
    }

    /// A Lambda client, for `keyrot enroll`'s checks of the rotation function;
    /// made when asked, as only enroll needs one.
    fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&self.sdk_config)
                .interceptor(self.calls.clone())
                .interceptor(CallLog)
                .build(),
        )
    }

    /// A CloudWatch Logs client, for `keyrot status`'s reading of a failed
    /// rotation's log; made when asked.
    fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::from(&self.sdk_config)
                .interceptor(self.calls.clone())
                .interceptor(CallLog)
                .build(),
        )
    }

    /// The region the clients call, if one is set.
    pub fn region(&self) -> Option<String> {
        self.sdk_config.region().map(|region| region.to_string())
    }

    fn build(sdk_config: &SdkConfig, account: Option<&str>) -> Self {
        let calls = CallCounter::default();
        let partition =
            |service: &str| retry::partition(service, account, |name| std::env::var(name).ok());
        let mut iam = aws_sdk_iam::config::Builder::from(sdk_config)
            .interceptor(calls.clone())
            .interceptor(CallLog);
        iam.set_retry_partition(partition("iam"));
        let mut secrets = aws_sdk_secretsmanager::config::Builder::from(sdk_config)
            .interceptor(calls.clone())
            .interceptor(CallLog);
        secrets.set_retry_partition(partition("secretsmanager"));
        let mut sts = aws_sdk_sts::config::Builder::from(sdk_config)
            .interceptor(calls.clone())
            .interceptor(CallLog);
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
                    .interceptor(CallLog)
                    .build(),
            ),
            calls,
            sdk_config: sdk_config.clone(),
        }
    }

    /// The shared configuration in `region`, acting as `session` when given:
    /// for the delivery's clients of another region or account (SSM, copies
    /// of a secret), which keep the endpoint, retry settings and HTTP client.
    fn config_in(&self, region: &str, session: Option<&Session>) -> SdkConfig {
        let mut config = self
            .sdk_config
            .to_builder()
            .region(aws_config::Region::new(region.to_string()));
        if let Some(Session(credentials)) = session {
            config =
                config.credentials_provider(SharedCredentialsProvider::new(credentials.clone()));
        }
        config.build()
    }

    /// How many AWS calls (attempts, retries included) the clients have made.
    pub(crate) fn calls_made(&self) -> u64 {
        self.calls.count()
    }
}
