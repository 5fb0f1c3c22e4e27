//! iam-key-rotation: the AWS Secrets Manager rotation function for IAM user access
//! keys.
//!
//! Secrets Manager invokes the function four times per rotation with the same
//! `ClientRequestToken`; [`Rotator::handle`] runs one step. `main.rs` only wires it
//! to the Lambda runtime, so tests drive exactly the code the runtime calls.

pub mod account;
pub mod config;
pub mod error;
pub mod event;
pub mod iam_keys;
pub mod key_check;
pub mod metrics;
pub mod preconditions;
pub mod secret;
pub mod secrets;
pub mod smtp;
pub mod steps;

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{Instrument, info, info_span, warn};

pub use config::{Config, OldKeyAction};
pub use error::{ConfigError, RotationError};
pub use event::{RotationRequest, Step};
use metrics::CallCounter;

/// The AWS clients, built once per process and shared by every invocation.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub sts: aws_sdk_sts::Client,
    /// Counts the calls of all three, for the `AwsCalls` metric.
    pub calls: CallCounter,
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
            calls,
        }
    }
}

/// Runs rotation steps.
#[derive(Debug, Clone)]
pub struct Rotator {
    clients: Clients,
    config: Config,
}

impl Rotator {
    pub fn new(clients: Clients, config: Config) -> Self {
        Self { clients, config }
    }

    /// Handles one invocation: validates the event, checks the preconditions and
    /// runs the step. `deadline` is when Lambda will stop the invocation.
    pub async fn handle(
        &self,
        payload: Value,
        deadline: Option<Instant>,
    ) -> Result<Value, RotationError> {
        let request = RotationRequest::from_payload(payload).inspect_err(|error| {
            warn!(error_type = error.kind(), error = %error, "rejected the event");
        })?;
        let span = info_span!(
            "rotation",
            step = %request.step,
            secret = %request.secret_id,
            token = %request.token
        );
        let started = Instant::now();
        let calls_before = self.clients.calls.count();
        let propagation_wait = AtomicU64::new(0);
        let result = self
            .run(&request, deadline, &propagation_wait)
            .instrument(span)
            .await;
        let outcome = match &result {
            Ok(response) => response["Outcome"].as_str().unwrap_or_default().to_string(),
            Err(error) => {
                warn!(error_type = error.kind(), error = %error, "step failed");
                metrics::FAILED.to_string()
            }
        };
        metrics::record_step(
            request.step.as_str(),
            &outcome,
            started.elapsed(),
            self.clients.calls.count() - calls_before,
            Duration::from_millis(propagation_wait.into_inner()),
        );
        result
    }

    async fn run(
        &self,
        request: &RotationRequest,
        deadline: Option<Instant>,
        propagation_wait: &AtomicU64,
    ) -> Result<Value, RotationError> {
        let secret = secrets::describe(&self.clients.secrets, &request.secret_id).await?;
        let state = preconditions::check(&secret, &request.token)?;
        let cx = steps::StepContext {
            clients: &self.clients,
            config: &self.config,
            secret,
            token: &request.token,
            rotation_token: request.rotation_token.as_ref(),
            state,
            deadline,
            propagation_wait,
        };
        let outcome = steps::run(request.step, &cx).await?;
        info!(secret_arn = %cx.secret.arn, outcome = outcome.as_str(), "step complete");
        Ok(json!({
            "Step": request.step.as_str(),
            "SecretArn": cx.secret.arn,
            "ClientRequestToken": request.token,
            "Outcome": outcome.as_str(),
        }))
    }
}
