//! The Lambda handler: one invocation is a rotation step or a sweep. `main.rs`
//! only wires it to the Lambda runtime, so tests drive exactly the code the
//! runtime calls. It bounds each job by the invocation's deadline and records
//! its metric; the jobs themselves live in `rotate/` and `sweep/`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tracing::{Instrument, info, info_span, warn};

use crate::aws::Clients;
use crate::aws::{events, secrets};
use crate::config::Config;
use crate::deadline::{Deadline, EVENT_MARGIN, STEP_MARGIN};
use crate::error::RotationError;
use crate::event::{Request, RotationRequest};
use crate::metrics::{self, Ended, Figures};
use crate::model::lifecycle::{Lifecycle, Subject};
use crate::rotate::{self, Outcome, StepReport, preconditions};
use crate::sweep;

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

/// Handles the function's invocations: rotation steps and sweeps.
#[derive(Debug, Clone)]
pub struct Handler {
    clients: Clients,
    config: Config,
}

impl Handler {
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
        let job = Job {
            function_arn: invocation.function_arn,
            deadline: Deadline::credible(invocation.deadline, started),
            started,
        };
        match request {
            Request::Rotation(request) => self.rotate(&request, job).await,
            Request::Sweep => self.sweep(job).await,
        }
    }

    /// Validates the preconditions and runs one rotation step.
    async fn rotate(
        &self,
        request: &RotationRequest,
        job: Job<'_>,
    ) -> Result<Value, RotationError> {
        let span = info_span!(
            "rotation",
            step = %request.step,
            secret = %request.secret_id,
            token = %request.token
        );
        let calls_before = self.clients.calls_made();
        let result = self.run_until_deadline(request, job).instrument(span).await;
        let (ended, propagation_wait, old_key_in_use) = match &result {
            Ok((_, report)) => (
                Ended::With(report.outcome),
                report.propagation_wait,
                report.old_key_in_use,
            ),
            Err(error) => {
                warn!(error_type = error.kind(), error = %error, "step failed");
                self.step_failed(request, error, job.deadline).await;
                (Ended::Failed, Duration::ZERO, false)
            }
        };
        metrics::record(
            metrics::Job::Step(request.step),
            ended,
            Figures {
                duration: job.started.elapsed(),
                aws_calls: self.clients.calls_made() - calls_before,
                propagation_wait,
                old_keys_in_use: usize::from(old_key_in_use),
            },
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
        deadline: Deadline,
    ) {
        let subject = Subject::of_failure(
            error.secret().unwrap_or(&request.secret_id),
            error.user(),
            &request.token,
        );
        let failed = [Lifecycle::StepFailed {
            step: request.step.as_str().to_string(),
            error_type: error.kind().to_string(),
        }];
        let publish = events::publish(&self.clients, &self.config.event_bus, &subject, &failed);
        if deadline.bound(EVENT_MARGIN, publish).await.is_none() {
            warn!(
                error_type = error.kind(),
                "no time left before the deadline to put the Rotation Step Failed event"
            );
        }
    }

    /// Retires the previous keys whose time has come, across every secret this
    /// function rotates.
    async fn sweep(&self, job: Job<'_>) -> Result<Value, RotationError> {
        let calls_before = self.clients.calls_made();
        let result = sweep::sweep(&self.clients, &self.config, job.function_arn, job.deadline)
            .instrument(info_span!("sweep", function = %job.function_arn))
            .await;
        let (ended, in_use) = match &result {
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
                (Ended::With(Outcome::Done), report.old_keys_in_use)
            }
            Err(error) => {
                warn!(error_type = error.kind(), error = %error, "sweep failed");
                (Ended::Failed, 0)
            }
        };
        metrics::record(
            metrics::Job::Sweep,
            ended,
            Figures {
                duration: job.started.elapsed(),
                aws_calls: self.clients.calls_made() - calls_before,
                propagation_wait: Duration::ZERO,
                old_keys_in_use: in_use,
            },
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
        job: Job<'_>,
    ) -> Result<(String, StepReport), RotationError> {
        // Boxed: the steps' futures are deep, and the compiler's layout of the
        // runtime's future must not nest them all.
        let run: std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>> =
            Box::pin(self.run(request, job));
        job.deadline
            .bound(STEP_MARGIN, run)
            .await
            .unwrap_or_else(|| {
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
        job: Job<'_>,
    ) -> Result<(String, StepReport), RotationError> {
        let secret = RotationError::secret_found(
            secrets::find(&self.clients, &request.secret_id).await,
            &request.secret_id,
        )?;
        let state = preconditions::check(&secret, &request.token, job.function_arn)?;
        let cx = rotate::StepContext {
            clients: &self.clients,
            config: &self.config,
            secret,
            token: &request.token,
            rotation_token: request.rotation_token.as_ref(),
            state,
            deadline: job.deadline,
        };
        let report = rotate::run(request.step, &cx).await?;
        info!(secret_arn = %cx.secret.arn, outcome = report.outcome.as_str(), "step complete");
        Ok((cx.secret.arn, report))
    }
}

/// One invocation as the jobs see it.
#[derive(Debug, Clone, Copy)]
struct Job<'a> {
    function_arn: &'a str,
    deadline: Deadline,
    started: Instant,
}
