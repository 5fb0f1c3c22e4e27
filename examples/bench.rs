//! What a rotation costs, measured on this machine: cold start, peak memory, AWS
//! calls, wall time of the four steps, how long testSecret waits past the moment a
//! propagating key becomes valid, and the artifact's size. Prints a table with the
//! min, median and max of repeated runs.
//!
//! It builds nothing: it runs the binary named by `IAM_KEY_ROTATION_BOOTSTRAP` (the
//! release artifact) under a local Lambda Runtime API against moto. Run it with
//! `scripts/bench.sh [--quick]`.

use std::time::{Duration, Instant};

use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::function::{Function, bootstrap};
use harness::runtime_api::Reply;
use harness::storm::{Storm, run_storm};
use harness::{Fixture, World};
use serde_json::json;

struct Repetitions {
    cold_starts: usize,
    rotations: usize,
    overshoots: usize,
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let reps = if quick {
        Repetitions {
            cold_starts: 5,
            rotations: 3,
            overshoots: 2,
        }
    } else {
        Repetitions {
            cold_starts: 30,
            rotations: 10,
            overshoots: 5,
        }
    };
    let binary = bootstrap();
    println!(
        "benchmarking {} ({} mode)",
        binary.display(),
        if quick { "quick" } else { "full" }
    );
    let world = World::new().await;

    let mut rows = vec![row(
        "cold start: spawn to first poll of the Runtime API (ms)",
        "<= 15",
        cold_starts(reps.cold_starts).await,
    )];
    let (rss, calls, wall) = rotations(&world, reps.rotations).await;
    rows.push(row("peak RSS across a full rotation (MiB)", "<= 24", rss));
    rows.push(row(
        "AWS API calls, first rotation (adopts the key)",
        "<= 22",
        calls.0,
    ));
    rows.push(row(
        "AWS API calls, later rotations (delete the old key)",
        "<= 22",
        calls.1,
    ));
    rows.push(row(
        "wall time of the four steps against moto (ms)",
        "<= 400",
        wall,
    ));
    rows.push(row(
        "testSecret overshoot past key validity, 2 s delay (ms)",
        "<= 500",
        overshoots(&world, reps.overshoots).await,
    ));
    let size = std::fs::metadata(&binary)
        .map(|m| m.len() as f64 / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    rows.push(row("bootstrap size (MiB, stripped)", "report", vec![size]));

    println!("\n| figure | target | min | median | max | runs |\n|---|---|---|---|---|---|");
    for line in rows {
        println!("{line}");
    }
    storms(&world, quick).await;
}

/// The retry settings before this project tuned them: the SDK's defaults.
const SDK_DEFAULT_RETRIES: [(&str, &str); 2] =
    [("AWS_RETRY_MODE", "standard"), ("AWS_MAX_ATTEMPTS", "3")];

/// Rotation storms (36 secrets due at once, 6 instances) at several account-wide
/// IAM rate limits, with the function's retry settings and, side by side, with
/// the SDK's defaults.
async fn storms(world: &World, quick: bool) {
    let rates: &[f64] = if quick { &[12.0] } else { &[5.0, 12.0, 25.0] };
    println!(
        "\nRotation storm: 36 secrets due at once, 6 function instances, IAM limited per account\n"
    );
    println!(
        "| IAM calls/s | retry settings | wall time (s) | calls | throttled | failed steps | rotations given up |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &rate in rates {
        for (label, env) in [
            ("function's (adaptive, 12 attempts)", Vec::new()),
            (
                "SDK default (standard, 3 attempts)",
                SDK_DEFAULT_RETRIES.to_vec(),
            ),
        ] {
            let proxy = FaultProxy::start(&harness::moto().endpoint).await;
            let storm = Storm {
                secrets: 36,
                instances: 6,
                iam_calls_per_second: rate,
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            };
            let report = run_storm(world, &proxy, &storm).await;
            println!(
                "| {rate} | {label} | {:.1} | {} | {} | {} | {} |",
                report.wall_time.as_secs_f64(),
                report.calls,
                report.throttled,
                report.failed_steps.len(),
                report.abandoned
            );
        }
    }
}

fn row(figure: &str, target: &str, mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    format!(
        "| {figure} | {target} | {:.1} | {median:.1} | {:.1} | {} |",
        values[0],
        values[values.len() - 1],
        values.len()
    )
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn cold_starts(runs: usize) -> Vec<f64> {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let function = Function::start(&harness::moto().endpoint, &[]).await;
        let polled = function
            .api
            .first_poll(Duration::from_secs(10))
            .await
            .expect("the function polled");
        samples.push(millis(polled - function.spawned_at));
        function.stop().await;
    }
    samples
}

async fn run_steps(function: &mut Function, fixture: &Fixture, token: &str) {
    function.rotate(&fixture.secret_arn, token).await;
}

/// Peak RSS (MiB) and wall time (ms) of rotations straight against moto, and the
/// call counts of a first and a second rotation through a counting proxy.
async fn rotations(world: &World, runs: usize) -> (Vec<f64>, (Vec<f64>, Vec<f64>), Vec<f64>) {
    let (mut rss, mut wall) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let fixture = world.user_with_key().await;
        let token = world.start_rotation(&fixture).await;
        let mut function = Function::start(&harness::moto().endpoint, &[]).await;
        function.api.first_poll(Duration::from_secs(10)).await;
        let started = Instant::now();
        run_steps(&mut function, &fixture, &token).await;
        wall.push(millis(started.elapsed()));
        rss.push(function.peak_rss_kib().unwrap_or(0) as f64 / 1024.0);
        function.stop().await;
    }
    let proxy = FaultProxy::start(&harness::moto().endpoint).await;
    let fixture = world.user_with_key().await;
    let mut counts = (Vec::new(), Vec::new());
    for round in 0..2 {
        let token = world.start_rotation(&fixture).await;
        let mut function = Function::start(&proxy.endpoint, &[]).await;
        proxy.clear_calls();
        run_steps(&mut function, &fixture, &token).await;
        let calls = proxy.calls().len() as f64;
        if round == 0 {
            counts.0.push(calls)
        } else {
            counts.1.push(calls)
        }
        function.stop().await;
    }
    (rss, counts, wall)
}

async fn overshoots(world: &World, runs: usize) -> Vec<f64> {
    let delay = Duration::from_secs(2);
    let mut samples = Vec::new();
    for _ in 0..runs {
        let proxy = FaultProxy::start(&harness::moto().endpoint).await;
        proxy.set_plan(FaultPlan {
            propagation_delay: delay,
            reject_unusable_keys: true,
            ..FaultPlan::default()
        });
        let fixture = world.user_with_key().await;
        let token = world.start_rotation(&fixture).await;
        let mut function = Function::start(&proxy.endpoint, &[]).await;
        for step in ["createSecret", "setSecret", "testSecret"] {
            let reply = function.invoke(step, &fixture.secret_arn, &token).await;
            assert!(matches!(reply, Reply::Response(_)), "{step}: {reply:?}");
        }
        let finished = Instant::now();
        let pending = world.value(&fixture, "AWSPENDING").await.unwrap();
        let created = proxy
            .created_at(pending["AccessKeyId"].as_str().unwrap())
            .unwrap();
        samples.push(millis(finished.saturating_duration_since(created + delay)));
        let _ = function.invoke_payload(json!({"Step": "finishSecret", "SecretId": fixture.secret_arn, "ClientRequestToken": token})).await;
        function.stop().await;
    }
    samples
}
