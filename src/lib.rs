//! iam-key-rotation: the AWS Secrets Manager rotation function for IAM user access
//! keys.
//!
//! Secrets Manager invokes the function four times per rotation with the same
//! `ClientRequestToken`; [`Rotator::handle`] runs one step. `main.rs` only wires it
//! to the Lambda runtime, so tests drive exactly the code the runtime calls.
//!
//! Modules are private: the binaries and tests use the few types re-exported here,
//! and the compiler reports whatever else goes unused.

mod account;
mod aws_error;
mod backoff;
mod clock;
mod config;
mod error;
mod event;
pub mod fleet;
mod iam_keys;
mod iam_names;
mod key_check;
mod key_tags;
mod lifecycle;
pub mod logging;
mod metrics;
mod preconditions;
mod retire;
mod retry;
mod secret_value;
mod secrets_manager;
mod sensitive;
mod smtp;
mod steps;
mod sweep;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{Instrument, info, info_span, warn};

pub use config::{Config, OldKeyAction, Retirement};
pub use error::{ConfigError, RotationError};
pub use lifecycle::SOURCE as EVENT_SOURCE;
pub use metrics::{NAMESPACE as METRICS_NAMESPACE, describe as describe_metrics};
pub use retry::{cli_retry_config, sdk_retry_config};
pub use sensitive::Sensitive;
pub use smtp::smtp_password;

use event::{Request, RotationRequest};
use metrics::CallCounter;
use steps::StepReport;

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
                            .with_max_attempts(lifecycle::PUT_ATTEMPTS),
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
    pub fn calls_made(&self) -> u64 {
        self.calls.count()
    }
}

/// What Lambda says about one invocation, besides the event.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The ARN the function was invoked by (its context's `invoked_function_arn`,
    /// perhaps with a version or alias): the secret's rotation function must be
    /// this function.
    pub function_arn: &'a str,
    /// When Lambda will stop the invocation; waits and retries never run past it.
    pub deadline: Option<Instant>,
}

