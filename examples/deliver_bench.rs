//! What delivery costs (SPEC 14), measured on this machine and printed beside a
//! baseline: the delivery function's cold start and peak memory at full CPU
//! beside the rotation function's; the calls each kind of target takes beside
//! the fewest a client could make without verifying; and a fleet, N secrets of
//! two targets each (a GitHub repository and SSM parameters) delivered by one
//! scheduled invocation, with and without a GitHub rate limit that bites.
//!
//! It builds nothing: it runs the binaries named by `IAM_KEY_DELIVER_BOOTSTRAP`
//! and `IAM_KEY_ROTATION_BOOTSTRAP` (release artifacts; the debug builds
//! otherwise) under a local Lambda Runtime API against moto, AWS calls through
//! the fault proxy with a round trip added, and the GitHub stand-in. Run it
//! with `scripts/bench.sh [--quick]`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::delivery::{deliver_env, env_pairs};
use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::function::{Function, bootstrap, deliver_bootstrap};
use harness::github_standin::GitHubStandIn;
use harness::runtime_api::Reply;
use harness::{REGION, World, unique};
use serde_json::{Value, json};

/// AWS's round trip, which moto on the same machine does not have.
const AWS_LATENCY: Duration = Duration::from_millis(15);
/// The template's timeout of the delivery function.
const TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let world = World::new().await;
    println!(
        "benchmarking {} ({} mode), beside {}",
        deliver_bootstrap().display(),
        if quick { "quick" } else { "full" },
        bootstrap().display()
    );
    start_and_memory(&world, if quick { 5 } else { 30 }).await;
    calls_per_target(&world).await;
    fleet(&world, if quick { 40 } else { 200 }).await;
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A secret under `prefix` whose bound user's key is described for the
/// current version, as a rotation leaves it (the delivery function vouches
/// for it with one `GetUser`), with `targets`.
async fn secret(world: &World, prefix: &str, targets: &[(&str, String)]) -> String {
    let fixture = world
        .user_with_key_at("/", &format!("{prefix}{}", unique("app")))
        .await;
    let key = world.current_key(&fixture).await.unwrap();
    world.describe_key(&fixture, &key).await;
    let arn = fixture.secret_arn;
    let tags: Vec<(String, String)> = targets
        .iter()
        .map(|(label, spec)| (format!("iam-key-rotation:deliver:{label}"), spec.clone()))
        .collect();
    let pairs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    world.tag_secret(&arn, &pairs).await;
    arn
}

/// A stand-in with a token in a credentials secret.
async fn github(world: &World) -> (GitHubStandIn, String) {
    let github = GitHubStandIn::start();
    let token = github.token(&["*"]).await;
    let credentials = world.github_credentials(&json!({ "token": token })).await;
    (github, credentials)
}

/// Cold start (spawn to the first poll of the Runtime API) and peak RSS across
/// a delivery to three targets, beside the rotation function's cold start and
/// peak across its four steps.
async fn start_and_memory(world: &World, runs: usize) {
    let (github, credentials) = github(world).await;
    let prefix = format!("{}/", unique("bench-start"));
    let env = deliver_env(&github, &credentials, &prefix);
    let (mut deliver_start, mut deliver_rss) = (Vec::new(), Vec::new());
    let (mut rotate_start, mut rotate_rss) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let owner = unique("o").replace('-', "");
        github.repository(&owner, "app", &[]).await;
        let copy = world
            .create_secret(&unique("copies/bench"), &json!({}))
            .await;
        let arn = secret(
            world,
            &prefix,
            &[
                ("ci", format!("github:{owner}/app")),
                (
                    "params",
                    format!("ssm:{REGION}:/{}", unique("bench").replace('-', "_")),
                ),
                ("copy", format!("secretsmanager:{copy}")),
            ],
        )
        .await;
        let mut deliverer =
            Function::start_deliver(&harness::moto().endpoint, &env_pairs(&env)).await;
        let polled = deliverer
            .api
            .first_poll(Duration::from_secs(10))
            .await
            .unwrap();
        deliver_start.push(millis(polled - deliverer.spawned_at));
        let response = deliverer.deliver(Some(&arn)).await;
        assert_eq!(response["Failed"], json!([]), "{response}");
        deliver_rss.push(deliverer.peak_rss_kib().unwrap_or(0) as f64 / 1024.0);
        deliverer.stop().await;

        let fixture = world.user_with_key().await;
        let token = world.start_rotation(&fixture).await;
        let mut rotator = Function::start(&harness::moto().endpoint, &[]).await;
        let polled = rotator
            .api
            .first_poll(Duration::from_secs(10))
            .await
            .unwrap();
        rotate_start.push(millis(polled - rotator.spawned_at));
        rotator.rotate(&fixture.secret_arn, &token).await;
        rotate_rss.push(rotator.peak_rss_kib().unwrap_or(0) as f64 / 1024.0);
        rotator.stop().await;
    }
    println!(
        "\nAt full CPU, median of {runs} runs each:\n\n| figure | delivery function | rotation function (baseline) | target |\n|---|---|---|---|"
    );
    println!(
        "| cold start: spawn to first poll of the Runtime API (ms) | {:.1} | {:.1} | < 15 |",
        median(deliver_start),
        median(rotate_start)
    );
    println!(
        "| peak RSS (MiB): one delivery to GitHub, SSM and a copy / one rotation | {:.1} | {:.1} | < 12 |",
        median(deliver_rss),
        median(rotate_rss)
    );
}

