//! What a rotation costs, measured on this machine: cold start, peak memory, AWS
//! calls, wall time of the four steps, how long testSecret waits past the moment a
//! propagating key becomes valid, and the artifact's size. Prints a table with the
//! min, median and max of repeated runs.
//!
//! It builds nothing: it runs the binary named by `IAM_KEY_ROTATION_BOOTSTRAP` (the
//! release artifact) under a local Lambda Runtime API against moto. Run it with
//! `scripts/bench.sh [--quick]`.

use std::time::{Duration, Instant};

use harness::cpu_share::CpuShare;
use harness::fault_proxy::{FaultPlan, FaultProxy};
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
