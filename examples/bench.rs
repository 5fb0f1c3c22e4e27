//! What a rotation costs, measured on this machine: cold start, peak memory, AWS
//! calls, wall time of the four steps, how long testSecret waits past the moment a
//! propagating key becomes valid, and the artifact's size. Prints a table with the
//! min, median and max of repeated runs. Then a cold rotation at Lambda's CPU
//! share, what a transient throttle costs createSecret beside boto3, and
//! rotation storms beside the SDK's default retries.
//!
//! It builds nothing: it runs the binary named by `IAM_KEY_ROTATION_BOOTSTRAP` (the
//! release artifact) under a local Lambda Runtime API against moto. Run it with
//! `scripts/bench.sh [--quick]`.

use std::time::{Duration, Instant};

use harness::boto3_baseline::create_secret_with_boto3;
use harness::cpu_share::CpuShare;
use harness::fault_proxy::{Call, FaultPlan, FaultProxy, ThrottleRun};
use harness::function::{Function, bootstrap};
use harness::runtime_api::Reply;
use harness::storm::{Storm, run_storm};
use harness::tls_front::TlsFront;
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
    // `--share-only`: only the table at Lambda's CPU share, for profiling work.
    if std::env::args().any(|arg| arg == "--share-only") {
        let world = World::new().await;
        lambda_share(&world, if quick { 3 } else { 9 }).await;
        return;
    }
    // `--retry-only`: only the retry figures (what a transient throttle costs,
    // and the storms), for retry work.
    if std::env::args().any(|arg| arg == "--retry-only") {
        let world = World::new().await;
        throttle_costs(&world, if quick { 5 } else { 15 }).await;
        storms(&world, quick).await;
        return;
    }
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
    lambda_share(&world, if quick { 3 } else { 9 }).await;
    throttle_costs(&world, if quick { 5 } else { 15 }).await;
    storms(&world, quick).await;
}

/// Memory sizes whose CPU share the cold rotation is measured at: the
/// template's default.
const MEMORY_SIZES_MB: [u32; 1] = [128];

/// What a cold rotation costs as Lambda runs it: at the CPU share of the
/// function's memory size and over TLS, beside plain HTTP and full CPU, in one
/// run. Every configuration goes through the fault proxy (which keeps
/// connections alive, as AWS endpoints do); HTTPS adds a TLS front before it.
/// The runs are interleaved so that drift on the machine hits all alike.
async fn lambda_share(world: &World, runs: usize) {
    let proxy = FaultProxy::start(&harness::moto().endpoint).await;
    let front = TlsFront::start(&proxy.endpoint).await;
    let shares: Vec<CpuShare> = MEMORY_SIZES_MB
        .iter()
        .filter_map(|&mb| {
            let share = CpuShare::for_memory(mb);
            if share.is_none() {
                println!(
                    "\n(no writable cgroup CPU controller: the {mb} MB share is not measured)"
                );
            }
            share
        })
        .collect();
    let mut columns: Vec<Column> = Vec::new();
    for share in std::iter::once(None).chain(shares.iter().map(Some)) {
        for tls in [false, true] {
            columns.push(Column::new(share, tls));
        }
    }
    for _ in 0..runs {
        for column in &mut columns {
            let (endpoint, extra) = if column.tls {
                let mut extra = front.service_endpoints.clone();
                extra.push((
                    "SSL_CERT_FILE".to_string(),
                    front.ca_bundle.display().to_string(),
                ));
                (front.endpoint.clone(), extra)
            } else {
                (proxy.endpoint.clone(), Vec::new())
            };
            let extra: Vec<(&str, &str)> = extra
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let fixture = world.user_with_key().await;
            let token = world.start_rotation(&fixture).await;
            let handshakes = front.handshakes();
            let mut sample = cold_rotation(column.share, &endpoint, &extra, &fixture, &token).await;
            sample.handshakes = (front.handshakes() - handshakes) as f64;
            column.samples.push(sample);
        }
    }
    print_share_table(&columns);
}

struct Column<'a> {
    share: Option<&'a CpuShare>,
    tls: bool,
    samples: Vec<ColdRotation>,
}