/// The calls of one delivery run for one secret of three targets, by service
/// and operation, and what each target takes beside the fewest calls a client
/// could make without verifying its writes.
async fn calls_per_target(world: &World) {
    let (github, credentials) = github(world).await;
    let prefix = format!("{}/", unique("bench-calls"));
    let owner = unique("o").replace('-', "");
    github.repository(&owner, "app", &[]).await;
    let copy = world
        .create_secret(&unique("copies/bench"), &json!({}))
        .await;
    let path = format!("/{}", unique("calls").replace('-', "_"));
    let first = secret(
        world,
        &prefix,
        &[
            ("ci", format!("github:{owner}/app")),
            ("params", format!("ssm:{REGION}:{path}")),
            ("copy", format!("secretsmanager:{copy}")),
        ],
    )
    .await;
    // A second secret to the same repository: its public key is known by then.
    let second = secret(
        world,
        &prefix,
        &[("ci", format!("github:{owner}/app:names=B_ID,B_SECRET"))],
    )
    .await;
    let proxy = FaultProxy::start(&harness::moto().endpoint).await;
    let env = deliver_env(&github, &credentials, &prefix);
    let mut deliverer = Function::start_deliver(&proxy.endpoint, &env_pairs(&env)).await;
    deliverer.deliver(Some(&first)).await;
    let aws: BTreeMap<String, usize> =
        proxy
            .calls()
            .iter()
            .fold(BTreeMap::new(), |mut counts, call| {
                *counts
                    .entry(format!("{} {}", call.service, call.operation))
                    .or_default() += 1;
                counts
            });
    let github_first = github.calls().await.len();
    deliverer.deliver(Some(&second)).await;
    let github_second = github.calls().await.len() - github_first;
    deliverer.stop().await;
    let count = |operation: &str| {
        aws.iter()
            .filter(|(name, _)| name.ends_with(operation))
            .map(|(_, n)| *n)
            .sum::<usize>()
    };
    // The secret's own: DescribeSecret before and after, its value, the
    // events, the record (the credentials' GetSecretValue is once per run).
    // The secret's own: DescribeSecret before and after, its value, GetUser
    // to vouch for its key, the events, the record (the credentials'
    // GetSecretValue is once per run).
    let per_secret = 2
        + (count(" GetSecretValue") - 1)
        + count(" GetUser")
        + count(" GetCallerIdentity")
        + count(" PutEvents")
        + count(" TagResource");
    println!("\nCalls per delivered target (two names or parameters, no SMTP password):\n");
    println!("| target | calls | fewest without verifying (baseline) | what |\n|---|---|---|---|");
    println!(
        "| GitHub repository, first of its key | {github_first} | 3 | GET public-key, then PUT + GET (updated_at) per name |"
    );
    println!("| GitHub, key already known | {github_second} | 2 | PUT + GET per name |");
    println!(
        "| SSM parameters | {} | 2 | PutParameter + GetParameter (version, no decryption) per name |",
        count(" PutParameter") + count(" GetParameter")
    );
    println!(
        "| Secrets Manager copy | {} | 1 | PutSecretValue + DescribeSecret (AWSCURRENT) |",
        count(" PutSecretValue") + count_copy_describes(&aws)
    );
    println!(
        "| per secret, whatever its targets | {per_secret} | 3 | DescribeSecret, GetSecretValue, GetUser (its key vouched for), PutEvents, DescribeSecret again, TagResource; the baseline reads, writes no event, records |"
    );
    println!(
        "\n(the run also read the GitHub credentials once: 1 GetSecretValue per run; AWS calls seen: {aws:?})"
    );
}

