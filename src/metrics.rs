//! The functions' CloudWatch metrics, without extra API calls: each step (and
//! each sweep) records its duration, the AWS calls it made (`aws/calls.rs`
//! counts them), the time it waited for a key to propagate and whether a
//! consumer still used the key it retires, and `main.rs`
//! flushes them after every invocation as Embedded Metric Format records on stdout,
//! which CloudWatch Logs turns into metrics (namespace `IamKeyRotation`,
//! dimensions `Step` and `Outcome`).
//!
//! The library only records through the `metrics` facade: without a recorder (the
//! tests, unless they install one) recording is a no-op.

use std::time::Duration;

use crate::event::{SWEEP, Step};
use crate::rotate::Outcome;

pub const NAMESPACE: &str = "IamKeyRotation";

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

/// What the `Step` dimension names: one of the four steps, or the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Step(Step),
    Sweep,
}

/// The `Outcome` dimension: what the job came to, or `Failed` (its
/// `errorType` is logged beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    With(Outcome),
    Failed,
}

/// One job's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub duration: Duration,
    pub aws_calls: u64,
    pub propagation_wait: Duration,
    pub old_keys_in_use: usize,
}

/// Records one job's figures under its `Step` and `Outcome`.
pub fn record(job: Job, ended: Ended, figures: Figures) {
    let step = match job {
        Job::Step(step) => step.as_str(),
        Job::Sweep => SWEEP,
    };
    let outcome = match ended {
        Ended::With(outcome) => outcome.as_str(),
        Ended::Failed => "Failed",
    };
    let labels = [("Step", step.to_string()), ("Outcome", outcome.to_string())];
    metrics::histogram!("Duration", &labels).record(figures.duration.as_secs_f64() * 1000.0);
    metrics::histogram!("AwsCalls", &labels).record(figures.aws_calls as f64);
    metrics::histogram!("PropagationWait", &labels)
        .record(figures.propagation_wait.as_secs_f64() * 1000.0);
    metrics::histogram!("OldKeyInUse", &labels).record(figures.old_keys_in_use as f64);
}