impl<'a> Column<'a> {
    fn new(share: Option<&'a CpuShare>, tls: bool) -> Self {
        Self {
            share,
            tls,
            samples: Vec::new(),
        }
    }

    fn label(&self) -> String {
        let cpu = self
            .share
            .map_or("full CPU".to_string(), |share| share.label());
        format!("{cpu}, {}", if self.tls { "HTTPS" } else { "HTTP" })
    }

    fn median(&self, figure: impl Fn(&ColdRotation) -> f64) -> f64 {
        let mut values: Vec<f64> = self.samples.iter().map(figure).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    }
}

/// One cold rotation: a new process, then the four steps.
struct ColdRotation {
    /// Spawn to the first poll of the Runtime API (ms).
    cold_start: f64,
    /// Each step's round trip through the Runtime API (ms).
    steps: [f64; 4],
    /// CPU the process used from spawn to the end of finishSecret (ms).
    cpu: f64,
    /// TLS handshakes the rotation made (0 over HTTP).
    handshakes: f64,
}

async fn cold_rotation(
    share: Option<&CpuShare>,
    endpoint: &str,
    extra: &[(&str, &str)],
    fixture: &Fixture,
    token: &str,
) -> ColdRotation {
    let mut function = match share {
        Some(share) => Function::start_held(endpoint, extra, share).await,
        None => Function::start(endpoint, extra).await,
    };
    let polled = function
        .api
        .first_poll(Duration::from_secs(30))
        .await
        .expect("the function polled");
    let cold_start = millis(polled - function.spawned_at);
    let mut steps = [0.0; 4];
    for (index, step) in harness::STEPS.iter().enumerate() {
        let started = Instant::now();
        let reply = function.invoke(step, &fixture.secret_arn, token).await;
        assert!(
            matches!(reply, Reply::Response(_)),
            "{step}: {reply:?}\n{}",
            function.output().join("\n")
        );
        steps[index] = millis(started.elapsed());
    }
    let cpu = function.cpu_time().map_or(0.0, millis);
    function.stop().await;
    ColdRotation {
        cold_start,
        steps,
        cpu,
        handshakes: 0.0,
    }
}

/// One figure of a cold rotation, read from a sample.
type Figure = fn(&ColdRotation) -> f64;

fn print_share_table(columns: &[Column]) {
    println!(
        "\nCold rotation at Lambda's CPU share and over TLS (medians of {} runs each; x = HTTPS / HTTP)\n",
        columns[0].samples.len()
    );
    let mut header = "| figure |".to_string();
    let mut rule = "|---|".to_string();
    for pair in columns.chunks(2) {
        header.push_str(&format!(" {} | {} | x |", pair[0].label(), pair[1].label()));
        rule.push_str("---|---|---|");
    }
    println!("{header}\n{rule}");
    let figures: [(&str, Figure); 7] = [
        ("cold start (ms)", |r| r.cold_start),
        ("createSecret (ms)", |r| r.steps[0]),
        ("setSecret (ms)", |r| r.steps[1]),
        ("testSecret (ms)", |r| r.steps[2]),
        ("finishSecret (ms)", |r| r.steps[3]),
        ("four steps (ms)", |r| r.steps.iter().sum()),
        ("CPU used, spawn to finishSecret (ms)", |r| r.cpu),
    ];
    let handshakes = columns
        .iter()
        .find(|c| c.tls)
        .map(|c| c.median(|r| r.handshakes));
    for (name, figure) in &figures {
        let mut line = format!("| {name} |");
        for pair in columns.chunks(2) {
            let (http, https) = (pair[0].median(figure), pair[1].median(figure));
            line.push_str(&format!(" {http:.0} | {https:.0} | x{:.2} |", https / http));
        }
        println!("{line}");
    }
    if let Some(handshakes) = handshakes {
        println!(
            "\nTLS handshakes per cold rotation (one endpoint per service, as on AWS): {handshakes:.0}"
        );
    }
}

/// Which of createSecret's IAM calls is throttled: the second (`ListAccessKeys`;
/// `GetUser`, `TagUser`, `CreateAccessKey` and `TagUser` are the others).
const THROTTLED_IAM_CALL: usize = 2;
/// How many of its attempts in a row are throttled, the first being none.
const THROTTLED_IN_A_ROW: [usize; 3] = [0, 1, 3];

