//! A rotation storm: many secrets fall due at once, Lambda runs several function
//! instances in parallel, and IAM throttles the account as a whole. Shared by the
//! storm test and the benchmark.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::fault_proxy::{FaultPlan, FaultProxy};
use crate::function::Function;
use crate::runtime_api::Reply;
use crate::world::{Fixture, STEPS, World};

/// How hard the storm blows.
#[derive(Debug, Clone)]
pub struct Storm {
    /// Secrets whose rotation starts at the same moment.
    pub secrets: usize,
    /// Function processes running at once, each taking the next rotation due.
    pub instances: usize,
    /// IAM's account-wide rate limit (calls per second).
    pub iam_calls_per_second: f64,
    /// Extra environment of every function process (e.g. a baseline retry mode).
    pub env: Vec<(String, String)>,
}

/// What the storm did.
#[derive(Debug)]
pub struct StormReport {
    pub wall_time: Duration,
    /// Step invocations that returned a function error (each one a
    /// `RotationFailed` event in AWS), as "secret step errorType".
    pub failed_steps: Vec<String>,
    /// Rotations that had not completed after retrying a step 5 times.
    pub abandoned: usize,
    /// Calls the account-wide limit throttled.
    pub throttled: usize,
    /// IAM calls the limit let through, and over how long (first IAM call to
    /// last): how close the storm came to the limit.
    pub iam_answered: usize,
    pub iam_span: Duration,
    /// How long each step invocation took, failed ones included.
    pub step_times: Vec<Duration>,
    /// All calls the proxy saw.
    pub calls: usize,
    /// Every rotation, for the caller's checks of the end state.
    pub rotations: Vec<(Fixture, String)>,
}

impl StormReport {
    /// IAM calls answered per second while the storm made IAM calls.
    pub fn iam_rate(&self) -> f64 {
        self.iam_answered as f64 / self.iam_span.as_secs_f64().max(f64::EPSILON)
    }

    /// The longest step invocation.
    pub fn slowest_step(&self) -> Duration {
        self.step_times.iter().max().copied().unwrap_or_default()
    }
}

/// Times a failed step is retried (as Secrets Manager would) before the storm
/// gives that rotation up.
const STEP_ATTEMPTS: usize = 5;

/// Sets up `storm.secrets` users with a first key and a rotation due, then runs
/// every rotation through `storm.instances` function processes behind `proxy`,
/// retrying a failed step as Secrets Manager would.
pub async fn run_storm(world: &World, proxy: &FaultProxy, storm: &Storm) -> StormReport {
    let mut rotations = Vec::with_capacity(storm.secrets);
    for _ in 0..storm.secrets {
        let fixture = world.user_with_key().await;
        let token = world.start_rotation(&fixture).await;
        rotations.push((fixture, token));
    }
    proxy.set_plan(FaultPlan {
        rate_limits: vec![("iam", storm.iam_calls_per_second)],
        ..FaultPlan::default()
    });
    proxy.clear_calls();

    let queue = Arc::new(Mutex::new(
        rotations.iter().cloned().collect::<VecDeque<_>>(),
    ));
    let failed_steps = Arc::new(Mutex::new(Vec::new()));
    let step_times = Arc::new(Mutex::new(Vec::new()));
    let abandoned = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut instances = JoinSet::new();
    for _ in 0..storm.instances {
        let endpoint = proxy.endpoint.clone();
        let env = storm.env.clone();
        let queue = queue.clone();
        let failed_steps = failed_steps.clone();
        let step_times = step_times.clone();
        let abandoned = abandoned.clone();
        instances.spawn(async move {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut function = Function::start(&endpoint, &env).await;
            loop {
                let next = queue.lock().unwrap().pop_front();
                let Some((fixture, token)) = next else { break };
                let log = StepLog {
                    failed_steps: &failed_steps,
                    step_times: &step_times,
                };
                if !rotate_with_retries(&mut function, &fixture, &token, &log).await {
                    abandoned.fetch_add(1, Ordering::Relaxed);
                }
            }
            function.stop().await;
        });
    }
    while let Some(result) = instances.join_next().await {
        result.expect("a function instance panicked");
    }
    let wall_time = started.elapsed();
    proxy.set_plan(FaultPlan::default());
    let calls = proxy.calls();
    let failed_steps = failed_steps.lock().unwrap().clone();
    let iam: Vec<_> = calls.iter().filter(|c| c.service == "iam").collect();
    let iam_span = match (iam.first(), iam.last()) {
        (Some(first), Some(last)) => last.at - first.at,
        _ => Duration::ZERO,
    };
    StormReport {
        wall_time,
        failed_steps,
        abandoned: abandoned.load(Ordering::Relaxed),
        throttled: calls
            .iter()
            .filter(|c| c.fault == Some("throttled"))
            .count(),
        iam_answered: iam.iter().filter(|c| c.fault.is_none()).count(),
        iam_span,
        step_times: step_times.lock().unwrap().clone(),
        calls: calls.len(),
        rotations,
    }
}

/// Where an instance records its steps.
struct StepLog<'a> {
    failed_steps: &'a Mutex<Vec<String>>,
    step_times: &'a Mutex<Vec<Duration>>,
}

/// Runs the four steps; returns false if a step still failed after
/// `STEP_ATTEMPTS` tries.
async fn rotate_with_retries(
    function: &mut Function,
    fixture: &Fixture,
    token: &str,
    log: &StepLog<'_>,
) -> bool {
    for step in STEPS {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let started = Instant::now();
            let reply = function.invoke(step, &fixture.secret_arn, token).await;
            log.step_times.lock().unwrap().push(started.elapsed());
            match reply {
                Reply::Response(_) => break,
                Reply::Error(error) => {
                    log.failed_steps.lock().unwrap().push(format!(
                        "{} {step} {}",
                        fixture.secret_name, error["errorType"]
                    ));
                    if attempts == STEP_ATTEMPTS {
                        return false;
                    }
                }
            }
        }
    }
    true
}
