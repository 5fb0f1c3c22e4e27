//! CloudWatch metrics without extra API calls: each step records its duration, the
//! AWS calls it made, the time it waited for a key to propagate and whether a
//! consumer still used the key it retires, and `main.rs`
//! flushes them after every invocation as Embedded Metric Format records on stdout,
//! which CloudWatch Logs turns into metrics (namespace `IamKeyRotation`,
//! dimensions `Step` and `Outcome`).
//!
//! The library only records through the `metrics` facade: without a recorder (the
//! tests, unless they install one) recording is a no-op.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_iam::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_iam::config::{ConfigBag, Intercept, RuntimeComponents};

pub const NAMESPACE: &str = "IamKeyRotation";
/// The `Outcome` of a step that failed; its `errorType` is logged beside it.
pub const FAILED: &str = "Failed";

/// Counts every attempt of every AWS call made through the clients it is
/// installed on (and the clients derived from them).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<AtomicU64>);

impl CallCounter {
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Declares the metrics' units, once, when the recorder is installed.
pub fn describe() {
    metrics::describe_histogram!(
        "Duration",
        metrics::Unit::Milliseconds,
        "time the step took"
    );
    metrics::describe_histogram!(
        "AwsCalls",
        metrics::Unit::Count,
        "AWS API calls the step made, retries included"
    );
    metrics::describe_histogram!(
        "OldKeyInUse",
        metrics::Unit::Count,
        "keys about to be retired or deleted that were used after the secret moved on (0 or 1 per step; the sweep counts every such key)"
    );
    metrics::describe_histogram!(
        "PropagationWait",
        metrics::Unit::Milliseconds,
        "time testSecret waited for the new key to authenticate"
    );
}

/// Records one step's figures under its `Step` and `Outcome`.
pub fn record_step(
    step: &str,
    outcome: &str,
    duration: Duration,
    aws_calls: u64,
    propagation_wait: Duration,
    old_keys_in_use: usize,
) {
    let labels = [("Step", step.to_string()), ("Outcome", outcome.to_string())];
    metrics::histogram!("Duration", &labels).record(duration.as_secs_f64() * 1000.0);
    metrics::histogram!("AwsCalls", &labels).record(aws_calls as f64);
    metrics::histogram!("PropagationWait", &labels).record(propagation_wait.as_secs_f64() * 1000.0);
    metrics::histogram!("OldKeyInUse", &labels).record(old_keys_in_use as f64);
}