/// One createSecret: how long it took, whether it succeeded, and the requests
/// the proxy saw, in order.
struct ThrottledStep {
    took: f64,
    ok: bool,
    requests: Vec<Call>,
}

impl ThrottledStep {
    /// When the `index`-th request reached the proxy, in ms after the first.
    fn at(&self, index: usize) -> Option<f64> {
        let first = self.requests.first()?.at;
        Some(millis(self.requests.get(index)?.at - first))
    }

    /// The index of the throttled call's first request (its first attempt).
    fn throttled_call(&self) -> Option<usize> {
        self.requests
            .iter()
            .enumerate()
            .filter(|(_, call)| call.service == "iam")
            .nth(THROTTLED_IAM_CALL - 1)
            .map(|(index, _)| index)
    }

    /// From the throttled call's first attempt to the attempt IAM answered
    /// (ms): the retries' waits.
    fn waiting_to_retry(&self, times: usize) -> Option<f64> {
        let first = self.throttled_call()?;
        Some(self.at(first + times)? - self.at(first)?)
    }

    /// From the answered attempt to the step's last request (ms): the rest of
    /// the step, which a client-side limiter would slow down.
    fn rest_of_step(&self, times: usize) -> Option<f64> {
        let answered = self.throttled_call()? + times;
        Some(self.at(self.requests.len() - 1)? - self.at(answered)?)
    }
}