/// The copy's `DescribeSecret`: one per copy target (the other two are the
/// secret's own, before and after).
fn count_copy_describes(aws: &BTreeMap<String, usize>) -> usize {
    aws.get("secretsmanager DescribeSecret")
        .map_or(0, |n| n.saturating_sub(2))
}

/// `secrets` secrets of two targets each, delivered by one scheduled
/// invocation through the proxy (AWS's round trip added), without a rate
/// limit and with one GitHub enforces by 403 until its reset.
async fn fleet(world: &World, secrets: usize) {
    let mut columns = Vec::new();
    for limited in [false, true] {
        let (github, credentials) = github(world).await;
        let prefix = format!("{}/", unique("bench-fleet"));
        for n in 0..secrets {
            let owner = format!("o{n}");
            github.repository(&owner, "app", &[]).await;
            secret(
                world,
                &prefix,
                &[
                    ("ci", format!("github:{owner}/app")),
                    (
                        "params",
                        format!("ssm:{REGION}:/{}/{n}", prefix.trim_end_matches('/')),
                    ),
                ],
            )
            .await;
        }
        // GitHub's 5,000 calls an hour for a token, scaled down: a window of
        // a few seconds that the run's calls overrun about twice.
        let window = Duration::from_secs(4);
        let limit = (secrets * 2) as u32;
        if limited {
            github.rate_limit(limit, window).await;
        }
        let proxy = FaultProxy::start(&harness::moto().endpoint).await;
        proxy.set_plan(FaultPlan {
            latency: AWS_LATENCY,
            ..FaultPlan::default()
        });
        let env = deliver_env(&github, &credentials, &prefix);
        let deliverer = Function::start_deliver(&proxy.endpoint, &env_pairs(&env)).await;
        deliverer.api.first_poll(Duration::from_secs(10)).await;
        let started = Instant::now();
        let reply = deliverer
            .api
            .invoke(json!({"Action": "deliver"}), TIMEOUT)
            .await
            .expect("the run answered");
        let wall = started.elapsed();
        let Reply::Response(response) = reply else {
            panic!("the run failed: {reply:?}")
        };
        let delivered = response["Delivered"].as_array().map_or(0, Vec::len);
        let failed = response["Failed"].as_array().map_or(0, Vec::len);
        let rss = deliverer.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
        deliverer.stop().await;
        columns.push(Column {
            label: if limited {
                format!("{limit} GitHub calls per {} s", window.as_secs())
            } else {
                "no rate limit (baseline)".into()
            },
            wall,
            delivered,
            failed,
            github_calls: github.calls().await.len(),
            refused: github.rate_limited_calls().await,
            aws_calls: proxy.calls().len(),
            rss,
            response,
        });
    }
    println!(
        "\n{secrets} secrets x 2 targets (a GitHub repository each, and SSM), one scheduled invocation, AWS at +{} ms a call:\n",
        AWS_LATENCY.as_millis()
    );
    print!("| figure |");
    for column in &columns {
        print!(" {} |", column.label);
    }
    println!("\n|---|{}", "---|".repeat(columns.len()));
    let rows: [(&str, Cell); 7] = [
        ("targets delivered", |c| {
            format!("{} of {}", c.delivered, c.delivered + c.failed)
        }),
        ("wall time (s)", |c| format!("{:.1}", c.wall.as_secs_f64())),
        ("GitHub calls answered", |c| c.github_calls.to_string()),
        (
            "of which refused by the rate limit (403, remaining 0)",
            |c| c.refused.to_string(),
        ),
        ("AWS calls", |c| c.aws_calls.to_string()),
        ("AWS calls per target", |c| {
            format!("{:.2}", c.aws_calls as f64 / (c.delivered.max(1)) as f64)
        }),
        ("peak RSS (MiB)", |c| format!("{:.1}", c.rss)),
    ];
    for (figure, cell) in rows {
        print!("| {figure} |");
        for column in &columns {
            print!(" {} |", cell(column));
        }
        println!();
    }
    for column in &columns {
        assert_eq!(column.failed, 0, "{}: {}", column.label, column.response);
    }
}

/// How a fleet table's cell is made from a column.
type Cell = fn(&Column) -> String;

struct Column {
    label: String,
    wall: Duration,
    delivered: usize,
    failed: usize,
    github_calls: usize,
    refused: u64,
    aws_calls: usize,
    rss: f64,
    response: Value,
}