/// Time kept free before the deadline to report a step that ran out of time,
/// rather than be killed without a word.
pub(crate) const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Time kept free after a failure event, for the error to reach Lambda.
const EVENT_MARGIN: Duration = Duration::from_millis(250);
/// A deadline closer than this when the invocation starts cannot be Lambda's
/// (the template's shortest timeout is 30 s): it is an emulator's placeholder,
/// and bounding the step by it would fail every step at once.
const MIN_CREDIBLE_DEADLINE: Duration = Duration::from_secs(2);

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

    /// Handles one invocation: a rotation step or a sweep.
    pub async fn handle(
        &self,
        payload: Value,
        invocation: Invocation<'_>,
    ) -> Result<Value, RotationError> {
        let request = Request::from_payload(payload).inspect_err(|error| {
            warn!(error_type = error.kind(), error = %error, "rejected the event");
        })?;
        let started = Instant::now();
        let invocation = Invocation {
            deadline: credible(invocation.deadline, started),
            ..invocation
        };
        match request {
            Request::Rotation(request) => self.rotate(&request, invocation, started).await,
            Request::Sweep => self.sweep(invocation, started).await,
        }
    }

    /// Validates the preconditions and runs one rotation step.
    async fn rotate(
        &self,
        request: &RotationRequest,
        invocation: Invocation<'_>,
        started: Instant,
    ) -> Result<Value, RotationError> {
        let span = info_span!(
            "rotation",
            step = %request.step,
            secret = %request.secret_id,
            token = %request.token
        );
        let calls_before = self.clients.calls.count();
        let result = self
            .run_until_deadline(request, invocation)
            .instrument(span)
            .await;
        let (outcome, propagation_wait, old_key_in_use) = match &result {
            Ok((_, report)) => (
                report.outcome.as_str(),
                report.propagation_wait,
                report.old_key_in_use,
            ),
            Err(error) => {
                warn!(error_type = error.kind(), error = %error, "step failed");
                self.step_failed(request, error, invocation.deadline).await;
                (metrics::FAILED, Duration::ZERO, false)
            }
        };
        metrics::record_step(
            request.step.as_str(),
            outcome,
            started.elapsed(),
            self.clients.calls.count() - calls_before,
            propagation_wait,
            usize::from(old_key_in_use),
        );
        let (secret_arn, report) = result?;
        Ok(json!({
            "Step": request.step.as_str(),
            "SecretArn": secret_arn,
            "ClientRequestToken": request.token,
            "Outcome": report.outcome.as_str(),
        }))
    }

    /// Tells EventBridge a step failed, naming what the error knows, in the time
    /// left before the deadline: the error itself must reach Lambda first.
    async fn step_failed(
        &self,
        request: &RotationRequest,
        error: &RotationError,
        deadline: Option<Instant>,
    ) {
        let secret = error.secret().unwrap_or(&request.secret_id);
        let subject = lifecycle::Subject {
            secret_arn: secret.to_string(),
            secret_name: secrets_manager::name_of(secret).to_string(),
            user: error.user().map(str::to_string),
            account: secrets_manager::account_of(secret).map(str::to_string),
            version_id: request.token.clone(),
        };
        let events = [lifecycle::Lifecycle::StepFailed {
            step: request.step.as_str(),
            error_type: error.kind(),
        }];
        let publish = lifecycle::publish(
            &self.clients.events,
            &self.config.event_bus,
            &subject,
            &events,
        );
        let Some(deadline) = deadline else {
            return publish.await;
        };
        let budget = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(EVENT_MARGIN);
        if tokio::time::timeout(budget, publish).await.is_err() {
            warn!(
                error_type = error.kind(),
                "no time left before the deadline to put the Rotation Step Failed event"
            );
        }
    }

    /// Retires the previous keys whose time has come, across every secret this
    /// function rotates.
    async fn sweep(
        &self,
        invocation: Invocation<'_>,
        started: Instant,
    ) -> Result<Value, RotationError> {
        let calls_before = self.clients.calls.count();
        let result = sweep::sweep(
            &self.clients,
            &self.config,
            invocation.function_arn,
            invocation.deadline,
        )
        .instrument(info_span!("sweep", function = %invocation.function_arn))
        .await;
        let (outcome, in_use) = match &result {
            Ok(report) => {
                info!(
                    secrets = report.secrets,
                    deactivated = report.deactivated.len(),
                    deleted = report.deleted.len(),
                    kept_in_use = report.kept_in_use.len(),
                    skipped = report.skipped,
                    unfinished = report.unfinished,
                    "sweep complete"
                );
                ("Done", report.old_keys_in_use)
            }
            Err(error) => {
                warn!(error_type = error.kind(), error = %error, "sweep failed");
                (metrics::FAILED, 0)
            }
        };
        metrics::record_step(
            event::SWEEP,
            outcome,
            started.elapsed(),
            self.clients.calls.count() - calls_before,
            Duration::ZERO,
            in_use,
        );
        result.map(|report| report.to_json())
    }

    /// Runs the step, but stops it just before the deadline: SDK retries of a
    /// throttled call could otherwise run into Lambda's timeout, which kills the
    /// process without a word. Stopping between two calls is as safe as a crash,
    /// which every step survives.
    async fn run_until_deadline(
        &self,
        request: &RotationRequest,
        invocation: Invocation<'_>,
    ) -> Result<(String, StepReport), RotationError> {
        let run = self.run(request, invocation);
        let Some(deadline) = invocation.deadline else {
            return run.await;
        };
        let stop_at = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline);
        tokio::time::timeout_at(stop_at.into(), run)
            .await
            .unwrap_or_else(|_| {
                Err(RotationError::DeadlineReached {
                    secret: request.secret_id.clone(),
                    step: request.step.as_str(),
                    detail: "AWS throttled or answered slowly",
                })
            })
    }

    async fn run(
        &self,
        request: &RotationRequest,
        invocation: Invocation<'_>,
    ) -> Result<(String, StepReport), RotationError> {
        let secret = secrets_manager::describe(&self.clients.secrets, &request.secret_id).await?;
        let state = preconditions::check(&secret, &request.token, invocation.function_arn)?;
        let cx = steps::StepContext {
            clients: &self.clients,
            config: &self.config,
            secret,
            token: &request.token,
            rotation_token: request.rotation_token.as_ref(),
            state,
            deadline: invocation.deadline,
        };
        let report = steps::run(request.step, &cx).await?;
        info!(secret_arn = %cx.secret.arn, outcome = report.outcome.as_str(), "step complete");
        Ok((cx.secret.arn, report))
    }
}

/// The deadline, unless it is too close (or past) at the start to be real.
fn credible(deadline: Option<Instant>, started: Instant) -> Option<Instant> {
    let deadline = deadline?;
    if deadline >= started + MIN_CREDIBLE_DEADLINE {
        return Some(deadline);
    }
    warn!(
        remaining_ms = deadline.saturating_duration_since(started).as_millis() as u64,
        "the invocation's deadline is already (nearly) past as it starts; running without one"
    );
    None
}