/// The median of the figures that exist (NaN if none does).
fn median(values: impl Iterator<Item = Option<f64>>) -> f64 {
    let mut values: Vec<f64> = values.flatten().collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// What a transient throttle costs createSecret (a first rotation, 11 calls, 5
/// of them IAM's): IAM answers `Throttling` to the step's second IAM request and
/// to 0, 1 or 3 requests in a row from there, through the fault proxy. The
/// function runs in a new process each time (as after a cold start); beside it,
/// the same calls made by boto3 with its default retries, in the same run, same
/// moto, same proxy, interleaved. The added time is split into the wait for the
/// throttled call's answer and how much slower the rest of the step ran (where
/// a client-side rate limiter would show).
async fn throttle_costs(world: &World, runs: usize) {
    let proxy = FaultProxy::start(&harness::moto().endpoint).await;
    let mut samples: Vec<[Vec<ThrottledStep>; 2]> = THROTTLED_IN_A_ROW
        .iter()
        .map(|_| [Vec::new(), Vec::new()])
        .collect();
    for _ in 0..runs {
        for (shape, &times) in THROTTLED_IN_A_ROW.iter().enumerate() {
            for (implementation, by_function) in [true, false].into_iter().enumerate() {
                let fixture = world.user_with_key().await;
                let token = world.start_rotation(&fixture).await;
                let sample =
                    throttled_create_secret(&proxy, &fixture, &token, times, by_function).await;
                samples[shape][implementation].push(sample);
            }
        }
    }
    println!(
        "\nA transient throttle: IAM answers `Throttling` to createSecret's IAM call {THROTTLED_IAM_CALL} \
         (ListAccessKeys) N times in a row\n(medians of {runs} runs; added = median minus the unthrottled median; \
         the function in a new process each run;\nwaiting = from the first throttled attempt to the answered one; \
         later calls = how much longer the rest of the step took)\n"
    );
    println!(
        "| throttled in a row | function (ms) | added (s) | waiting (s) | later calls (s) | boto3 default (ms) | added (s) | waiting (s) | later calls (s) | boto3 steps failed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let took = |steps: &[ThrottledStep]| median(steps.iter().map(|s| Some(s.took)));
    let rest =
        |steps: &[ThrottledStep], times: usize| median(steps.iter().map(|s| s.rest_of_step(times)));
    let [function_base, boto3_base] = &samples[0];
    for (shape, &times) in THROTTLED_IN_A_ROW.iter().enumerate() {
        let [function, boto3] = &samples[shape];
        let function_failed = function.iter().filter(|s| !s.ok).count();
        assert_eq!(
            function_failed, 0,
            "the function failed createSecret under {times} throttles"
        );
        let mut line = format!("| {times} |");
        for (steps, base) in [(function, function_base), (boto3, boto3_base)] {
            let waiting = median(steps.iter().map(|s| s.waiting_to_retry(times)));
            line.push_str(&format!(
                " {:.0} | {:.2} | {:.2} | {:.2} |",
                took(steps),
                (took(steps) - took(base)) / 1000.0,
                waiting / 1000.0,
                (rest(steps, times) - rest(base, 0)) / 1000.0
            ));
        }
        let boto3_failed = boto3.iter().filter(|s| !s.ok).count();
        line.push_str(&format!(" {boto3_failed} of {} |", boto3.len()));
        println!("{line}");
    }
    println!(
        "\n(A boto3 step that failed gave up on the throttled call: its time is the time to fail, and it has no later calls.)"
    );
    // Where the time goes, request by request, for one throttle.
    let shape = THROTTLED_IN_A_ROW.iter().position(|&t| t == 1).unwrap();
    let [function, boto3] = &samples[shape];
    println!(
        "\nOne throttle, request by request: ms since the step's previous request (medians of {runs} runs)\n"
    );
    println!("| request | function | boto3 default |\n|---|---|---|");
    for (index, call) in function[0].requests.iter().enumerate() {
        let gap = |steps: &[ThrottledStep]| {
            median(steps.iter().map(|s| {
                let previous = index.checked_sub(1).map_or(s.at(index), |i| s.at(i));
                Some(s.at(index)? - previous?)
            }))
        };
        println!(
            "| {}{} | {:.0} | {:.0} |",
            call.operation,
            if call.fault == Some("throttled") {
                " (throttled)"
            } else {
                ""
            },
            gap(function),
            gap(boto3)
        );
    }
}

async fn throttled_create_secret(
    proxy: &FaultProxy,
    fixture: &Fixture,
    token: &str,
    times: usize,
    by_function: bool,
) -> ThrottledStep {
    let plan = FaultPlan {
        throttle_runs: vec![ThrottleRun {
            service: "iam",
            first: THROTTLED_IAM_CALL,
            times,
        }],
        ..FaultPlan::default()
    };
    let (took, ok) = if by_function {
        let mut function = Function::start(&proxy.endpoint, &[]).await;
        function.api.first_poll(Duration::from_secs(10)).await;
        proxy.clear_calls();
        proxy.set_plan(plan);
        let started = Instant::now();
        let reply = function
            .invoke("createSecret", &fixture.secret_arn, token)
            .await;
        let took = millis(started.elapsed());
        function.stop().await;
        (took, matches!(reply, Reply::Response(_)))
    } else {
        proxy.clear_calls();
        proxy.set_plan(plan);
        let run = create_secret_with_boto3(&proxy.endpoint, &fixture.secret_arn, token).await;
        (millis(run.took), run.ok)
    };
    proxy.set_plan(FaultPlan::default());
    ThrottledStep {
        took,
        ok,
        requests: proxy.calls(),
    }
}

/// The retry settings before this project tuned them: the SDK's defaults.
const SDK_DEFAULT_RETRIES: [(&str, &str); 2] =
    [("AWS_RETRY_MODE", "standard"), ("AWS_MAX_ATTEMPTS", "3")];

/// Rotation storms (36 secrets due at once, 6 instances) at several account-wide
/// IAM rate limits, with the function's retry settings and, side by side, with
/// the SDK's defaults. Every failed step is one more run of the step by Secrets
/// Manager.
async fn storms(world: &World, quick: bool) {
    let rates: &[f64] = if quick {
        &[12.0]
    } else {
        &[2.0, 5.0, 12.0, 25.0]
    };
    println!(
        "\nRotation storm: 36 secrets due at once, 6 function instances, IAM limited per account\n"
    );
    println!(
        "| IAM calls/s allowed | retry settings | wall time (s) | calls | throttled | failed steps (re-runs) | rotations given up | IAM calls/s answered | slowest step (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &rate in rates {
        for (label, env) in [
            ("function's", Vec::new()),
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
                "| {rate} | {label} | {:.1} | {} | {} | {} | {} | {:.1} | {:.1} |",
                report.wall_time.as_secs_f64(),
                report.calls,
                report.throttled,
                report.failed_steps.len(),
                report.abandoned,
                report.iam_rate(),
                report.slowest_step().as_secs_f64()
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
